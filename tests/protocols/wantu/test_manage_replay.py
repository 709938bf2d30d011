"""A Wantu manage signature covers path, body and Date but no method: the server binds it to the
first method it came with, on every node, and the Date window is the server's skew setting."""

from __future__ import annotations

import time

import httpx

from mediagate.config import Settings
from tests.conftest import LiveServer
from tests.protocols.wantu.client import WantuClient, b64, hmac_sha1


def _signed(wantu: WantuClient, path: str, date: str) -> dict[str, str]:
    sign = hmac_sha1(wantu.sk, f"{path}\n\n{date}")
    token = b64(f"{wantu.ak}:{sign}")
    return {"Authorization": f"ACL_TOP {token}", "Date": date}


def _stored(wantu: WantuClient, name: str) -> str:
    r = wantu.upload(b"keep me", fields={"dir": "/", "name": name})
    assert r.status_code == 200, r.text
    return f"/3.0/files/{wantu.file_rid('/', name)}"


def test_a_captured_get_does_not_authorise_a_delete(wantu: WantuClient) -> None:
    path = _stored(wantu, "victim.txt")
    headers = _signed(wantu, path, wantu.fresh_date())
    assert wantu.http.get(path, headers=headers).status_code == 200
    assert wantu.http.get(path, headers=headers).status_code == 200  # a retry is fine
    assert wantu.http.head(path, headers=headers).status_code == 200  # HEAD reads like GET

    replay = wantu.http.delete(path, headers=headers)
    assert replay.status_code == 401, replay.text
    assert replay.json()["code"] == "AuthenticationFailed"
    assert "GET" in replay.json()["message"]
    assert wantu.manage("GET", path + "/exist").status_code == 200


def test_the_replay_is_refused_by_another_node(
    wantu: WantuClient, server: LiveServer, server_home: Settings
) -> None:
    path = _stored(wantu, "shared.txt")
    headers = _signed(wantu, path, wantu.fresh_date())
    assert wantu.http.get(path, headers=headers).status_code == 200
    other = LiveServer(server_home.home).start()
    try:
        replay = httpx.delete(other.url + path, headers=headers)
        assert replay.status_code == 401, replay.text
    finally:
        other.stop()
    assert wantu.manage("GET", path + "/exist").status_code == 200


def test_a_delete_signature_does_not_become_a_rename_or_a_create(wantu: WantuClient) -> None:
    path = _stored(wantu, "first.txt")
    headers = _signed(wantu, path, wantu.fresh_date())
    assert wantu.http.delete(path, headers=headers).status_code == 200
    assert wantu.http.post(path, headers=headers).status_code == 401


def test_the_date_window_is_the_servers_setting(server_home: Settings, wantu: WantuClient) -> None:
    """date_skew_seconds=120: a Date 5 minutes old is refused, one 1 minute old is served (the
    seed's hard-coded 15 minutes would have accepted the first)."""
    strict = LiveServer(server_home.home, env={"MEDIAGATE_DATE_SKEW_SECONDS": "120"}).start()
    try:
        client = WantuClient(strict.url, wantu.ak, wantu.sk, wantu.namespace)
        old = client.manage("GET", "/3.0/files", date=str(int((time.time() - 300) * 1000)))
        assert old.status_code == 401 and "2 minutes" in old.json()["message"], old.text
        recent = client.manage("GET", "/3.0/files", date=str(int((time.time() - 60) * 1000)))
        assert recent.status_code == 200, recent.text
        client.close()
    finally:
        strict.stop()
    assert "Traceback" not in strict.log()

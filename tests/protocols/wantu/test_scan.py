"""Wantu ``/3.1/scanPorn``, ``/3.1/scanAdvertising`` and ``/3.0/feedback`` through a live server.

Scores come from the offline model: each is compared with media.moderation run here on the same
bytes (the real model, the same preprocessing), so a made-up score cannot pass."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from urllib.parse import quote

import pytest
from PIL import Image

from mediagate.media import moderation
from tests.protocols.wantu.client import WantuClient, b64

pytestmark = pytest.mark.skipif(not moderation.available(), reason="the moderation extra is not installed")


def image(fmt: str, colour: tuple[int, int, int], size: tuple[int, int] = (300, 200)) -> bytes:
    im = Image.new("RGB", size, colour)
    for x in range(0, size[0], 10):  # some structure, so images differ beyond their colour
        for y in range(size[1]):
            im.putpixel((x, y), (colour[2], colour[0], colour[1]))
    buf = io.BytesIO()
    im.save(buf, fmt)
    return buf.getvalue()


def put(wantu: WantuClient, name: str, data: bytes) -> None:
    r = wantu.upload(data, policy=wantu.policy(dir="/scan", name=name))
    assert r.status_code == 200, r.text


def scan(
    wantu: WantuClient, *rids: str, encode_semicolons: bool = True, call: str = "/3.1/scanPorn"
) -> list[dict[str, object]]:
    value = ";".join(rids)
    body = "resourceId=" + (quote(value, safe="") if encode_semicolons else value)
    r = wantu.manage("POST", call, body=body)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["status"] == 0 and answer["message"] == "success"
    return list(answer["result"])


def test_scores_come_from_the_model(wantu: WantuClient, tmp_path: Path) -> None:
    samples = {
        "skin.jpg": image("JPEG", (224, 172, 140)),
        "sky.png": image("PNG", (40, 90, 220)),
        "grass.bmp": image("BMP", (30, 160, 40)),
    }
    for name, data in samples.items():
        put(wantu, name, data)
    rids = [wantu.file_rid("/scan", name) for name in samples]
    result = scan(wantu, *rids)
    assert len(result) == 3
    for entry, (name, data) in zip(result, samples.items(), strict=True):
        assert entry["file"] == {"dir": "/scan", "name": name, "namespace": wantu.namespace}
        assert entry["status"] == 0 and entry["message"] == "success"
        local = tmp_path / name
        local.write_bytes(data)
        expected = moderation.score_file(local, formats=moderation.WANTU_FORMATS)
        assert entry["score"] == expected.score
        score = entry["score"]
        assert isinstance(score, float) and 0 <= score <= 1
        assert entry["type"] == (1 if score >= 0.8 else 0)
    # the SDK form (';' url-encoded as %3B) and the seed's raw ';' are the same list
    assert scan(wantu, *rids, encode_semicolons=False) == result


def test_per_file_status_codes(wantu: WantuClient) -> None:
    put(wantu, "ok.png", image("PNG", (120, 120, 120)))
    put(wantu, "anim.gif", image("GIF", (120, 10, 10)))
    put(wantu, "note.txt", b"not an image at all\n" * 10)
    put(wantu, "big.jpg", os.urandom(10 * 1024 * 1024 + 1))
    rids = [
        wantu.file_rid("/scan", "ok.png"),
        wantu.file_rid("/scan", "missing.png"),
        wantu.file_rid("/scan", "anim.gif"),
        wantu.file_rid("/scan", "note.txt"),
        wantu.file_rid("/scan", "big.jpg"),
        "%%%not-base64",
        b64('["","/scan"]'),  # a folder rid, not a file
        wantu.file_rid("/scan", "ok.png", namespace="someone-else"),
    ]
    result = scan(wantu, *rids)
    assert [e["status"] for e in result] == [0, 2, 3, 3, 5, 4, 4, 2]
    for entry in result[1:]:
        assert "score" not in entry and entry["message"]
    assert result[2]["file"] == {"dir": "/scan", "name": "anim.gif", "namespace": wantu.namespace}


def test_scan_without_resources_is_invalid(wantu: WantuClient) -> None:
    for body in ("", "resourceId=", "resourceId=%3B%3B", "other=1"):
        r = wantu.manage("POST", "/3.1/scanPorn", body=body)
        assert r.status_code == 400 and r.json()["code"] == "InvalidArgument", body
    too_many = ";".join([wantu.file_rid("/scan", "x")] * 51)
    r = wantu.manage("POST", "/3.1/scanPorn", body="resourceId=" + quote(too_many, safe=""))
    assert r.status_code == 400


def test_url_lists_are_answered_per_entry(wantu: WantuClient) -> None:
    body = "url=" + quote("http://example.com/a.jpg;ftp://x/y.jpg", safe="")
    r = wantu.manage("POST", "/3.1/scanPorn", body=body)
    assert r.status_code == 200
    assert [e["status"] for e in r.json()["result"]] == [2, 4]


def feedback_body(*items: object) -> str:
    return "&".join("feedback=" + quote(json.dumps(i), safe="") for i in items)


def test_feedback_is_stored_and_listed(wantu: WantuClient) -> None:
    first = {
        "file": {"dir": "/scan", "name": "a.jpg", "namespace": wantu.namespace},
        "type": 1,
        "wrong": True,
        "score": 0.3,
    }
    second = {"file": {"dir": "/", "name": "b.png", "namespace": ""}, "type": 0, "wrong": False}
    for path in ("/3.0/feedback", "/3.1/feedback"):  # the seed's and the SDK's path
        r = wantu.manage("POST", path, body=feedback_body(first, second))
        assert r.status_code == 200 and r.json()["status"] == 0, r.text
    page = wantu.manage("GET", "/3.0/feedback", query="currentPage=1&pageSize=3").json()
    assert page["totalCount"] == 4 and page["totalPage"] == 2 and len(page["result"]) == 3
    newest = page["result"][0]
    assert newest["file"] == {"namespace": wantu.namespace, "dir": "/", "name": "b.png"}
    assert newest["type"] == 0 and newest["wrong"] is False and "score" not in newest
    older = page["result"][1]
    assert older["file"]["dir"] == "/scan" and older["wrong"] is True and older["score"] == 0.3


def test_bad_feedback_stores_nothing(wantu: WantuClient) -> None:
    good = {"file": {"dir": "/", "name": "g.jpg", "namespace": ""}, "type": 0, "wrong": False}
    bad = [
        {"file": {"dir": "/", "name": "x.jpg"}, "type": 1, "wrong": True},  # score missing
        {"file": {"dir": "/", "name": "x.jpg"}, "type": 2, "wrong": False},
        {"file": {"dir": "/", "name": "x.jpg"}, "type": 0, "wrong": "yes"},
        {"file": {"dir": "/", "name": "x.jpg"}, "type": 0, "wrong": True, "score": 1.5},
        {"file": {"dir": "/"}, "type": 0, "wrong": False},
        {"type": 0, "wrong": False},
        "not an object",
    ]
    for item in bad:
        r = wantu.manage("POST", "/3.0/feedback", body=feedback_body(good, item))
        assert r.status_code == 400 and r.json()["code"] == "InvalidArgument", (item, r.text)
    assert wantu.manage("POST", "/3.0/feedback", body="feedback=%7Bnope").status_code == 400
    assert wantu.manage("POST", "/3.0/feedback", body="").status_code == 400
    other = {"file": {"dir": "/", "name": "x.jpg", "namespace": "someone-else"}, "type": 0, "wrong": False}
    r = wantu.manage("POST", "/3.0/feedback", body=feedback_body(good, other))
    assert r.status_code == 401
    assert wantu.manage("GET", "/3.0/feedback").json()["totalCount"] == 0


def test_scan_advertising_answers_per_file_and_never_makes_up_a_score(wantu: WantuClient) -> None:
    """No advertising classifier exists here: scanPorn's shape and per-file checks, then status
    100 saying so for each file that passed them; no entry carries a score or a type."""
    put(wantu, "ad.jpg", image("JPEG", (250, 200, 0)))
    put(wantu, "ad.bmp", image("BMP", (0, 200, 250)))
    put(wantu, "anim.gif", image("GIF", (120, 10, 10)))
    put(wantu, "note.txt", b"buy now\n" * 10)
    put(wantu, "big.png", os.urandom(10 * 1024 * 1024 + 1))
    rids = [
        wantu.file_rid("/scan", "ad.jpg"),
        wantu.file_rid("/scan", "ad.bmp"),
        wantu.file_rid("/scan", "missing.png"),
        wantu.file_rid("/scan", "anim.gif"),
        wantu.file_rid("/scan", "note.txt"),
        wantu.file_rid("/scan", "big.png"),
        "%%%not-base64",
        wantu.file_rid("/scan", "ad.jpg", namespace="someone-else"),
    ]
    result = scan(wantu, *rids, call="/3.1/scanAdvertising")
    assert [e["status"] for e in result] == [100, 100, 2, 3, 3, 5, 4, 2]
    for entry in result:
        assert set(entry) == {"file", "status", "message"} and entry["message"]
    assert result[0]["file"] == {"dir": "/scan", "name": "ad.jpg", "namespace": wantu.namespace}
    assert "no advertising classifier" in str(result[0]["message"])
    assert scan(wantu, *rids[:2], encode_semicolons=False, call="/3.1/scanAdvertising") == result[:2]
    for body in ("", "resourceId=%3B"):
        r = wantu.manage("POST", "/3.1/scanAdvertising", body=body)
        assert r.status_code == 400 and r.json()["code"] == "InvalidArgument", body
    assert wantu.manage("GET", "/3.1/scanAdvertising").status_code == 404


def test_without_a_working_model_each_file_says_how_to_install_it(tmp_path: Path) -> None:
    """A server whose installed model file is damaged (a package of the same name earlier on its
    path, the real file with one bit flipped): status 100 and the install hint, never a score."""
    from mediagate.core.buckets import create_bucket
    from mediagate.services import build_gateway
    from tests.conftest import LiveServer, make_home

    site = tmp_path / "site" / moderation.MODEL_PACKAGE
    site.mkdir(parents=True)
    (site / "__init__.py").write_text("")
    real = moderation.model_path().read_bytes()
    (site / moderation.MODEL_FILE).write_bytes(real[:-1] + bytes([real[-1] ^ 1]))
    settings = make_home(tmp_path / "home")
    admin = build_gateway(settings, migrate=False)
    creds = create_bucket(admin.catalog, admin.secrets, "nomodel")
    path = os.pathsep.join(p for p in (str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")) if p)
    server = LiveServer(settings.home, env={"PYTHONPATH": path}).start()
    wantu = WantuClient(server.url, creds.access_key_id, creds.secret_access_key, creds.bucket)
    try:
        put(wantu, "p.png", image("PNG", (224, 172, 140)))
        (entry,) = scan(wantu, wantu.file_rid("/scan", "p.png"))
        assert entry["status"] == 100 and "score" not in entry and "type" not in entry
        assert moderation.INSTALL_HINT in str(entry["message"]) and "damaged" in str(entry["message"])
        assert "Traceback" not in server.log()
    finally:
        wantu.close()
        server.stop()
        admin.catalog.close()

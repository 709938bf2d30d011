"""`mediagate notify`: an operator sees a FORM upload's notify-url deliveries (attempts, last answer,
times, never a signature or a secret) and replays one to the customer's server."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from mediagate.config import Settings
from mediagate.core.buckets import BucketCredentials
from tests.conftest import LiveServer
from tests.protocols.upyun.forms import Receiver, authorization, http_date, policy_of, post, wait_until
from tests.support.cli import run_mediagate

SHOW_FIELDS = {
    "id",
    "status",
    "bucket",
    "url",
    "method",
    "attempts",
    "last_status_code",
    "last_error",
    "next_attempt_at",
    "created_at",
    "delivered_at",
    "headers",
    "history",
}


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        yield c


def _notified_upload(client: httpx.Client, bucket: BucketCredentials, receiver: Receiver) -> None:
    """A FORM upload signed with ``authorization``, so its notification carries a signed header."""
    date = http_date()
    p = policy_of(bucket, "/n.bin", date=date, notify_url=receiver.url("/hook?src=upyun"))
    fields = [
        ("policy", p),
        ("authorization", authorization(bucket, p, date=date)),
        ("file", ("n.bin", b"x" * 10)),
    ]
    r = post(client, bucket.bucket, fields)
    assert r.status_code == 200, r.text


def _listed(home: Settings, *args: str) -> list[dict[str, object]]:
    done = run_mediagate(home.home, "notify", "list", "--json", *args)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert isinstance(rows, list)
    return rows


def test_list_show_and_redeliver_a_form_notification(
    server_home: Settings, client: httpx.Client, bucket: BucketCredentials
) -> None:
    with Receiver([500, 200]) as receiver:
        _notified_upload(client, bucket, receiver)
        assert wait_until(lambda: len(receiver.requests) >= 2, timeout=15)
        assert wait_until(
            lambda: [r["status"] for r in _listed(server_home, "--bucket", bucket.bucket)] == ["delivered"],
            timeout=10,
        )
        (row,) = _listed(server_home, "--bucket", bucket.bucket, "--status", "delivered")
        assert row["attempts"] == 2 and row["last_status_code"] == 200 and row["last_error"] is None
        assert row["bucket"] == bucket.bucket
        assert row["url"] == receiver.url("/hook?src=upyun")
        assert _listed(server_home, "--bucket", bucket.bucket, "--status", "failed") == []

        shown = run_mediagate(server_home.home, "notify", "show", str(row["id"]), "--json")
        assert shown.returncode == 0, shown.stderr
        detail = json.loads(shown.stdout)
        assert set(detail) == SHOW_FIELDS
        assert detail["delivered_at"] is not None and detail["created_at"] is not None
        assert detail["next_attempt_at"] is None
        assert "Authorization" in detail["headers"]
        tries = [(a["attempt"], a["ok"], a["status_code"]) for a in detail["history"]]
        assert tries == [(2, True, 200), (1, False, 500)]  # each try, newest first
        signed = receiver.requests[-1][1]["authorization"]
        table = run_mediagate(server_home.home, "notify", "show", str(row["id"]))
        assert "attempts (newest first)" in table.stdout and "500" in table.stdout
        for text in (shown.stdout, table.stdout):
            assert signed not in text and signed.split(":")[-1] not in text
            assert bucket.password not in text and bucket.form_api_secret not in text
            assert receiver.requests[-1][1]["content-md5"] not in text

        replay = run_mediagate(server_home.home, "notify", "redeliver", str(row["id"]))
        assert replay.returncode == 0, replay.stderr
        assert "queued again" in replay.stdout
        assert wait_until(lambda: len(receiver.requests) >= 3, timeout=10)
        assert receiver.requests[2][2] == receiver.requests[1][2]  # the same notification again
        assert wait_until(
            lambda: (
                json.loads(
                    run_mediagate(server_home.home, "notify", "show", str(row["id"]), "--json").stdout
                )["attempts"]
                == 1
            ),
            timeout=10,
        )
        again = json.loads(run_mediagate(server_home.home, "notify", "show", str(row["id"]), "--json").stdout)
        assert (again["status"], again["last_status_code"]) == ("delivered", 200)
        assert [a["attempt"] for a in again["history"]] == [1, 2, 1]  # the history stays


def test_a_failing_notification_is_listed_as_failed_with_its_reason(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from mediagate.core.buckets import create_bucket
    from mediagate.services import build_gateway
    from tests.conftest import make_home

    home = make_home(tmp_path_factory.mktemp("failhome"))
    admin = build_gateway(home, migrate=False)
    creds = create_bucket(admin.catalog, admin.secrets, "media")
    admin.catalog.close()
    env = {"MEDIAGATE_ALLOW_PRIVATE_CALLBACKS": "1", "MEDIAGATE_NOTIFY_RETRIES": "0"}
    live = LiveServer(home.home, env=env).start()
    try:
        with Receiver([503]) as receiver, httpx.Client(base_url=live.url, timeout=10) as c:
            _notified_upload(c, creds, receiver)
            assert wait_until(lambda: _listed(home, "--status", "failed") != [], timeout=10)
            (row,) = _listed(home, "--status", "failed")
            assert (row["attempts"], row["last_status_code"]) == (1, 503)
            assert row["last_error"] == "answered HTTP 503"
            assert _listed(home, "--status", "delivered") == []
            assert _listed(home, "--limit", "1") == [row]
    finally:
        live.stop()


def test_unknown_ids_buckets_and_statuses_say_what_to_do(server_home: Settings) -> None:
    for args, fragment in [
        (("notify", "show", "987654321", "--json"), "notification 987654321 does not exist"),
        (("notify", "redeliver", "987654321"), "notification 987654321 does not exist"),
        (("notify", "show", "abc"), "'abc' is not a notification id"),
        (("notify", "show", "9" * 20), f"'{'9' * 20}' is not a notification id"),  # not an INTEGER
        (("notify", "redeliver", str(2**31)), f"'{2**31}' is not a notification id"),
        (("notify", "list", "--bucket", "nosuch"), "bucket 'nosuch' does not exist"),
        (("notify", "list", "--status", "lost"), "unknown status 'lost'"),
    ]:
        done = run_mediagate(server_home.home, *args)
        assert done.returncode == 1, (args, done.stdout)
        assert fragment in done.stderr, (args, done.stderr)
        assert "notify list" in done.stderr or "one of" in done.stderr or "bucket list" in done.stderr
        assert "Traceback" not in done.stderr


@pytest.mark.parametrize("command", ["list", "show", "redeliver"])
def test_help(server_home: Settings, command: str) -> None:
    done = run_mediagate(server_home.home, "notify", command, "--help")
    assert done.returncode == 0, done.stderr
    assert "Usage" in done.stdout and f"notify {command}" in done.stdout

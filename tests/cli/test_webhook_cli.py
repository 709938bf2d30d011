"""`mediagate bucket webhook`: an operator points a bucket's /v1 and tus events at the app's
backend, gets the signing secret once, rotates it, and sees the deliveries with `mediagate notify`."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import httpx

from mediagate.config import Settings
from mediagate.core.buckets import BucketCredentials
from mediagate.core.gateway import Gateway
from tests.conftest import LiveServer
from tests.protocols.native.api import new_key
from tests.protocols.upyun.forms import Receiver, wait_until
from tests.support.cli import run_mediagate

ALLOW_PRIVATE = {"MEDIAGATE_ALLOW_PRIVATE_CALLBACKS": "1"}


def webhook(home: Settings, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    done = run_mediagate(home.home, "bucket", "webhook", *args, "--json", env=env)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def signed_by(secret: str, headers: dict[str, str], body: bytes) -> bool:
    fields = [part.split("=", 1) for part in headers["x-mediagate-signature"].split(",")]
    (stamp,) = [v for k, v in fields if k == "t"]
    mac = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return abs(time.time() - int(stamp)) < 300 and any(k == "v1" and v == mac for k, v in fields)


def test_set_rotate_show_and_clear(
    server: LiveServer, server_home: Settings, admin: Gateway, bucket: BucketCredentials
) -> None:
    b = bucket.bucket
    assert webhook(server_home, "show", b) == {"bucket": b, "url": None, "has_secret": False}
    with Receiver() as receiver:
        refused = run_mediagate(server_home.home, "bucket", "webhook", "set", b, receiver.url("/cli"))
        assert refused.returncode == 1
        assert "private or reserved address" in refused.stderr
        assert "MEDIAGATE_ALLOW_PRIVATE_CALLBACKS" in refused.stderr
        bad = run_mediagate(server_home.home, "bucket", "webhook", "set", b, "ftp://example.com/")
        assert bad.returncode == 1 and "http://" in bad.stderr

        made = webhook(server_home, "set", b, receiver.url("/cli"), env=ALLOW_PRIVATE)
        assert made["url"] == receiver.url("/cli") and made["secret"].startswith("whsec_")
        secret = made["secret"]
        again = webhook(server_home, "set", b, receiver.url("/cli"), env=ALLOW_PRIVATE)
        assert again["secret"] is None  # kept: shown once, when it was made
        assert webhook(server_home, "show", b) == {
            "bucket": b,
            "url": receiver.url("/cli"),
            "has_secret": True,
        }

        time.sleep(1.1)  # the server's bucket cache
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {new_key(admin, b)}"}
        ) as api:
            assert api.put(f"/v1/buckets/{b}/objects/cli.txt", content=b"from the cli").status_code == 201
        assert wait_until(lambda: len(receiver.requests) == 1, timeout=20)
        _, headers, body = receiver.requests[0]
        assert signed_by(secret, headers, body) and json.loads(body)["key"] == "cli.txt"

        listed = run_mediagate(server_home.home, "notify", "list", "--bucket", b, "--json")
        assert listed.returncode == 0, listed.stderr
        (row,) = json.loads(listed.stdout)
        shown = run_mediagate(server_home.home, "notify", "show", str(row["id"]), "--json")
        assert "X-Mediagate-Signature" in json.loads(shown.stdout)["headers"]
        assert secret not in listed.stdout + shown.stdout

        rotated = webhook(server_home, "secret", b)
        assert rotated["secret"].startswith("whsec_") and rotated["secret"] != secret
        assert rotated["previous_valid_until"] is not None

    assert webhook(server_home, "clear", b) == {"bucket": b, "url": None, "has_secret": True}
    missing = run_mediagate(server_home.home, "bucket", "webhook", "show", "no-such-bucket")
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    for command in ("set", "show", "clear", "secret"):
        assert run_mediagate(server_home.home, "bucket", "webhook", command, "--help").returncode == 0

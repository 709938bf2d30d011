"""Webhooks against a live server and a receiver on loopback: /v1 and tus uploads (and /v1
deletes) are announced once, signed as the README's "Webhooks" section documents; a refused
upload is announced never; a failing receiver gets the event again; a URL the SSRF guard refuses
is refused when it is given.

Signatures are checked with :func:`verify`, written from the README's description (HMAC-SHA256 of
``"<t>." + raw body`` under the bucket's secret, ``t=<unix>,v1=<hex>``), never with the server's
own signing code; the README's own snippet is run against a real request too."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tusclient.client import TusClient

from mediagate.config import Settings
from mediagate.core.buckets import BucketCredentials, create_bucket
from mediagate.core.gateway import Gateway
from tests.conftest import LiveServer
from tests.protocols.native.api import client, error_of, new_key
from tests.protocols.upyun.forms import Receiver, wait_until
from tests.tasks.test_engine import jpeg

README = Path(__file__).resolve().parents[3] / "README.md"
Request = tuple[str, dict[str, str], bytes]


def verify(secret: str, header: str, body: bytes, *, now: float | None = None) -> bool:
    """The receiver's check, from the README: one ``t``, fresh, and a ``v1`` that is the MAC."""
    fields = [part.split("=", 1) for part in header.split(",")]
    stamps = [value for name, value in fields if name == "t"]
    if len(stamps) != 1 or abs((now or time.time()) - int(stamps[0])) > 300:
        return False
    expected = hmac.new(secret.encode(), f"{stamps[0]}.".encode() + body, hashlib.sha256).hexdigest()
    return any(name == "v1" and hmac.compare_digest(value, expected) for name, value in fields)


def readme_verifier() -> Any:
    """The ``verify`` function printed in the README's Webhooks section, as a reader would paste it."""
    text = README.read_text()
    section = text[text.index("## Webhooks") : text.index("## Several nodes")]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(code.strip().splitlines()) <= 10, "the README promises a 10-line verifier"
    scope: dict[str, Any] = {}
    exec(code, scope)  # the README's own snippet, run as a user would
    return scope["verify"]


@pytest.fixture
def api(server: LiveServer, admin: Gateway, bucket: BucketCredentials) -> Iterator[httpx.Client]:
    with client(server.url, new_key(admin, bucket.bucket, "read,write,admin")) as c:
        yield c


def new_secret(api: httpx.Client, bucket: str) -> str:
    r = api.post(f"/v1/buckets/{bucket}/webhook-secret")
    assert r.status_code == 201, r.text
    secret = r.json()["secret"]
    assert secret.startswith("whsec_")
    return str(secret)


def set_webhook(api: httpx.Client, bucket: str, url: str | None) -> None:
    r = api.patch(f"/v1/buckets/{bucket}", json={"settings": {"webhook_url": url}})
    assert r.status_code == 200, r.text
    assert r.json()["settings"]["webhook_url"] == url
    time.sleep(1.1)  # the server's bucket row cache (Gateway.find_bucket) lets go within a second


def token(api: httpx.Client, bucket: str, **limits: object) -> dict[str, Any]:
    r = api.post(f"/v1/buckets/{bucket}/upload-tokens", json=limits)
    assert r.status_code == 201, r.text
    return dict(r.json())


def events(receiver: Receiver, count: int, timeout: float = 20.0) -> list[Request]:
    assert wait_until(lambda: len(receiver.requests) >= count, timeout=timeout), receiver.requests
    return list(receiver.requests)


def checked(request: Request, secret: str, event: str) -> dict[str, Any]:
    """The event's body once its headers and signature are what the README says."""
    _path, headers, body = request
    assert headers["content-type"] == "application/json"
    assert headers["x-mediagate-event"] == event
    assert headers["x-mediagate-delivery"].isdigit()
    assert verify(secret, headers["x-mediagate-signature"], body)
    assert not verify("whsec_wrong", headers["x-mediagate-signature"], body)
    assert not verify(secret, headers["x-mediagate-signature"], body + b" ")
    payload: dict[str, Any] = json.loads(body)
    assert payload["event"] == event and payload["id"].startswith("evt_")
    return payload


def test_a_v1_put_with_a_token_is_announced_at_the_token_notify_url(
    server: LiveServer, api: httpx.Client, bucket: BucketCredentials
) -> None:
    b = bucket.bucket
    data = jpeg(64, 48)
    with Receiver() as receiver, Receiver() as bucket_default:
        secret = new_secret(api, b)
        set_webhook(api, b, bucket_default.url("/bucket"))
        made = token(api, b, prefix="avatars/", notify_url=receiver.url("/token?user=42"))
        assert made["notify_url"] == receiver.url("/token?user=42")
        r = httpx.put(
            f"{server.url}/v1/buckets/{b}/objects/avatars/me.jpg",
            content=data,
            headers={"Authorization": f"Bearer {made['token']}", "Content-Type": "image/jpeg"},
        )
        assert r.status_code == 201, r.text
        (request,) = events(receiver, 1)
        assert request[0] == "/token?user=42"
        payload = checked(request, secret, "object.created")
        assert readme_verifier()(secret, request[1]["x-mediagate-signature"], request[2])
        assert payload["bucket"] == b and payload["key"] == "avatars/me.jpg"
        assert payload["size"] == len(data) and payload["content_type"] == "image/jpeg"
        assert payload["md5"] == hashlib.md5(data).hexdigest()
        assert payload["sha256"] == hashlib.sha256(data).hexdigest()
        assert (payload["width"], payload["height"]) == (64, 48)
        assert payload["url"] == f"/{b}/avatars/me.jpg"
        assert payload["source"] == {
            "via": "v1",
            "token_id": made["token_id"],
            "upload_id": None,
            "key_id": None,
        }
        assert payload["time"].endswith("Z")
        time.sleep(0.5)
        assert len(receiver.requests) == 1 and bucket_default.requests == []  # the token's URL wins

        delivered = api.get("/v1/deliveries", params={"status": "delivered"}).json()["deliveries"]
        (shown,) = [d for d in delivered if d["url"].endswith("/token?user=42")]
        assert shown["bucket"] == b and shown["last_status_code"] == 200
        assert {"X-Mediagate-Event", "X-Mediagate-Signature"} <= set(shown["headers"])


def test_a_v1_multipart_upload_and_delete_go_to_the_bucket_webhook(
    server: LiveServer, admin: Gateway, api: httpx.Client, bucket: BucketCredentials
) -> None:
    b = bucket.bucket
    data = b"hello, webhooks\n"
    with Receiver() as receiver:
        secret = new_secret(api, b)
        set_webhook(api, b, receiver.url("/hooks/media"))
        r = api.post(f"/v1/buckets/{b}/objects", files={"file": ("notes.txt", data, "text/plain")}, data={})
        assert r.status_code == 201, r.text
        (created,) = events(receiver, 1)
        payload = checked(created, secret, "object.created")
        key_id = api.get("/v1/me").json()["key_id"]
        assert payload["key"] == "notes.txt" and payload["size"] == len(data)
        assert payload["width"] is None and payload["height"] is None
        assert payload["source"] == {"via": "v1", "token_id": None, "upload_id": None, "key_id": key_id}

        assert api.delete(f"/v1/buckets/{b}/objects/notes.txt").status_code == 204
        _, deleted = events(receiver, 2)
        gone = checked(deleted, secret, "object.deleted")
        assert gone["key"] == "notes.txt" and gone["md5"] == hashlib.md5(data).hexdigest()
        assert gone["id"] != payload["id"]

        # a rotation: the old secret signs alongside the new one, so receivers can switch over
        rotated = api.post(f"/v1/buckets/{b}/webhook-secret").json()
        assert rotated["previous_valid_until"] is not None
        assert api.put(f"/v1/buckets/{b}/objects/again.txt", content=data).status_code == 201
        *_, again = events(receiver, 3)
        checked(again, secret, "object.created")
        checked(again, rotated["secret"], "object.created")
        assert again[1]["x-mediagate-signature"].count("v1=") == 2

        # no webhook: no event (and a delete with none queues nothing)
        set_webhook(api, b, None)
        assert api.put(f"/v1/buckets/{b}/objects/quiet.txt", content=data).status_code == 201
        assert api.delete(f"/v1/buckets/{b}/objects/quiet.txt").status_code == 204
        time.sleep(1.0)
        assert len(receiver.requests) == 3
    bucket_id = admin.catalog.require_bucket(b).id
    assert len(admin.catalog.list_deliveries(bucket_id=bucket_id)) == 3


def test_a_tus_upload_is_announced_with_its_upload_id(
    server: LiveServer, api: httpx.Client, bucket: BucketCredentials, tmp_path: Path
) -> None:
    b = bucket.bucket
    data = bytes(range(256)) * 2000
    path = tmp_path / "clip.bin"
    path.write_bytes(data)
    with Receiver() as receiver:
        secret = new_secret(api, b)
        set_webhook(api, b, receiver.url("/tus"))
        made = token(api, b, prefix="inbox/")
        uploader = TusClient(
            f"{server.url}/v1/tus/{b}/", headers={"Authorization": f"Bearer {made['token']}"}
        ).uploader(file_path=str(path), chunk_size=200_000, metadata={"filename": "clip.bin"})
        uploader.upload()
        (request,) = events(receiver, 1)
        payload = checked(request, secret, "object.created")
        assert payload["key"] == "inbox/clip.bin" and payload["size"] == len(data)
        assert payload["sha256"] == hashlib.sha256(data).hexdigest()
        upload_id = str(uploader.url).rstrip("/").rsplit("/", 1)[-1]
        assert payload["source"] == {
            "via": "tus",
            "token_id": made["token_id"],
            "upload_id": upload_id,
            "key_id": None,
        }
        time.sleep(0.5)
        assert len(receiver.requests) == 1  # several PATCHes, one object, one event


def test_a_refused_upload_is_never_announced(
    server: LiveServer, admin: Gateway, api: httpx.Client, bucket: BucketCredentials
) -> None:
    b = bucket.bucket
    with Receiver() as receiver:
        new_secret(api, b)
        made = token(api, b, max_size=10, content_types=["image/*"], notify_url=receiver.url())
        auth = {"Authorization": f"Bearer {made['token']}"}
        too_big = httpx.put(f"{server.url}/v1/buckets/{b}/objects/big.bin", content=b"x" * 100, headers=auth)
        assert error_of(too_big) == (413, "token_max_size")
        not_an_image = httpx.put(f"{server.url}/v1/buckets/{b}/objects/a.png", content=b"plain", headers=auth)
        assert error_of(not_an_image) == (403, "mime_not_allowed")  # sniffed after the bytes came
        # refused at the commit itself (after the bytes were stored): the key is taken
        assert api.put(f"/v1/buckets/{b}/objects/taken.txt", content=b"first").status_code == 201
        other = token(api, b, notify_url=receiver.url())
        taken = httpx.put(
            f"{server.url}/v1/buckets/{b}/objects/taken.txt",
            params={"overwrite": "false"},
            content=b"second",
            headers={"Authorization": f"Bearer {other['token']}"},
        )
        assert error_of(taken) == (409, "key_exists")
        time.sleep(1.5)
        assert receiver.requests == []
    assert admin.catalog.list_deliveries(bucket_id=admin.catalog.require_bucket(b).id) == []


def test_a_failing_receiver_gets_the_event_again_signed_anew(
    server: LiveServer, api: httpx.Client, bucket: BucketCredentials
) -> None:
    b = bucket.bucket
    with Receiver(statuses=[500, 200]) as receiver:
        secret = new_secret(api, b)
        set_webhook(api, b, receiver.url())
        assert api.put(f"/v1/buckets/{b}/objects/r.txt", content=b"retry me").status_code == 201
        first, second = events(receiver, 2, timeout=30)  # the retry comes after 2 s
        one, two = checked(first, secret, "object.created"), checked(second, secret, "object.created")
        assert one == two  # the same event (same id) ...
        stamp = [int(h[1]["x-mediagate-signature"].split(",")[0][2:]) for h in (first, second)]
        assert stamp[1] >= stamp[0] + 1  # ... signed when each attempt was sent

        def delivered() -> list[dict[str, Any]]:
            rows = api.get("/v1/deliveries", params={"status": "delivered"}).json()["deliveries"]
            return [d for d in rows if d["bucket"] == b]

        assert wait_until(lambda: len(delivered()) == 1, timeout=10)
        (row,) = delivered()
        assert row["attempts"] == 2 and row["last_status_code"] == 200

        again = api.post(f"/v1/deliveries/{row['id']}/redeliver")
        assert again.status_code == 200 and again.json()["status"] == "pending"
        *_, third = events(receiver, 3)
        assert checked(third, secret, "object.created")["id"] == one["id"]
        assert third[1]["x-mediagate-delivery"] == str(row["id"])


def test_webhook_urls_are_checked_when_given(
    server: LiveServer, server_home: Settings, api: httpx.Client, bucket: BucketCredentials
) -> None:
    b = bucket.bucket
    loopback = "http://127.0.0.1:9/hook"
    # no secret yet: a webhook nobody could verify is refused
    assert error_of(api.post(f"/v1/buckets/{b}/upload-tokens", json={"notify_url": loopback})) == (
        409,
        "webhook_secret_missing",
    )
    r = api.patch(f"/v1/buckets/{b}", json={"settings": {"webhook_url": loopback}})
    assert error_of(r) == (409, "webhook_secret_missing")
    new_secret(api, b)
    for bad in ("ftp://example.com/x", "/relative", "http://"):
        r = api.post(f"/v1/buckets/{b}/upload-tokens", json={"notify_url": bad})
        assert error_of(r) == (400, "invalid_notify_url"), bad
        assert api.patch(f"/v1/buckets/{b}", json={"settings": {"webhook_url": bad}}).status_code == 400

    # a server that may not call private addresses (the default) refuses them at issue time
    strict = LiveServer(server_home.home).start()
    try:
        with client(strict.url, api.headers["authorization"].split(" ", 1)[1]) as guarded:
            for url in (loopback, "http://10.0.0.8/hook", "http://[::1]:8080/hook", "http://localhost/h"):
                r = guarded.post(f"/v1/buckets/{b}/upload-tokens", json={"notify_url": url})
                assert error_of(r) == (403, "url_not_allowed"), url
                r = guarded.patch(f"/v1/buckets/{b}", json={"settings": {"webhook_url": url}})
                assert error_of(r) == (403, "url_not_allowed"), url
            assert guarded.get(f"/v1/buckets/{b}/upload-tokens").json()["upload_tokens"] == []
    finally:
        strict.stop()
    assert "Traceback" not in strict.log()
    # the tests' server allows loopback receivers (MEDIAGATE_ALLOW_PRIVATE_CALLBACKS=1)
    assert token(api, b, notify_url=loopback)["notify_url"] == loopback


def test_only_an_admin_key_sets_the_secret(
    server: LiveServer, admin: Gateway, bucket: BucketCredentials
) -> None:
    with client(server.url, new_key(admin, bucket.bucket, "read,write")) as writer:
        r = writer.post(f"/v1/buckets/{bucket.bucket}/webhook-secret")
        assert error_of(r) == (403, "insufficient_scope")
    other = create_bucket(admin.catalog, admin.secrets, f"o{uuid.uuid4().hex[:10]}").bucket
    with client(server.url, new_key(admin, other, "read,write,admin")) as outsider:
        r = outsider.post(f"/v1/buckets/{bucket.bucket}/webhook-secret")
        assert error_of(r) == (403, "bucket_forbidden")
        r = outsider.patch(
            f"/v1/buckets/{bucket.bucket}", json={"settings": {"webhook_url": "http://x.example/"}}
        )
        assert error_of(r) == (403, "bucket_forbidden")
    assert admin.catalog.credentials(admin.catalog.require_bucket(bucket.bucket).id, "webhook") == []

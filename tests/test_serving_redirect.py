"""Public reads answered with a redirect to a presigned S3 URL (``s3_redirect_reads``).

A live server on a moto S3 bucket with the setting on: originals redirect (307, no-store) to a URL
that serves the bytes with the object's type, ranges included; everything that needs the node is
still answered by it: HEAD, conditional requests ending in 304, processed variants, objects of an
active type (sandboxed and offered as downloads, which a presigned URL cannot do), private buckets
and content secrets (refused before any URL is made). Off by default.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from mediagate.config import Settings
from mediagate.core.buckets import create_bucket
from mediagate.core.gateway import Gateway
from mediagate.core.grant import UploadGrant
from mediagate.services import build_gateway
from tests.conftest import LiveServer, make_home
from tests.protocols.imagex.conftest import png
from tests.support.moto import MotoServer, new_bucket_name

EXPIRY = 120


@pytest.fixture(scope="module")
def home(s3_server: MotoServer, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    env = s3_server.env(new_bucket_name())
    fields: dict[str, Any] = {k.removeprefix("MEDIAGATE_").lower(): v for k, v in env.items()}
    return make_home(tmp_path_factory.mktemp("redirect"), **fields)


def start(s3_server: MotoServer, home: Settings, **extra: str) -> LiveServer:
    return LiveServer(home.home, env=s3_server.env(home.s3_bucket) | extra).start()


@pytest.fixture(scope="module")
def live(s3_server: MotoServer, home: Settings) -> Iterator[LiveServer]:
    server = start(
        s3_server,
        home,
        MEDIAGATE_S3_REDIRECT_READS="1",
        MEDIAGATE_S3_REDIRECT_EXPIRY_SECONDS=str(EXPIRY),
    )
    yield server
    server.stop()
    assert "Traceback" not in server.log(), server.log()[-5000:]


@pytest.fixture(scope="module")
def admin(home: Settings) -> Iterator[Gateway]:
    gw = build_gateway(home, migrate=False)
    yield gw
    gw.catalog.close()


@pytest.fixture
def bucket(admin: Gateway) -> str:
    return create_bucket(admin.catalog, admin.secrets, f"r{uuid.uuid4().hex[:12]}").bucket


def upload(admin: Gateway, bucket: str, key: str, data: bytes, **grant: Any) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield data

    g = UploadGrant(bucket=bucket, render_key=lambda _f: key, **grant)
    asyncio.run(admin.upload(g, body(), filename=key))


def get(live: LiveServer, path: str, **kw: Any) -> httpx.Response:
    return httpx.get(f"{live.url}/{path}", timeout=30, **kw)


def test_an_original_redirects_to_a_presigned_url_with_its_type(
    live: LiveServer, admin: Gateway, bucket: str, s3_server: MotoServer
) -> None:
    data = b"plain words\n" * 1000
    upload(admin, bucket, "docs/a.txt", data)
    r = get(live, f"{bucket}/docs/a.txt")
    assert r.status_code == 307
    assert r.headers["cache-control"] == "no-store"
    location = r.headers["location"]
    assert location.startswith(s3_server.url)
    query = parse_qs(urlsplit(location).query)
    assert query["X-Amz-Expires"] == [str(EXPIRY)]
    followed = httpx.get(location, timeout=30)
    assert followed.status_code == 200
    assert followed.content == data
    assert followed.headers["content-type"].startswith("text/plain")
    ranged = httpx.get(location, headers={"Range": "bytes=12-23"}, timeout=30)
    assert ranged.status_code == 206 and ranged.content == data[12:24]


def test_head_and_revalidation_are_answered_by_the_node(
    live: LiveServer, admin: Gateway, bucket: str
) -> None:
    data = os.urandom(5000)
    upload(admin, bucket, "b.bin", data)
    head = httpx.head(f"{live.url}/{bucket}/b.bin")
    assert head.status_code == 200 and head.headers["content-length"] == "5000"
    etag = head.headers["etag"]
    assert get(live, f"{bucket}/b.bin", headers={"If-None-Match": etag}).status_code == 304
    assert get(live, f"{bucket}/b.bin", headers={"If-Match": '"nope"'}).status_code == 412


def test_active_content_is_never_redirected(live: LiveServer, admin: Gateway, bucket: str) -> None:
    page = b"<!doctype html><html><script>alert(1)</script></html>"
    upload(admin, bucket, "x.html", page, content_type="text/html")
    r = get(live, f"{bucket}/x.html")
    assert r.status_code == 200 and r.content == page
    assert r.headers["content-security-policy"] == "sandbox"
    assert r.headers["content-disposition"] == "attachment"
    assert r.headers["x-content-type-options"] == "nosniff"


def test_variants_are_processed_by_the_node(live: LiveServer, admin: Gateway, bucket: str) -> None:
    upload(admin, bucket, "p.png", png(40, 20))
    assert get(live, f"{bucket}/p.png").status_code == 307
    r = get(live, f"{bucket}/p.png!/fw/10")
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/png"


def test_private_buckets_and_content_secrets_are_checked_first(
    live: LiveServer, admin: Gateway, bucket: str
) -> None:
    upload(admin, bucket, "s.bin", b"secret bytes", content_secret="k3y")
    assert get(live, f"{bucket}/s.bin").status_code == 404
    ok = get(live, f"{bucket}/s.bin!k3y")
    assert ok.status_code == 307
    assert httpx.get(ok.headers["location"]).content == b"secret bytes"
    private = create_bucket(admin.catalog, admin.secrets, f"r{uuid.uuid4().hex[:12]}").bucket
    upload(admin, private, "p.bin", b"private bytes")
    admin.catalog.update_bucket_settings(private, {"public": False})
    refused = get(live, f"{private}/p.bin")
    assert refused.status_code == 403 and "location" not in refused.headers


def test_off_by_default(s3_server: MotoServer, home: Settings, admin: Gateway, bucket: str) -> None:
    upload(admin, bucket, "c.bin", b"proxied")
    plain = start(s3_server, home)
    try:
        r = get(plain, f"{bucket}/c.bin")
        assert r.status_code == 200 and r.content == b"proxied"
    finally:
        plain.stop()

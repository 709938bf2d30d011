"""A server gives back the memory that request bodies took once it is quiet again
(``mediagate.memory``): after uploads of 16 MiB, 8 at a time, streamed to S3 (moto) as multipart
uploads, its resident memory comes back near where it was before them, rather than keeping the
~20 MB glibc held on to (freed, but not handed back). Measured on a live server with psutil, as an
operator would see it."""

from __future__ import annotations

import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil

from mediagate.core.buckets import BucketCredentials, create_bucket
from mediagate.services import build_gateway
from tests.conftest import LiveServer, make_home
from tests.protocols.upyun.rest_client import object_uri, sign
from tests.support.moto import MotoServer, new_bucket_name

MIB = 1024 * 1024
BODY = os.urandom(16 * MIB)


def put(url: str, creds: BucketCredentials, body: bytes) -> int:
    uri = object_uri(creds.bucket, f"/{uuid.uuid4().hex}.bin")
    with httpx.Client(base_url=url, timeout=120) as client:
        return client.put(uri, content=body, headers=sign(creds, "PUT", uri)).status_code


def settled_rss(pid: int, seconds: float = 5.0) -> int:
    """The process's RSS once it stops falling (a trim runs in the background)."""
    process = psutil.Process(pid)
    last = int(process.memory_info().rss)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = int(process.memory_info().rss)
        if now >= last:
            return now
        last = now
    return last


def test_memory_freed_after_large_uploads_goes_back_to_the_system(
    tmp_path: Path, s3_server: MotoServer
) -> None:
    s3 = s3_server.env(new_bucket_name())
    fields = {name.removeprefix("MEDIAGATE_").lower(): value for name, value in s3.items()}
    settings = make_home(tmp_path / "home", **fields)
    gw = build_gateway(settings, migrate=False)
    creds = create_bucket(gw.catalog, gw.secrets, f"b{uuid.uuid4().hex[:12]}")
    gw.catalog.close()
    server = LiveServer(settings.home, env=s3).start()
    try:
        assert server.process is not None
        assert put(server.url, creds, BODY[: 64 * 1024]) == 200  # the upload path, loaded once
        before = settled_rss(server.process.pid)
        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(lambda _: put(server.url, creds, BODY), range(16))) == [200] * 16
        after = settled_rss(server.process.pid)
    finally:
        server.stop()
    assert after - before < 10_000_000, f"{(after - before) / 1e6:.1f} MB kept after the uploads"

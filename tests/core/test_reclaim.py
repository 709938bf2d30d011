"""Replaced and deleted versions are reclaimed within ``garbage_grace_seconds`` (an overwrite-heavy
bucket must not fill the disk with dead versions), a reader that already opened one still reads
all of its bytes, and an upload's reserved blob is guarded by its lease, not by the grace."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from mediagate.core.buckets import create_bucket
from mediagate.core.gateway import Gateway
from mediagate.core.grant import UploadGrant
from mediagate.services import build_gateway
from mediagate.storage.s3 import S3Storage
from tests.conftest import LiveServer, make_home
from tests.protocols.upyun.rest_client import object_uri, signed
from tests.support.moto import MotoServer, new_bucket_name

MIB = 1024 * 1024
GRACE = 0.5


@pytest.fixture(params=["local", "s3"])
def gw(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Gateway]:
    """A gateway with a short grace, its blobs on local files or in S3 (a moto server)."""
    extra: dict[str, object] = {}
    if request.param == "s3":
        moto: MotoServer = request.getfixturevalue("s3_server")
        env = moto.env(new_bucket_name(), prefix="blobs")
        extra = {k.removeprefix("MEDIAGATE_").lower(): v for k, v in env.items()}
    gateway = build_gateway(make_home(tmp_path / "home", garbage_grace_seconds=GRACE, **extra))
    gateway.catalog.create_bucket("photos")
    yield gateway
    gateway.catalog.close()


def stored(gw: Gateway) -> set[str]:
    """Every blob in the gateway's storage."""
    if isinstance(gw.storage, S3Storage):
        listing = gw.storage.client.list_objects_v2(Bucket=gw.storage.bucket, Prefix=gw.storage.prefix)
        return {item["Key"].removeprefix(gw.storage.prefix) for item in listing.get("Contents", [])}
    return blob_files(gw.settings.home)


async def chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


def put(gw: Gateway, key: str, data: bytes) -> str:
    grant = UploadGrant(bucket="photos", render_key=lambda _f: key)
    return asyncio.run(gw.upload(grant, chunks(data), filename=key)).object.blob_id


def blob_files(home: Path) -> set[str]:
    return {p.name for p in (home / "blobs").rglob("*") if p.is_file()}


def test_the_grace_is_a_setting_of_about_a_minute() -> None:
    from mediagate.config import Settings

    defaults = Settings(home=Path("/nonexistent"))
    assert 0 < defaults.garbage_grace_seconds <= 60
    assert defaults.upload_lease_seconds >= 3600


def test_overwritten_and_deleted_versions_go_after_the_grace_while_an_open_reader_keeps_its_bytes(
    gw: Gateway,
) -> None:
    first = os.urandom(3 * MIB)
    put(gw, "avatar.png", first)
    bucket = asyncio.run(gw.bucket("photos"))
    reader = gw.read(asyncio.run(gw.get_object(bucket, "avatar.png")))  # opened now
    head = next(reader)

    versions = [put(gw, "avatar.png", f"version {i}".encode()) for i in range(20)]
    gone = put(gw, "gone.txt", b"short-lived")
    asyncio.run(gw.delete_object(bucket, "gone.txt"))
    assert len(stored(gw)) == 22
    gw.collect_garbage()
    # the version replaced last and the deleted one are within the grace: a reader may be about
    # to open them
    assert {versions[-2], gone} <= stored(gw)

    time.sleep(GRACE + 0.1)
    gw.collect_garbage()
    live = asyncio.run(gw.get_object(bucket, "avatar.png"))
    assert stored(gw) == {live.blob_id}
    assert head + b"".join(reader) == first  # unlinked, not lost to the reader that opened it
    assert b"".join(gw.read(live)) == b"version 19"


def test_an_in_flight_upload_is_guarded_by_its_lease_not_by_the_grace(gw: Gateway, tmp_path: Path) -> None:
    """What an upload does before its commit: reserve the blob (lease), store it. The collector,
    even with no grace at all, leaves it until the lease is over."""
    blob_id = "f" * 32
    gw.catalog.reserve_blob(blob_id, lease=gw.upload_lease)
    staged = tmp_path / "staged"
    staged.write_bytes(b"uploading")
    gw.storage.put(blob_id, staged)

    assert gw.collect_garbage(grace=timedelta(0)) == 0
    assert blob_id in stored(gw)
    later = datetime.now(UTC) + gw.upload_lease - timedelta(seconds=5)
    assert gw.collect_garbage(grace=timedelta(0), as_of=later) == 0

    after = datetime.now(UTC) + gw.upload_lease + timedelta(seconds=1)
    assert gw.collect_garbage(grace=timedelta(0), as_of=after) == 1  # a crashed upload's blob
    assert stored(gw) == set()


def test_a_server_reclaims_overwritten_versions_by_itself(tmp_path: Path) -> None:
    """A live server with a 1 s grace: after many overwrites of a few keys the home holds only the
    live versions within a few seconds, and a download started before still gets its bytes."""
    settings = make_home(tmp_path / "home")
    admin = build_gateway(settings, migrate=False)
    creds = create_bucket(admin.catalog, admin.secrets, "covers")
    server = LiveServer(settings.home, env={"MEDIAGATE_GARBAGE_GRACE_SECONDS": "1"}).start()
    try:
        original = os.urandom(8 * MIB)
        with httpx.Client(base_url=server.url, timeout=30) as client:
            uri = object_uri(creds.bucket, "k0.bin")
            assert signed(client, creds, "PUT", uri, content=original).status_code == 200
            with client.stream("GET", uri) as download:
                body = download.iter_raw(64 * 1024)
                first = next(body)
                for i in range(40):
                    key_uri = object_uri(creds.bucket, f"k{i % 4}.bin")
                    r = signed(client, creds, "PUT", key_uri, content=f"v{i}".encode() * 1000)
                    assert r.status_code == 200, r.text
                deadline = time.monotonic() + 10
                while len(blob_files(settings.home)) > 4 and time.monotonic() < deadline:
                    time.sleep(0.2)
                assert len(blob_files(settings.home)) == 4
                rest = b"".join(body)
            assert hashlib.sha256(first + rest).digest() == hashlib.sha256(original).digest()
    finally:
        server.stop()
        admin.catalog.close()
    assert "Traceback" not in server.log(), server.log()[-3000:]

"""S3Storage beyond the shared contract: bucket creation, prefix, multipart failure, memory, and the
whole service running on S3 (a live server whose blobs live in a moto server on loopback)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from mediagate.config import Settings
from mediagate.core.buckets import create_bucket
from mediagate.core.errors import StorageUnavailable
from mediagate.core.gateway import Gateway
from mediagate.core.grant import UploadGrant
from mediagate.services import build_gateway, init_home
from mediagate.storage.base import BlobNotFound
from mediagate.storage.s3 import S3Storage
from tests.conftest import LiveServer, staging_files
from tests.support.moto import MotoServer, make_s3_storage, new_bucket_name, s3_client

MIB = 1024 * 1024


def keys_in(moto: MotoServer, bucket: str) -> list[str]:
    listing = s3_client(moto).list_objects_v2(Bucket=bucket)
    return sorted(o["Key"] for o in listing.get("Contents", []))


def stage(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / f"{uuid.uuid4().hex}.part"
    path.write_bytes(data)
    return path


# -- bucket and prefix ------------------------------------------------------------------------------


def test_bucket_is_created_on_first_use(s3_server: MotoServer, tmp_path: Path) -> None:
    bucket = new_bucket_name()
    storage = make_s3_storage(s3_server, bucket=bucket)
    names = [b["Name"] for b in s3_client(s3_server).list_buckets()["Buckets"]]
    assert bucket not in names  # nothing happens before first use
    assert not storage.exists("abc")
    names = [b["Name"] for b in s3_client(s3_server).list_buckets()["Buckets"]]
    assert bucket in names


def test_a_missing_bucket_is_a_clear_error_when_creation_is_off(s3_server: MotoServer) -> None:
    storage = make_s3_storage(s3_server, create_bucket=False)
    with pytest.raises(RuntimeError, match="does not exist"):
        storage.exists("abc")


def test_an_existing_bucket_is_used_when_creation_is_off(s3_server: MotoServer, tmp_path: Path) -> None:
    bucket = new_bucket_name()
    s3_client(s3_server).create_bucket(Bucket=bucket)
    storage = make_s3_storage(s3_server, bucket=bucket, create_bucket=False)
    storage.put("abc", stage(tmp_path, b"data"))
    assert keys_in(s3_server, bucket) == ["abc"]


def test_nodes_racing_to_create_the_bucket_all_succeed(s3_server: MotoServer, tmp_path: Path) -> None:
    bucket = new_bucket_name()
    errors: list[BaseException] = []

    def node(i: int) -> None:
        try:
            make_s3_storage(s3_server, bucket=bucket).put(f"blob{i}", stage(tmp_path, b"x" * i))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=node, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert keys_in(s3_server, bucket) == [f"blob{i}" for i in range(6)]


def test_blobs_live_under_the_prefix(s3_server: MotoServer, tmp_path: Path) -> None:
    bucket = new_bucket_name()
    storage = make_s3_storage(s3_server, bucket=bucket, prefix="/tenant/blobs/")
    storage.put("abc", stage(tmp_path, b"prefixed"))
    s3_client(s3_server).put_object(Bucket=bucket, Key="abc", Body=b"not ours")
    assert keys_in(s3_server, bucket) == ["abc", "tenant/blobs/abc"]
    assert b"".join(storage.open("abc")) == b"prefixed"
    storage.delete("abc")
    assert keys_in(s3_server, bucket) == ["abc"]


def test_from_settings_uses_every_s3_setting(s3_server: MotoServer, tmp_path: Path) -> None:
    bucket = new_bucket_name()
    env = s3_server.env(bucket, prefix="pre")
    settings = Settings(home=tmp_path, **{k.removeprefix("MEDIAGATE_").lower(): v for k, v in env.items()})
    storage = S3Storage.from_settings(settings)
    storage.put("abc", stage(tmp_path, b"configured"))
    assert keys_in(s3_server, bucket) == ["pre/abc"]
    assert storage.local_path("abc") is None


def test_a_vanished_bucket_is_not_mistaken_for_a_missing_blob(s3_server: MotoServer) -> None:
    """GetObject's NoSuchBucket is an operational failure (storage unavailable, a 503), not 'no such
    blob' (a 404 that would make readers think the object is gone)."""
    bucket = new_bucket_name()
    storage = make_s3_storage(s3_server, bucket=bucket)
    assert not storage.exists("abc")  # creates the bucket
    s3_client(s3_server).delete_bucket(Bucket=bucket)
    with pytest.raises(StorageUnavailable) as info:
        storage.open("abc")
    cause = info.value.__cause__
    assert isinstance(cause, ClientError) and not isinstance(cause, BlobNotFound)
    assert cause.response["Error"]["Code"] == "NoSuchBucket"


# -- multipart ---------------------------------------------------------------------------------------


def test_a_multipart_put_that_fails_midway_leaves_no_object_and_no_upload(
    s3_server: MotoServer, tmp_path: Path
) -> None:
    bucket = new_bucket_name()
    storage = make_s3_storage(s3_server, bucket=bucket, part_size=5 * MIB)
    sent: list[str] = []

    def cut(**kwargs: Any) -> None:
        sent.append(kwargs["event_name"])
        if len(sent) == 2:
            raise ConnectionResetError("injected: connection cut during the second part")

    storage.client.meta.events.register("before-send.s3.UploadPart", cut)
    source = stage(tmp_path, os.urandom(12 * MIB))
    with pytest.raises(ConnectionResetError):
        storage.put("big", source)
    assert len(sent) >= 2  # the upload really was multipart
    assert not storage.exists("big")
    assert keys_in(s3_server, bucket) == []
    assert s3_client(s3_server).list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert source.exists()  # the caller still owns it and discards it


def test_put_memory_is_bounded_by_parts_not_file_size(s3_server: MotoServer, tmp_path: Path) -> None:
    storage = make_s3_storage(s3_server, part_size=5 * MIB)
    data = os.urandom(40 * MIB)
    source = stage(tmp_path, data)
    digest = hashlib.md5(data).hexdigest()
    del data
    storage.exists("warm-up")  # bucket creation outside the measurement
    tracemalloc.start()
    try:
        storage.put("big", source)
        _, peak_put = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        md5 = hashlib.md5()
        for chunk in storage.open("big"):
            md5.update(chunk)
        dest = tmp_path / "assembled"
        storage.assemble(["big"], dest)
        _, peak_read = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert md5.hexdigest() == digest
    assert dest.stat().st_size == 40 * MIB
    assert peak_put < 30 * MIB  # 4 concurrent 5 MiB parts and their buffers, not 40 MiB
    assert peak_read < 8 * MIB


# -- the service on S3 ----------------------------------------------------------------------------


async def _chunks(data: bytes, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


@pytest.fixture
def s3_home(s3_server: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """A home whose blobs live in a fresh moto bucket (settings taken from MEDIAGATE_* env)."""
    env = s3_server.env(new_bucket_name(), prefix="blobs")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings(home=tmp_path / "home")
    init_home(settings)
    yield settings


def test_the_service_runs_on_s3_end_to_end(s3_server: MotoServer, s3_home: Settings) -> None:
    gw: Gateway = build_gateway(s3_home)
    assert isinstance(gw.storage, S3Storage)
    creds = create_bucket(gw.catalog, gw.secrets, "photos")
    data = os.urandom(6 * MIB + 5)
    live = LiveServer(s3_home.home, env=s3_server.env(s3_home.s3_bucket, prefix="blobs")).start()
    try:

        async def upload(key: str, body: bytes) -> str:
            grant = UploadGrant(bucket=creds.bucket, render_key=lambda _f: key)
            stored = await gw.upload(grant, _chunks(body), filename=key)
            return stored.object.blob_id

        blob_id = asyncio.run(upload("dir/big.bin", data))
        assert keys_in(s3_server, s3_home.s3_bucket) == [f"blobs/{blob_id}"]
        assert list((s3_home.home / "blobs").iterdir()) == []
        assert staging_files(s3_home.home) == []

        with httpx.Client(base_url=live.url, timeout=30) as client:
            full = client.get("/photos/dir/big.bin")
            assert full.status_code == 200
            assert full.content == data
            assert full.headers["etag"] == f'"{hashlib.md5(data).hexdigest()}"'
            part = client.get("/photos/dir/big.bin", headers={"Range": "bytes=1048570-1048589"})
            assert part.status_code == 206
            assert part.content == data[1048570:1048590]

            # replace, then collect: the old blob leaves S3, the new one stays and is served
            new_blob = asyncio.run(upload("dir/big.bin", b"replaced"))
            assert gw.collect_garbage(grace=timedelta(0)) == 1
            assert keys_in(s3_server, s3_home.s3_bucket) == [f"blobs/{new_blob}"]
            assert client.get("/photos/dir/big.bin").content == b"replaced"
    finally:
        live.stop()
        gw.catalog.close()
    assert "Traceback" not in live.log(), live.log()[-3000:]


def test_multi_part_sessions_assemble_from_s3(s3_server: MotoServer, s3_home: Settings) -> None:
    gw = build_gateway(s3_home)
    try:
        creds = create_bucket(gw.catalog, gw.secrets, "chunks")
        bucket = asyncio.run(gw.bucket(creds.bucket))
        parts = [os.urandom(5 * MIB + 1), b"middle", os.urandom(1000)]

        async def run() -> str:
            session = await gw.start_session(bucket, "test", "joined.bin")
            for number in (3, 1, 2):  # parts arrive out of order
                await gw.put_part(session, number, _chunks(parts[number - 1]))
            grant = UploadGrant(bucket=creds.bucket, render_key=lambda _f: "joined.bin")
            stored = await gw.complete_session(session, grant, filename="joined.bin")
            return stored.object.blob_id

        blob_id = asyncio.run(run())
        obj = asyncio.run(gw.get_object(bucket, "joined.bin"))
        assert b"".join(gw.read(obj)) == b"".join(parts)
        assert obj.md5 == hashlib.md5(b"".join(parts)).hexdigest()
        assert gw.collect_garbage(grace=timedelta(0)) == 3  # the three part blobs
        assert keys_in(s3_server, s3_home.s3_bucket) == [f"blobs/{blob_id}"]
    finally:
        gw.catalog.close()

"""Large uploads stream on to S3 while they arrive (core.ingest ``Spill``, core.streaming).

A body past the backend's part size leaves only its head in staging and goes to a multipart
upload part by part; it becomes an object only at the commit, and every refusal (a bad MD5, a
size over the limit mid-stream, a client gone, a cancelled request) aborts the upload: no object,
no open multipart upload, no staging file. Images and bodies that upload-time processing will
rewrite stay staged whole. All against a real moto server on loopback.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import tracemalloc
import uuid
import zlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from mediagate.config import Settings
from mediagate.core.buckets import create_bucket
from mediagate.core.errors import ChecksumMismatch, Conflict, PayloadTooLarge, StorageUnavailable
from mediagate.core.gateway import Gateway
from mediagate.core.grant import UploadGrant
from mediagate.core.ingest import HEAD_BYTES, Received, Spill, receive
from mediagate.core.streaming import is_image_head
from mediagate.services import build_gateway
from mediagate.storage.s3 import S3Storage
from tests.conftest import staging_files
from tests.storage.test_s3 import keys_in, s3_home  # noqa: F401 - the fixture
from tests.support.moto import (
    ACCESS_KEY,
    REGION,
    SECRET_KEY,
    MotoServer,
    make_s3_storage,
    new_bucket_name,
    s3_client,
)
from tests.support.proxy import TcpProxy

MIB = 1024 * 1024
PART = 5 * MIB
PNG_HEAD = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x02\x00\x00\x00"


async def chunks(data: bytes, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def open_uploads(storage: S3Storage) -> list[str]:
    listing = storage.client.list_multipart_uploads(Bucket=storage.bucket)
    return [u["Key"] for u in listing.get("Uploads", [])]


@pytest.fixture
def storage(s3_server: MotoServer) -> S3Storage:
    s3 = make_s3_storage(s3_server, part_size=PART)
    s3.exists("warm-up")  # creates the bucket
    return s3


@pytest.fixture
def staging(tmp_path: Path) -> Path:
    path = tmp_path / "staging"
    path.mkdir()
    return path


def spill(storage: S3Storage) -> Spill:
    return Spill(PART, lambda: storage.writer(uuid.uuid4().hex), is_image_head)


def run(data: bytes, staging: Path, storage: S3Storage, *, max_size: int = 1 << 40) -> Received:
    return asyncio.run(receive(chunks(data), staging, max_size=max_size, spill=spill(storage)))


def assert_no_trace(storage: S3Storage, staging: Path) -> None:
    assert open_uploads(storage) == []
    assert keys_in_bucket(storage) == []
    assert list(staging.iterdir()) == []


def keys_in_bucket(storage: S3Storage) -> list[str]:
    return [o["Key"] for o in storage.client.list_objects_v2(Bucket=storage.bucket).get("Contents", [])]


# -- receive ----------------------------------------------------------------------------------------


def test_a_large_body_keeps_only_its_head_staged_and_streams_the_rest(
    storage: S3Storage, staging: Path
) -> None:
    data = os.urandom(4 * PART + 12345)  # five parts
    received = run(data, staging, storage)
    assert not received.whole
    assert received.path.stat().st_size == HEAD_BYTES
    assert received.path.read_bytes() == data[:HEAD_BYTES]
    assert (received.size, received.md5, received.crc32) == (
        len(data),
        hashlib.md5(data).hexdigest(),
        zlib.crc32(data),
    )
    assert received.sha256 == hashlib.sha256(data).hexdigest()
    assert received.blob_id is not None
    assert open_uploads(storage) == [received.blob_id]
    assert keys_in_bucket(storage) == []  # invisible until stored
    received.store(storage, received.blob_id)
    assert b"".join(storage.open(received.blob_id)) == data
    assert open_uploads(storage) == []
    assert list(staging.iterdir()) == []


@pytest.mark.parametrize("size", [0, 1000, PART])
def test_a_body_up_to_one_part_is_staged_whole(storage: S3Storage, staging: Path, size: int) -> None:
    data = os.urandom(size)
    received = run(data, staging, storage)
    assert received.whole and received.blob_id is None
    assert received.path.read_bytes() == data
    assert open_uploads(storage) == []
    received.discard()


def test_a_large_image_stays_staged_whole(storage: S3Storage, staging: Path) -> None:
    """Its checks and variants read the whole file (frame counts, pages, decoding)."""
    data = PNG_HEAD + os.urandom(2 * PART)
    received = run(data, staging, storage)
    assert received.whole
    assert received.path.stat().st_size == len(data)
    assert open_uploads(storage) == []
    received.discard()


def test_passing_the_limit_mid_stream_aborts_the_upload(storage: S3Storage, staging: Path) -> None:
    with pytest.raises(PayloadTooLarge):
        run(os.urandom(4 * PART), staging, storage, max_size=3 * PART)
    assert_no_trace(storage, staging)


def test_a_client_gone_mid_stream_aborts_the_upload(storage: S3Storage, staging: Path) -> None:
    async def cut() -> AsyncIterator[bytes]:
        for _ in range(3 * PART // MIB):
            yield os.urandom(MIB)
        raise ConnectionResetError("client disconnected")

    with pytest.raises(ConnectionResetError):
        asyncio.run(receive(cut(), staging, max_size=1 << 40, spill=spill(storage)))
    assert_no_trace(storage, staging)


def test_a_cancelled_receive_aborts_the_upload(storage: S3Storage, staging: Path) -> None:
    async def stalls() -> AsyncIterator[bytes]:
        for _ in range(2 * PART // MIB):
            yield os.urandom(MIB)
        await asyncio.sleep(3600)
        yield b""

    async def main() -> None:
        task = asyncio.create_task(receive(stalls(), staging, max_size=1 << 40, spill=spill(storage)))
        for _ in range(100):
            await asyncio.sleep(0.05)
            if await asyncio.to_thread(open_uploads, storage):
                break
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert_no_trace(storage, staging)


def test_discarding_a_received_body_aborts_its_upload(storage: S3Storage, staging: Path) -> None:
    """A check that fails after receive (a declared MD5) discards: nothing stays."""
    received = run(os.urandom(3 * PART), staging, storage)
    assert open_uploads(storage) != []
    received.discard()
    assert_no_trace(storage, staging)


def test_memory_holds_parts_in_flight_not_the_body(storage: S3Storage, staging: Path) -> None:
    async def body() -> AsyncIterator[bytes]:
        for _ in range(60):
            yield os.urandom(MIB)

    async def main() -> Received:
        return await receive(body(), staging, max_size=1 << 40, spill=spill(storage))

    tracemalloc.start()
    try:
        received = asyncio.run(main())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received.size == 60 * MIB
    assert peak < 12 * MIB  # the lanes' buffers, reads of the parts being sent: not 60 MiB
    received.discard()


# -- the gateway on S3 -----------------------------------------------------------------------------


@pytest.fixture
def gw(s3_home: Settings) -> Iterator[Gateway]:  # noqa: F811 - the imported fixture
    gateway = build_gateway(s3_home.model_copy(update={"s3_part_size": PART}))
    gateway.storage.exists("warm-up")  # creates the bucket
    yield gateway
    gateway.catalog.close()


def grant_for(bucket: str, key: str, **kw: Any) -> UploadGrant:
    return UploadGrant(bucket=bucket, render_key=lambda _f: key, **kw)


def s3_of(gw: Gateway) -> S3Storage:
    assert isinstance(gw.storage, S3Storage)
    return gw.storage


def test_a_streamed_upload_is_committed_as_one_object(gw: Gateway, s3_server: MotoServer) -> None:
    name = create_bucket(gw.catalog, gw.secrets, f"s{uuid.uuid4().hex[:10]}").bucket
    data = os.urandom(3 * PART + 99)
    stored = asyncio.run(gw.upload(grant_for(name, "big.bin"), chunks(data), filename="big.bin"))
    obj = stored.object
    assert (obj.size, obj.md5, obj.mime) == (
        len(data),
        hashlib.md5(data).hexdigest(),
        "application/octet-stream",
    )
    assert b"".join(gw.read(obj)) == data
    assert keys_in(s3_server, gw.settings.s3_bucket) == [f"blobs/{obj.blob_id}"]
    assert open_uploads(s3_of(gw)) == []
    assert staging_files(gw.settings.home) == []


def test_a_bad_md5_leaves_no_object_and_no_upload(gw: Gateway, s3_server: MotoServer) -> None:
    name = create_bucket(gw.catalog, gw.secrets, f"s{uuid.uuid4().hex[:10]}").bucket
    grant = grant_for(name, "bad.bin", content_md5="0" * 32)
    with pytest.raises(ChecksumMismatch):
        asyncio.run(gw.upload(grant, chunks(os.urandom(3 * PART)), filename="bad.bin"))
    assert keys_in(s3_server, gw.settings.s3_bucket) == []
    assert open_uploads(s3_of(gw)) == []
    assert staging_files(gw.settings.home) == []
    assert gw.collect_garbage(grace=timedelta(0)) == 0  # nothing left for the collector either


def test_a_size_over_the_grant_mid_stream_leaves_nothing(gw: Gateway, s3_server: MotoServer) -> None:
    name = create_bucket(gw.catalog, gw.secrets, f"s{uuid.uuid4().hex[:10]}").bucket
    grant = grant_for(name, "long.bin", max_size=2 * PART + 1)
    with pytest.raises(PayloadTooLarge):
        asyncio.run(gw.upload(grant, chunks(os.urandom(4 * PART)), filename="long.bin"))
    assert keys_in(s3_server, gw.settings.s3_bucket) == []
    assert open_uploads(s3_of(gw)) == []
    assert staging_files(gw.settings.home) == []


@pytest.mark.parametrize(
    "extra",
    [
        {"processing": {"x-gmkerl-thumb": "/fw/100"}},  # processing rewrites the file
        {"width_range": (1, 100)},  # image checks read the whole header
        {"allowed_mime": ("image/*",)},
        {"prebuffered": True},  # a form file received before its policy
    ],
)
def test_grants_that_need_the_whole_file_keep_it_staged(gw: Gateway, extra: dict[str, Any]) -> None:
    name = create_bucket(gw.catalog, gw.secrets, f"s{uuid.uuid4().hex[:10]}").bucket
    received = asyncio.run(gw.receive(grant_for(name, "x.bin", **extra), chunks(os.urandom(2 * PART))))
    assert received.whole
    assert open_uploads(s3_of(gw)) == []
    received.discard()


def test_a_session_of_many_parts_is_streamed_into_one_upload(gw: Gateway, s3_server: MotoServer) -> None:
    name = create_bucket(gw.catalog, gw.secrets, f"s{uuid.uuid4().hex[:10]}").bucket
    bucket = asyncio.run(gw.bucket(name))
    parts = [os.urandom(PART + 1) for _ in range(4)] + [b"tail"]

    async def main() -> str:
        session = await gw.start_session(bucket, "test", "joined.bin")
        for number, part in enumerate(parts, 1):
            await gw.put_part(session, number, chunks(part))
        stored = await gw.complete_session(session, grant_for(name, "joined.bin"), filename="joined.bin")
        return stored.object.blob_id

    blob_id = asyncio.run(main())
    data = b"".join(parts)
    obj = asyncio.run(gw.get_object(bucket, "joined.bin"))
    assert obj.blob_id == blob_id and obj.md5 == hashlib.md5(data).hexdigest()
    assert b"".join(gw.read(obj)) == data
    assert open_uploads(s3_of(gw)) == []
    assert gw.collect_garbage(grace=timedelta(0)) == len(parts)  # the parts' own blobs
    assert keys_in(s3_server, gw.settings.s3_bucket) == [f"blobs/{blob_id}"]
    assert staging_files(gw.settings.home) == []


def test_the_collector_aborts_uploads_a_dead_process_left(gw: Gateway, s3_server: MotoServer) -> None:
    dead = make_s3_storage(s3_server, bucket=gw.settings.s3_bucket, prefix="blobs", part_size=PART)
    left = dead.writer(uuid.uuid4().hex)
    left.write([os.urandom(PART + 1)])
    collector = build_gateway(gw.settings.model_copy(update={"s3_stale_upload_seconds": 0}), migrate=False)
    try:
        collector.collect_garbage()  # first sight
        assert open_uploads(s3_of(gw)) == [f"blobs/{left.blob_id}"]
        collector.collect_garbage()  # stale now: older than the (zero) grace
        assert open_uploads(s3_of(gw)) == []
    finally:
        collector.catalog.close()
    assert s3_client(s3_server).list_objects_v2(Bucket=gw.settings.s3_bucket).get("Contents", []) == []


def test_an_s3_outage_mid_stream_is_unavailable_and_leaves_nothing_once_collected(
    s3_server: MotoServer, staging: Path
) -> None:
    """The endpoint goes away while parts are being sent: the upload is refused as an outage
    (the dialects' 503); the abort cannot reach S3 either, so the collector ends the upload once
    the endpoint is back."""
    proxy = TcpProxy(s3_server.port).start()
    try:
        client = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{proxy.port}",
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )
        storage = S3Storage(client, new_bucket_name(), region=REGION, part_size=PART)
        storage.exists("warm-up")

        async def body() -> AsyncIterator[bytes]:
            for i in range(6 * PART // MIB):
                if i == 3 * PART // MIB:
                    proxy.cut()
                yield os.urandom(MIB)

        with pytest.raises(StorageUnavailable):
            asyncio.run(receive(body(), staging, max_size=1 << 40, spill=spill(storage)))
        assert list(staging.iterdir()) == []
        proxy.restore()
        assert keys_in_bucket(storage) == []
        assert storage.abort_stale_writes(datetime.now(UTC) + timedelta(seconds=5)) <= 1
        assert open_uploads(storage) == []
    finally:
        proxy.cut()


def test_insert_only_refuses_a_streamed_upload_to_a_taken_key(gw: Gateway, s3_server: MotoServer) -> None:
    """The key is taken: the second upload streamed all its parts, and is aborted, not completed;
    the first object is untouched."""
    name = create_bucket(gw.catalog, gw.secrets, f"s{uuid.uuid4().hex[:10]}").bucket
    first, second = os.urandom(2 * PART), os.urandom(2 * PART)
    grant = grant_for(name, "once.bin", insert_only=True)
    stored = asyncio.run(gw.upload(grant, chunks(first), filename="once.bin"))
    with pytest.raises(Conflict):
        asyncio.run(gw.upload(grant, chunks(second), filename="once.bin"))
    assert keys_in(s3_server, gw.settings.s3_bucket) == [f"blobs/{stored.object.blob_id}"]
    assert open_uploads(s3_of(gw)) == []
    assert b"".join(gw.read(stored.object)) == first


def test_copying_a_large_object_on_s3_stays_in_s3(gw: Gateway, s3_server: MotoServer) -> None:
    """A copy is server-side (CopyObject / UploadPartCopy): nothing is staged on the node."""
    name = create_bucket(gw.catalog, gw.secrets, f"s{uuid.uuid4().hex[:10]}").bucket
    bucket = asyncio.run(gw.bucket(name))
    data = os.urandom(3 * PART)
    asyncio.run(gw.upload(grant_for(name, "a.bin"), chunks(data), filename="a.bin"))
    copy = asyncio.run(gw.copy_object(bucket, "a.bin", "b.bin"))
    assert b"".join(gw.read(copy)) == data
    assert copy.md5 == hashlib.md5(data).hexdigest()
    assert len(keys_in(s3_server, gw.settings.s3_bucket)) == 2
    assert staging_files(gw.settings.home) == []

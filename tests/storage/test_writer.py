"""Writers (``Storage.writer``): blobs written while their bytes arrive, for every backend.

On S3 a writer is a multipart upload under the blob's key; these tests look behind the backend's
back (a plain boto3 client) to check that an aborted writer leaves neither an object nor an open
multipart upload, and that the collector's ``abort_stale_writes`` ends what a dead process left.
"""

from __future__ import annotations

import hashlib
import os
import tracemalloc
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mediagate.storage.base import Storage
from mediagate.storage.local import WRITING, LocalStorage
from mediagate.storage.s3 import S3Storage
from tests.support.moto import MotoServer, make_s3_storage, s3_client

MIB = 1024 * 1024


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    if request.param == "local":
        yield LocalStorage(tmp_path / "blobs")
    else:
        moto: MotoServer = request.getfixturevalue("s3_server")
        yield make_s3_storage(moto, part_size=5 * MIB)


def open_uploads(storage: Storage) -> list[str]:
    """Writers in progress, as the backend itself would show them."""
    if isinstance(storage, S3Storage):
        listing = storage.client.list_multipart_uploads(Bucket=storage.bucket)
        return [u["Key"] for u in listing.get("Uploads", [])]
    assert isinstance(storage, LocalStorage)
    incoming = storage.root / WRITING
    return sorted(p.name for p in incoming.iterdir()) if incoming.exists() else []


def write(storage: Storage, data: bytes, piece: int = 256 * 1024) -> str:
    blob_id = uuid.uuid4().hex
    writer = storage.writer(blob_id)
    for i in range(0, len(data), piece):
        writer.write([data[i : i + piece]])
    writer.finish()
    assert not storage.exists(blob_id)  # nothing readable before the commit
    writer.commit()
    return blob_id


@pytest.mark.parametrize("size", [0, 1000, 5 * MIB, 21 * MIB + 17])
def test_a_committed_writer_is_the_blob(storage: Storage, size: int) -> None:
    data = os.urandom(size)
    blob_id = write(storage, data)
    assert b"".join(storage.open(blob_id)) == data
    assert storage.size(blob_id) == size
    assert open_uploads(storage) == []


def test_an_aborted_writer_leaves_no_blob_and_no_upload(storage: Storage) -> None:
    blob_id = uuid.uuid4().hex
    writer = storage.writer(blob_id)
    writer.write([os.urandom(6 * MIB)])  # one part sent on S3
    writer.write([os.urandom(MIB)])
    assert len(open_uploads(storage)) == 1
    writer.abort()
    writer.abort()  # idempotent
    assert not storage.exists(blob_id)
    assert open_uploads(storage) == []


def test_a_finished_writer_can_still_be_aborted(storage: Storage) -> None:
    """A body refused by a check that runs after receive (a bad MD5) is aborted after ``finish``."""
    blob_id = uuid.uuid4().hex
    writer = storage.writer(blob_id)
    writer.write([os.urandom(11 * MIB)])
    writer.finish()
    writer.abort()
    assert not storage.exists(blob_id)
    assert open_uploads(storage) == []


def test_s3_parts_are_sent_while_writing_and_not_held_in_memory(s3_server: MotoServer) -> None:
    storage = make_s3_storage(s3_server, part_size=5 * MIB)
    storage.exists("warm-up")
    blob_id = uuid.uuid4().hex
    digest = hashlib.md5()
    tracemalloc.start()
    try:
        writer = storage.writer(blob_id)
        for _ in range(40):  # 40 MiB in 1 MiB pieces
            piece = os.urandom(MIB)
            digest.update(piece)
            writer.write([piece])
        client = s3_client(s3_server)
        [upload] = client.list_multipart_uploads(Bucket=storage.bucket)["Uploads"]
        sent = client.list_parts(Bucket=storage.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
        assert len(sent["Parts"]) >= 6  # sent as they filled, not at the end
        writer.finish()
        writer.commit()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * MIB  # spooled: reads of the parts being sent, not parts (two = 10 MiB)
    assert hashlib.md5(b"".join(storage.open(blob_id))).hexdigest() == digest.hexdigest()


def test_stale_uploads_are_aborted_and_others_kept(s3_server: MotoServer) -> None:
    """What another process left (here: another node's storage on the same bucket, whose writer
    is never finished) goes once it is older than the cutoff; this process's own writers and
    uploads that are not our blobs are never touched. moto reports a made-up ``Initiated`` (2010),
    so "older" here is also "first listed by this process before the cutoff"."""
    storage = make_s3_storage(s3_server, prefix="mg", part_size=5 * MIB)
    dead_node = make_s3_storage(s3_server, bucket=storage.bucket, prefix="mg", part_size=5 * MIB)
    stale = dead_node.writer(uuid.uuid4().hex)
    stale.write([b"left by a process that died"])
    own = storage.writer(uuid.uuid4().hex)
    client = s3_client(s3_server)
    foreign = client.create_multipart_upload(Bucket=storage.bucket, Key="someone-else/file.bin")

    def listed() -> list[str]:
        return sorted(
            u["Key"] for u in client.list_multipart_uploads(Bucket=storage.bucket).get("Uploads", [])
        )

    assert storage.abort_stale_writes(datetime.now(UTC) - timedelta(hours=1)) == 0  # first seen now
    assert len(listed()) == 3
    assert storage.abort_stale_writes(datetime.now(UTC) + timedelta(seconds=5)) == 1
    assert listed() == sorted(["someone-else/file.bin", f"mg/{own.blob_id}"])
    own.abort()
    client.abort_multipart_upload(Bucket=storage.bucket, Key=foreign["Key"], UploadId=foreign["UploadId"])
    assert listed() == []


def test_local_stale_writes_are_removed(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "blobs")
    writer = storage.writer(uuid.uuid4().hex)
    writer.write([b"abandoned"])
    assert storage.abort_stale_writes(datetime.now(UTC) - timedelta(hours=1)) == 0
    assert storage.abort_stale_writes(datetime.now(UTC) + timedelta(seconds=5)) == 1
    assert open_uploads(storage) == []

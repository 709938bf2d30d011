"""The storage contract (``mediagate.storage.base``), one suite that every backend passes.

Parametrised over LocalStorage (a tmp directory) and S3Storage (a real moto server on loopback,
a fresh S3 bucket per test). The S3 backend is built with a 5 MiB multipart threshold, S3's
smallest part size, so the multi-MiB cases below go through a real multipart upload.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mediagate.storage.base import CHUNK_SIZE, BlobNotFound, Storage
from mediagate.storage.local import LocalStorage
from tests.support.moto import MotoServer, make_s3_storage

MIB = 1024 * 1024


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Storage]:
    if request.param == "local":
        yield LocalStorage(tmp_path / "blobs")
    else:
        moto: MotoServer = request.getfixturevalue("s3_server")
        yield make_s3_storage(moto, part_size=5 * MIB)


@pytest.fixture
def staging(tmp_path: Path) -> Path:
    path = tmp_path / "staging"
    path.mkdir()
    return path


def stage(staging: Path, data: bytes) -> Path:
    path = staging / f"{uuid.uuid4().hex}.part"
    path.write_bytes(data)
    return path


def put(storage: Storage, staging: Path, data: bytes) -> str:
    blob_id = uuid.uuid4().hex
    storage.put(blob_id, stage(staging, data))
    return blob_id


def read(storage: Storage, blob_id: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join(storage.open(blob_id, start, end))


def test_backends_satisfy_the_protocol(storage: Storage) -> None:
    assert isinstance(storage, Storage)


@pytest.mark.parametrize("size", [0, 1, 1000, CHUNK_SIZE + 7])
def test_put_then_read_back_identical(storage: Storage, staging: Path, size: int) -> None:
    data = os.urandom(size)
    blob_id = put(storage, staging, data)
    assert read(storage, blob_id) == data
    assert storage.size(blob_id) == size
    assert storage.exists(blob_id)


def test_put_consumes_the_source(storage: Storage, staging: Path) -> None:
    source = stage(staging, b"consumed")
    storage.put("a" * 32, source)
    assert not source.exists()
    assert list(staging.iterdir()) == []
    assert read(storage, "a" * 32) == b"consumed"


def test_large_blob_round_trips_and_streams_in_bounded_chunks(storage: Storage, staging: Path) -> None:
    data = os.urandom(11 * MIB + 123)  # three parts of a 5 MiB multipart upload on S3
    blob_id = put(storage, staging, data)
    assert storage.size(blob_id) == len(data)
    chunks = list(storage.open(blob_id))
    assert b"".join(chunks) == data
    assert len(chunks) > 1
    assert max(len(c) for c in chunks) <= CHUNK_SIZE


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, None, slice(0, None)),
        (10, None, slice(10, None)),
        (0, 1, slice(0, 1)),
        (100, 200, slice(100, 200)),
        (999, None, slice(999, None)),
        (999, 1000, slice(999, 1000)),
        (500, 5000, slice(500, None)),  # end past the size is clamped
        (1000, None, slice(0, 0)),  # start at the size: empty
        (5000, None, slice(0, 0)),  # start beyond the size: empty
        (5000, 6000, slice(0, 0)),
        (300, 300, slice(0, 0)),  # empty range
        (300, 200, slice(0, 0)),  # backwards range
    ],
)
def test_ranges(storage: Storage, staging: Path, start: int, end: int | None, expected: slice) -> None:
    data = os.urandom(1000)
    blob_id = put(storage, staging, data)
    assert read(storage, blob_id, start, end) == data[expected]


def test_range_of_a_multi_chunk_blob_crosses_chunk_boundaries(storage: Storage, staging: Path) -> None:
    data = os.urandom(3 * CHUNK_SIZE)
    blob_id = put(storage, staging, data)
    start, end = CHUNK_SIZE - 5, 2 * CHUNK_SIZE + 5
    assert read(storage, blob_id, start, end) == data[start:end]


def test_ranges_of_an_empty_blob_are_empty(storage: Storage, staging: Path) -> None:
    blob_id = put(storage, staging, b"")
    assert read(storage, blob_id) == b""
    assert read(storage, blob_id, 0, 10) == b""
    assert read(storage, blob_id, 5) == b""


def test_missing_blob(storage: Storage) -> None:
    missing = uuid.uuid4().hex
    assert not storage.exists(missing)
    with pytest.raises(BlobNotFound):
        storage.open(missing)  # raised on the call, before any iteration
    with pytest.raises(BlobNotFound):
        storage.open(missing, 5, 10)
    with pytest.raises(BlobNotFound):
        storage.open(missing, 5, 5)
    with pytest.raises(BlobNotFound):
        storage.size(missing)


def test_blob_not_found_is_a_file_not_found_error() -> None:
    assert issubclass(BlobNotFound, FileNotFoundError)


def test_delete_is_idempotent(storage: Storage, staging: Path) -> None:
    blob_id = put(storage, staging, b"to delete")
    other = put(storage, staging, b"to keep")
    storage.delete(blob_id)
    assert not storage.exists(blob_id)
    with pytest.raises(BlobNotFound):
        storage.open(blob_id)
    storage.delete(blob_id)
    storage.delete(uuid.uuid4().hex)
    assert read(storage, other) == b"to keep"


def test_assemble_concatenates_parts_including_empty_and_multi_mib(
    storage: Storage, staging: Path, tmp_path: Path
) -> None:
    parts = [b"first", b"", os.urandom(3 * MIB + 17), b"", b"x", os.urandom(CHUNK_SIZE)]
    ids = [put(storage, staging, p) for p in parts]
    dest = tmp_path / "assembled"
    storage.assemble(ids, dest)
    assert dest.read_bytes() == b"".join(parts)
    for blob_id, part in zip(ids, parts, strict=True):  # the parts themselves are untouched
        assert storage.size(blob_id) == len(part)


def test_assemble_may_repeat_a_part_and_follows_the_given_order(
    storage: Storage, staging: Path, tmp_path: Path
) -> None:
    a, b = put(storage, staging, b"AAA"), put(storage, staging, b"BB")
    dest = tmp_path / "assembled"
    storage.assemble([b, a, b], dest)
    assert dest.read_bytes() == b"BBAAABB"


def test_assemble_of_no_parts_is_an_empty_file(storage: Storage, tmp_path: Path) -> None:
    dest = tmp_path / "assembled"
    storage.assemble([], dest)
    assert dest.read_bytes() == b""


def test_assemble_with_a_missing_part_raises_blob_not_found(
    storage: Storage, staging: Path, tmp_path: Path
) -> None:
    present = put(storage, staging, b"present")
    with pytest.raises(BlobNotFound):
        storage.assemble([present, uuid.uuid4().hex], tmp_path / "assembled")


def test_assemble_never_overwrites_an_existing_file(storage: Storage, staging: Path, tmp_path: Path) -> None:
    part = put(storage, staging, b"part")
    dest = tmp_path / "assembled"
    dest.write_bytes(b"someone else's")
    with pytest.raises(FileExistsError):
        storage.assemble([part], dest)
    assert dest.read_bytes() == b"someone else's"


def test_a_failed_put_leaves_no_blob(storage: Storage, staging: Path) -> None:
    blob_id = uuid.uuid4().hex
    with pytest.raises(FileNotFoundError):
        storage.put(blob_id, staging / "vanished.part")
    assert not storage.exists(blob_id)
    with pytest.raises(BlobNotFound):
        storage.open(blob_id)


@pytest.mark.parametrize("bad", ["", "../escape", "a/b", ".hidden", "..", "nul\x00byte", "back\\slash"])
def test_blob_ids_that_could_name_another_path_are_refused(storage: Storage, staging: Path, bad: str) -> None:
    source = stage(staging, b"data")
    with pytest.raises(ValueError, match="invalid blob id"):
        storage.put(bad, source)
    assert source.exists()
    for call in (storage.open, storage.size, storage.exists, storage.delete):
        with pytest.raises(ValueError, match="invalid blob id"):
            call(bad)


def test_local_path_is_the_blob_or_none(storage: Storage, staging: Path) -> None:
    blob_id = put(storage, staging, b"local?")
    path = storage.local_path(blob_id)
    if isinstance(storage, LocalStorage):
        assert path is not None
        assert path.read_bytes() == b"local?"
    else:
        assert path is None


@pytest.mark.parametrize("size", [0, 1000, 11 * MIB + 5])  # the last: a multipart copy on S3
def test_copy_makes_an_independent_blob(storage: Storage, staging: Path, size: int) -> None:
    data = os.urandom(size)
    source = put(storage, staging, data)
    copy = uuid.uuid4().hex
    storage.copy(source, copy)
    storage.delete(source)
    assert read(storage, copy) == data
    assert storage.size(copy) == size


def test_copy_of_a_missing_blob_is_blob_not_found_and_makes_nothing(storage: Storage) -> None:
    copy = uuid.uuid4().hex
    with pytest.raises(BlobNotFound):
        storage.copy(uuid.uuid4().hex, copy)
    assert not storage.exists(copy)

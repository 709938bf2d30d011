"""Receive (``mediagate.core.ingest``): one pass, three digests, flat memory, and no trace of a
failed upload in staging."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest

from mediagate.core import threads
from mediagate.core.errors import MalformedBody, PayloadTooLarge, PolicyViolation
from mediagate.core.ingest import BUFFER_SIZE, ONE_HOP_SIZE, Received, hash_file, receive

MIB = 1024 * 1024


async def chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


@pytest.fixture
def staging(tmp_path: Path) -> Path:
    path = tmp_path / "staging"
    path.mkdir()
    return path


def run(data: bytes, staging: Path, *, size: int = 65536, max_size: int = 1 << 40, **kw: object) -> Received:
    return asyncio.run(receive(chunks(data, size), staging, max_size=max_size, **kw))  # type: ignore[arg-type]


LENGTHS = [
    0,
    1,
    1000,
    BUFFER_SIZE - 1,
    BUFFER_SIZE,
    BUFFER_SIZE + 1,
    ONE_HOP_SIZE,
    ONE_HOP_SIZE + 1,
    3 * ONE_HOP_SIZE + 12345,
]


@pytest.mark.parametrize(
    ("length", "chunk"),
    [(n, c) for n in LENGTHS for c in (7777, 3 * MIB)] + [(n, 1024) for n in LENGTHS[:4]],
)
def test_digests_match_hashlib_and_zlib(staging: Path, length: int, chunk: int) -> None:
    data = os.urandom(length)
    got = run(data, staging, size=chunk)
    assert got.size == length
    assert got.md5 == hashlib.md5(data).hexdigest()
    assert got.sha256 == hashlib.sha256(data).hexdigest()
    assert got.crc32 == zlib.crc32(data)
    assert got.path.parent == staging
    assert got.path.read_bytes() == data
    assert hash_file(got.path) == (length, got.md5, got.sha256, got.crc32)
    got.discard()
    assert list(staging.iterdir()) == []


@pytest.mark.parametrize("length", [0, 10 * 1024, BUFFER_SIZE + 1, ONE_HOP_SIZE - 1])
def test_a_small_body_takes_one_worker_thread_hop(
    staging: Path, length: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Create, write, hash and fsync of a small upload are one hop: small uploads are bound by
    hops, and the gateway's small-upload path counts on it."""
    hops: list[str] = []
    real_anyio, real_hop = anyio.to_thread.run_sync, threads.run_sync

    def counting(real: Callable[..., Any]) -> Callable[..., Any]:
        async def hop(func: Callable[..., object], *args: object, **kw: object) -> object:
            hops.append(getattr(func, "__name__", repr(func)))
            return await real(func, *args, **kw)

        return hop

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting(real_anyio))
    monkeypatch.setattr(threads, "run_sync", counting(real_hop))
    data = os.urandom(length)
    got = run(data, staging)
    assert hops == ["_finish_then"]  # sink.finish, then the caller's step (none here)
    assert got.path.read_bytes() == data
    assert got.md5 == hashlib.md5(data).hexdigest()


def test_each_receive_gets_its_own_staging_file(staging: Path) -> None:
    a, b = run(b"one", staging), run(b"two", staging)
    assert a.path != b.path
    assert {p.read_bytes() for p in staging.iterdir()} == {b"one", b"two"}


@pytest.mark.parametrize(("length", "limit"), [(11, 10), (BUFFER_SIZE * 3, BUFFER_SIZE * 2 + 1)])
def test_over_max_size_is_refused_and_leaves_no_staging_file(staging: Path, length: int, limit: int) -> None:
    with pytest.raises(PayloadTooLarge):
        run(os.urandom(length), staging, max_size=limit)
    assert list(staging.iterdir()) == []
    assert run(b"x" * 10, staging, max_size=10).size == 10  # exactly the limit is fine


def test_the_limit_error_is_the_callers(staging: Path) -> None:
    with pytest.raises(PolicyViolation):
        run(b"x" * 20, staging, max_size=10, too_large=lambda: PolicyViolation("too big"))
    assert list(staging.iterdir()) == []


def test_refusal_stops_reading_the_source(staging: Path) -> None:
    pulled = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal pulled
        while True:
            pulled += 1
            yield b"x" * 65536

    with pytest.raises(PayloadTooLarge):
        asyncio.run(receive(endless(), staging, max_size=MIB))
    assert pulled == 17
    assert list(staging.iterdir()) == []


@pytest.mark.parametrize("after", [0, 100, BUFFER_SIZE + 5, 3 * BUFFER_SIZE])
def test_a_source_that_fails_leaves_no_staging_file(staging: Path, after: int) -> None:
    async def disconnecting() -> AsyncIterator[bytes]:
        async for chunk in chunks(os.urandom(after), 65536):
            yield chunk
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        asyncio.run(receive(disconnecting(), staging, max_size=1 << 40))
    assert list(staging.iterdir()) == []


def test_a_cancelled_receive_leaves_no_staging_file(staging: Path) -> None:
    async def slow() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield os.urandom(BUFFER_SIZE)
        await asyncio.sleep(3600)
        yield b""

    async def main() -> None:
        task = asyncio.create_task(receive(slow(), staging, max_size=1 << 40))
        await asyncio.sleep(0.3)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert list(staging.iterdir()) == []


# -- base64 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [1, 3, 4, 5, 76, 4096])
def test_base64_is_decoded_across_chunk_boundaries(staging: Path, chunk: int) -> None:
    data = os.urandom(3000)
    encoded = base64.encodebytes(data)  # 76-column lines with newlines
    encoded = encoded.replace(b"\n", b"\r\n ", 5)  # and other whitespace
    got = run(encoded, staging, size=chunk, base64_encoded=True)
    assert got.path.read_bytes() == data
    assert got.size == len(data)
    assert got.md5 == hashlib.md5(data).hexdigest()


@pytest.mark.parametrize("length", [0, 1, 2, 3])
def test_base64_padding(staging: Path, length: int) -> None:
    data = os.urandom(length)
    assert run(base64.b64encode(data), staging, base64_encoded=True).path.read_bytes() == data


@pytest.mark.parametrize(
    "bad",
    [b"not base64!!", b"QUJD$", b"QUJDRA", b"QUJDR", b"QQ==QUJD", b"\xff\xfe\xfd\xfc"],
)
def test_invalid_base64_is_malformed_and_leaves_nothing(staging: Path, bad: bytes) -> None:
    with pytest.raises(MalformedBody):
        run(bad, staging, size=3, base64_encoded=True)
    assert list(staging.iterdir()) == []


def test_base64_limit_applies_to_the_decoded_size(staging: Path) -> None:
    encoded = base64.b64encode(b"x" * 30)  # 40 encoded bytes
    assert run(encoded, staging, max_size=30, base64_encoded=True).size == 30
    with pytest.raises(PayloadTooLarge):
        run(encoded, staging, max_size=29, base64_encoded=True)


# -- memory ------------------------------------------------------------------------------------------


def test_memory_stays_flat_for_200_mib(staging: Path) -> None:
    block = os.urandom(64 * 1024)
    total = 200 * MIB
    expected = hashlib.md5()
    for _ in range(total // len(block)):
        expected.update(block)

    async def source() -> AsyncIterator[bytes]:
        for _ in range(total // len(block)):
            yield block

    tracemalloc.start()
    try:
        got = asyncio.run(receive(source(), staging, max_size=1 << 40))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got.size == total
    assert got.md5 == expected.hexdigest()
    assert peak < 16 * MIB, f"peak {peak / MIB:.1f} MiB"
    got.discard()


def test_a_body_in_tiny_chunks_costs_no_object_per_chunk(staging: Path) -> None:
    """A client trickling a few bytes per packet must not make the buffered megabyte cost
    millions of small objects."""
    data = os.urandom(2 * MIB)

    tracemalloc.start()
    try:
        got = run(data, staging, size=8)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got.md5 == hashlib.md5(data).hexdigest()
    assert got.path.read_bytes() == data
    assert peak < 2 * len(data), f"peak {peak / MIB:.1f} MiB"

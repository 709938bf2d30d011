"""Receive: stream bytes into a staging file, hashing MD5, SHA-256 and CRC32 in one pass.

Memory stays flat: chunks are coalesced into ~1 MiB buffers and at most ``MAX_IN_FLIGHT`` buffers
are in flight while the next is being received. A body that fits in one buffer is written and
hashed in a single worker-thread hop. A larger one gets three single-thread *lanes* (MD5; SHA-256
and CRC32; the write), each taking the buffers in order, so the three run in parallel (hashlib and
zlib release the GIL on large buffers) and none waits for the slowest step of each buffer; the
event loop only copies bytes into the next buffer.

The write lane makes the data durable as it goes (``fdatasync`` every ``WRITEBACK_STEP`` bytes),
so the disk works while the rest of the body arrives and the final fsync only waits for the tail:
a large upload does not pay "receive, then flush everything" in sequence. The staging file is
fsynced before ``receive`` returns, so ``Storage.put`` (a rename) publishes durable bytes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import os
import uuid
import zlib
from collections import deque
from collections.abc import AsyncIterable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from anyio import to_thread

from mediagate.core.errors import MalformedBody, PayloadTooLarge

BUFFER_SIZE = 1024 * 1024
WRITEBACK_STEP = 16 * 1024 * 1024
MAX_IN_FLIGHT = 8


@dataclass
class Received:
    """A fully received, fsynced staging file and its digests."""

    path: Path
    size: int
    md5: str
    sha256: str
    crc32: int

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


class _Sink:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.file: IO[bytes] = open(path, "xb")  # noqa: SIM115 - closed in finish/abort
        self.md5 = hashlib.md5()
        self.sha256 = hashlib.sha256()
        self.crc32 = 0
        self.size = 0
        self.written = 0
        self.synced = 0

    def hash_md5(self, buf: bytes | bytearray) -> None:
        self.md5.update(buf)

    def hash_sha256_crc32(self, buf: bytes | bytearray) -> None:
        self.sha256.update(buf)
        self.crc32 = zlib.crc32(buf, self.crc32)

    def write(self, buf: bytes | bytearray) -> None:
        self.file.write(buf)
        self.written += len(buf)
        if self.written - self.synced >= WRITEBACK_STEP:
            self.file.flush()
            os.fdatasync(self.file.fileno())
            self.synced = self.written

    def write_all(self, buf: bytes | bytearray) -> None:
        self.hash_md5(buf)
        self.hash_sha256_crc32(buf)
        self.write(buf)

    def finish(self, last: bytes | bytearray) -> Received:
        if last:
            self.write_all(last)
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        return Received(self.path, self.size, self.md5.hexdigest(), self.sha256.hexdigest(), self.crc32)

    def abort(self) -> None:
        self.file.close()
        self.path.unlink(missing_ok=True)


def new_staging_path(staging_dir: Path, suffix: str = ".part") -> Path:
    return staging_dir / f"{uuid.uuid4().hex}{suffix}"


async def receive(
    chunks: AsyncIterable[bytes],
    staging_dir: Path,
    *,
    max_size: int,
    too_large: Callable[[], Exception] | None = None,
    base64_encoded: bool = False,
) -> Received:
    """Stream ``chunks`` into a new staging file; refuse as soon as ``max_size`` is passed.

    ``too_large`` builds the error raised when the limit is passed (default PayloadTooLarge), so
    a policy's own size range can be reported as a policy violation.
    """
    path = new_staging_path(staging_dir)
    sink = await to_thread.run_sync(_Sink, path)
    decoder = _Base64Decoder() if base64_encoded else None
    buf = bytearray()
    lanes: _Lanes | None = None
    try:
        async for chunk in chunks:
            if decoder is not None:
                chunk = decoder.feed(chunk)
            sink.size += len(chunk)
            if sink.size > max_size:
                raise (too_large() if too_large else PayloadTooLarge())
            buf += chunk
            if len(buf) >= BUFFER_SIZE:
                lanes = lanes or _Lanes(sink)
                await lanes.submit(buf)
                buf = bytearray()
        if decoder is not None:
            tail = decoder.finish()
            sink.size += len(tail)
            if sink.size > max_size:
                raise (too_large() if too_large else PayloadTooLarge())
            buf += tail
        if lanes is not None:
            await lanes.drain()
        return await to_thread.run_sync(sink.finish, buf)
    except BaseException:
        if lanes is not None:
            await lanes.drain(raise_errors=False)
        await to_thread.run_sync(sink.abort)
        raise
    finally:
        if lanes is not None:
            lanes.close()


class _Lanes:
    """Three single-thread lanes over one sink; each applies its step to the buffers in order."""

    def __init__(self, sink: _Sink) -> None:
        self._steps = (sink.hash_md5, sink.hash_sha256_crc32, sink.write)
        self._pools = [ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest") for _ in self._steps]
        self._pending: deque[list[Future[None]]] = deque()

    async def submit(self, buf: bytearray) -> None:
        """Hand ``buf`` (no longer touched by the caller) to every lane; wait while too many
        buffers are in flight, so memory stays bounded."""
        while len(self._pending) >= MAX_IN_FLIGHT:
            await _all(self._pending.popleft())
        self._pending.append(
            [pool.submit(step, buf) for pool, step in zip(self._pools, self._steps, strict=True)]
        )

    async def drain(self, *, raise_errors: bool = True) -> None:
        while self._pending:
            group = self._pending.popleft()
            if raise_errors:
                await _all(group)
            else:
                await asyncio.gather(*(asyncio.wrap_future(f) for f in group), return_exceptions=True)

    def close(self) -> None:
        for pool in self._pools:
            pool.shutdown(wait=False)


async def _all(futures: list[Future[None]]) -> None:
    await asyncio.gather(*(asyncio.wrap_future(f) for f in futures))


class _Base64Decoder:
    """Incremental base64 decoding for ``b64encoded=on`` uploads (whitespace tolerated)."""

    def __init__(self) -> None:
        self._pending = b""
        self._padded = False

    def feed(self, chunk: bytes) -> bytes:
        data = self._pending + b"".join(chunk.split())
        if self._padded and data:  # '=' ends the data; the quanta are decoded apart, so check here
            raise MalformedBody("file is not valid base64: data after padding")
        cut = len(data) - len(data) % 4
        self._pending = data[cut:]
        self._padded = data[:cut].endswith(b"=")
        return self._decode(data[:cut])

    def finish(self) -> bytes:
        if self._pending:
            raise MalformedBody("file is not valid base64")
        return b""

    @staticmethod
    def _decode(data: bytes) -> bytes:
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise MalformedBody("file is not valid base64") from exc


def hash_file(path: Path) -> tuple[int, str, str, int]:
    """(size, md5, sha256, crc32) of a local file: MD5 in a second thread, as in ``receive``."""
    from concurrent.futures import ThreadPoolExecutor

    md5 = hashlib.md5()
    sha256 = hashlib.sha256()
    crc, size = 0, 0
    with open(path, "rb") as f, ThreadPoolExecutor(max_workers=1) as pool:
        while chunk := f.read(BUFFER_SIZE):
            job = pool.submit(md5.update, chunk)
            sha256.update(chunk)
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
            job.result()
    return size, md5.hexdigest(), sha256.hexdigest(), crc

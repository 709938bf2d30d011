"""Receive: stream bytes into a staging file, hashing MD5, SHA-256 and CRC32 in one pass.

Memory stays flat: chunks are coalesced into ~1 MiB buffers and at most one buffer is in flight
while the next is being received. hashlib and zlib release the GIL on large buffers, so MD5 runs
in one worker thread while SHA-256, CRC32 and the write run in another (write-behind); the event
loop only copies bytes into the next buffer. The staging file is fsynced before ``receive``
returns, so ``Storage.put`` (a rename) publishes durable bytes.

Every ``WRITEBACK_STEP`` bytes the writer asks the kernel to start writing the pages out
(``posix_fadvise(DONTNEED)`` starts asynchronous writeback of dirty pages, then drops the clean
ones), so the disk works while the rest of the body arrives and the final fsync only waits for the
tail: a large upload no longer pays "receive, then flush everything" in sequence, and finished
uploads do not crowd the page cache. Advice only: durability still comes from the fsync.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import os
import uuid
import zlib
from collections.abc import AsyncIterable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from anyio import to_thread

from mediagate.core.errors import MalformedBody, PayloadTooLarge

BUFFER_SIZE = 1024 * 1024
WRITEBACK_STEP = 8 * 1024 * 1024


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
        self.advised = 0

    def hash_md5(self, buf: bytes | bytearray) -> None:
        self.md5.update(buf)

    def hash_rest_and_write(self, buf: bytes | bytearray) -> None:
        self.sha256.update(buf)
        self.crc32 = zlib.crc32(buf, self.crc32)
        self.file.write(buf)
        self.written += len(buf)
        if self.written - self.advised >= WRITEBACK_STEP:
            self._start_writeback()

    def _start_writeback(self) -> None:
        """Start writing out what has been written so far (see the module docstring)."""
        if not hasattr(os, "posix_fadvise"):
            return
        self.file.flush()
        with contextlib.suppress(OSError):  # advice must never fail an upload
            os.posix_fadvise(
                self.file.fileno(), self.advised, self.written - self.advised, os.POSIX_FADV_DONTNEED
            )
        self.advised = self.written

    def write_all(self, buf: bytes | bytearray) -> None:
        self.hash_md5(buf)
        self.hash_rest_and_write(buf)

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
    in_flight: asyncio.Future[tuple[None, None]] | None = None
    try:
        async for chunk in chunks:
            if decoder is not None:
                chunk = decoder.feed(chunk)
            sink.size += len(chunk)
            if sink.size > max_size:
                raise (too_large() if too_large else PayloadTooLarge())
            buf += chunk
            if len(buf) >= BUFFER_SIZE:
                if in_flight is not None:
                    await in_flight
                in_flight = asyncio.gather(
                    to_thread.run_sync(sink.hash_md5, buf),
                    to_thread.run_sync(sink.hash_rest_and_write, buf),
                )
                buf = bytearray()
        if decoder is not None:
            tail = decoder.finish()
            sink.size += len(tail)
            if sink.size > max_size:
                raise (too_large() if too_large else PayloadTooLarge())
            buf += tail
        if in_flight is not None:
            await in_flight
            in_flight = None
        return await to_thread.run_sync(sink.finish, buf)
    except BaseException:
        if in_flight is not None:
            await asyncio.gather(in_flight, return_exceptions=True)
        await to_thread.run_sync(sink.abort)
        raise


def hash_stream(chunks: Iterator[bytes]) -> tuple[int, str, str, int]:
    """(size, md5, sha256, crc32) of an already stored blob, read chunk by chunk."""
    md5, sha256, crc, size = hashlib.md5(), hashlib.sha256(), 0, 0
    for chunk in chunks:
        md5.update(chunk)
        sha256.update(chunk)
        crc = zlib.crc32(chunk, crc)
        size += len(chunk)
    return size, md5.hexdigest(), sha256.hexdigest(), crc


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

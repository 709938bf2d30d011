"""Receive: stream bytes into a staging file, hashing MD5, SHA-256 and CRC32 in one pass.

Memory stays flat: the received chunks are gathered (not copied) into buffers of ~``BUFFER_SIZE``
bytes, and at most ``MAX_IN_FLIGHT`` buffers are in flight while the next is being received. A
body under ``ONE_HOP_SIZE`` is created, written, hashed and fsynced in a single worker-thread hop.
A larger one gets three single-thread *lanes* (MD5; SHA-256 and CRC32; the write), each taking the
buffers in order, so the three run in parallel (hashlib and zlib release the GIL on large chunks)
and none waits for the slowest step of each buffer; the event loop only hands chunks on.

The write lane never waits for the disk mid-stream: every ``WRITEBACK_STEP`` bytes it has one more
thread ``fdatasync`` what is written so far (one sync at a time), so the disk and its cache drain
while the rest of the body arrives and the final fsync only waits for the tail. The staging file
is fsynced before ``receive`` returns, so ``Storage.put`` (a rename) publishes durable bytes.

With a :class:`Spill` (a backend that streams, like S3), a body that grows past ``Spill.threshold``
stops growing on local disk: unless its first bytes say it must stay whole (an image, which the
checks probe in full), the write lane opens the storage's writer, hands it what is staged so far,
cuts the staging file down to its head (``HEAD_BYTES``, all that sniffing reads) and from then on
hands every buffer to the writer. The result is then a :class:`Received` whose ``upload`` holds
the bytes; ``store`` commits it and ``discard`` aborts it, so a refused upload leaves nothing.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import logging
import os
import zlib
from collections import deque
from collections.abc import AsyncIterable, Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import anyio
from anyio import to_thread

from mediagate.core import threads
from mediagate.core.errors import MalformedBody, PayloadTooLarge
from mediagate.core.ids import unique_hex
from mediagate.logs import describe, is_outage
from mediagate.storage.base import BlobWriter, Storage

log = logging.getLogger("mediagate")

T = TypeVar("T")

ONE_HOP_SIZE = 1024 * 1024
"""A body smaller than this is created, written, hashed and fsynced in one worker-thread hop."""
BUFFER_SIZE = 512 * 1024
"""What a larger body's lanes take at a time (smaller buffers in flight: lower peak RSS)."""
WRITEBACK_STEP = 16 * 1024 * 1024
MAX_IN_FLIGHT = 4

HEAD_BYTES = 64 * 1024
"""What stays staged of a body that streams to storage: more than sniffing reads (8 KiB)."""

MIN_PIECE = 64 * 1024
"""Chunks smaller than this are copied together, so a body that arrives in tiny pieces does not
cost an object, a hash call and an iovec per piece."""

Buffer = Sequence[bytes | bytearray]
"""Received chunks, in order: big ones handed on as they came (no copy), small ones joined."""


@dataclass(frozen=True)
class Spill:
    """Where a body larger than ``threshold`` goes while it arrives, instead of staying whole on
    local disk: ``open()`` starts a storage writer, unless ``keep_whole(head)`` says the body must
    stay staged (its first ``HEAD_BYTES``)."""

    threshold: int
    open: Callable[[], BlobWriter]
    keep_whole: Callable[[bytes], bool]


@dataclass
class Received:
    """A received body and its digests: a fsynced staging file holding it all, or (``upload``
    set) a staging file holding its head while the storage writer holds every byte."""

    path: Path
    size: int
    md5: str
    sha256: str
    crc32: int
    upload: BlobWriter | None = None

    @property
    def whole(self) -> bool:
        """Whether ``path`` holds every byte (else only the first ``HEAD_BYTES``)."""
        return self.upload is None

    @property
    def blob_id(self) -> str | None:
        """The blob the bytes were already written to, if they streamed to storage."""
        return None if self.upload is None else self.upload.blob_id

    def store(self, storage: Storage, blob_id: str) -> None:
        """Make the bytes blob ``blob_id`` (blocking): ``put`` the staging file, or commit the
        upload they streamed to (``blob_id`` must then be :attr:`blob_id`). The staging file is
        consumed."""
        if self.upload is None:
            storage.put(blob_id, self.path)
            return
        if blob_id != self.upload.blob_id:
            raise ValueError("a streamed upload is stored under the blob id it was written to")
        self.upload.commit()
        self.path.unlink(missing_ok=True)

    def discard(self) -> None:
        """Remove the staging file and abort the upload, if any (blocking: a storage call)."""
        self.path.unlink(missing_ok=True)
        if self.upload is not None:
            self.upload.abort()


class _Sink:
    """The staging file and the running digests. The file is created by the first write, in a
    worker thread, so that a small body costs a single hop (``finish``)."""

    def __init__(self, path: Path, spill: Spill | None = None) -> None:
        self.path = path
        self.spill = spill
        self.upload: BlobWriter | None = None
        self.fd = -1
        self.md5 = hashlib.md5()
        self.sha256 = hashlib.sha256()
        self.crc32 = 0
        self.size = 0
        self.written = 0
        self.synced = 0
        self._syncer: ThreadPoolExecutor | None = None
        self._sync: Future[None] | None = None

    def hash_md5(self, buf: Buffer) -> None:
        for chunk in buf:
            self.md5.update(chunk)

    def hash_sha256_crc32(self, buf: Buffer) -> None:
        for chunk in buf:
            self.sha256.update(chunk)
            self.crc32 = zlib.crc32(chunk, self.crc32)

    def write(self, buf: Buffer) -> None:
        if self.upload is not None:
            self.upload.write(buf)
            return
        if self.fd < 0:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
        self.written += _write_all(self.fd, buf)
        if self.spill is not None and self.written > self.spill.threshold:
            self._start_upload(self.spill)
        elif self.written - self.synced >= WRITEBACK_STEP:
            self._sync_in_background()

    def _start_upload(self, spill: Spill) -> None:
        """Past the threshold: move what is staged to a storage writer and keep only the head,
        unless the head says the body stays whole (then staging goes on as for any body)."""
        self.spill = None
        if spill.keep_whole(os.pread(self.fd, HEAD_BYTES, 0)):
            return
        self._stop_syncing()  # the head need not be durable: storage holds the bytes
        upload = spill.open()
        try:
            offset = 0
            while offset < self.written:
                chunk = os.pread(self.fd, BUFFER_SIZE * 2, offset)
                upload.write((chunk,))
                offset += len(chunk)
            os.ftruncate(self.fd, HEAD_BYTES)
        except BaseException:
            with contextlib.suppress(Exception):
                upload.abort()
            raise
        self.upload = upload

    def _sync_in_background(self) -> None:
        """``fdatasync`` what is written so far in another thread, unless a sync is still running
        (then a later buffer asks again)."""
        if self._sync is not None:
            if not self._sync.done():
                return
            self._sync.result()  # a failed sync fails the upload: the kernel reports it only once
        self._syncer = self._syncer or ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-sync")
        self.synced = self.written
        self._sync = self._syncer.submit(os.fdatasync, self.fd)

    def _stop_syncing(self) -> None:
        """Wait for the background sync (the fd must outlive it); raise what it raised."""
        if self._syncer is not None:
            self._syncer.shutdown(wait=True)
            self._syncer = None
        if self._sync is not None:
            sync, self._sync = self._sync, None
            sync.result()

    def finish(self, last: Buffer) -> Received:
        """Write and hash ``last``, make the file durable and close it."""
        self.hash_md5(last)
        self.hash_sha256_crc32(last)
        self.write(last)
        self._stop_syncing()
        if self.upload is not None:
            self.upload.finish()
        else:
            os.fsync(self.fd)
        os.close(self.fd)
        self.fd = -1
        return Received(
            self.path, self.size, self.md5.hexdigest(), self.sha256.hexdigest(), self.crc32, self.upload
        )

    @property
    def created(self) -> bool:
        return self.fd >= 0 or self.upload is not None

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._stop_syncing()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        self.path.unlink(missing_ok=True)
        if self.upload is not None:
            # the caller's error is the one to raise; an upload left open (storage down) is
            # aborted by the collector (Storage.abort_stale_writes)
            with contextlib.suppress(Exception):
                self.upload.abort()


_IOV_MAX = 1024


def _write_all(fd: int, buf: Buffer) -> int:
    """Write every chunk of ``buf`` (``writev``, a few syscalls per buffer); return the byte count."""
    total = 0
    for i in range(0, len(buf), _IOV_MAX):
        batch = buf[i : i + _IOV_MAX]
        want = sum(map(len, batch))
        done = os.writev(fd, batch)
        if done < want:  # short write (e.g. disk nearly full): finish it, so os.write raises the cause
            rest = memoryview(b"".join(batch))[done:]
            while rest:
                rest = rest[os.write(fd, rest) :]
        total += want
    return total


def new_staging_path(staging_dir: Path, suffix: str = ".part") -> Path:
    return staging_dir / f"{unique_hex()}{suffix}"


async def receive(
    chunks: AsyncIterable[bytes],
    staging_dir: Path,
    *,
    max_size: int,
    too_large: Callable[[], Exception] | None = None,
    base64_encoded: bool = False,
    spill: Spill | None = None,
) -> Received:
    """Stream ``chunks`` into a new staging file; refuse as soon as ``max_size`` is passed.

    ``too_large`` builds the error raised when the limit is passed (default PayloadTooLarge), so
    a policy's own size range can be reported as a policy violation. With ``spill``, a large body
    streams on to storage (see the module docstring); whatever fails, nothing of it is left.
    """
    return await receive_then(
        chunks,
        staging_dir,
        _as_received,
        max_size=max_size,
        too_large=too_large,
        base64_encoded=base64_encoded,
        spill=spill,
    )


def _as_received(received: Received) -> Received:
    return received


async def receive_then(
    chunks: AsyncIterable[bytes],
    staging_dir: Path,
    then: Callable[[Received], T],
    *,
    max_size: int,
    too_large: Callable[[], Exception] | None = None,
    base64_encoded: bool = False,
    complete: Callable[[], object] | None = None,
    spill: Spill | None = None,
) -> T:
    """:func:`receive`, then ``then(received)`` in the same worker-thread hop as the file's final
    write and fsync (each hop costs the event loop a wake-up and a wait for the GIL, more than
    most of the steps it runs). ``complete`` is called on the event loop once the whole body has
    arrived, before that hop. If ``then`` raises, the received body is discarded (staging file
    removed, streamed upload aborted).
    """
    sink = _Sink(new_staging_path(staging_dir), spill)
    decoder = _Base64Decoder() if base64_encoded else None
    buf: list[bytes | bytearray] = []
    buffered = 0
    lanes: _Lanes | None = None
    try:
        async for chunk in chunks:
            if decoder is not None:
                chunk = decoder.feed(chunk)
            sink.size += len(chunk)
            if sink.size > max_size:
                raise (too_large() if too_large else PayloadTooLarge())
            _gather(buf, chunk)
            buffered += len(chunk)
            if buffered >= (ONE_HOP_SIZE if lanes is None else BUFFER_SIZE):
                lanes = lanes or _Lanes(sink)
                await lanes.submit(buf)
                buf, buffered = [], 0
        if decoder is not None:
            decoder.finish()
        if lanes is not None:
            await lanes.drain()
        if complete is not None:
            complete()
        return await threads.run_sync(_finish_then, sink, buf, then)
    except BaseException:
        with anyio.CancelScope(shield=True):  # a client gone must not leave a multipart upload
            if lanes is not None:
                await lanes.drain(raise_errors=False)
            if sink.created:
                await to_thread.run_sync(sink.abort)
        raise
    finally:
        if lanes is not None:
            lanes.close()


async def discard(*received: Received | None) -> None:
    """Discard received bodies (staging files, uploads to abort: blocking storage calls) in a
    worker thread, and finish even when the request is being cancelled: a refused upload leaves
    nothing behind. Never raises: cleanup must not hide the error that caused it."""
    with anyio.CancelScope(shield=True):
        for item in received:
            if item is not None:
                try:
                    await to_thread.run_sync(item.discard)
                except Exception as exc:  # the collector ends what is left
                    if is_outage(exc):  # the request's own access line names the outage
                        log.debug("discard failed during an outage: %s", describe(exc))
                    else:
                        log.exception("could not discard a received body")


def _finish_then(sink: _Sink, buf: Buffer, then: Callable[[Received], T]) -> T:
    received = sink.finish(buf)
    sink.upload = None  # the received body owns it now: ``receive_then``'s cleanup must not abort it
    try:
        return then(received)
    except BaseException:
        with contextlib.suppress(Exception):  # the collector ends an upload left open
            received.discard()
        raise


def _gather(buf: list[bytes | bytearray], chunk: bytes) -> None:
    """Add ``chunk`` to ``buf``: appended as it is when big, else copied onto a small last piece."""
    last = buf[-1] if buf else None
    if isinstance(last, bytearray) and len(last) < MIN_PIECE:
        last += chunk
    elif len(chunk) < MIN_PIECE:
        buf.append(bytearray(chunk))
    else:
        buf.append(chunk)


class _Lanes:
    """Three single-thread lanes over one sink; each applies its step to the buffers in order."""

    def __init__(self, sink: _Sink) -> None:
        self._steps = (sink.hash_md5, sink.hash_sha256_crc32, sink.write)
        self._pools = [ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest") for _ in self._steps]
        self._pending: deque[list[Future[None]]] = deque()

    async def submit(self, buf: Buffer) -> None:
        """Hand ``buf`` (no longer touched by the caller) to every lane. When ``MAX_IN_FLIGHT``
        buffers are in flight, wait until half of them are done, so memory stays bounded and the
        lanes wake the event loop once per few buffers, not once per buffer and lane."""
        if len(self._pending) >= MAX_IN_FLIGHT:
            await self._retire(MAX_IN_FLIGHT // 2)
        self._pending.append(
            [pool.submit(step, buf) for pool, step in zip(self._pools, self._steps, strict=True)]
        )

    async def drain(self, *, raise_errors: bool = True) -> None:
        await self._retire(len(self._pending), raise_errors=raise_errors)

    async def _retire(self, n: int, *, raise_errors: bool = True) -> None:
        """Wait until every lane is done with the oldest ``n`` buffers, forget them, and raise the
        first error. Nothing is forgotten while a lane may still use the file: newest first, since
        a lane takes buffers in order, so the older ones are then done and cost no wake-up."""
        for i in reversed(range(n)):
            for future in self._pending[i]:
                if not future.done():
                    with contextlib.suppress(Exception):  # read below
                        await asyncio.wrap_future(future)
        retired = [self._pending.popleft() for _ in range(n)]
        if raise_errors:
            for group in retired:
                for future in group:
                    future.result()

    def close(self) -> None:
        for pool in self._pools:
            pool.shutdown(wait=False)


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


def hash_file(path: Path, *, sync: bool = False) -> tuple[int, str, str, int]:
    """(size, md5, sha256, crc32) of a local file: MD5 in a second thread, as in ``receive``.
    ``sync``: also ``fdatasync`` it, so that its bytes are on the disk before a catalog row
    names them (storage's ``put`` only renames a local file into place)."""
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
        if sync:
            os.fdatasync(f.fileno())
    return size, md5.hexdigest(), sha256.hexdigest(), crc

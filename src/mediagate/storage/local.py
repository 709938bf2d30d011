"""Local filesystem blobs: ``<root>/ab/cd/<blob_id>``, written by rename of fsynced files."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from mediagate.storage.base import CHUNK_SIZE, BlobNotFound, Buffer, check_blob_id

WRITING = ".writing"
"""Where blobs written by ``LocalStorage.writer`` grow until committed (same filesystem)."""


HEX_PREFIXES = 0x100 + 0x10000
"""Slots of the hex prefix directories: 256 ``ab``, then 65,536 ``ab/cd``."""
_LOWER_HEX = frozenset("0123456789abcdef")


def _hex_slot(prefix: str) -> int | None:
    """The slot of a lower-case hex prefix directory (``ab``: 0-255, ``ab/cd``: 256 + 0xabcd),
    else None (``int`` alone would take upper case, signs, spaces and underscores)."""
    if len(prefix) == 2:
        digits = prefix
    elif len(prefix) == 5 and prefix[2] == "/":
        digits = prefix[:2] + prefix[3:]
    else:
        return None
    if not all(c in _LOWER_HEX for c in digits):
        return None
    return int(digits, 16) if len(digits) == 2 else 0x100 + int(digits, 16)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalStorage:
    stream_from: int | None = None
    """Local uploads stage whole (the staging file is the writer): checks read it, ``put`` renames."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._durable = bytearray(HEX_PREFIXES)
        """Prefix directories (``ab``, ``ab/cd``) whose entries (and their parents' up to the root)
        this process has fsynced: a directory seen existing may have been made a moment ago by
        another thread or process whose fsync of its parent has not happened yet, so existence
        proves nothing. One byte per possible hex prefix (blob ids are hex), 64 KiB whatever the
        run's length: a set of Paths grew by some 370 bytes per new prefix, a resident size that
        climbed for hours of uploads (to about 24 MB). Other prefixes go in ``_durable_other``."""
        self._durable_other: set[str] = set()

    def _path(self, blob_id: str) -> Path:
        check_blob_id(blob_id)
        return self.root / blob_id[:2] / blob_id[2:4] / blob_id

    def put(self, blob_id: str, source: Path) -> None:
        dest = self._path(blob_id)
        self._durable_dir(blob_id[:2])  # a new ``ab`` makes the root change too; a known one not
        self._durable_dir(f"{blob_id[:2]}/{blob_id[2:4]}")
        os.replace(source, dest)
        fsync_dir(dest.parent)

    def _durable_dir(self, prefix: str) -> None:
        """Create the prefix directory ``prefix`` (``ab`` or ``ab/cd``; its parent is durable
        already) if needed and make its entry durable by fsyncing its parent, so a power cut after
        the blob's rename cannot lose a new prefix directory and the blob with it. Once per prefix
        per process."""
        slot = _hex_slot(prefix)
        if self._durable[slot] if slot is not None else prefix in self._durable_other:
            return
        path = self.root / prefix
        with contextlib.suppress(FileExistsError):
            path.mkdir()
        fsync_dir(path.parent)
        if slot is not None:
            self._durable[slot] = 1
        else:
            self._durable_other.add(prefix)

    def open(self, blob_id: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        try:
            f = open(self._path(blob_id), "rb")  # noqa: SIM115 - closed by the generator
        except FileNotFoundError as exc:
            raise BlobNotFound(blob_id) from exc
        return _read_range(f, start, end)

    def size(self, blob_id: str) -> int:
        try:
            return self._path(blob_id).stat().st_size
        except FileNotFoundError as exc:
            raise BlobNotFound(blob_id) from exc

    def exists(self, blob_id: str) -> bool:
        return self._path(blob_id).exists()

    def delete(self, blob_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(blob_id).unlink()

    def assemble(self, part_ids: list[str], dest: Path) -> None:
        with open(dest, "xb") as out:
            for part_id in part_ids:
                try:
                    src = open(self._path(part_id), "rb")  # noqa: SIM115
                except FileNotFoundError as exc:
                    raise BlobNotFound(part_id) from exc
                with src:
                    _copy_all(src.fileno(), out.fileno(), os.fstat(src.fileno()).st_size)
            out.flush()
            os.fsync(out.fileno())

    def local_path(self, blob_id: str) -> Path | None:
        return self._path(blob_id)

    def copy(self, source_id: str, dest_id: str) -> None:
        """A kernel-side copy into ``.writing``, then the same rename as ``put``."""
        incoming = self.root / WRITING
        incoming.mkdir(exist_ok=True)
        temp = incoming / check_blob_id(dest_id)
        try:
            self.assemble([source_id], temp)
            self.put(dest_id, temp)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    def read_url(self, blob_id: str, *, expires: int, content_type: str) -> str | None:
        return None

    def writer(self, blob_id: str) -> LocalWriter:
        check_blob_id(blob_id)
        incoming = self.root / WRITING
        incoming.mkdir(exist_ok=True)
        return LocalWriter(self, blob_id, incoming / blob_id)

    def abort_stale_writes(self, started_before: datetime) -> int:
        removed = 0
        with contextlib.suppress(FileNotFoundError):
            for entry in (self.root / WRITING).iterdir():
                with contextlib.suppress(FileNotFoundError):
                    if entry.stat().st_mtime < started_before.timestamp():
                        entry.unlink()
                        removed += 1
        return removed


class LocalWriter:
    """A blob file growing under ``<root>/.writing``; committed by the same rename as ``put``."""

    def __init__(self, storage: LocalStorage, blob_id: str, path: Path) -> None:
        self.blob_id = blob_id
        self._storage = storage
        self._path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)

    def write(self, data: Buffer) -> None:
        for chunk in data:
            view = memoryview(chunk)
            while view:
                view = view[os.write(self._fd, view) :]

    def finish(self) -> None:
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = -1

    def commit(self) -> None:
        self._storage.put(self.blob_id, self._path)

    def abort(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1
        self._path.unlink(missing_ok=True)


def _copy_all(src_fd: int, dst_fd: int, length: int) -> None:
    """Kernel-side copy (copy_file_range), falling back to sendfile; bytes never enter Python."""
    remaining = length
    while remaining > 0:
        try:
            n = os.copy_file_range(src_fd, dst_fd, remaining)
        except OSError:
            n = os.sendfile(dst_fd, src_fd, None, remaining)
        if n == 0:
            raise OSError("short copy while assembling parts")
        remaining -= n


def _read_range(f: object, start: int, end: int | None) -> Iterator[bytes]:
    import io

    assert isinstance(f, io.BufferedReader)
    with f:
        f.seek(start)
        remaining = None if end is None else max(0, end - start)
        while remaining is None or remaining > 0:
            n = CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining)
            chunk = f.read(n)
            if not chunk:
                return
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk

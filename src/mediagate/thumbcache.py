"""The on-disk cache of processed variants (``GET /<bucket>/<key>!/fw/300``), LRU within a size bound.

Layout: ``<home>/cache/<2 hex>/<64 hex>.<ext>`` where the name is the variant's cache key (a hash
of the source bytes' MD5 and the canonical processing spec, see :func:`variant_key`) and the
extension is the output format, which also gives the Content-Type. A variant is written to a
temporary name and renamed into place, so a reader never sees half a file; a reader opens the file
before answering, so eviction (an unlink) never cuts a response short.

Each process keeps an index of what is on disk in least-recently-used order, loaded from the
directory (by mtime) at start; a hit moves the entry to the end and touches the file's mtime, so
the order survives a restart. When the total passes ``max_bytes``, or the entries ``max_entries``,
the oldest entries are removed.
Several server processes on one home each keep their own index: a variant another process made is
simply made again (and replaces the file atomically), and each bounds what it knows of.

The most recently used small variants are also kept in memory (:data:`HOT_BYTES` in all, each at
most :data:`HOT_ITEM_BYTES`), so that a hit on a hot thumbnail reads no file: it is the same
content-addressed bytes, dropped from memory when the file leaves the index.

Concurrent requests for the same variant are single-flighted: one makes it, the others wait on a
per-key lock and then find it in the cache (``misses`` counts the variants actually made).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anyio import to_thread

MIME_BY_EXT = {
    "jpg": "image/jpeg",
    "png": "image/png",
    "gif": "image/gif",
    "webp": "image/webp",
    "avif": "image/avif",
    "heif": "image/heif",
    "tiff": "image/tiff",
    "bmp": "image/bmp",
}
EXT_ALIASES = {"jpeg": "jpg", "heic": "heif", "tif": "tiff"}
HOT_BYTES = 8 * 1024 * 1024
HOT_ITEM_BYTES = 256 * 1024
MAX_ENTRIES = 100_000
"""Variants one process indexes, whatever their bytes: the index lives in memory (a few hundred
bytes an entry), and a size bound alone lets tiny variants (a 16-px thumbnail is a few hundred
bytes; every width and quality is another variant) grow it to millions of entries."""


def variant_key(source_md5: str, source_size: int, canonical_spec: str) -> str:
    """The cache key (and ETag) of a variant: it changes whenever the source bytes or the
    processing do, and never otherwise."""
    return hashlib.sha256(f"{source_md5}:{source_size}:{canonical_spec}".encode()).hexdigest()


def ext_of(fmt: str) -> str:
    """Our file extension for an output format name (``JPEG`` -> ``jpg``)."""
    low = fmt.lower()
    return EXT_ALIASES.get(low, low)


@dataclass(frozen=True)
class Variant:
    """A cached variant: where it is, what it is, and whether this request made it."""

    path: Path
    size: int
    mime: str
    hit: bool
    body: bytes | None = None
    """The bytes, when this process has them in memory (a hot variant, or the one it just made):
    then there is no file to read."""


class ThumbCache:
    """The index and the in-memory copies are changed on the event loop only; files are written,
    renamed and unlinked in worker threads."""

    def __init__(
        self, root: Path, max_bytes: int, hot_bytes: int = HOT_BYTES, max_entries: int = MAX_ENTRIES
    ) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.hot_bytes = hot_bytes
        self.misses = 0
        """Variants made by this process (a cache miss that did the work), for tests and stats."""
        self._index: OrderedDict[str, tuple[str, int]] = OrderedDict()  # key -> (ext, size)
        self._total = 0
        self._hot: OrderedDict[str, bytes] = OrderedDict()
        self._hot_total = 0
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self._loaded = False

    # -- the index ---------------------------------------------------------------------------------

    def _path(self, key: str, ext: str) -> Path:
        return self.root / key[:2] / f"{key}.{ext}"

    def _scan(self) -> list[tuple[str, str, int]]:
        """What is already on disk, oldest use first (blocking)."""
        found: list[tuple[float, str, str, int]] = []
        self.root.mkdir(parents=True, exist_ok=True)
        for path in self.root.glob("*/*"):
            name, dot, ext = path.name.partition(".")
            if not dot or "." in ext or len(name) != 64 or ext not in MIME_BY_EXT:
                with contextlib.suppress(OSError):
                    path.unlink()  # a temporary file left by a crash
                continue
            with contextlib.suppress(OSError):
                st = path.stat()
                found.append((st.st_mtime, name, ext, st.st_size))
        return [(name, ext, size) for _, name, ext, size in sorted(found)]

    async def _load(self) -> None:
        found = await to_thread.run_sync(self._scan)
        if self._loaded:  # another request loaded it meanwhile
            return
        for name, ext, size in found:
            self._index[name] = (ext, size)
            self._total += size
        self._loaded = True
        await self._evict()

    async def _evict(self) -> None:
        victims = []
        while self._index and (self._total > self.max_bytes or len(self._index) > self.max_entries):
            key, (ext, size) = self._index.popitem(last=False)
            self._total -= size
            self._forget_hot(key)
            victims.append(self._path(key, ext))
        if victims:
            await to_thread.run_sync(_unlink_all, victims)

    def _forget(self, key: str) -> None:
        entry = self._index.pop(key, None)
        if entry is not None:
            self._total -= entry[1]
        self._forget_hot(key)

    def _forget_hot(self, key: str) -> None:
        body = self._hot.pop(key, None)
        if body is not None:
            self._hot_total -= len(body)

    def remember(self, key: str, body: bytes) -> None:
        """Keep a small variant's bytes (just read from its file for a hit) in memory for the
        next hits: one hit earns it, so one-off variants do not push hot ones out."""
        if len(body) > HOT_ITEM_BYTES or key not in self._index or key in self._hot:
            return
        self._hot[key] = body
        self._hot_total += len(body)
        while self._hot_total > self.hot_bytes:
            _, old = self._hot.popitem(last=False)
            self._hot_total -= len(old)

    def _lookup(self, key: str) -> Variant | None:
        entry = self._index.get(key)
        if entry is None:
            return None
        ext, size = entry
        path = self._path(key, ext)
        try:
            os.utime(path)  # the LRU order, kept across restarts (a metadata update: no hop)
        except OSError:  # removed behind our back
            self._forget(key)
            return None
        self._index.move_to_end(key)
        body = self._hot.get(key)
        if body is not None:
            self._hot.move_to_end(key)
        return Variant(path, size, MIME_BY_EXT[ext], hit=True, body=body)

    async def _add(self, key: str, ext: str, tmp: Path) -> Variant:
        path = self._path(key, ext)
        size, body = await to_thread.run_sync(_place, tmp, path)
        self._forget(key)
        self._index[key] = (ext, size)
        self._total += size
        await self._evict()
        return Variant(path, size, MIME_BY_EXT.get(ext, "application/octet-stream"), hit=False, body=body)

    @property
    def total_bytes(self) -> int:
        return self._total

    # -- the one entry point ---------------------------------------------------------------------------

    async def get_or_make(self, key: str, make: Callable[[Path], Awaitable[str]]) -> Variant:
        """The variant ``key`` from the cache, or made by ``make(tmp_path) -> output format``
        exactly once however many requests ask for it at the same moment."""
        if not self._loaded:
            await self._load()
        found = self._lookup(key)
        if found is not None:
            return found
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                found = self._lookup(key)
                if found is not None:
                    return found
                folder = self.root / key[:2]
                if not folder.is_dir():  # a stat (no hop); made again if the cache was cleared
                    await to_thread.run_sync(lambda: folder.mkdir(parents=True, exist_ok=True))
                tmp = folder / f"{key}.{uuid.uuid4().hex}.tmp"
                try:
                    fmt = await make(tmp)
                    self.misses += 1
                    ext = ext_of(fmt)
                    if ext not in MIME_BY_EXT:
                        ext = "jpg" if fmt.lower() in ("jpeg", "jpg") else ext
                    return await self._add(key, ext, tmp)
                finally:
                    tmp.unlink(missing_ok=True)
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def stats(self) -> dict[str, Any]:
        return {
            "entries": len(self._index),
            "bytes": self._total,
            "misses": self.misses,
            "hot_entries": len(self._hot),
            "hot_bytes": self._hot_total,
        }


def _place(tmp: Path, path: Path) -> tuple[int, bytes | None]:
    """Rename a finished variant into place (blocking); its size, and its bytes when small (read
    in this same hop, so that the request that made it need not open it again)."""
    with open(tmp, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        body = f.read() if size <= HOT_ITEM_BYTES else None
    os.replace(tmp, path)
    return size, body


def _unlink_all(paths: list[Path]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink()

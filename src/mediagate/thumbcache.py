"""The on-disk cache of processed variants (``GET /<bucket>/<key>!/fw/300``), LRU within a size bound.

Layout: ``<home>/cache/<2 hex>/<64 hex>.<ext>`` where the name is the variant's cache key (a hash
of the source bytes' MD5 and the canonical processing spec, see :func:`variant_key`) and the
extension is the output format, which also gives the Content-Type. A variant is written to a
temporary name and renamed into place, so a reader never sees half a file; a reader opens the file
before answering, so eviction (an unlink) never cuts a response short.

Each process keeps an index of what is on disk in least-recently-used order, loaded from the
directory (by mtime) at start; a hit moves the entry to the end and touches the file's mtime, so
the order survives a restart. When the total passes ``max_bytes`` the oldest entries are removed.
Several server processes on one home each keep their own index: a variant another process made is
simply made again (and replaces the file atomically), and each bounds what it knows of.

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


class ThumbCache:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.misses = 0
        """Variants made by this process (a cache miss that did the work), for tests and stats."""
        self._index: OrderedDict[str, tuple[str, int]] = OrderedDict()  # key -> (ext, size)
        self._total = 0
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self._loaded = False

    # -- the index ---------------------------------------------------------------------------------

    def _path(self, key: str, ext: str) -> Path:
        return self.root / key[:2] / f"{key}.{ext}"

    def _load(self) -> None:
        """Index what is already on disk, oldest use first (blocking; once)."""
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
        for _, name, ext, size in sorted(found):
            self._index[name] = (ext, size)
            self._total += size
        self._loaded = True
        self._evict()

    def _evict(self) -> None:
        while self._total > self.max_bytes and self._index:
            key, (ext, size) = self._index.popitem(last=False)
            self._total -= size
            with contextlib.suppress(OSError):
                self._path(key, ext).unlink()

    def _lookup(self, key: str) -> Variant | None:
        entry = self._index.get(key)
        if entry is None:
            return None
        ext, size = entry
        path = self._path(key, ext)
        try:
            os.utime(path)
        except OSError:  # removed behind our back
            self._index.pop(key, None)
            self._total -= size
            return None
        self._index.move_to_end(key)
        return Variant(path, size, MIME_BY_EXT[ext], hit=True)

    def _add(self, key: str, ext: str, tmp: Path) -> Variant:
        size = tmp.stat().st_size
        path = self._path(key, ext)
        os.replace(tmp, path)
        old = self._index.pop(key, None)
        if old is not None:
            self._total -= old[1]
        self._index[key] = (ext, size)
        self._total += size
        self._evict()
        return Variant(path, size, MIME_BY_EXT.get(ext, "application/octet-stream"), hit=False)

    @property
    def total_bytes(self) -> int:
        return self._total

    # -- the one entry point ---------------------------------------------------------------------------

    async def get_or_make(self, key: str, make: Callable[[Path], Awaitable[str]]) -> Variant:
        """The variant ``key`` from the cache, or made by ``make(tmp_path) -> output format``
        exactly once however many requests ask for it at the same moment."""
        if not self._loaded:
            await to_thread.run_sync(self._load)
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
                await to_thread.run_sync(lambda: folder.mkdir(parents=True, exist_ok=True))
                tmp = folder / f"{key}.{uuid.uuid4().hex}.tmp"
                try:
                    fmt = await make(tmp)
                    self.misses += 1
                    ext = ext_of(fmt)
                    if ext not in MIME_BY_EXT:
                        ext = "jpg" if fmt.lower() in ("jpeg", "jpg") else ext
                    return await to_thread.run_sync(self._add, key, ext, tmp)
                finally:
                    tmp.unlink(missing_ok=True)
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def stats(self) -> dict[str, Any]:
        return {"entries": len(self._index), "bytes": self._total, "misses": self.misses}

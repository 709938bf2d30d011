"""Keeping the server's resident memory near its working set: glibc's malloc, told how to behave and
asked to give freed pages back.

glibc keeps memory a process has freed, for its next allocations, and by itself only gives back the
free space at the top of a heap. Two things make that expensive for a gateway:

* Every thread that allocates gets a malloc arena of its own (up to 8 per core): decodes and
  uploads run in anyio's worker threads (up to 40), the S3 part senders and libvips in their own,
  so each arena ends up holding tens of MB of freed-but-kept memory. Two arenas
  (``MALLOC_ARENA_MAX``, set here with ``mallopt`` since the environment variable is read before
  Python starts) reuse the same pages. Set when this module is imported, which the server does at
  start-up (the front door, ``media._vips``), before any worker thread exists.
* Request bodies pass through as many 64 KiB chunks, next to long-lived small objects: measured
  (session 5, ``bench/scale.py``'s throughput phase on one node), 20 uploads of 16 MiB, 8 at once,
  left the node ~20 MB larger, with Python's own allocations (tracemalloc) back where they were.
  :func:`release_memory` (``malloc_trim(0)``) hands such pages back (155 -> 137 MiB there).

:class:`QuietTrim` decides when: once the last request in flight has ended and at least
``TRIM_AFTER`` bytes of request bodies were read since the last trim. The trim runs in a thread
of its own, so it never holds up an answer or the event loop; it costs about a millisecond per MB
given back. Under steady load the server is never quiet and does not trim: its memory then stays at
its working set, which it would need again at once. A large decode trims right away
(``media.process``), as it frees tens of MB in one go.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading

_M_ARENA_MAX = -8
MIB = 1024 * 1024
TRIM_AFTER = 8 * MIB
"""Body bytes read since the last trim that make a quiet moment worth a trim."""

_libc: ctypes.CDLL | None = None
if sys.platform.startswith("linux"):
    try:
        _libc = ctypes.CDLL("libc.so.6")
        _arenas = os.environ.get("MALLOC_ARENA_MAX", "2")
        _libc.mallopt(_M_ARENA_MAX, int(_arenas) if _arenas.isdigit() else 2)
    except (OSError, AttributeError):  # not glibc (musl has neither arenas nor these calls)
        _libc = None


def release_memory() -> None:
    """Return freed heap pages to the kernel (glibc ``malloc_trim``); a no-op elsewhere."""
    if _libc is not None:
        _libc.malloc_trim(0)


class QuietTrim:
    """Counts the requests in flight and the body bytes they read; the last one to end after
    ``trim_after`` bytes starts a trim (see the module docstring). Thread-safe: one app may be
    served from several event loops (tests do)."""

    def __init__(self, trim_after: int = TRIM_AFTER) -> None:
        self.trim_after = trim_after
        self.trims = 0
        """Trims started so far (for the log and the tests)."""
        self._lock = threading.Lock()
        self._in_flight = 0
        self._read = 0
        self._trimming = False

    def started(self) -> None:
        with self._lock:
            self._in_flight += 1

    def read(self, size: int) -> None:
        if size:
            with self._lock:
                self._read += size

    def ended(self) -> None:
        with self._lock:
            self._in_flight -= 1
            if self._in_flight or self._read < self.trim_after or self._trimming:
                return
            self._read, self._trimming = 0, True
            self.trims += 1
        threading.Thread(target=self._trim, name="mediagate-trim", daemon=True).start()

    def _trim(self) -> None:
        try:
            release_memory()
        finally:
            with self._lock:
                self._trimming = False

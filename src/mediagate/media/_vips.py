"""libvips for a server: loaded on first use, configured so memory stays bounded under parallel load.

Loaded lazily (:func:`vips`): importing pyvips costs ~13 MB of RSS, and a gateway that never sees
an image (or only probes non-images, which the magic-number check turns away first) never pays it.

Why the RSS of a naive server grows by ~17 MB per image in flight and does not come back:

* libvips' operation cache keeps decoded images alive between requests; a gateway never repeats
  the exact same operation on the same file handle, so it only costs memory: switched off when
  pyvips is loaded.
* glibc gives every thread that allocates its own malloc arena (up to 8 per core). Decodes run in
  anyio's worker threads (up to 40) plus libvips' own workers, so each decode leaves tens of MB
  of freed-but-kept memory in another arena. Two arenas (``MALLOC_ARENA_MAX``, set here with
  ``mallopt`` since the environment variable is read before Python starts) reuse the same pages,
  and :func:`release_memory` hands freed pages back to the kernel after a large decode. This is a
  libc call, not a libvips one, so it is made when this module is imported (the server imports
  it at start-up through ``core.checks`` -> ``media.probe``), before any worker thread exists.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
from typing import Any

_M_ARENA_MAX = -8
_libc: ctypes.CDLL | None = None
if sys.platform.startswith("linux"):
    try:
        _libc = ctypes.CDLL("libc.so.6")
        _arenas = os.environ.get("MALLOC_ARENA_MAX", "2")
        _libc.mallopt(_M_ARENA_MAX, int(_arenas) if _arenas.isdigit() else 2)
    except (OSError, AttributeError):  # not glibc (musl has neither arenas nor these calls)
        _libc = None


@functools.cache
def vips() -> Any:
    """The ``pyvips`` module, imported on the first call and configured for a server (operation
    cache off). Call it where an image is actually about to be read, not at import time."""
    os.environ.setdefault("VIPS_WARNING", "0")
    import pyvips

    pyvips.cache_set_max(0)
    pyvips.cache_set_max_mem(0)
    pyvips.cache_set_max_files(0)
    return pyvips


class _NotLoaded(Exception):
    """Stands for ``pyvips.Error`` while pyvips is not loaded: nothing raises it."""


def vips_error() -> type[Exception]:
    """``pyvips.Error`` for an ``except`` clause, without loading pyvips for it: if libvips was
    never loaded, none of its errors can be on the way."""
    module = sys.modules.get("pyvips")
    return module.Error if module is not None else _NotLoaded


def release_memory() -> None:
    """Return freed heap pages to the kernel (glibc ``malloc_trim``); a no-op elsewhere."""
    if _libc is not None:
        _libc.malloc_trim(0)


__all__ = ["release_memory", "vips", "vips_error"]

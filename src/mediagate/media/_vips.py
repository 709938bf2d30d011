"""libvips for a server: loaded on first use, configured so memory stays bounded under parallel load.

Loaded lazily (:func:`vips`): importing pyvips costs ~13 MB of RSS, and a gateway that never sees
an image (or only probes non-images, which the magic-number check turns away first) never pays it.

Why the RSS of a naive server grows by ~17 MB per image in flight and does not come back:

* libvips' operation cache keeps decoded images alive between requests; a gateway never repeats
  the exact same operation on the same file handle, so it only costs memory: switched off when
  pyvips is loaded.
* glibc gives every thread that allocates its own malloc arena, and keeps what a decode freed:
  :mod:`mediagate.memory` limits the arenas to two (when it is imported, which this module does,
  so also a ``mediagate worker`` that only decodes), and :func:`release_memory` hands freed pages
  back to the kernel after a large decode.
"""

from __future__ import annotations

import functools
import os
import sys
from typing import Any

from mediagate.memory import release_memory


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


__all__ = ["release_memory", "vips", "vips_error"]

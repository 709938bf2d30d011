"""pyvips, imported once and configured for a server: no operation cache (memory stays bounded)."""

from __future__ import annotations

import os

os.environ.setdefault("VIPS_WARNING", "0")

import pyvips

# The operation cache keeps decoded images alive between requests; a gateway never repeats the
# exact same operation on the same file handle, so it only costs memory.
pyvips.cache_set_max(0)
pyvips.cache_set_max_mem(0)
pyvips.cache_set_max_files(0)

Error = pyvips.Error

__all__ = ["Error", "pyvips"]

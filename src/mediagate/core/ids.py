"""Unique names made without a system call.

``uuid.uuid4()`` reads ``os.urandom``, a system call that lets go of the GIL; on the event loop,
with worker threads waiting for the GIL, getting it back cost ~100 us of wall time per call
(measured under bench/small.py, four calls per upload). These names only have to be unique, never
unguessable: request ids, blob ids, staging file names. Anything that is a secret or a capability
(session ids, tokens, keys) keeps ``secrets`` / ``uuid4``.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable

_random = random.Random()  # seeded from os.urandom; again in a forked child (it must not repeat us)
random_bits = _random.getrandbits
os.register_at_fork(after_in_child=_random.seed)


def unique_hex() -> str:
    """32 hex digits (128 random bits), as ``uuid4().hex`` looks, without its system call."""
    return f"{random_bits(128):032x}"


BLOB_WINDOW_SECONDS = 10
"""How long new blob ids share their first four hex digits."""


def blob_hex(clock: Callable[[], float] = time.time) -> str:
    """32 hex digits for a blob: four that change every ``BLOB_WINDOW_SECONDS`` (cycling through
    all 65,536 values in about a week), then 112 random bits.

    Local storage files a blob under ``<first two>/<next two>/``. Fully random ids put nearly
    every upload into a directory of its own until all 65,536 exist, and a new directory costs a
    ``mkdir`` and an fsync of its parent before the blob's rename may be trusted; ids made close
    together now share one directory, while over a week they still spread evenly."""
    window = int(clock() // BLOB_WINDOW_SECONDS) % 0x10000
    return f"{window:04x}{random_bits(112):028x}"

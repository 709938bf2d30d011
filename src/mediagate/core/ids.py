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

_random = random.Random()  # seeded from os.urandom; again in a forked child (it must not repeat us)
random_bits = _random.getrandbits
os.register_at_fork(after_in_child=_random.seed)


def unique_hex() -> str:
    """32 hex digits (128 random bits), as ``uuid4().hex`` looks, without its system call."""
    return f"{random_bits(128):032x}"

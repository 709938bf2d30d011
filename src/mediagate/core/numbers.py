"""Whole numbers from untrusted text (headers, query parameters, policy fields).

``str.isdigit()`` followed by ``int()`` is the obvious check and is wrong twice over: ``isdigit``
also accepts '²' (byte 0xB2 of a Latin-1 header), which ``int()`` then refuses with ValueError, and
``int()`` refuses more than 4300 digits. Both became 500s. :func:`parse_uint` accepts ASCII digits
only, and few enough of them to mean something.
"""

from __future__ import annotations

import re

_DIGITS = re.compile(r"[0-9]+")

MAX_DIGITS = 18
"""Every count, size and time we take fits in 18 digits (10**18 bytes is an exabyte)."""


def parse_uint(text: str, *, max_digits: int = MAX_DIGITS) -> int | None:
    """The non-negative integer ``text`` spells in 1..``max_digits`` ASCII digits (surrounding
    whitespace ignored), else None; the caller raises its own clear error."""
    text = text.strip()
    if len(text) > max_digits or not _DIGITS.fullmatch(text):
        return None
    return int(text)

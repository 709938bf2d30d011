"""JSON from untrusted input (policies, tokens, request bodies): plain, finite, sanely nested.

``json.loads`` alone lets hostile input through in two ways that become 500s later: nesting deep
enough to exhaust the interpreter's recursion limit (``RecursionError``, not a ``ValueError``), and
``NaN``/``Infinity``/``1e999`` (floats that ``int()`` refuses with ``OverflowError``/``ValueError``
far from the parser). :func:`loads` turns both into the ``ValueError`` every caller already
handles as "malformed JSON".
"""

from __future__ import annotations

import json
import math
from typing import Any


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text[:32]}")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(data: str | bytes | bytearray) -> Any:
    """Parse untrusted JSON; ValueError (or UnicodeDecodeError, a ValueError) when it is malformed,
    nested too deep for the parser, or holds a non-finite number."""
    try:
        return json.loads(data, parse_float=_finite, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None

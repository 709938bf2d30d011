"""Untrusted JSON: whatever a hostile client sends, the parser answers a value or ValueError."""

from __future__ import annotations

import pytest

from mediagate.core import jsonin


def test_plain_json_parses() -> None:
    assert jsonin.loads(b'{"a": [1, 2.5, "x", null, true]}') == {"a": [1, 2.5, "x", None, True]}


@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"a": ' * 50_000 + "1" + "}" * 50_000,
        "1e999",
        "-1e999",
        '{"expiration": 1e400}',
        "NaN",
        '{"x": Infinity}',
        "[-Infinity]",
        "9" * 10_000,
        "{not json",
        b"\xff\xfe{}",
    ],
)
def test_hostile_json_is_a_value_error(text: str | bytes) -> None:
    with pytest.raises(ValueError):
        jsonin.loads(text)

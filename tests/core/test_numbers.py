"""Whole numbers from untrusted text: ASCII digits only, and few enough of them."""

from __future__ import annotations

import pytest

from mediagate.core.numbers import parse_uint


@pytest.mark.parametrize(("text", "value"), [("0", 0), ("42", 42), (" 7 ", 7), ("9" * 18, 10**18 - 1)])
def test_ascii_digits_are_numbers(text: str, value: int) -> None:
    assert parse_uint(text) == value


@pytest.mark.parametrize(
    "text", ["", " ", "-1", "+1", "1.0", "1e3", "0x10", "\u00b2", "\u0661", "1_000", "9" * 19]
)
def test_anything_else_is_none(text: str) -> None:
    """Including "²" and "١", which str.isdigit() accepts."""
    assert parse_uint(text) is None


def test_max_digits_is_the_callers_bound() -> None:
    assert parse_uint("1234567", max_digits=6) is None
    assert parse_uint("123456", max_digits=6) == 123456

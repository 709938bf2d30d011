"""The textjudge rule engine: normalisation, decoding, labels, and regexes that cannot stall."""

from __future__ import annotations

import time

import pytest

from mediagate.core.errors import PayloadTooLarge, UnsupportedMedia
from mediagate.media.textjudge import (
    MAX_BYTES,
    BadRule,
    Rule,
    RuleTimeout,
    check_rule,
    decode,
    judge,
    judge_bytes,
)


def test_words_match_whatever_the_case_and_width() -> None:
    rules = [Rule("word", check_rule("word", "Free Money"), 1)]
    for text in ("FREE MONEY!", "ｆｒｅｅ　ｍｏｎｅｙ", "get free money now"):
        assert judge(text, rules).label == 1, text
    assert judge("free, money", rules).label == 0  # no obfuscation undone beyond normalisation


def test_spam_beats_suspicious_and_nothing_listed_is_normal() -> None:
    rules = [Rule("word", "loan", 2), Rule("regex", r"casino\s*\d+", 1)]
    assert judge("cheap loan", rules).upyun() | {"hits": []} == {
        "label": 2,
        "review": True,
        "spam": 0.0,
        "normal": 0.0,
        "engine": "rules",
        "rules": 2,
        "hits": [],
        "charset": "utf-8",
    }
    assert judge("loan at CASINO 88", rules).label == 1
    empty = judge("anything", [])
    assert (empty.label, empty.rules, empty.upyun()["normal"]) == (0, 0, 1.0)


def test_decoding_utf8_gb18030_boms_and_non_text() -> None:
    assert decode("中文".encode()) == ("中文", "utf-8")
    assert decode("中文".encode("gb18030")) == ("中文", "gb18030")
    assert decode("x".encode("utf-16")) == ("x", "utf-16")  # with its BOM
    assert decode(b"\xef\xbb\xbfhi") == ("hi", "utf-8")
    for binary in (b"\x89PNG\r\n\x1a\n\x00\x00", bytes(range(1, 32)) * 10, b"\xff\xfe\xfd\x80\x81"):
        with pytest.raises(UnsupportedMedia):
            decode(binary)
    with pytest.raises(PayloadTooLarge):
        judge_bytes(b"a" * (MAX_BYTES + 1), [])


def test_bad_rules_are_refused_when_added() -> None:
    for kind, pattern in (
        ("regex", "("),
        ("regex", "a|"),
        ("regex", "x" * 300),
        ("regex", r"(a+)+$"),
        ("regex", r"(\w+\s?)+$"),
        ("word", "  "),
        ("word", "w" * 200),
        ("phrase", "x"),
    ):
        with pytest.raises(BadRule):
            check_rule(kind, pattern)
    assert check_rule("word", " ＡＢＣ ") == "abc"
    assert check_rule("regex", r"m[o0]ney") == r"m[o0]ney"


def test_a_regex_that_backtracks_at_run_time_is_stopped_within_the_budget() -> None:
    """A pattern the add-time probe let through still cannot hold a worker: the budget stops it."""
    slow = Rule("regex", r"(?:a|aa)+b", 1)  # exponential on a long run of a's
    started = time.monotonic()
    with pytest.raises(RuleTimeout) as raised:
        judge("a" * 60000, [slow], seconds=0.3)
    assert raised.value.pattern == slow.pattern
    assert time.monotonic() - started < 2.0

"""Text moderation by rules: a bucket's listed words and regular expressions (UPYUN ``textjudge``).

What it detects: a listed word anywhere in the text, or a match of a listed regular expression,
after both are normalised the same way (Unicode NFKC, which folds full-width letters and digits to
their ASCII forms and compatibility characters to their plain ones, then case folding). Each rule
carries the label a match gives: 1 spam or 2 suspicious; spam wins over suspicious, nothing
matched is 0 normal. What it does not: understand meaning (an insult in words not listed passes),
read text inside images, undo obfuscation beyond that normalisation (``s.p.a.m``, homoglyphs from
other scripts, words split by spaces pass unless a regex is written for them). It is a rule
engine, so it reports no probabilities: ``spam``/``normal`` in the result are 1.0 or 0.0, the
rule outcome, and ``engine`` says which engine ran.

Safety: a text is at most :data:`MAX_BYTES` (the real UPYUN text API's 64 KB), decoded as UTF-8
(a BOM picks UTF-8/UTF-16), else GB18030; bytes that are neither, or binary (NULs, control
characters), are not text. Regular expressions run on the ``regex`` module, whose matching takes
a timeout: one pattern is at most :data:`MAX_PATTERN` characters, compiled and tried against
known backtracking traps when it is added, and all of a bucket's patterns together get
:data:`REGEX_SECONDS` per text, so a pattern that backtracks catastrophically fails the one task
with a reason naming it and never stalls a worker.
"""

from __future__ import annotations

import codecs
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import regex

from mediagate.core.errors import BadRequest, PayloadTooLarge, UnsupportedMedia

ENGINE = "rules"
"""The engine named in every result (``result.engine``): word list + regular expressions."""
MAX_BYTES = 64 * 1024
MAX_WORD = 128
MAX_PATTERN = 256
MAX_WORDS = 10_000
MAX_REGEXES = 200
"""Per bucket."""
REGEX_SECONDS = 2.0
"""Time all of a bucket's regular expressions may take on one text, together."""
PROBE_SECONDS = 0.1
MAX_HITS = 50
"""Rules listed in a result at most (the label accounts for every match)."""

SPAM, SUSPICIOUS, NORMAL = 1, 2, 0
LABELS = {"spam": SPAM, "suspicious": SUSPICIOUS}
KINDS = ("word", "regex")
FLAGS = regex.IGNORECASE | regex.VERSION0

_TRAPS = (*(c * 3000 + "!" for c in "a1 x_"), "ab" * 1500 + "!")
"""Inputs that make a backtracking pattern such as ``(a+)+$`` or ``(\\w+\\s?)+$`` explode."""
_CONTROL_OK = frozenset("\t\n\r\f\v\x1b")


class BadRule(BadRequest):
    code = "bad_rule"


class RuleTimeout(Exception):
    """A regular expression ran out of the time budget on one text."""

    def __init__(self, pattern: str) -> None:
        super().__init__(pattern)
        self.pattern = pattern


@dataclass(frozen=True)
class Rule:
    kind: str
    pattern: str
    label: int


@dataclass(frozen=True)
class Judgement:
    label: int
    hits: list[dict[str, Any]]
    rules: int
    charset: str

    def upyun(self) -> dict[str, Any]:
        """The textjudge callback's ``result`` (shared/specs/upyun-apps.md §3.5)."""
        return {
            "label": self.label,
            "review": self.label == SUSPICIOUS,
            "spam": 1.0 if self.label == SPAM else 0.0,
            "normal": 1.0 if self.label == NORMAL else 0.0,
            "engine": ENGINE,
            "rules": self.rules,
            "hits": self.hits,
            "charset": self.charset,
        }


def normalise(text: str) -> str:
    """NFKC (full-width → ASCII, compatibility forms → plain) then case folding."""
    return unicodedata.normalize("NFKC", text).casefold()


def check_rule(kind: str, pattern: str) -> str:
    """The rule as stored (a word normalised, a regex as given), or :class:`BadRule` saying why
    not: empty, too long, a regex that does not compile or that backtracks on a known trap."""
    if kind not in KINDS:
        raise BadRule(f"a rule is a word or a regex, not {kind!r}")
    if kind == "word":
        word = normalise(pattern.strip())
        if not word:
            raise BadRule("a word rule must not be empty")
        if len(word) > MAX_WORD:
            raise BadRule(f"a word rule is at most {MAX_WORD} characters")
        return word
    if not pattern:
        raise BadRule("a regex rule must not be empty")
    if len(pattern) > MAX_PATTERN:
        raise BadRule(f"a regex rule is at most {MAX_PATTERN} characters")
    try:
        compiled = regex.compile(pattern, FLAGS)
    except (regex.error, ValueError, OverflowError) as exc:
        raise BadRule(f"the regex {pattern!r} does not compile: {exc}") from None
    if compiled.search("") is not None:
        raise BadRule(f"the regex {pattern!r} matches the empty text, so it would match every text")
    for trap in _TRAPS:
        try:
            compiled.search(trap, timeout=PROBE_SECONDS)
        except TimeoutError:
            raise BadRule(
                f"the regex {pattern!r} backtracks catastrophically (it took over {PROBE_SECONDS:g} s "
                "on a 3 KB text); rewrite it without nested repetition such as (a+)+"
            ) from None
    return pattern


def decode(data: bytes) -> tuple[str, str]:
    """(text, charset): a BOM's UTF-8/UTF-16, else strict UTF-8, else strict GB18030.
    :class:`~mediagate.core.errors.UnsupportedMedia` for bytes that are not text."""
    for bom, charset in (
        (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return _text(data.decode(charset)), charset.removesuffix("-sig")
            except UnicodeDecodeError:
                raise UnsupportedMedia(
                    f"the file starts with a {charset} mark but is not {charset}"
                ) from None
    if b"\x00" in data:
        raise UnsupportedMedia("the file is not text (it holds NUL bytes)", code="not_text")
    for charset in ("utf-8", "gb18030"):
        try:
            return _text(data.decode(charset)), charset
        except UnicodeDecodeError:
            continue
    raise UnsupportedMedia("the file is not text in UTF-8 or GB18030", code="not_text")


def _text(text: str) -> str:
    controls = sum(1 for ch in text if unicodedata.category(ch) == "Cc" and ch not in _CONTROL_OK)
    if controls and controls * 100 > len(text):
        raise UnsupportedMedia("the file is not text (it is mostly control characters)", code="not_text")
    return text


def judge_bytes(data: bytes, rules: Iterable[Rule], *, seconds: float = REGEX_SECONDS) -> Judgement:
    """The judgement of a text file's bytes (size checked, decoded, normalised)."""
    if len(data) > MAX_BYTES:
        raise PayloadTooLarge(
            f"the text is {len(data)} bytes; textjudge reads texts of at most {MAX_BYTES} bytes",
            code="text_too_large",
        )
    text, charset = decode(data)
    return judge(text, list(rules), charset=charset, seconds=seconds)


def judge(
    text: str, rules: list[Rule], *, charset: str = "utf-8", seconds: float = REGEX_SECONDS
) -> Judgement:
    """Run every rule on ``text``. :class:`RuleTimeout` when the regexes exceed ``seconds``."""
    folded = normalise(text)
    hits: list[dict[str, Any]] = []
    label = NORMAL
    deadline = time.monotonic() + seconds
    for rule in rules:
        if rule.kind == "word":
            found = normalise(rule.pattern) in folded
        else:
            left = deadline - time.monotonic()
            try:
                if left <= 0:
                    raise TimeoutError
                found = regex.compile(rule.pattern, FLAGS).search(folded, timeout=left) is not None
            except TimeoutError:
                raise RuleTimeout(rule.pattern) from None
        if not found:
            continue
        if label != SPAM:
            label = SPAM if rule.label == SPAM else SUSPICIOUS
        if len(hits) < MAX_HITS:
            hits.append({"type": rule.kind, "rule": rule.pattern, "label": rule.label})
    return Judgement(label=label, hits=hits, rules=len(rules), charset=charset)


__all__ = [
    "ENGINE",
    "KINDS",
    "LABELS",
    "MAX_BYTES",
    "BadRule",
    "Judgement",
    "Rule",
    "RuleTimeout",
    "check_rule",
    "decode",
    "judge",
    "judge_bytes",
    "normalise",
]

"""``mediagate policy explain``: say in plain words what a policy or token allows, and why a
request carrying it would be refused.

Each dialect contributes explainers: async functions ``explain(token, context)`` returning an
:class:`Explanation`, or ``None`` when the token is not in that dialect's format. They are tried
in :data:`EXPLAINERS` order and the first answer wins. An explainer must *reuse* its dialect's
own parsing and signing code (so the explanation cannot disagree with the server), must never
raise for bad input (a bad token is a finding), and must never put a secret in a finding.

Adding a dialect is one line: write ``mediagate/protocols/<dialect>/explain.py`` with an
``async def explain_<thing>(token: str, context: ExplainContext) -> Explanation | None`` and
add ``"mediagate.protocols.<dialect>.explain:explain_<thing>"`` to :data:`EXPLAINERS`.
Put more specific formats first (a REST ``Authorization`` header before a bare base64 policy).

A verdict is "accepted" exactly when no finding is an error; warnings are things that work but
look unintended (a policy valid for a year, a save-key with no placeholder …).
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from mediagate.core.gateway import Gateway
from mediagate.core.values import Bucket

EXPLAINERS: tuple[str, ...] = (
    "mediagate.protocols.wantu.explain:explain_manage_token",
    "mediagate.protocols.wantu.explain:explain_upload_token",
    "mediagate.protocols.imagex.explain:explain_upload_token",
    "mediagate.protocols.upyun.explain:explain_rest",
    "mediagate.protocols.upyun.explain:explain_form",
    "mediagate.protocols.imagex.explain:explain_sts2",
    "mediagate.protocols.imagex.explain:explain_sealed",
)
"""``module:function`` of every explainer, most specific format first."""

Severity = Literal["ok", "info", "warning", "error"]


@dataclass(frozen=True)
class Finding:
    severity: Severity
    topic: str
    """What the finding is about: 'signature', 'expiration', 'bucket', 'save-key' …"""
    message: str


@dataclass
class Explanation:
    dialect: str
    """Human name of the format recognised, e.g. 'UPYUN FORM policy'."""
    findings: list[Finding] = field(default_factory=list)
    allows: list[str] = field(default_factory=list)
    """Plain-words summary of what the token grants when accepted."""
    decoded: dict[str, Any] = field(default_factory=dict)
    """The decoded policy/token fields (never a secret), for ``--json``."""

    @property
    def accepted(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    def add(self, severity: Severity, topic: str, message: str) -> None:
        self.findings.append(Finding(severity, topic, message))

    def ok(self, topic: str, message: str) -> None:
        self.add("ok", topic, message)

    def error(self, topic: str, message: str) -> None:
        self.add("error", topic, message)

    def warn(self, topic: str, message: str) -> None:
        self.add("warning", topic, message)

    def info(self, topic: str, message: str) -> None:
        self.add("info", topic, message)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dialect": self.dialect,
            "accepted": self.accepted,
            "findings": [asdict(f) for f in self.findings],
            "allows": list(self.allows),
            "decoded": self.decoded,
        }


@dataclass(frozen=True)
class ExplainContext:
    """What the operator told us about the request the token would travel with."""

    gateway: Gateway
    bucket_name: str
    bucket: Bucket | None
    """None when ``bucket_name`` does not exist (explainers report it)."""
    signature: str | None = None
    authorization: str | None = None
    method: str | None = None
    uri: str | None = None
    date: str | None = None
    content_md5: str | None = None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))


Explainer = Callable[[str, ExplainContext], Awaitable[Explanation | None]]


def explainers() -> list[Explainer]:
    found: list[Explainer] = []
    for spec in EXPLAINERS:
        module_name, _, attr = spec.partition(":")
        found.append(getattr(importlib.import_module(module_name), attr))
    return found


async def explain(token: str, context: ExplainContext) -> Explanation:
    """The first explainer that recognises ``token``, or an 'unrecognised' explanation."""
    token = token.strip()
    for explainer in explainers():
        result = await explainer(token, context)
        if result is not None:
            return result
    unknown = Explanation(dialect="unknown")
    unknown.error(
        "format",
        "not a token any dialect recognises (expected e.g. an UPYUN base64 JSON policy or an "
        "'UPYUN operator:signature' header)",
    )
    return unknown


YEAR = 31_557_600
"""A Julian year in seconds."""


def ago(seconds: float) -> str:
    """'3 h', '25 min', '40 s', '2 days', '3 years': a human span for findings.

    Policies carry any integer a client chose, so ``seconds`` may be far beyond what a float or a
    datetime holds: spans are compared as given (ints stay exact) and capped in words."""
    seconds = abs(seconds)
    if seconds < 90:
        return f"{int(seconds)} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    if seconds < 48 * 3600:
        return f"{round(seconds / 3600)} h"
    if seconds < 2 * YEAR:
        return f"{round(seconds / 86400)} days"
    if seconds < 1000 * YEAR:
        return f"{int(seconds // YEAR)} years"
    return "more than 1000 years"


def moment(timestamp: float) -> str:
    """A Unix time as ISO-8601 UTC, or 'after the year 9999' where a datetime cannot reach."""
    try:
        return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")
    except (ValueError, OverflowError, OSError):
        return "after the year 9999" if timestamp > 0 else "before the year 1"

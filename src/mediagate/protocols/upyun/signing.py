"""UPYUN signatures, verified: the server-side half of :mod:`mediagate.signing.upyun`.

The signatures themselves are computed there (shared with the Python SDK, see its docstring for
the formulas) and re-exported here; this module adds what a request is checked with, raising the
dialect's errors: the Authorization header, the ``Date``/``X-Date`` headers and the clock skew.

All comparisons are constant-time; errors never say which part of a signature was wrong.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

from mediagate.core.errors import Unauthorized
from mediagate.signing.upyun import (
    authorization,
    callback_sign,
    format_http_date,
    hmac_signature,
    md5hex,
    old_form_signature,
    signature_matches,
    string_to_sign,
)

__all__ = [
    "authorization",
    "callback_sign",
    "check_date",
    "format_http_date",
    "hmac_signature",
    "md5hex",
    "old_form_signature",
    "parse_authorization",
    "parse_http_date",
    "request_dates",
    "signature_matches",
    "string_to_sign",
]


def parse_authorization(header: str) -> tuple[str, str]:
    """('operator', 'signature') from ``UPYUN operator:signature``."""
    scheme, _, rest = header.strip().partition(" ")
    operator, sep, signature = rest.strip().rpartition(":")
    if scheme.upper() != "UPYUN" or not sep or not operator or not signature:
        raise Unauthorized("malformed Authorization header", code="bad_authorization")
    return operator, signature


def parse_http_date(value: str) -> datetime:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError) as exc:
        raise Unauthorized("Date header is not an RFC 1123 date", code="bad_date") from exc
    if parsed is None:
        raise Unauthorized("Date header is not an RFC 1123 date", code="bad_date")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def request_dates(date: str | None, x_date: str | None) -> list[str]:
    """The dates a REST request may have signed: ``Date`` and/or ``X-Date`` (browsers cannot set
    ``Date``, so the node SDK signs ``X-Date``); refuses a request with neither."""
    dates = list(dict.fromkeys(v.strip() for v in (date, x_date) if v and v.strip()))
    if not dates:
        raise Unauthorized("the Date (or X-Date) header is required", code="date_required")
    return dates


def check_date(value: str | None, *, skew_seconds: int, now: datetime | None = None) -> datetime:
    """Refuse a missing Date or one further than ``skew_seconds`` from our clock."""
    if not value:
        raise Unauthorized("the Date header is required", code="date_required")
    moment = parse_http_date(value)
    current = now or datetime.now(UTC)
    if abs((current - moment).total_seconds()) > skew_seconds:
        raise Unauthorized(
            f"Date is more than {skew_seconds // 60} minutes away from server time "
            f"({format_datetime(current, usegmt=True)})",
            code="date_skew",
        )
    return moment

"""UPYUN signatures, done once.

* REST / new FORM: ``Authorization: UPYUN <operator>:<b64(HMAC-SHA1(md5hex(password), s))>``
  where ``s = METHOD&URI&DATE[&POLICY][&CONTENT_MD5]`` (empty parts are left out; on REST, DATE
  is the ``Date`` or the ``X-Date`` header).
* Old FORM: ``signature = md5hex(policy + "&" + form_api_secret)``.
* Callback (old): ``sign = md5hex(code&message&url&time&form_api_secret[&ext-param])``.

All comparisons are constant-time; errors never say which part of a signature was wrong.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

from mediagate.core.errors import Unauthorized

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def md5hex(value: str | bytes) -> str:
    data = value.encode() if isinstance(value, str) else value
    return hashlib.md5(data).hexdigest()


def string_to_sign(method: str, uri: str, date: str, policy: str = "", content_md5: str = "") -> str:
    return "&".join(part for part in (method.upper(), uri, date, policy, content_md5) if part)


def hmac_signature(password_md5: str, message: str) -> str:
    digest = hmac.new(password_md5.encode(), message.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def authorization(operator: str, password_md5: str, message: str) -> str:
    return f"UPYUN {operator}:{hmac_signature(password_md5, message)}"


def parse_authorization(header: str) -> tuple[str, str]:
    """('operator', 'signature') from ``UPYUN operator:signature``."""
    scheme, _, rest = header.strip().partition(" ")
    operator, sep, signature = rest.strip().rpartition(":")
    if scheme.upper() != "UPYUN" or not sep or not operator or not signature:
        raise Unauthorized("malformed Authorization header", code="bad_authorization")
    return operator, signature


def signature_matches(password_md5: str, signature: str, candidates: list[str]) -> bool:
    """True if ``signature`` signs any of the candidate strings (every one is computed, so the
    time taken does not tell which candidate, if any, matched)."""
    ok = False
    for message in candidates:
        ok |= hmac.compare_digest(hmac_signature(password_md5, message), signature)
    return ok


def old_form_signature(policy: str, form_api_secret: str) -> str:
    return md5hex(f"{policy}&{form_api_secret}")


def callback_sign(
    code: int, message: str, url: str, time: int, secret: str, ext_param: str | None = None
) -> str:
    """``sign`` (or ``no-sign`` with an empty secret, which drops the trailing '&' as the seed
    example does)."""
    parts = [str(code), message, url, str(time)]
    if secret:
        parts.append(secret)
    if ext_param:
        parts.append(ext_param)
    return md5hex("&".join(parts))


def format_http_date(moment: datetime | None = None) -> str:
    """RFC 1123 date with English names, as the SDK formats it."""
    dt = (moment or datetime.now(UTC)).astimezone(UTC)
    return (
        f"{_WEEKDAYS[dt.weekday()]}, {dt.day:02d} {_MONTHS[dt.month - 1]} {dt.year:04d} "
        f"{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d} GMT"
    )


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

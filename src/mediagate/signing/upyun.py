"""UPYUN signatures, computed (verification, which raises the dialect's errors, is in
``mediagate.protocols.upyun.signing``).

* REST / new FORM: ``Authorization: UPYUN <operator>:<b64(HMAC-SHA1(md5hex(password), s))>``
  where ``s = METHOD&URI&DATE[&POLICY][&CONTENT_MD5]`` (empty parts are left out; on REST, DATE
  is the ``Date`` or the ``X-Date`` header).
* Old FORM: ``signature = md5hex(policy + "&" + form_api_secret)``.
* Callback (old): ``sign = md5hex(code&message&url&time&form_api_secret[&ext-param])``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

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

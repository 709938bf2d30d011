"""UPYUN FORM API policy: decode the base64 JSON, validate every field, produce an UploadGrant.

The policy is untrusted until its signature is checked (``form.authorise``); :func:`decode_policy`
therefore only decodes, and :func:`build_grant` runs after the signature matched. Every field of
the seed is read; a malformed value is a 400 naming the field, an expired policy a 403. Fields a
later step owns (``x-gmkerl-*`` image processing, ``apps`` async tasks) are parsed into the grant
for the core and for ``protocols.upyun.apps``, never silently dropped. Unknown keys are ignored,
as UPYUN does.

Field -> grant:

| policy field                         | grant                                   |
| ------------------------------------ | --------------------------------------- |
| bucket / service                     | bucket (both must equal the URL bucket) |
| save-key                             | render_key (``savekey.render_upyun``)   |
| expiration, date                     | expires_at; date within the clock skew  |
| content-md5                          | content_md5 (hex; base64 accepted)      |
| content-length                       | exact_size (large-file mode)            |
| content-length-range                 | size_range, max_size                    |
| image-width-range/image-height-range | width_range / height_range              |
| allow-file-type                      | allowed_extensions                      |
| content-type, content-secret         | content_type, content_secret            |
| b64encoded = on                      | base64_encoded                          |
| x-upyun-meta-*                       | meta (name after the prefix)            |
| x-upyun-meta-ttl (days, 1..180)      | ttl_seconds (and meta["ttl"])           |
| return-url/notify-url/callback-url   | return_url / notify_url / callback_url  |
| ext-param (<= 255 UTF-8 bytes)       | ext_param                               |
| x-gmkerl-*, apps                     | processing (core), apps (upyun.apps)    |
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mediagate.core import jsonin
from mediagate.core.errors import BadRequest, Expired, Forbidden, InvalidKey, Unauthorized
from mediagate.core.grant import UploadGrant
from mediagate.core.mediatype import is_media_type
from mediagate.core.notify import is_http_url
from mediagate.core.numbers import parse_uint
from mediagate.core.savekey import FileFacts, render_upyun
from mediagate.protocols.upyun.signing import check_date, parse_http_date

MAX_EXT_PARAM_BYTES = 255
MAX_TTL_DAYS = 180
MAX_APPS = 10
APP_NAMES = frozenset({"thumb", "naga", "imgaudit", "textjudge", "videoaudit"})
META_PREFIX = "x-upyun-meta-"
_HEX_MD5 = re.compile(r"^[0-9a-fA-F]{32}$")
_URL_FIELDS = ("return-url", "notify-url", "callback-url")


def _invalid(message: str) -> BadRequest:
    return BadRequest(message, code="invalid_policy")


@dataclass(frozen=True)
class FormPolicy:
    """A decoded, not yet trusted policy: the text as sent (it is what is signed) and its JSON."""

    raw: str
    doc: dict[str, Any]

    def text(self, name: str) -> str | None:
        """A string field, or None when absent or not a string (signature inputs only)."""
        value = self.doc.get(name)
        return value if isinstance(value, str) and value else None


def decode_policy(raw: str) -> FormPolicy:
    """Standard or URL-safe base64, with or without padding, of a JSON object."""
    text = raw.strip()
    if not text:
        raise BadRequest("the policy field is empty", code="missing_field")
    compact = "".join(text.split()).replace("-", "+").replace("_", "/").rstrip("=")
    try:
        data = base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _invalid("policy is not valid base64") from exc
    try:
        doc = jsonin.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _invalid("policy is not valid JSON (after base64 decoding)") from exc
    if not isinstance(doc, dict):
        raise _invalid("policy must be a JSON object")
    return FormPolicy(raw=text, doc=doc)


# -- field readers: each names its field in the error -------------------------------------------------


def _string(doc: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = doc.get(name)
    if value is None:
        if required:
            raise BadRequest(f"policy field '{name}' is required", code="missing_field")
        return None
    if not isinstance(value, str):
        raise _invalid(f"policy field '{name}' must be a string")
    return value


def _integer(doc: dict[str, Any], name: str, *, required: bool = False) -> int | None:
    """An integer given as a JSON number or a decimal string (SDKs differ)."""
    value = doc.get(name)
    if value is None:
        if required:
            raise BadRequest(f"policy field '{name}' is required", code="missing_field")
        return None
    if isinstance(value, bool):
        raise _invalid(f"policy field '{name}' must be an integer")
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,19}\s*", value):
        return int(value)
    raise _invalid(f"policy field '{name}' must be an integer")


def _range(doc: dict[str, Any], name: str) -> tuple[int, int] | None:
    """``"min,max"`` (a JSON [min, max] list is accepted too), both >= 0, min <= max."""
    value = doc.get(name)
    if value is None:
        return None
    if isinstance(value, list) and len(value) == 2:
        parts = [str(v) for v in value]
    elif isinstance(value, str):
        parts = value.split(",")
    else:
        raise _invalid(f"policy field '{name}' must be 'min,max'")
    if len(parts) != 2 or not all(re.fullmatch(r"\s*\d{1,19}\s*", p) for p in parts):
        raise _invalid(f"policy field '{name}' must be 'min,max' with non-negative integers, got {value!r}")
    low, high = int(parts[0]), int(parts[1])
    if low > high:
        raise _invalid(f"policy field '{name}': min {low} is greater than max {high}")
    return low, high


def _url(doc: dict[str, Any], name: str) -> str | None:
    value = _string(doc, name)
    if not value:
        return None
    if not is_http_url(value):
        raise _invalid(f"policy field '{name}' must be an absolute http:// or https:// URL")
    return value


def _content_md5(doc: dict[str, Any]) -> str | None:
    value = _string(doc, "content-md5")
    if not value:
        return None
    if _HEX_MD5.match(value):
        return value.lower()
    try:
        digest = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != 16:
        raise _invalid("policy field 'content-md5' must be a hex (or base64) MD5 digest")
    return digest.hex()


def _extensions(doc: dict[str, Any]) -> frozenset[str] | None:
    value = _string(doc, "allow-file-type")
    if value is None:
        return None
    exts = frozenset(e.strip().lstrip(".").lower() for e in value.split(",") if e.strip().lstrip("."))
    if not exts:
        raise _invalid("policy field 'allow-file-type' lists no extension")
    return exts


def _ext_param(doc: dict[str, Any]) -> str | None:
    value = _string(doc, "ext-param")
    if value is not None and len(value.encode("utf-8")) > MAX_EXT_PARAM_BYTES:
        raise _invalid(f"policy field 'ext-param' is longer than {MAX_EXT_PARAM_BYTES} UTF-8 bytes")
    return value or None


def _b64encoded(doc: dict[str, Any]) -> bool:
    value = doc.get("b64encoded")
    if value is None or value in ("", "off"):
        return False
    if value == "on":
        return True
    raise _invalid("policy field 'b64encoded' must be 'on'")


def _meta(doc: dict[str, Any]) -> tuple[dict[str, str], int | None]:
    """User metadata (name after the prefix, lower case) and the TTL in seconds."""
    meta: dict[str, str] = {}
    for name, value in doc.items():
        if not name.lower().startswith(META_PREFIX):
            continue
        short = name[len(META_PREFIX) :].lower()
        if not short or not re.fullmatch(r"[a-z0-9_-]{1,64}", short):
            raise _invalid(f"policy field '{name}': meta names are 1-64 of a-z 0-9 _ -")
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise _invalid(f"policy field '{name}' must be a string")
        text = str(value)
        if len(text.encode("utf-8")) > 1024 or re.search(r"[\x00-\x1f\x7f]", text):
            raise _invalid(f"policy field '{name}' must be at most 1024 bytes without control characters")
        meta[short] = text
    ttl_seconds = None
    if "ttl" in meta:
        days = parse_uint(meta["ttl"])
        if days is None or not 1 <= days <= MAX_TTL_DAYS:
            raise _invalid(
                f"policy field 'x-upyun-meta-ttl' must be a number of days from 1 to {MAX_TTL_DAYS}"
            )
        meta["ttl"] = str(days)
        ttl_seconds = int(days) * 86400
    return meta, ttl_seconds


def _processing(doc: dict[str, Any]) -> dict[str, str]:
    processing: dict[str, str] = {}
    for name, value in doc.items():
        if name.startswith("x-gmkerl-"):
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise _invalid(f"policy field '{name}' must be a string")
            processing[name] = str(value)
    return processing


def _apps(doc: dict[str, Any]) -> list[dict[str, Any]]:
    value = doc.get("apps")
    if value is None:
        return []
    if isinstance(value, str):  # some clients send the array JSON-encoded once more
        try:
            value = jsonin.loads(value)
        except ValueError as exc:
            raise _invalid("policy field 'apps' must be a JSON array of tasks") from exc
    if not isinstance(value, list) or not all(isinstance(task, dict) for task in value):
        raise _invalid("policy field 'apps' must be a JSON array of task objects")
    if not value or len(value) > MAX_APPS:
        raise _invalid(f"policy field 'apps' must hold 1 to {MAX_APPS} tasks")
    for task in value:
        if task.get("name") not in APP_NAMES:
            raise _invalid(f"policy field 'apps': every task needs a name among {sorted(APP_NAMES)}")
    return list(value)


def _save_key(doc: dict[str, Any]) -> str:
    template = _string(doc, "save-key", required=True)
    assert template is not None
    try:  # refuse a template that can never make a valid key now, before any byte is read
        render_upyun(template, FileFacts(filename="probe.bin", md5="0" * 32))
    except InvalidKey as exc:
        raise InvalidKey(f"policy field 'save-key': {exc.message}") from exc
    return template


def _check_bucket(doc: dict[str, Any], url_bucket: str) -> None:
    named = [(f, _string(doc, f)) for f in ("bucket", "service") if doc.get(f) is not None]
    if not named:
        raise BadRequest("policy field 'bucket' is required", code="missing_field")
    for field_name, value in named:
        if value != url_bucket:
            raise Forbidden(
                f"policy field '{field_name}' names another bucket than the URL", code="bucket_mismatch"
            )


def _check_times(doc: dict[str, Any], *, date_skew_seconds: int, now: float) -> int:
    expiration = _integer(doc, "expiration", required=True)
    assert expiration is not None
    if expiration < now:
        raise Expired("the policy has expired (expiration is in the past)")
    date = _string(doc, "date")
    if date:
        try:
            parse_http_date(date)
        except Unauthorized as exc:
            raise _invalid("policy field 'date' must be an RFC 1123 date") from exc
        check_date(date, skew_seconds=date_skew_seconds, now=datetime.fromtimestamp(now, UTC))
    return expiration


def build_grant(
    policy: FormPolicy, url_bucket: str, *, date_skew_seconds: int, now: float | None = None
) -> UploadGrant:
    """Validate every field of a policy whose signature matched, and normalise it."""
    doc = policy.doc
    moment = time.time() if now is None else now
    _check_bucket(doc, url_bucket)
    expiration = _check_times(doc, date_skew_seconds=date_skew_seconds, now=moment)
    template = _save_key(doc)
    exact_size = _integer(doc, "content-length")
    if exact_size is not None and exact_size < 0:
        raise _invalid("policy field 'content-length' must not be negative")
    size_range = _range(doc, "content-length-range")
    content_type = _string(doc, "content-type")
    if content_type is not None and not is_media_type(content_type):
        raise _invalid("policy field 'content-type' must be a MIME type such as image/png")
    meta, ttl_seconds = _meta(doc)
    urls = {name: _url(doc, name) for name in _URL_FIELDS}
    secret = _string(doc, "content-secret")
    if secret and (len(secret) > 255 or not re.fullmatch(r"[\x21-\x7e]+", secret) or "/" in secret):
        # the secret is a URL suffix (``/<bucket>/<key>!<secret>``): visible ASCII, no '/'
        raise _invalid("policy field 'content-secret' must be 1-255 visible ASCII characters without '/'")

    def render_key(facts: FileFacts) -> str:
        return render_upyun(template, facts)

    return UploadGrant(
        bucket=url_bucket,
        render_key=render_key,
        expires_at=expiration,
        size_range=size_range,
        exact_size=exact_size,
        content_md5=_content_md5(doc),
        content_type=content_type or None,
        allowed_extensions=_extensions(doc),
        width_range=_range(doc, "image-width-range"),
        height_range=_range(doc, "image-height-range"),
        base64_encoded=_b64encoded(doc),
        content_secret=secret or None,
        ttl_seconds=ttl_seconds,
        meta=meta,
        processing=_processing(doc),
        apps=_apps(doc),
        return_url=urls["return-url"],
        notify_url=urls["notify-url"],
        callback_url=urls["callback-url"],
        ext_param=_ext_param(doc),
        max_size=size_range[1] if size_range else None,
    )


def refuse_unsupported(grant: UploadGrant) -> None:
    """Refuse what the grant asks for that cannot be recorded as asked: ``apps`` elements whose
    fields have the wrong types (their values are checked by the task itself, spec §6.17)."""
    from mediagate.protocols.upyun.apps import check_apps

    check_apps(grant.apps)


def prebuffer_grant(bucket: str, limit: int) -> UploadGrant:
    """The only grant a file part sent before the policy gets: a size cap, nothing to publish."""

    def never(facts: FileFacts) -> str:
        raise InvalidKey("a prebuffered file has no key before its policy is authorised")

    return UploadGrant(bucket=bucket, render_key=never, max_size=limit, prebuffered=True)

"""What UPYUN REST headers say about an object, both ways.

In: a ``PUT`` (single or multi-part) describes the object to store with ``Content-Type`` (or
``X-Upyun-Multi-Type``), ``x-upyun-meta-<name>`` user metadata (``x-upyun-meta-ttl`` = lifetime in
days, at most 180), ``Content-Secret`` and ``Content-MD5`` (lower-case hex as the SDK sends it, or
RFC 1864 base64). ``x-gmkerl-*`` headers (image processing on upload: ``x-gmkerl-thumb``, the old
``x-gmkerl-type``/``-value`` table, ``x-gmkerl-thumbnail``) go into the grant's ``processing`` and
the core stores the processed image (see ``mediagate.core.preprocess``). For ``x-gmkerl-type:
get_meta`` / ``get_theme_color`` the PUT answers with a JSON body ``{"meta": …}`` /
``{"theme_color": […]}`` next to the usual headers (a header cannot carry nested metadata).

Out: the answer to a stored object carries ``ETag``/``Content-MD5``, ``x-upyun-content-length``
(the stored size), ``x-upyun-width/height/
frames/file-type`` for images, and the metadata echoed as ``x-upyun-meta-<name>``; ``getinfo``
(``HEAD``) answers ``x-upyun-file-type/size/date``.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import Headers

from mediagate.core.errors import BadRequest
from mediagate.core.grant import UploadGrant
from mediagate.core.mediatype import is_media_type
from mediagate.core.numbers import parse_uint
from mediagate.core.usermeta import check_user_meta
from mediagate.core.values import Folder, Object

META_PREFIX = "x-upyun-meta-"
MAX_TTL_DAYS = 180
MAX_SECRET_LENGTH = 255
_HEX_MD5 = re.compile(r"^[0-9a-fA-F]{32}$")
_TOKEN = re.compile(r"^[a-z0-9_-]+$")
_SECRET = re.compile(r"^[\x21-\x7e]+$")


def parse_md5(value: str, header: str) -> str:
    """A Content-MD5 style header as lower-case hex: 32 hex digits, or base64 of 16 bytes."""
    text = value.strip()
    if _HEX_MD5.match(text):
        return text.lower()
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 16:
        raise BadRequest(f"{header} must be an MD5 digest in hex (32 digits) or base64", code="bad_request")
    return raw.hex()


def processing_headers(headers: Headers) -> dict[str, str]:
    """The ``x-gmkerl-*`` headers (lower-case names) for the grant's ``processing``."""
    out: dict[str, str] = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower.startswith("x-gmkerl-"):
            if lower in out:
                raise BadRequest(f"the header {name!r} is given twice", code="bad_request")
            out[lower] = value.strip()
    return out


@dataclass(frozen=True)
class UploadOptions:
    """The stored attributes a PUT asks for (kept in a multi-part session until completion)."""

    content_type: str | None = None
    meta: dict[str, str] = field(default_factory=dict)
    content_secret: str | None = None
    ttl_seconds: int | None = None
    processing: dict[str, str] = field(default_factory=dict)

    def grant(
        self, bucket: str, key: str, *, content_md5: str | None = None, exact_size: int | None = None
    ) -> UploadGrant:
        return UploadGrant.for_key(
            bucket,
            key,
            content_type=self.content_type,
            meta=dict(self.meta),
            content_secret=self.content_secret,
            ttl_seconds=self.ttl_seconds,
            processing=dict(self.processing),
            content_md5=content_md5,
            exact_size=exact_size,
        )

    def to_data(self) -> dict[str, Any]:
        return {
            "content_type": self.content_type,
            "meta": dict(self.meta),
            "content_secret": self.content_secret,
            "ttl_seconds": self.ttl_seconds,
            "processing": dict(self.processing),
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> UploadOptions:
        return cls(
            content_type=data.get("content_type"),
            meta=dict(data.get("meta") or {}),
            content_secret=data.get("content_secret"),
            ttl_seconds=data.get("ttl_seconds"),
            processing=dict(data.get("processing") or {}),
        )


def read_meta(headers: Headers) -> dict[str, str]:
    """The ``x-upyun-meta-<name>`` headers as ``{name: value}`` (names lower-cased)."""
    meta: dict[str, str] = {}
    for name, value in headers.items():
        lower = name.lower()
        if not lower.startswith(META_PREFIX):
            continue
        meta_name = lower[len(META_PREFIX) :]
        if not meta_name or not _TOKEN.match(meta_name):
            raise BadRequest(f"invalid metadata header name {name!r}", code="bad_request")
        meta[meta_name] = value
    return meta


def ttl_of(meta: dict[str, str]) -> int | None:
    """Seconds of life asked for by ``ttl`` (days, 1-180) in ``meta``; None when absent."""
    value = meta.get("ttl")
    if value is None:
        return None
    days = parse_uint(value)
    if days is None or not 1 <= days <= MAX_TTL_DAYS:
        raise BadRequest(
            f"x-upyun-meta-ttl must be a whole number of days from 1 to {MAX_TTL_DAYS}",
            code="bad_request",
        )
    return days * 86400


def upload_options(headers: Headers, *, content_type: str | None) -> UploadOptions:
    """Read metadata, TTL and secret from ``headers``; ``content_type`` is chosen by the caller
    (Content-Type for a single PUT, X-Upyun-Multi-Type for a multi-part one)."""
    meta = read_meta(headers)
    check_user_meta(meta)  # a multi-part upload learns it at its start
    ttl_seconds = ttl_of(meta)
    secret = headers.get("content-secret")
    if secret is not None:
        secret = secret.strip()
        if not secret or len(secret) > MAX_SECRET_LENGTH or not _SECRET.match(secret) or "/" in secret:
            raise BadRequest(
                f"Content-Secret must be 1-{MAX_SECRET_LENGTH} visible ASCII characters without '/'",
                code="bad_request",
            )
    kind = (content_type or "").strip() or None
    if kind is not None and not is_media_type(kind):
        raise BadRequest("the content type must look like 'type/subtype'", code="bad_request")
    return UploadOptions(
        content_type=kind,
        meta=meta,
        content_secret=secret,
        ttl_seconds=ttl_seconds,
        processing=processing_headers(headers),
    )


def unix_time(moment: datetime) -> int:
    """Seconds since the epoch (SQLite hands back naive datetimes, which are UTC)."""
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def _header_safe(value: str) -> bool:
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return "\r" not in value and "\n" not in value


def meta_headers(obj: Object) -> dict[str, str]:
    """``x-upyun-meta-<name>`` for the object's metadata (names/values a header can carry)."""
    out: dict[str, str] = {}
    for name, value in (obj.meta or {}).items():
        text = str(value)
        if _TOKEN.match(str(name)) and _header_safe(text):
            out[META_PREFIX + str(name)] = text
    return out


def image_headers(obj: Object) -> dict[str, str]:
    if obj.width is None or obj.height is None:
        return {}
    return {
        "x-upyun-width": str(obj.width),
        "x-upyun-height": str(obj.height),
        "x-upyun-frames": str(obj.frames or 1),
    }


def stored_headers(obj: Object) -> dict[str, str]:
    """The answer to a PUT (also move, copy, multi-part complete) that stored ``obj``; the python
    SDK returns the x-upyun-* ones as a dict, and its own tests read ``content-length`` from it."""
    out = {
        "ETag": f'"{obj.md5}"',
        "Content-MD5": obj.md5,
        "x-upyun-content-length": str(obj.size),
        **image_headers(obj),
    }
    if obj.image_type:
        out["x-upyun-file-type"] = obj.image_type
    return out | meta_headers(obj)


def file_info_headers(obj: Object) -> dict[str, str]:
    """``getinfo`` of a file (added to the streamed object response of HEAD and GET)."""
    return {
        "x-upyun-file-type": "file",
        "x-upyun-file-size": str(obj.size),
        "x-upyun-file-date": str(unix_time(obj.created_at)),
        "Content-MD5": obj.md5,
        **image_headers(obj),
        **meta_headers(obj),
    }


def folder_info_headers(folder: Folder) -> dict[str, str]:
    return {
        "x-upyun-file-type": "folder",
        "x-upyun-file-size": "0",
        "x-upyun-file-date": str(unix_time(folder.created_at)),
    }

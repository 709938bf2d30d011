"""The Wantu upload policy: parsed, checked, and turned into the core's UploadGrant.

A policy arrives inside the upload token (see ``signing``); by the time it is parsed here its
signature has been verified. Integer fields are accepted as JSON numbers or digit strings (the
seed's own template writes ``"<int>"``). The save key is rendered from ``dir`` + ``name`` once the
bytes are in (placeholders need the type, size, dimensions and EXIF), by :class:`KeyContext`,
which keeps the rendered values for ``returnBody`` and ``callbackBody``.
"""

from __future__ import annotations

import mimetypes
import re
import time
from dataclasses import dataclass, field
from typing import Any

from mediagate.core.errors import BadRequest, Expired, PolicyViolation, Unauthorized
from mediagate.core.exif import read_exif
from mediagate.core.grant import UploadGrant
from mediagate.core.keys import normalise_key
from mediagate.core.mediatype import is_media_type
from mediagate.core.notify import is_http_url
from mediagate.core.savekey import FileFacts, placeholder_names, render_dollar
from mediagate.core.values import Bucket
from mediagate.protocols.wantu.signing import check_dir, check_name

IMAGE_SIZE_LIMIT = 10 * 1024 * 1024
"""The seed's system limit for images when the policy sets no (or a 0) sizeLimit."""

MS_THRESHOLD = 10**11
"""An expiration above this is milliseconds (the prose), below it seconds (the worked example)."""

_MD5 = re.compile(r"^[0-9a-fA-F]{32}$")


def _int(policy: dict[str, Any], name: str) -> int | None:
    value = policy.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,19}\s*", value):
        return int(value)
    raise BadRequest(f"policy field {name!r} must be an integer", code="invalid_policy")


def _text(policy: dict[str, Any], name: str) -> str | None:
    value = policy.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest(f"policy field {name!r} must be a string", code="invalid_policy")
    return value


@dataclass(frozen=True)
class WantuPolicy:
    namespace: str | None
    expiration_ms: int | None
    """None: never expires (absent, -1 or 0)."""
    dir: str | None
    name: str | None
    size_limit: int | None
    """None: the system limit (absent or 0)."""
    mime_limit: tuple[str, ...] | None
    insert_only: bool
    detect_mime: bool
    callback_url: str | None
    callback_host: str | None
    callback_body: str | None
    callback_body_type: str | None
    return_url: str | None
    return_body: str | None
    media_encode: Any = None
    """The raw ``mediaEncode`` field (checked by protocols.wantu.media.policy_params)."""

    @classmethod
    def parse(cls, policy: dict[str, Any]) -> WantuPolicy:
        expiration = _int(policy, "expiration")
        if expiration is not None and expiration < -1:
            raise BadRequest("policy expiration must be a timestamp or -1", code="invalid_policy")
        if expiration in (-1, 0):
            expiration = None
        elif expiration is not None and expiration <= MS_THRESHOLD:
            expiration *= 1000
        size_limit = _int(policy, "sizeLimit")
        if size_limit is not None and size_limit < 0:
            raise BadRequest("policy sizeLimit must not be negative", code="invalid_policy")
        mime = _text(policy, "mimeLimit")
        mime_limit = tuple(m.strip().lower() for m in mime.split(";") if m.strip()) if mime else None
        insert_only = _int(policy, "insertOnly")
        detect_mime = _int(policy, "detectMime")
        return cls(
            namespace=_text(policy, "namespace"),
            expiration_ms=expiration,
            dir=_text(policy, "dir") or None,
            name=_text(policy, "name") or None,
            size_limit=size_limit or None,
            mime_limit=mime_limit or None,
            insert_only=bool(insert_only),
            detect_mime=detect_mime is None or bool(detect_mime),
            callback_url=_http_url(policy, "callbackUrl"),
            callback_host=_text(policy, "callbackHost") or None,
            callback_body=_text(policy, "callbackBody"),
            callback_body_type=_text(policy, "callbackBodyType") or None,
            return_url=_http_url(policy, "returnUrl"),
            return_body=_text(policy, "returnBody"),
            media_encode=policy.get("mediaEncode") or None,
        )

    def check(self, bucket: Bucket, *, now_ms: int | None = None) -> None:
        """The namespace must be the AK's own (or absent/empty); the token must not be expired."""
        if self.namespace not in (None, "", bucket.name):
            raise Unauthorized(
                "the policy namespace does not belong to this access key", code="bucket_mismatch"
            )
        now = now_ms if now_ms is not None else int(time.time() * 1000)
        if self.expiration_ms is not None and self.expiration_ms < now:
            raise Expired("the upload token has expired")


def _http_url(policy: dict[str, Any], name: str) -> str | None:
    """An absolute http(s) URL, checked when the token is read: a returnUrl that cannot be parsed
    was found only after the file was stored, and became a 500."""
    value = _text(policy, name) or None
    if value is None:
        return None
    if not is_http_url(value):
        raise BadRequest(f"policy {name} must be an absolute http:// or https:// URL", code="invalid_policy")
    return value


# -- placeholders -----------------------------------------------------------------------------------


def user_values(fields: dict[str, str]) -> dict[str, str]:
    """``var-x`` and ``meta-x`` fields as ``x``; meta wins over var (the seed's precedence)."""
    values: dict[str, str] = {}
    for prefix in ("var-", "meta-"):
        for key, value in fields.items():
            if key.lower().startswith(prefix) and len(key) > len(prefix):
                values[key[len(prefix) :].lower()] = value
    return values


def meta_fields(fields: dict[str, str]) -> dict[str, str]:
    return {k[5:]: v for k, v in fields.items() if k.lower().startswith("meta-") and len(k) > 5}


def system_values(namespace: str, facts: FileFacts, exif: dict[str, str] | None) -> dict[str, str]:
    """The seed's system placeholders (upload time in UTC, not zero-padded like ``2015-2-5``)."""
    now = facts.now
    mime = facts.mime or ""
    media, _, ext = mime.partition("/")
    values = {
        "namespace": namespace,
        "mimetype": mime,
        "mediatype": media,
        "ext": ext,
        "year": str(now.year),
        "month": str(now.month),
        "day": str(now.day),
        "hour": str(now.hour),
        "minute": str(now.minute),
        "second": str(now.second),
        "filesize": "" if facts.size is None else str(facts.size),
        "width": "" if facts.width is None else str(facts.width),
        "height": "" if facts.height is None else str(facts.height),
    }
    if exif is not None:
        import json

        values["exif"] = json.dumps(exif, ensure_ascii=False, separators=(",", ":"))
        for tag, value in exif.items():
            values[f"exif.{tag.lower()}"] = value
    return values


def with_leading_slash(dir: str) -> str:
    return dir if dir.startswith("/") else "/" + dir


@dataclass
class KeyContext:
    """Renders ``dir``/``name`` into the save key at commit time and remembers what it rendered."""

    bucket: Bucket
    policy: WantuPolicy
    dir_template: str
    name_template: str
    fields: dict[str, str]
    dir: str = ""
    name: str = ""
    values: dict[str, str] = field(default_factory=dict)

    @property
    def uses_exif(self) -> bool:
        templates = (
            self.dir_template,
            self.name_template,
            self.policy.return_body,
            self.policy.callback_body,
        )
        return any(n == "exif" or n.startswith("exif.") for t in templates if t for n in placeholder_names(t))

    def render_key(self, facts: FileFacts) -> str:
        exif = read_exif(facts.path) if self.uses_exif and facts.path is not None else None
        system = system_values(self.bucket.name, facts, exif)
        table = user_values(self.fields) | system
        self.dir = check_dir(with_leading_slash(render_dollar(self.dir_template, table)))
        self.name = check_name(render_dollar(self.name_template, table))
        self.values = table | {"dir": self.dir, "name": self.name}
        if (
            self.policy.size_limit is None
            and (facts.mime or "").startswith("image/")
            and (facts.size or 0) > IMAGE_SIZE_LIMIT
        ):
            raise PolicyViolation(
                f"images may be at most {IMAGE_SIZE_LIMIT} bytes unless the policy sets sizeLimit",
                code="size_out_of_range",
            )
        return normalise_key(f"{self.dir.strip('/')}/{self.name}")

    def render(self, template: str) -> str:
        return render_dollar(template, self.values)


def name_templates(policy: WantuPolicy, fields: dict[str, str]) -> tuple[str, str]:
    """(dir, name) templates: the policy first, then the form field; name is required."""
    name = policy.name or fields.get("name") or ""
    if not name:
        raise BadRequest("name is required (in the policy or as a form field)", code="missing_field")
    return policy.dir or fields.get("dir") or "/", name


def declared_type(policy: WantuPolicy, part_type: str | None, filename: str | None, name: str) -> str | None:
    """With ``detectMime: 0`` the type is the part's Content-Type, else guessed from the names."""
    if policy.detect_mime:
        return None
    declared = (part_type or "").split(";")[0].strip().lower()
    if declared and not is_media_type(declared):
        raise BadRequest(
            f"the file part's Content-Type {declared[:64]!r} is not a media type", code="invalid_argument"
        )
    if declared and declared != "application/octet-stream":
        return declared
    for candidate in (name, filename or ""):
        guessed, _ = mimetypes.guess_type(candidate)
        if guessed:
            return guessed
    return "application/octet-stream"


def parse_md5(fields: dict[str, str]) -> str | None:
    value = fields.get("md5", "").strip()
    if not value:
        return None
    if not _MD5.match(value):
        raise BadRequest("md5 must be 32 hexadecimal characters", code="invalid_argument")
    return value.lower()


def parse_size(fields: dict[str, str], name: str = "size") -> int | None:
    value = fields.get(name, "").strip()
    if not value:
        return None
    if not re.fullmatch(r"\d{1,19}", value):
        raise BadRequest(f"{name} must be a non-negative integer", code="invalid_argument")
    return int(value)


def build_grant(
    ctx: KeyContext,
    *,
    size: int | None,
    md5: str | None,
    content_type: str | None,
) -> UploadGrant:
    """The core grant for one file (single upload or the assembled blocks)."""
    policy = ctx.policy
    limit = policy.size_limit
    if limit is not None and size is not None and size > limit:
        raise PolicyViolation(f"size {size} exceeds the policy sizeLimit {limit}", code="size_out_of_range")
    allowed = policy.mime_limit
    if content_type is not None and allowed is not None:
        if not any(_mime_ok(p, content_type) for p in allowed):
            raise PolicyViolation(f"file type {content_type} is not allowed", code="mime_not_allowed")
        allowed = None
    return UploadGrant(
        bucket=ctx.bucket.name,
        render_key=ctx.render_key,
        size_range=(0, limit) if limit is not None else None,
        max_size=limit,
        exact_size=size,
        content_md5=md5,
        content_type=content_type,
        allowed_mime=allowed,
        insert_only=policy.insert_only,
        meta=meta_fields(ctx.fields),
        return_url=policy.return_url,
        callback_url=policy.callback_url,
    )


def _mime_ok(pattern: str, mime: str) -> bool:
    if pattern in ("*", "*/*"):
        return True
    if pattern.endswith("/*"):
        return mime.startswith(pattern[:-1])
    return mime == pattern

"""Wantu's two credentials, verified, plus resourceIds: the server-side half of
:mod:`mediagate.signing.wantu`, which computes the tokens (shared with the Python SDK) and whose
primitives are re-exported here.

Upload token (``Authorization: UPLOAD_AK_TOP <token>``, the prose's ``UPLOADAKTOP`` too)::

    encodedPolicy = urlsafe_b64(policy_json)
    sign          = hex(hmac_sha1(key=SK, msg=encodedPolicy))
    token         = urlsafe_b64(AK + ":" + encodedPolicy + ":" + sign)

The signature is checked over the encodedPolicy string exactly as received (never re-encoded).

Manage token (``Authorization: ACL_TOP <token>`` + ``Date``)::

    sign  = hex(hmac_sha1(key=SK, msg=<path>[?<query>] + "\\n" + <body> + "\\n" + <Date>))
    token = urlsafe_b64(AK + ":" + sign)

The seed spells the string to sign three ways, so :func:`manage_strings` lists every string a
genuine client may have signed (see the package docstring); one match is enough.

URL-safe base64 is decoded with or without ``=`` padding; we always encode without it, like the
seed's examples. All comparisons are constant-time.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from mediagate.core import jsonin
from mediagate.core.errors import BadRequest, Unauthorized
from mediagate.core.keys import existing_key, normalise_key
from mediagate.signing.wantu import (
    b64decode,
    b64encode,
    encode_policy,
    hmac_sha1_hex,
    manage_token,
    same,
    upload_token,
)

__all__ = [
    "MANAGE_TYPE",
    "UPLOAD_TYPES",
    "ManageToken",
    "ResourceId",
    "UploadToken",
    "b64decode",
    "b64encode",
    "check_date",
    "check_dir",
    "check_name",
    "describe_seconds",
    "dir_to_path",
    "encode_policy",
    "hmac_sha1_hex",
    "manage_signature_ok",
    "manage_strings",
    "manage_token",
    "parse_date",
    "parse_manage_token",
    "parse_resource_id",
    "parse_upload_token",
    "path_to_dir",
    "resource_id",
    "same",
    "split_authorization",
    "upload_signature_ok",
    "upload_token",
]

UPLOAD_TYPES = ("UPLOAD_AK_TOP", "UPLOADAKTOP")
MANAGE_TYPE = "ACL_TOP"
MAX_DIR_BYTES = 192
MAX_NAME_BYTES = 64


# -- upload token --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadToken:
    access_key: str
    encoded_policy: str
    signature: str

    def policy(self) -> dict[str, Any]:
        """The decoded policy JSON object (BadRequest if it is not one)."""
        try:
            value = jsonin.loads(b64decode(self.encoded_policy).decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadRequest("the upload policy is not URL-safe base64 JSON", code="invalid_policy") from exc
        if not isinstance(value, dict):
            raise BadRequest("the upload policy must be a JSON object", code="invalid_policy")
        return value


def split_authorization(header: str | None, types: tuple[str, ...]) -> str:
    """The credential after one of ``types`` (case-insensitive, one or more spaces)."""
    if not header or not header.strip():
        raise Unauthorized("the Authorization header is missing", code="bad_authorization")
    kind, _, rest = header.strip().partition(" ")
    if kind.upper() not in types or not rest.strip():
        raise Unauthorized(f"Authorization must be '{types[0]} <token>'", code="bad_authorization")
    return rest.strip()


def parse_upload_token(token: str) -> UploadToken:
    """Decode ``urlsafe_b64(AK:encodedPolicy:sign)``; Unauthorized if it is not that shape."""
    try:
        text = b64decode(token).decode("utf-8")
    except (ValueError, UnicodeDecodeError) as exc:
        raise Unauthorized("the upload token is not URL-safe base64", code="bad_authorization") from exc
    pieces = text.split(":")
    if len(pieces) != 3 or not all(pieces):
        raise Unauthorized("the upload token must be AK:encodedPolicy:sign", code="bad_authorization")
    return UploadToken(*pieces)


def upload_signature_ok(token: UploadToken, secret: str) -> bool:
    return same(hmac_sha1_hex(secret, token.encoded_policy), token.signature.lower())


# -- manage token --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ManageToken:
    access_key: str
    signature: str


def parse_manage_token(token: str) -> ManageToken:
    try:
        text = b64decode(token).decode("utf-8")
    except (ValueError, UnicodeDecodeError) as exc:
        raise Unauthorized("the manage token is not URL-safe base64", code="bad_authorization") from exc
    access_key, sep, signature = text.rpartition(":")
    if not sep or not access_key or not signature:
        raise Unauthorized("the manage token must be AK:sign", code="bad_authorization")
    return ManageToken(access_key, signature)


def manage_strings(target: str, body: str, date: str) -> list[str]:
    """Every string a client may have signed for ``target`` (raw path[?query]):

    * ``<path>[?<query>]\\n<body>\\n<date>`` with the path as sent, or without its leading ``/``
      (the seed's worked example), and with a bare ``?`` when there is no query (the template);
    * ``uri=<path>[?<query>]\\ndate=<date>`` (the header section's formula), same path variants.
    """
    path, sep, query = target.partition("?")
    paths = dict.fromkeys((path, path.lstrip("/"), "/" + path.lstrip("/")))
    targets: list[str] = []
    for p in paths:
        targets.append(f"{p}?{query}" if sep and query else p)
        if not query:
            targets.append(f"{p}?")
    found: list[str] = []
    for t in dict.fromkeys(targets):
        found.append(f"{t}\n{body}\n{date}")
        found.append(f"uri={t}\ndate={date}")
    return found


def manage_signature_ok(token: ManageToken, secret: str, candidates: list[str]) -> bool:
    sign = token.signature.lower()
    ok = False
    for candidate in candidates:
        ok |= same(hmac_sha1_hex(secret, candidate), sign)
    return ok


def parse_date(value: str) -> datetime:
    """A ``Date`` header: RFC 822/1123, or epoch milliseconds / seconds digits (the seed's example)."""
    text = value.strip()
    if re.fullmatch(r"\d{1,16}", text):
        number = int(text)
        seconds = number / 1000 if number > 10**11 else number
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError) as exc:  # past year 9999
            raise Unauthorized("the Date header is not a representable time", code="bad_date") from exc
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError) as exc:
        raise Unauthorized("the Date header is not an RFC 822 date", code="bad_date") from exc
    if moment is None:
        raise Unauthorized("the Date header is not an RFC 822 date", code="bad_date")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def check_date(value: str | None, now: datetime, *, skew_seconds: int) -> datetime:
    """The Date, refused (401) when missing, unreadable or further than ``skew_seconds`` from
    ``now`` (the seed says 15 minutes; the server's ``date_skew_seconds`` setting decides)."""
    if not value or not value.strip():
        raise Unauthorized("the Date header is required", code="date_required")
    moment = parse_date(value)
    if abs((moment - now).total_seconds()) > skew_seconds:
        raise Unauthorized(
            f"the Date header is more than {describe_seconds(skew_seconds)} from the server time",
            code="date_skew",
        )
    return moment


def describe_seconds(seconds: int) -> str:
    return f"{seconds // 60} minutes" if seconds % 60 == 0 else f"{seconds} seconds"


# -- resourceId ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResourceId:
    namespace: str
    dir: str
    """As the client wrote it: '/' or '/a/b'."""
    name: str | None


def check_dir(value: str) -> str:
    """The seed's rules for a dir: starts with '/', no trailing '/' (except the root), no '//',
    at most 192 bytes, no '.'/'..' segment or control character."""
    if not value.startswith("/"):
        raise BadRequest("dir must start with '/'", code="invalid_argument")
    if value != "/" and value.endswith("/"):
        raise BadRequest("dir must not end with '/'", code="invalid_argument")
    if "//" in value:
        raise BadRequest("dir must not contain '//'", code="invalid_argument")
    if len(value.encode()) > MAX_DIR_BYTES:
        raise BadRequest(f"dir is longer than {MAX_DIR_BYTES} bytes", code="invalid_argument")
    if any(seg in (".", "..") for seg in value.split("/")) or re.search(r"[\x00-\x1f\x7f]", value):
        raise BadRequest(
            "dir may not contain '.' or '..' segments or control characters", code="invalid_argument"
        )
    return value


def check_name(value: str) -> str:
    """A file name: 1-64 bytes, no '/', not '.'/'..', no control character."""
    if not value:
        raise BadRequest("name is empty", code="invalid_argument")
    if "/" in value or value in (".", "..") or re.search(r"[\x00-\x1f\x7f]", value):
        raise BadRequest("name may not contain '/' or control characters", code="invalid_argument")
    if len(value.encode()) > MAX_NAME_BYTES:
        raise BadRequest(f"name is longer than {MAX_NAME_BYTES} bytes", code="invalid_argument")
    return value


def resource_id(namespace: str, dir: str, name: str | None = None) -> str:
    items = [namespace, dir] if name is None else [namespace, dir, name]
    return b64encode(json.dumps(items, ensure_ascii=False, separators=(",", ":")))


def parse_resource_id(value: str, *, file: bool) -> ResourceId:
    """Decode a file (``[ns, dir, name]``) or folder (``[ns, dir]``) resourceId; BadRequest else."""
    try:
        items = jsonin.loads(b64decode(value).decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(
            "resourceId is not URL-safe base64 of a JSON array", code="invalid_argument"
        ) from exc
    size = 3 if file else 2
    what = '["namespace","dir","name"]' if file else '["namespace","dir"]'
    if not isinstance(items, list) or len(items) != size or not all(isinstance(i, str) for i in items):
        raise BadRequest(f"resourceId must encode {what}", code="invalid_argument")
    name = check_name(items[2]) if file else None
    return ResourceId(items[0], check_dir(items[1]), name)


def dir_to_path(dir: str) -> str:
    """'/a/b' -> 'a/b' (the catalog's folder path); '/' -> ''."""
    return dir.strip("/")


def key_of(rid: ResourceId, *, existing: bool = True) -> str:
    """The object key of a file resource: one looked up (``existing``: a file to read, delete,
    rename or process), else a new name (a rename's target, a task's output), which meets the
    whole naming rule (core.keys)."""
    assert rid.name is not None
    path = f"{dir_to_path(rid.dir)}/{rid.name}"
    return existing_key(path) if existing else normalise_key(path)


def path_to_dir(path: str) -> str:
    return "/" + path if path else "/"

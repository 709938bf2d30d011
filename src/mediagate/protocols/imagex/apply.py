"""``ApplyImageUpload``: reserve StoreUris and hand out where and how to upload them.

Each StoreUri (``tos-cn-i-<ServiceId>/<name>``) gets a core upload session (so its bytes may land
on any process) and an ``Auth`` token bound to that StoreUri, its session, the declared FileSize
and an expiry. The ``SessionKey`` seals the bucket, the sessions and an expiry; it is what
``CommitImageUpload`` presents (once). Both expire after ``UPLOAD_TTL_SECONDS``, or when the
temporary credentials that applied expire, whichever is first: an upload address never outlives
the STS that asked for it. The sessions carry that expiry too, so the collector ends an apply
never committed (and drops its bytes) then, not a week later.
"""

from __future__ import annotations

import re
import secrets
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request

from mediagate.core.errors import BadRequest, Conflict, Forbidden, MediagateError, NotFound
from mediagate.core.gateway import Gateway
from mediagate.core.keys import normalise_key
from mediagate.core.values import Bucket
from mediagate.protocols.imagex.auth import Principal
from mediagate.protocols.imagex.tokens import seal

STORE_PREFIX = "tos-cn-i-"
UPLOAD_TTL_SECONDS = 3600
MAX_UPLOAD_NUM = 10
AUTH_PURPOSE = "imagex-upload-auth"
SESSION_KEY_PURPOSE = "imagex-session-key"
DIALECT = "imagex"
_EXTENSION = re.compile(r"^\.?[A-Za-z0-9]{1,16}$")


def store_uri(service_id: str, name: str) -> str:
    return f"{STORE_PREFIX}{service_id}/{name}"


def split_store_uri(uri: str) -> tuple[str, str]:
    """(ServiceId, name) of ``tos-cn-i-<sid>/<name>``; InvalidParameter otherwise."""
    head, sep, name = uri.partition("/")
    if not head.startswith(STORE_PREFIX) or not sep or not name:
        raise BadRequest(f"not a StoreUri of this service: {uri[:200]!r}", code="InvalidParameter")
    return head[len(STORE_PREFIX) :], name


def upload_host(request: Request, gw: Gateway) -> str:
    """``host[:port][/prefix]`` clients prepend ``https://`` to: the configured public URL, else the
    Host this request came to."""
    if gw.settings.public_url:
        parts = urlsplit(gw.settings.public_url)
        return parts.netloc + parts.path.rstrip("/")
    return request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"


def _int_param(params: dict[str, list[str]], name: str, default: int | None) -> int | None:
    values = params.get(name)
    if not values or values[0] == "":
        return default
    try:
        return int(values[0])
    except ValueError:
        raise BadRequest(f"{name} must be an integer", code="InvalidParameter") from None


def _names(params: dict[str, list[str]], count: int, principal: Principal) -> list[str]:
    keys = [k for k in params.get("StoreKeys", []) if k]
    if keys:
        if len(keys) != count:
            raise BadRequest("StoreKeys must name exactly UploadNum files", code="InvalidParameter")
        names = keys
    else:
        prefix = (params.get("Prefix") or [""])[0].strip("/")
        ext = (params.get("FileExtension") or [""])[0]
        if ext and not _EXTENSION.match(ext):
            raise BadRequest("FileExtension must look like .png", code="InvalidParameter")
        ext = ("." + ext.lstrip(".")) if ext else ""
        names = [(f"{prefix}/" if prefix else "") + secrets.token_hex(16) + ext for _ in range(count)]
    out = []
    for name in names:
        try:
            key = normalise_key(name)
        except MediagateError as exc:
            raise BadRequest(
                f"invalid store key {name[:200]!r}: {exc.message}", code="InvalidParameter"
            ) from None
        if not principal.scope.allows_key(key):
            raise Forbidden(f"these temporary credentials may not upload to {key!r}", code="AccessDenied")
        out.append(key)
    if len(set(out)) != len(out):
        raise BadRequest("StoreKeys must be distinct", code="InvalidParameter")
    return out


async def _exists(gw: Gateway, bucket: Bucket, name: str) -> bool:
    try:
        await gw.get_object(bucket, name)
    except NotFound:
        return False
    return True


async def apply_image_upload(
    request: Request, gw: Gateway, principal: Principal, params: dict[str, list[str]]
) -> dict[str, Any]:
    count = _int_param(params, "UploadNum", 1)
    if count is None or not 1 <= count <= MAX_UPLOAD_NUM:
        raise BadRequest(f"UploadNum must be between 1 and {MAX_UPLOAD_NUM}", code="InvalidParameter")
    size = _int_param(params, "FileSize", None)
    if size is not None and not 0 <= size <= gw.settings.max_upload_size:
        raise BadRequest(
            f"FileSize must be between 0 and {gw.settings.max_upload_size} bytes", code="InvalidFileSize"
        )
    if size is not None and count != 1:
        raise BadRequest("FileSize is only meaningful with UploadNum=1", code="InvalidParameter")
    overwrite = (params.get("Overwrite") or ["false"])[0].lower() == "true"
    if overwrite and principal.temporary and not principal.scope.overwrite:
        raise Forbidden("these temporary credentials may not overwrite files", code="AccessDenied")
    names = _names(params, count, principal)
    bucket = principal.bucket
    if not overwrite:
        for name in names:
            if await _exists(gw, bucket, name):
                raise Conflict(
                    f"{store_uri(bucket.name, name)} already exists (pass Overwrite=True to replace it)",
                    code="ResourceAlreadyExists",
                )
    expires = int(time.time()) + UPLOAD_TTL_SECONDS
    if principal.expires_at is not None:  # temporary credentials: nothing minted outlives them
        expires = min(expires, principal.expires_at)
    data = {"overwrite": overwrite, "upload_policy": principal.scope.upload_policy, "expires": expires}
    auth_key = gw.secrets.derive(AUTH_PURPOSE)
    infos = []
    session_ids = []
    for name in names:
        session = await gw.start_session(
            bucket, DIALECT, name, total_size=size, data=data, expires_at=datetime.fromtimestamp(expires, UTC)
        )
        uri = store_uri(bucket.name, name)
        auth = seal(auth_key, {"b": bucket.name, "u": uri, "s": session.id, "n": size, "e": expires})
        infos.append({"StoreUri": uri, "Auth": auth})
        session_ids.append(session.id)
    session_key = seal(
        gw.secrets.derive(SESSION_KEY_PURPOSE),
        {"b": bucket.name, "s": session_ids, "u": [i["StoreUri"] for i in infos], "e": expires},
    )
    return {
        "UploadAddress": {
            "StoreInfos": infos,
            "UploadHosts": [upload_host(request, gw)],
            "SessionKey": session_key,
        },
    }

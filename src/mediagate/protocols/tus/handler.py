"""The tus endpoints: one per routing row, every method (see the package docstring for the
protocol's decisions)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from mediagate import cors
from mediagate.core import webhooks
from mediagate.core.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    MalformedBody,
    MediagateError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    Unavailable,
)
from mediagate.core.gateway import Gateway
from mediagate.core.uploadtokens import TokenGrant
from mediagate.core.values import Bucket, Object, UploadSession
from mediagate.http import drain_body, gateway
from mediagate.protocols.tus import auth
from mediagate.protocols.tus.body import PatchBody
from mediagate.protocols.tus.errors import error_response
from mediagate.protocols.tus.headers import (
    CHECKSUM_ALGORITHMS,
    EXTENSIONS,
    MAX_METADATA,
    OFFSET_STREAM,
    VERSION,
    Checksum,
    Gone,
    OffsetMismatch,
    WrongContentType,
    check_version,
    checksum,
    expires,
    length,
    metadata,
)
from mediagate.protocols.tus.lease import COMPLETED, lease

DIALECT = "tus"
METHODS = ("POST", "HEAD", "PATCH", "DELETE", "OPTIONS")
EXPOSED_HEADERS = (
    "Location",
    "Upload-Offset",
    "Upload-Length",
    "Upload-Defer-Length",
    "Upload-Metadata",
    "Upload-Expires",
    "Tus-Resumable",
    "Tus-Version",
    "Tus-Extension",
    "Tus-Max-Size",
    "Tus-Checksum-Algorithm",
    "X-Request-Id",
)
_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")


async def endpoint(request: Request) -> Response:
    """Every request under ``/v1/tus/``; the path's ``bucket`` and ``upload_id`` say which."""
    gw = gateway(request)
    bucket: str | None = request.path_params.get("bucket")
    upload_id: str | None = request.path_params.get("upload_id")
    method = _method(request)
    try:
        if method == "OPTIONS":
            response = await _options(request, gw, bucket or "")
        else:
            response = await _dispatch(request, gw, method, bucket, upload_id)
    except MediagateError as exc:
        await drain_body(request.stream())
        response = error_response(request, exc)
        if isinstance(exc, MethodNotAllowed):
            response.headers["Allow"] = ", ".join(METHODS)
    response.headers.setdefault("Tus-Resumable", VERSION)
    return await cors.decorate(request, bucket or "", response, exposed=EXPOSED_HEADERS)


def _method(request: Request) -> str:
    """The method, or ``X-HTTP-Method-Override`` on a POST (tus-js-client's
    ``overridePatchMethod``, for networks that drop PATCH)."""
    override = request.headers.get("x-http-method-override", "").strip().upper()
    if request.method == "POST" and override in ("PATCH", "DELETE", "HEAD"):
        return override
    return request.method


async def _options(request: Request, gw: Gateway, bucket: str) -> Response:
    if request.headers.get("origin") and request.headers.get("access-control-request-method"):
        return await cors.preflight(request, bucket, methods=METHODS)
    return Response(
        status_code=204,
        headers={
            "Tus-Resumable": VERSION,
            "Tus-Version": VERSION,
            "Tus-Extension": ",".join(EXTENSIONS),
            "Tus-Max-Size": str(gw.settings.max_upload_size),
            "Tus-Checksum-Algorithm": ",".join(CHECKSUM_ALGORITHMS),
            "Allow": ", ".join(METHODS),
        },
    )


async def _dispatch(
    request: Request, gw: Gateway, method: str, bucket: str | None, upload_id: str | None
) -> Response:
    if not bucket:
        raise NotFound("create uploads at /v1/tus/<bucket>/", code="not_found")
    check_version(request.headers.get("tus-resumable"))
    if upload_id is None:
        if method != "POST":
            raise MethodNotAllowed(f"{method} needs an upload URL; POST here creates an upload")
        return await _create(request, gw, bucket)
    if method not in ("HEAD", "PATCH", "DELETE"):
        raise MethodNotAllowed(f"{method} is not allowed on an upload; use HEAD, PATCH or DELETE")
    row = await gw.find_bucket(bucket)
    if row is None:
        # answered as for an existing bucket: the token's refusal (no token belongs to a bucket
        # that does not exist), so that nobody learns which bucket names exist
        await auth.resume(gw, request, bucket, "-")
        raise NotFound("upload not found", code="upload_not_found")
    session = await _session(gw, row, upload_id)
    grant = await auth.resume(gw, request, bucket, session.key)
    if (session.data or {}).get("token_id") != grant.token_id:
        raise Forbidden("this upload was created with another upload token", code="token_mismatch")
    if method == "HEAD":
        return await _head(request, gw, session, grant)
    if method == "PATCH":
        return await _patch(request, gw, session, grant)
    return await _terminate(gw, session, grant)


async def _session(gw: Gateway, bucket: Bucket, upload_id: str) -> UploadSession:
    if not _UPLOAD_ID.match(upload_id):
        raise NotFound("upload not found", code="upload_not_found")
    try:
        session = await gw.session(upload_id, bucket=bucket)
    except NotFound:
        raise NotFound("upload not found", code="upload_not_found") from None
    if session.dialect != DIALECT:
        raise NotFound("upload not found", code="upload_not_found")
    if _expiry(gw, session) <= datetime.now(UTC):
        raise Gone()
    return session


def _expiry(gw: Gateway, session: UploadSession) -> datetime:
    """When the collector may remove the session (``Gateway.collect_garbage``)."""
    return session.updated_at + timedelta(seconds=gw.settings.session_max_age_seconds)


def _fresh_expiry(gw: Gateway) -> str:
    return expires(datetime.now(UTC) + timedelta(seconds=gw.settings.session_max_age_seconds))


async def _offset(gw: Gateway, session: UploadSession) -> int:
    if session.state == COMPLETED:
        return session.total_size or 0
    return sum(p.size for p in await gw.parts(session))


# -- HEAD ---------------------------------------------------------------------------------------------


async def _head(request: Request, gw: Gateway, session: UploadSession, grant: TokenGrant) -> Response:
    offset = await _offset(gw, session)
    if session.state != COMPLETED and offset == session.total_size:
        # every byte is here but the commit did not happen (an outage failed the last PATCH):
        # complete now, or a client seeing its full offset would stop with no object stored
        await _write(request, gw, session.id, grant, claimed=offset, declared=None, body=False)
        session = await gw.session(session.id)
    headers = {
        "Upload-Offset": str(offset),
        "Upload-Expires": expires(_expiry(gw, session)),
        "Cache-Control": "no-store",
    }
    if session.total_size is None:
        headers["Upload-Defer-Length"] = "1"
    else:
        headers["Upload-Length"] = str(session.total_size)
    raw = (session.data or {}).get("metadata")
    if raw:
        headers["Upload-Metadata"] = raw
    return Response(status_code=200, headers=headers)


# -- POST: creation (and creation-with-upload) ------------------------------------------------------


async def _create(request: Request, gw: Gateway, bucket: str) -> Response:
    headers = request.headers
    total = length(headers.get("upload-length"), "Upload-Length")
    defer = headers.get("upload-defer-length")
    if defer is not None and defer.strip() != "1":
        raise BadRequest("Upload-Defer-Length must be 1", code="invalid_header")
    if (total is None) == (defer is None):
        raise BadRequest("send either Upload-Length or Upload-Defer-Length: 1", code="invalid_header")
    if total is not None and total > gw.settings.max_upload_size:
        raise PayloadTooLarge(
            f"Upload-Length exceeds the maximum upload size of {gw.settings.max_upload_size} bytes"
        )
    raw_meta = headers.get("upload-metadata", "")
    meta = metadata(raw_meta)
    with_body = _has_body(request)
    if with_body:
        _check_patch_type(request)
    declared = checksum(headers.get("upload-checksum")) if with_body else None
    filename = meta.get("filename") or meta.get("name") or None
    content_type = meta.get("filetype") or meta.get("type") or None
    # the token first: a token of another bucket is refused alike whether this bucket exists or not
    grant = await auth.create(gw, request, bucket, filename=filename, size=total, content_type=content_type)
    try:
        row = await gw.bucket(bucket)
        await _refuse_taken(gw, row, grant)
        session = await gw.start_session(
            row,
            DIALECT,
            grant.key,
            total_size=total,
            max_open=gw.settings.max_tus_sessions_per_bucket,
            replacing=grant.key if grant.overwrite else None,
            data={
                "token_id": grant.token_id,
                "metadata": raw_meta.strip()[:MAX_METADATA],
                "filename": filename,
            },
        )
    except BaseException:
        await auth.give_back(gw, grant)
        raise
    answer = {
        "Location": f"{str(request.base_url).rstrip('/')}/v1/tus/{quote(bucket)}/{session.id}",
        "Upload-Expires": _fresh_expiry(gw),
    }
    if with_body or total == 0:
        # the upload never existed for a client that got no answer: nothing stays then, and the
        # token's use is given back
        try:
            offset, interrupted = await _write(
                request, gw, session.id, grant, claimed=0, declared=declared, body=with_body
            )
        except MediagateError:
            await _forget(gw, session.id, grant)
            raise
        if interrupted:
            await _forget(gw, session.id, grant)
            raise MalformedBody("the connection dropped before the upload was created")
        answer["Upload-Offset"] = str(offset)
    return Response(status_code=201, headers=answer)


async def _refuse_taken(gw: Gateway, bucket: Bucket, grant: TokenGrant) -> None:
    """A token that may not overwrite learns now, before sending a byte, that its key is taken;
    the commit at completion is insert-only all the same (two racing uploads: one wins)."""
    if not grant.overwrite and isinstance(await gw.stat_path(bucket, grant.key), Object):
        raise Conflict("an object with this key already exists", code="key_exists")


async def _forget(gw: Gateway, session_id: str, grant: TokenGrant) -> None:
    with contextlib.suppress(NotFound):
        await gw.abort_session(await gw.session(session_id))
    await auth.give_back(gw, grant)


def _has_body(request: Request) -> bool:
    declared = request.headers.get("content-length")
    if declared is not None:
        return declared.strip() not in ("", "0")
    return "chunked" in request.headers.get("transfer-encoding", "").lower()


def _check_patch_type(request: Request) -> None:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != OFFSET_STREAM:
        raise WrongContentType()


# -- PATCH --------------------------------------------------------------------------------------------


async def _patch(request: Request, gw: Gateway, session: UploadSession, grant: TokenGrant) -> Response:
    _check_patch_type(request)
    claimed = length(request.headers.get("upload-offset"), "Upload-Offset")
    if claimed is None:
        raise BadRequest("Upload-Offset is required", code="invalid_header")
    new_length = length(request.headers.get("upload-length"), "Upload-Length")
    declared = checksum(request.headers.get("upload-checksum"))
    offset, _ = await _write(
        request,
        gw,
        session.id,
        grant,
        claimed=claimed,
        declared=declared,
        body=_has_body(request),
        new_length=new_length,
    )
    return Response(
        status_code=204,
        headers={"Upload-Offset": str(offset), "Upload-Expires": _fresh_expiry(gw)},
    )


async def _write(
    request: Request,
    gw: Gateway,
    session_id: str,
    grant: TokenGrant,
    *,
    claimed: int,
    declared: Checksum | None,
    body: bool,
    new_length: int | None = None,
) -> tuple[int, bool]:
    """Append the request body at ``claimed`` under the upload's lease; complete the upload when
    it reaches its length. Returns the new offset, and whether the body was cut short."""
    async with lease(gw, session_id) as (session, holder):
        if session.state == COMPLETED:
            if claimed == session.total_size and not body:
                return claimed, False  # a repeated final PATCH: already done
            raise OffsetMismatch(f"the upload is complete at {session.total_size} bytes")
        parts = await gw.parts(session)
        offset = sum(p.size for p in parts)
        if claimed != offset:
            raise OffsetMismatch(f"the upload is at offset {offset}, not {claimed}")
        total = await _settle_length(gw, session, grant, offset, new_length)
        cap = total if total is not None else _size_cap(gw, grant)
        remaining = cap - offset
        interrupted = False
        if body:
            content_length = length(request.headers.get("content-length"), "Content-Length")
            if remaining <= 0 or (content_length is not None and content_length > remaining):
                raise PayloadTooLarge(f"the body goes past the upload's length of {cap} bytes")
            stream = PatchBody(request, declared)
            part = await gw.put_part(session, len(parts), stream.chunks(), max_size=remaining, holder=holder)
            offset += part.size
            interrupted = stream.interrupted
        if total is not None and offset == total:
            await _complete(gw, session, grant, total, empty=not parts and offset == 0, holder=holder)
        return offset, interrupted


async def _settle_length(
    gw: Gateway, session: UploadSession, grant: TokenGrant, offset: int, new_length: int | None
) -> int | None:
    """The upload's length, fixed now if it was deferred and this PATCH says it."""
    if new_length is None:
        return session.total_size
    if session.total_size is not None:
        if new_length != session.total_size:
            raise BadRequest("Upload-Length cannot change once set", code="invalid_header")
        return new_length
    if new_length < offset:
        raise BadRequest(f"Upload-Length {new_length} is below the offset {offset}", code="invalid_header")
    if new_length > _size_cap(gw, grant):
        raise PayloadTooLarge(f"Upload-Length exceeds the limit of {_size_cap(gw, grant)} bytes")
    await gw.set_session_size(session, new_length)
    return new_length


def _size_cap(gw: Gateway, grant: TokenGrant) -> int:
    cap = gw.settings.max_upload_size
    return min(cap, grant.max_size) if grant.max_size is not None else cap


async def _empty() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover - makes this an async generator


async def _complete(
    gw: Gateway, session: UploadSession, grant: TokenGrant, total: int, *, empty: bool, holder: str
) -> None:
    """Publish the parts through the core commit, once (the caller holds the lease). A refusal
    ends the upload; an outage leaves it open for the client's retry."""
    if empty:
        await gw.put_part(session, 0, _empty(), max_size=0, holder=holder)
    upload = replace(grant.upload_grant(), exact_size=total)
    filename = (session.data or {}).get("filename")
    bucket = await gw.bucket(grant.bucket)
    source = webhooks.Source(via="tus", token_id=grant.token_id, upload_id=session.id)
    notify = webhooks.on_created(bucket, webhooks.target(bucket, grant.notify_url), source)
    try:
        await gw.complete_session(session, upload, filename=filename, keep_record=True, notify=notify)
    except Unavailable:
        raise
    except MediagateError:
        await gw.abort_session(session)
        await auth.give_back(gw, grant)
        raise


# -- DELETE: termination ------------------------------------------------------------------------------


async def _terminate(gw: Gateway, session: UploadSession, grant: TokenGrant) -> Response:
    async with lease(gw, session.id) as (held, _):
        await gw.abort_session(held)
        if held.state != COMPLETED:
            await auth.give_back(gw, grant)
    return Response(status_code=204)

"""Wantu single upload, ``PUT|POST /api/proxy/upload``, and what every upload endpoint shares.

Steps: authorise from the ``Authorization`` header alone (token signature, namespace, expiry,
callbackUrl allowed) before one body byte is read -> read the text parts up to ``content`` (the
file, which must be last: parts after it are ignored, as the seed says) -> grant -> Gateway
receive + commit -> tell (JSON + the same values as headers, returnUrl 303, callbackUrl called
synchronously with its answer relayed as ``customBody``).

Answer fields (single upload): ``fileSize``, ``dir`` ('/a/b'), ``name``, ``url`` (the public read
URL), ``eTag`` and ``ETag`` (md5 hex of the file), ``mimeType``, ``fileModified`` (epoch ms),
``requestId``, plus ``returnBody``/``customBody`` when the policy sets returnBody/callbackUrl.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from mediagate.core import notify
from mediagate.core.buckets import AKSK
from mediagate.core.errors import BadRequest, MediagateError, Unauthorized
from mediagate.core.formdata import MultipartReader, Part, boundary_from_content_type
from mediagate.core.gateway import Gateway, Stored
from mediagate.core.values import Bucket
from mediagate.http import body_stream, drain_body, gateway, request_id
from mediagate.logs import Throttled
from mediagate.protocols.wantu import media
from mediagate.protocols.wantu.errors import as_headers, error_response
from mediagate.protocols.wantu.policy import (
    KeyContext,
    WantuPolicy,
    build_grant,
    declared_type,
    name_templates,
    parse_md5,
    parse_size,
)
from mediagate.protocols.wantu.signing import (
    UPLOAD_TYPES,
    UploadToken,
    parse_upload_token,
    split_authorization,
    upload_signature_ok,
)

log = logging.getLogger("mediagate.wantu")
failed_callbacks = Throttled(log)
"""The callbackUrl is the client's choice: it may fail on every upload."""

FILE_FIELD = "content"
DEFAULT_CALLBACK_TYPE = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Authorised:
    bucket: Bucket
    token: UploadToken
    policy: WantuPolicy


async def authorise(request: Request, gw: Gateway) -> Authorised:
    """Everything the header alone can tell: a valid token of a known AK for its own namespace."""
    token = parse_upload_token(split_authorization(request.headers.get("authorization"), UPLOAD_TYPES))
    found = await gw.find_key(AKSK, token.access_key)
    if found is None:
        raise Unauthorized("unknown access key", code="unknown_operator")
    bucket, secret = found
    if not upload_signature_ok(token, secret):
        raise Unauthorized("the upload token signature does not match its policy", code="signature_mismatch")
    policy = WantuPolicy.parse(token.policy())
    policy.check(bucket)
    if policy.callback_url:
        await notify.check_url(policy.callback_url, allow_private=gw.settings.allow_private_callbacks)
    if policy.media_encode is not None:
        await media_encode(gw, bucket, policy).check()
    return Authorised(bucket, token, policy)


def media_encode(gw: Gateway, bucket: Bucket, policy: WantuPolicy) -> media.PolicyEncode:
    """The policy's ``mediaEncode`` (checked; BadRequest when wrong): the upload's notifier."""
    return media.PolicyEncode(gw, bucket, policy.media_encode)


# -- the form ------------------------------------------------------------------------------------------


@dataclass
class Form:
    fields: dict[str, str]
    reader: MultipartReader | None = None
    file: Part | None = None


async def read_form(request: Request, gw: Gateway, body: AsyncIterator[bytes], *, want_file: bool) -> Form:
    """Text fields up to the ``content`` part (returned unread when ``want_file``). A body without a
    file may also be ``application/x-www-form-urlencoded``."""
    settings = gw.settings
    content_type = request.headers.get("content-type", "")
    if not want_file and content_type.lower().startswith("application/x-www-form-urlencoded"):
        raw = bytearray()
        async for chunk in body:
            raw += chunk
            if len(raw) > settings.max_form_field_size:
                raise BadRequest("form too large", code="invalid_argument")
        try:
            pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError as exc:
            raise BadRequest("form is not UTF-8", code="invalid_argument") from exc
        return Form(dict(pairs))
    reader = MultipartReader(
        body, boundary_from_content_type(content_type), max_header_size=settings.max_header_size
    )
    form = Form({}, reader)
    while (part := await reader.next_part()) is not None:
        if part.name == FILE_FIELD:
            if want_file:
                form.file = part
                return form
            continue
        if part.name in form.fields:
            raise BadRequest(f"the form field {part.name!r} is given twice", code="duplicate_field")
        form.fields[part.name] = await reader.read_text(limit=settings.max_form_field_size)
    if want_file:
        raise BadRequest("the 'content' part (the file, last) is missing", code="missing_file")
    return form


def file_stream(form: Form) -> AsyncIterator[bytes]:
    assert form.reader is not None and form.file is not None
    return form.reader.stream()


Handler = Callable[[Request, Gateway, AsyncIterator[bytes]], Awaitable[Response]]


async def guarded(request: Request, handler: Handler) -> Response:
    """Run an upload endpoint; any core error becomes Wantu's error answer."""
    gw = gateway(request)
    body = body_stream(request)
    try:
        return await handler(request, gw, body)
    except MediagateError as exc:
        await drain_body(body)
        return error_response(exc, request_id(request))


# -- telling -------------------------------------------------------------------------------------------


def public_url(request: Request, gw: Gateway, bucket: str, key: str) -> str:
    base = (gw.settings.public_url or str(request.base_url)).rstrip("/")
    return f"{base}/{bucket}/{quote(key, safe='/')}"


def file_fields(request: Request, gw: Gateway, ctx: KeyContext, stored: Stored) -> dict[str, Any]:
    obj = stored.object
    return {
        "fileSize": obj.size,
        "dir": ctx.dir,
        "name": ctx.name,
        "url": public_url(request, gw, ctx.bucket.name, obj.key),
        "eTag": obj.md5,
        "ETag": obj.md5,
        "mimeType": obj.mime,
        "fileModified": int(obj.created_at.timestamp() * 1000),
    }


def answer(fields: dict[str, Any], status: int = 200) -> JSONResponse:
    """JSON body, and the simple values again as headers (``returnBody``/``customBody`` and the
    duplicate ``ETag`` spelling stay in the body only)."""
    simple = {k: v for k, v in fields.items() if k not in ("ETag", "returnBody", "customBody")}
    return JSONResponse(fields, status_code=status, headers=as_headers(simple))


def with_query(url: str, fields: dict[str, Any]) -> str:
    parts = urlsplit(url)
    extra = urlencode({k: str(v) for k, v in fields.items() if k != "ETag"})
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


async def call_back(gw: Gateway, ctx: KeyContext, fields: dict[str, Any]) -> str:
    """POST the rendered callbackBody to callbackUrl and return its answer text ('' on failure:
    the file is already saved, so the upload still succeeds)."""
    policy = ctx.policy
    assert policy.callback_url is not None
    if policy.callback_body is not None:
        body = ctx.render(policy.callback_body)
    else:
        body = urlencode({k: str(v) for k, v in fields.items() if k != "ETag"})
    headers = {"Content-Type": policy.callback_body_type or DEFAULT_CALLBACK_TYPE}
    if policy.callback_host:
        headers["Host"] = policy.callback_host
    try:
        reply = await notify.post_now(
            policy.callback_url,
            body,
            headers,
            timeout=gw.settings.notify_timeout_seconds,
            allow_private=gw.settings.allow_private_callbacks,
        )
    except notify.DeliveryFailed as exc:
        failed_callbacks.warning("wantu callbackUrl failed: %s", exc)
        return ""
    return reply.body.decode("utf-8", "replace")


async def tell(request: Request, gw: Gateway, ctx: KeyContext, fields: dict[str, Any]) -> Response:
    """returnBody, callback (customBody), then a 303 to returnUrl or the JSON answer."""
    fields["requestId"] = request_id(request)
    policy = ctx.policy
    if policy.return_body is not None:
        fields["returnBody"] = ctx.render(policy.return_body)
    if policy.callback_url:
        fields["customBody"] = await call_back(gw, ctx, fields)
    if policy.return_url:
        return RedirectResponse(with_query(policy.return_url, fields), status_code=303)
    return answer(fields)


# -- /api/proxy/upload ---------------------------------------------------------------------------------


async def _upload(request: Request, gw: Gateway, body: AsyncIterator[bytes]) -> Response:
    auth = await authorise(request, gw)
    form = await read_form(request, gw, body, want_file=True)
    assert form.file is not None
    dir_t, name_t = name_templates(auth.policy, form.fields)
    ctx = KeyContext(auth.bucket, auth.policy, dir_t, name_t, form.fields)
    grant = build_grant(
        ctx,
        size=parse_size(form.fields),
        md5=parse_md5(form.fields),
        content_type=declared_type(auth.policy, form.file.content_type, form.file.filename, name_t),
    )
    encode = media_encode(gw, auth.bucket, auth.policy) if auth.policy.media_encode is not None else None
    stored = await gw.upload(grant, file_stream(form), filename=form.file.filename, notify=encode)
    fields = file_fields(request, gw, ctx, stored)
    if encode is not None:
        fields["taskId"] = encode.task_id
    return await tell(request, gw, ctx, fields)


async def upload(request: Request) -> Response:
    return await guarded(request, _upload)

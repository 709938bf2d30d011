"""UPYUN REST API: ``PUT/GET/HEAD/DELETE/POST /<bucket>/<path>`` with ``Authorization: UPYUN …``.

Every request is authorised before a body byte is read (spec §2):
``UPYUN <operator>:base64(HMAC-SHA1(md5hex(password), METHOD&URI&DATE[&Content-MD5]))`` where URI
is the raw request target (percent-encoding kept, query included), DATE is the ``Date`` header or
``X-Date`` (the node SDK sends only that one; with both, either may be the signed one, and each
must be within ``settings.date_skew_seconds`` of our clock), and the operator is an UPYUN
credential of *this* bucket. An unknown bucket is 401 like a wrong operator or signature (as
UPYUN answers, and bucket names cannot be probed).

| request                                           | meaning (SDK call)                          |
| ------------------------------------------------- | ------------------------------------------- |
| ``PUT /b/key``                                    | store the body (``put``)                    |
| ``PUT`` + ``If-None-Match: *``                    | store only if the key is free (else 409)    |
| ``PUT`` + ``X-Upyun-Multi-*``                     | multi-part upload (see ``multipart``)       |
| ``PUT`` + ``X-Upyun-Move-Source``/``Copy-Source`` | ``move`` / ``copy`` within the bucket       |
| ``GET /b/key``                                    | read (``get``)                              |
| ``GET /b/dir/`` or a folder                       | listing (``getlist``, see ``listing``)      |
| ``GET /b/?usage``                                 | bytes used (``usage``)                      |
| ``GET`` + ``X-Upyun-Multi-Uuid``                  | parts of a multi-part upload so far         |
| ``HEAD /b/path``                                  | ``getinfo``                                 |
| ``DELETE /b/path``                                | delete a file or an empty folder            |
| ``DELETE`` + ``X-Upyun-Multi-Uuid``               | cancel a multi-part upload                  |
| ``POST /b/dir`` + ``Folder: true``                | ``mkdir``                                   |
| ``PATCH /b/key?metadata=merge|replace|delete``    | edit ``x-upyun-meta-*`` (see ``metadata``)  |

Errors are UPYUN's REST JSON ``{"msg", "code", "id"}`` (``errors.rest_error``) with the HTTP status;
the middleware adds ``X-Request-Id``, which the SDK reports.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from mediagate.core.buckets import UPYUN
from mediagate.core.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    MediagateError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
)
from mediagate.core.gateway import Gateway
from mediagate.core.keys import existing_dir, existing_key, normalise_dir, normalise_key, split_key
from mediagate.core.numbers import parse_uint
from mediagate.core.values import Bucket, Folder, Object
from mediagate.http import body_stream, drain_body, gateway, raw_target, request_id
from mediagate.protocols.upyun import listing, metadata, multipart, signing
from mediagate.protocols.upyun.errors import rest_error
from mediagate.protocols.upyun.objects import (
    file_info_headers,
    folder_info_headers,
    parse_md5,
    stored_headers,
    upload_options,
)
from mediagate.serving import object_response


class HeadersTooLarge(BadRequest):
    code = "headers_too_large"
    status = 431
    default_message = "request headers too large"


async def handle(request: Request, bucket: str, path: str) -> Response:
    """The whole REST exchange for ``/<bucket>/<path>`` (``path`` decoded, may be '' or end in '/')."""
    gw = gateway(request)
    body = body_stream(request)
    try:
        found = await authenticate(request, gw, bucket)
        return await _dispatch(request, gw, found, path, body)
    except MediagateError as exc:
        await drain_body(body)
        return rest_error(exc, request_id(request), headers=getattr(exc, "headers", None))


# -- authorise ---------------------------------------------------------------------------------------


async def authenticate(request: Request, gw: Gateway, bucket_name: str) -> Bucket:
    """The bucket, once the request is proven to come from one of its UPYUN operators."""
    _check_header_size(request, gw.settings.max_header_size)
    header = request.headers.get("authorization")
    if not header:
        raise Unauthorized("the Authorization header is required", code="bad_authorization")
    operator, signature = signing.parse_authorization(header)
    dates = signing.request_dates(request.headers.get("date"), request.headers.get("x-date"))
    for date in dates:
        signing.check_date(date, skew_seconds=gw.settings.date_skew_seconds)
    # an unknown bucket and another bucket's operator get the same 401 (UPYUN answers so): no
    # way to probe which bucket names exist
    unknown = Unauthorized(
        "the bucket does not exist or the operator is not authorised for it", code="unknown_operator"
    )
    bucket = await gw.find_bucket(bucket_name)
    if bucket is None:
        raise unknown
    keys = dict(await gw.secrets_of(bucket, UPYUN))
    password_md5 = keys.get(operator)
    if password_md5 is None:
        raise unknown
    content_md5 = request.headers.get("content-md5", "")
    target = raw_target(request)
    messages = [signing.string_to_sign(request.method, target, d, "", content_md5) for d in dates]
    if not signing.signature_matches(password_md5, signature, messages):
        raise Unauthorized(
            "the signature does not match the request (method, URI, Date, Content-MD5)",
            code="signature_mismatch",
        )
    return bucket


def _check_header_size(request: Request, limit: int) -> None:
    size = sum(len(name) + len(value) + 4 for name, value in request.scope.get("headers", []))
    if size > limit:
        raise HeadersTooLarge(f"request headers are larger than {limit} bytes")


# -- dispatch ----------------------------------------------------------------------------------------


async def _dispatch(
    request: Request, gw: Gateway, bucket: Bucket, path: str, body: AsyncIterator[bytes]
) -> Response:
    method = request.method
    headers = request.headers
    if method == "PUT":
        if headers.get("x-upyun-multi-stage") is not None or headers.get("x-upyun-multi-uuid") is not None:
            return await multipart.put(request, gw, bucket, _file_key(path), body)
        move = headers.get("x-upyun-move-source")
        copy = headers.get("x-upyun-copy-source")
        if move is not None and copy is not None:
            raise BadRequest("send X-Upyun-Move-Source or X-Upyun-Copy-Source, not both")
        if move is not None or copy is not None:
            return await _move_or_copy(gw, bucket, _file_key(path), move, copy)
        return await _put(request, gw, bucket, _file_key(path), body)
    if method in ("GET", "HEAD"):
        if method == "GET" and headers.get("x-upyun-multi-uuid") is not None:
            return await multipart.list_parts(request, gw, bucket, _file_key(path))
        if method == "GET" and "usage" in request.query_params:
            prefix = existing_dir(path)
            return PlainTextResponse(str(await gw.usage(bucket, prefix)))
        return await _read(request, gw, bucket, path, head=method == "HEAD")
    if method == "DELETE":
        if headers.get("x-upyun-multi-uuid") is not None:
            return await multipart.cancel(request, gw, bucket, _file_key(path))
        return await _delete(gw, bucket, path)
    if method == "PATCH":
        return await metadata.patch(request, gw, bucket, path)
    if method == "POST":
        if headers.get("folder", "").strip().lower() == "true":
            return await _mkdir(gw, bucket, path)
        raise BadRequest(
            "POST on the REST API creates a folder and needs the header 'Folder: true' "
            "(uploads are PUT, or a multipart/form-data POST to /<bucket> for the FORM API)"
        )
    raise MethodNotAllowed(f"{method} is not part of the UPYUN REST API")


def _file_key(path: str) -> str:
    """The object key a PUT names (a trailing '/' names a folder, which cannot be written)."""
    return normalise_key(path)


# -- PUT ---------------------------------------------------------------------------------------------


def _declared_length(request: Request, gw: Gateway) -> None:
    """Refuse a body we already know is too large, before reading it."""
    value = request.headers.get("content-length")
    if value is None:
        return
    declared = parse_uint(value)
    if declared is None:
        raise BadRequest("Content-Length must be a non-negative integer")
    if declared > gw.settings.max_upload_size:
        raise PayloadTooLarge(f"file exceeds the maximum upload size of {gw.settings.max_upload_size} bytes")


async def _put(
    request: Request, gw: Gateway, bucket: Bucket, key: str, body: AsyncIterator[bytes]
) -> Response:
    headers = request.headers
    options = upload_options(headers, content_type=headers.get("content-type"))
    md5_header = headers.get("content-md5")
    content_md5 = parse_md5(md5_header, "Content-MD5") if md5_header is not None else None
    _declared_length(request, gw)
    grant = options.grant(bucket.name, key, content_md5=content_md5)
    if headers.get("if-none-match", "").strip() == "*":  # RFC 9110 create-only PUT (`mediagate upload`)
        grant = dataclasses.replace(grant, insert_only=True)
    stored = await gw.upload(grant, body, filename=split_key(key)[1])
    if stored.extra:  # x-gmkerl-type get_meta / get_theme_color: the answer carries it as JSON
        return JSONResponse(stored.extra, status_code=200, headers=stored_headers(stored.object))
    return Response(status_code=200, headers=stored_headers(stored.object))


async def _move_or_copy(
    gw: Gateway, bucket: Bucket, dest: str, move: str | None, copy: str | None
) -> Response:
    header = "X-Upyun-Move-Source" if move is not None else "X-Upyun-Copy-Source"
    source = await _source_key(gw, bucket, move if move is not None else copy or "", header)
    if source == dest:
        obj = await gw.get_object(bucket, source)
    elif move is not None:
        obj = await gw.move_object(bucket, source, dest)
    else:
        obj = await gw.copy_object(bucket, source, dest)
    return Response(status_code=200, headers=stored_headers(obj))


async def _source_key(gw: Gateway, bucket: Bucket, value: str, header: str) -> str:
    """The key named by a move/copy source header ``/<bucket>/<key>``.

    The SDK sends the key raw (so only Latin-1 keys survive its HTTP stack); other clients
    percent-encode it. We try the percent-decoded reading first, then the raw one, and take the
    first that names an object of this bucket."""
    raw = value.strip()
    with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
        raw = raw.encode("latin-1").decode("utf-8")
    readings: list[str] = []
    try:
        decoded = unquote(raw, errors="strict")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"{header} is not valid percent-encoded UTF-8") from exc
    for text in dict.fromkeys((decoded, raw)):
        first, _, rest = text.lstrip("/").partition("/")
        if first != bucket.name:
            raise Forbidden(f"{header} must name a file in this bucket: /{bucket.name}/<path>")
        readings.append(existing_key(rest))
    for key in readings:
        if isinstance(await gw.stat_path(bucket, key), Object):
            return key
    raise NotFound("the source file does not exist", code="file_not_found")


# -- GET / HEAD --------------------------------------------------------------------------------------


async def _read(request: Request, gw: Gateway, bucket: Bucket, path: str, *, head: bool) -> Response:
    if not path.strip("/") or path.endswith("/"):
        folder_path = existing_dir(path)
        found: Object | Folder | None = await gw.stat_path(bucket, folder_path)
        if not isinstance(found, Folder):
            raise NotFound("folder not found", code="folder_not_found")
    else:
        found = await gw.stat_path(bucket, existing_key(path))
    if found is None:
        raise NotFound("file not found", code="file_not_found")
    if isinstance(found, Object):
        return await object_response(request, found, head=head, extra_headers=file_info_headers(found))
    if head:
        return Response(status_code=200, headers=folder_info_headers(found))
    return await _listing(request, gw, bucket, found.path)


async def _listing(request: Request, gw: Gateway, bucket: Bucket, folder: str) -> Response:
    h = request.headers
    scope = listing.token_scope(bucket.id, folder)
    wanted = listing.parse_list_headers(
        h.get("x-list-limit"),
        h.get("x-list-order"),
        h.get("x-list-iter"),
        keys=gw.secrets.derived(listing.PURPOSE),
        scope=scope,
    )
    entries = []
    if not wanted.at_end:
        entries = await gw.list_dir(
            bucket, folder, limit=wanted.limit + 1, after=wanted.after, descending=wanted.descending
        )
    more = len(entries) > wanted.limit
    entries = entries[: wanted.limit]
    token = listing.END_TOKEN
    if more:
        key = gw.secrets.derive(listing.PURPOSE)
        token = listing.encode_token(entries[-1].name, wanted.descending, key=key, scope=scope)
    return PlainTextResponse(listing.render_entries(entries), headers={"x-upyun-list-iter": token})


# -- DELETE / mkdir ----------------------------------------------------------------------------------


async def _delete(gw: Gateway, bucket: Bucket, path: str) -> Response:
    if not path.strip("/"):
        raise Forbidden("the bucket root cannot be deleted", code="forbidden")
    target = existing_dir(path)
    found = await gw.stat_path(bucket, target)
    if isinstance(found, Object) and not path.endswith("/"):
        await gw.delete_object(bucket, target)
    elif isinstance(found, Folder):
        try:
            await gw.delete_folder(bucket, target)
        except Conflict as exc:
            raise Forbidden(
                "the folder is not empty: delete its files and folders first", code="folder_not_empty"
            ) from exc
    else:
        raise NotFound("file or folder not found", code="file_not_found")
    return Response(status_code=200)


async def _mkdir(gw: Gateway, bucket: Bucket, path: str) -> Response:
    folder = normalise_dir(path)
    if folder:
        try:
            await gw.make_folder(bucket, folder)
        except Conflict as exc:
            raise Conflict(f"a file is in the way of the folder: {exc.message}", code=exc.code) from exc
    return Response(status_code=200)

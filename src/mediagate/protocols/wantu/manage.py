"""Wantu management API: ``/3.0/files``, ``/3.0/folders`` (+ the not-yet-supported task endpoints).

Every call carries ``Authorization: ACL_TOP <token>`` and ``Date``; the signature is checked over
every string the seed's three formulations allow (``signing.manage_strings``), then the Date must be
within ``settings.date_skew_seconds`` of our clock (the seed says 15 minutes), then the signature
must not have been used with another method (``_bind_method``: the seed signs no method). A
resourceId's namespace may be ``""`` (the AK's own namespace) or the AK's namespace; any other is
refused as an authentication failure.

| call                                | success                              | errors                   |
| ----------------------------------- | ------------------------------------ | ------------------------ |
| ``DELETE /3.0/files/<rid>``         | 200                                  | 404 ResourceNotFound     |
| ``GET /3.0/files/<rid>``            | 200 file item (below)                | 404                      |
| ``GET /3.0/files/<rid>/exist``      | 200                                  | 404                      |
| ``POST /3.0/files/<rid>/rename/<newRid>`` | 200 (target folders created)   | 404, 400 NameDuplicated  |
| ``GET /3.0/files?namespace&dir&currentPage&pageSize`` | 200 page of file items | 400, 404 (no such dir)  |
| ``POST /3.0/folders/<rid>``         | 200 (parents created too)            | 400 NameDuplicated       |
| ``DELETE /3.0/folders/<rid>``       | 200                                  | 400 NonEmpty, 404        |
| ``GET /3.0/folders/<rid>/exist``    | 200                                  | 404                      |
| ``GET /3.0/folders?…``              | 200 page of folder items             | 400, 404                 |
| ``POST /3.0/mediaEncode``, ``/3.0/snapshot``, ``GET …Result/<id>`` | see protocols.wantu.media |
| ``POST /3.1/scanPorn``, ``/3.1/scanAdvertising``, ``/3.0/feedback`` (+ ``GET``) | see protocols.wantu.scan |

Pages: ``currentPage`` from 1 (default 1), ``pageSize`` 1-100 (default 20); the answer is
``{"totalCount", "totalPage", "currentPage", "pageSize", "result": [...]}`` with
``totalPage = ceil(totalCount / pageSize)``; a page past the end has an empty ``result``.

File item: ``namespace, name, path ('/a/b.jpg'), dir ('/a'), createStamp, modifyStamp (epoch ms),
md5, mineType (the seed's spelling) and mimeType, size, url``. Folder item: ``namespace, name,
path ('/a/b'), createStamp, modifyStamp``.
"""

from __future__ import annotations

import hashlib
import math
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mediagate.core.buckets import AKSK
from mediagate.core.errors import BadRequest, Conflict, MediagateError, NotFound, Unauthorized
from mediagate.core.gateway import Gateway
from mediagate.core.values import Bucket, Folder, Object
from mediagate.http import body_stream, gateway, raw_target, request_id
from mediagate.protocols.wantu.errors import as_headers, error_response
from mediagate.protocols.wantu.signing import (
    MANAGE_TYPE,
    ManageToken,
    check_date,
    check_dir,
    dir_to_path,
    key_of,
    manage_signature_ok,
    manage_strings,
    parse_manage_token,
    parse_resource_id,
    path_to_dir,
    split_authorization,
)
from mediagate.protocols.wantu.upload import public_url

MAX_BODY = 1024 * 1024
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


async def _body(request: Request) -> bytes:
    data = bytearray()
    async for chunk in body_stream(request):
        data += chunk
        if len(data) > MAX_BODY:
            raise BadRequest("request body too large", code="invalid_argument")
    return bytes(data)


async def authorise(request: Request, gw: Gateway, body: bytes) -> Bucket:
    token = parse_manage_token(split_authorization(request.headers.get("authorization"), (MANAGE_TYPE,)))
    found = await gw.find_key(AKSK, token.access_key)
    if found is None:
        raise Unauthorized("unknown access key", code="unknown_operator")
    bucket, secret = found
    date = request.headers.get("date")
    if not date:
        raise Unauthorized("the Date header is required", code="date_required")
    target = raw_target(request)
    text = body.decode("utf-8", "replace")
    candidates = manage_strings(target, text, date)
    if unquote(target) != target:
        candidates += manage_strings(unquote(target), text, date)
    if not manage_signature_ok(token, secret, candidates):
        raise Unauthorized("the manage token signature does not match the request", code="signature_mismatch")
    skew = gw.settings.date_skew_seconds
    signed_at = check_date(date, datetime.now(UTC), skew_seconds=skew)
    await _bind_method(gw, token, request.method, signed_at + timedelta(seconds=skew))
    return bucket


async def _bind_method(gw: Gateway, token: ManageToken, method: str, expires_at: datetime) -> None:
    """The string to sign has no method, so a captured GET would authorise a DELETE of the same
    resource: a signature is good for the first method it came with until its Date leaves the
    window (HEAD counts as GET). The record lives in the catalog, so every node agrees."""
    verb = "GET" if method == "HEAD" else method
    digest = hashlib.sha256(f"{token.access_key}:{token.signature.lower()}".encode()).hexdigest()
    first = await gw.claim_signature(digest, verb, expires_at)
    if first != verb:
        raise Unauthorized(
            f"this signature was already used for a {first} request; sign each request with its own Date "
            "(epoch milliseconds avoid collisions)",
            code="signature_replayed",
        )


def _own(bucket: Bucket, namespace: str | None) -> None:
    if namespace not in (None, "", bucket.name):
        raise Unauthorized("the namespace does not belong to this access key", code="bucket_mismatch")


def _ms(moment: datetime) -> int:
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp() * 1000)


def file_item(request: Request, gw: Gateway, bucket: Bucket, obj: Object) -> dict[str, Any]:
    dir = path_to_dir(obj.dir)
    return {
        "namespace": bucket.name,
        "name": obj.name,
        "path": "/" + obj.key,
        "dir": dir,
        "createStamp": _ms(obj.created_at),
        "modifyStamp": _ms(obj.created_at),
        "md5": obj.md5,
        "mineType": obj.mime,
        "mimeType": obj.mime,
        "size": obj.size,
        "url": public_url(request, gw, bucket.name, obj.key),
    }


def folder_item(bucket: Bucket, folder: Folder) -> dict[str, Any]:
    return {
        "namespace": bucket.name,
        "name": folder.name,
        "path": "/" + folder.path,
        "createStamp": _ms(folder.created_at),
        "modifyStamp": _ms(folder.created_at),
    }


def _ok(request: Request, fields: dict[str, Any] | None = None) -> JSONResponse:
    body = (fields or {}) | {"requestId": request_id(request)}
    return JSONResponse(body, headers=as_headers({k: v for k, v in body.items() if not isinstance(v, list)}))


def _page_args(request: Request) -> tuple[int, int]:
    values = []
    for name, default, high in (("currentPage", 1, None), ("pageSize", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)):
        raw = request.query_params.get(name, "").strip()
        if not raw:
            values.append(default)
            continue
        if not re.fullmatch(r"\d{1,9}", raw) or int(raw) < 1 or (high is not None and int(raw) > high):
            limit = f"1-{high}" if high else "a positive integer"
            raise BadRequest(f"{name} must be {limit}", code="invalid_argument")
        values.append(int(raw))
    return values[0], values[1]


async def _listing(request: Request, gw: Gateway, bucket: Bucket, *, files: bool) -> Response:
    params = request.query_params
    _own(bucket, params.get("namespace"))
    dir = check_dir(params.get("dir") or "/")
    page, size = _page_args(request)
    path = dir_to_path(dir)
    if not await gw.folder_exists(bucket, path):
        raise NotFound("the directory does not exist", code="folder_not_found")
    offset = (page - 1) * size
    result: list[dict[str, Any]]
    if files:
        total, objects = await gw.list_objects(bucket, path, offset=offset, limit=size)
        result = [file_item(request, gw, bucket, o) for o in objects]
    else:
        total, folders = await gw.list_folders(bucket, path, offset=offset, limit=size)
        result = [folder_item(bucket, f) for f in folders]
    return _ok(
        request,
        {
            "totalCount": total,
            "totalPage": math.ceil(total / size),
            "currentPage": page,
            "pageSize": size,
            "result": result,
        },
    )


async def _files(request: Request, gw: Gateway, bucket: Bucket, rest: list[str]) -> Response:
    method = request.method
    if not rest:
        if method in ("GET", "HEAD"):
            return await _listing(request, gw, bucket, files=True)
        raise _no_such_api()
    rid = parse_resource_id(rest[0], file=True)
    _own(bucket, rid.namespace)
    key = key_of(rid)
    if len(rest) == 2 and rest[1] == "exist" and method in ("GET", "HEAD"):
        await gw.get_object(bucket, key)
        return _ok(request)
    if len(rest) == 3 and rest[1] == "rename" and method in ("POST", "PUT"):
        return await _rename(request, gw, bucket, key, rest[2])
    if len(rest) != 1:
        raise _no_such_api()
    if method == "DELETE":
        await gw.delete_object(bucket, key)
        return _ok(request)
    if method in ("GET", "HEAD"):
        return _ok(request, file_item(request, gw, bucket, await gw.get_object(bucket, key)))
    raise _no_such_api()


async def _rename(request: Request, gw: Gateway, bucket: Bucket, key: str, new_rid: str) -> Response:
    """``POST /3.0/files/<rid>/rename/<newRid>``: same namespace; an existing target is not
    replaced (NameDuplicated), the target's folders are created."""
    target = parse_resource_id(new_rid, file=True)
    _own(bucket, target.namespace)
    new_key = key_of(target, existing=False)
    if new_key == key:
        await gw.get_object(bucket, key)
    else:
        await gw.move_object(bucket, key, new_key, replace=False)
    return _ok(request)


async def _folders(request: Request, gw: Gateway, bucket: Bucket, rest: list[str]) -> Response:
    method = request.method
    if not rest:
        if method in ("GET", "HEAD"):
            return await _listing(request, gw, bucket, files=False)
        raise _no_such_api()
    rid = parse_resource_id(rest[0], file=False)
    _own(bucket, rid.namespace)
    path = dir_to_path(rid.dir)
    if len(rest) == 2 and rest[1] == "exist" and method in ("GET", "HEAD"):
        if not await gw.folder_exists(bucket, path):
            raise NotFound("folder not found", code="folder_not_found")
        return _ok(request)
    if len(rest) != 1:
        raise _no_such_api()
    if method == "POST":
        if not path:
            raise Conflict("the root folder always exists", code="folder_exists")
        await gw.make_folder(bucket, path, exist_ok=False)
        return _ok(request)
    if method == "DELETE":
        if not path:
            raise BadRequest("the root folder cannot be deleted", code="invalid_argument")
        await gw.delete_folder(bucket, path)
        return _ok(request)
    raise _no_such_api()


def _no_such_api() -> MediagateError:
    return NotFound("no such management API (check the method and path)", code="not_found")


async def _dispatch(request: Request, gw: Gateway, bucket: Bucket, body: bytes) -> Response:
    version = request.url.path.split("/")[1]
    segments = [s for s in request.path_params.get("path", "").split("/") if s]
    head, rest = (segments[0], segments[1:]) if segments else ("", [])
    if version == "3.0" and head == "files":
        return await _files(request, gw, bucket, rest)
    if version == "3.0" and head == "folders":
        return await _folders(request, gw, bucket, rest)
    return await _media(request, gw, bucket, body, version, head, rest)


async def _media(
    request: Request, gw: Gateway, bucket: Bucket, body: bytes, version: str, head: str, rest: list[str]
) -> Response:
    """Tasks and moderation (protocols.wantu.media, .scan)."""
    from mediagate.protocols.wantu import media, scan

    post = request.method == "POST"
    if version == "3.0" and head in media.KINDS and len(rest) == 1 and request.method in ("GET", "HEAD"):
        return await media.result(request, gw, bucket, head, rest[0])
    if version == "3.0" and head == "mediaEncode" and not rest and post:
        return await media.submit_encode(request, gw, bucket, body)
    if version == "3.0" and head == "snapshot" and not rest and post:
        return await media.submit_snapshot(request, gw, bucket, body)
    if version == "3.1" and head == "scanPorn" and not rest and post:
        return await scan.scan_porn(request, gw, bucket, body)
    if head == "feedback" and not rest and post:
        return await scan.feedback(request, gw, bucket, body)
    if version == "3.0" and head == "feedback" and not rest and request.method in ("GET", "HEAD"):
        return await scan.list_feedback(request, gw, bucket, *_page_args(request))
    if version == "3.1" and head == "scanAdvertising" and not rest and post:
        return await scan.scan_advertising(request, gw, bucket, body)
    raise _no_such_api()


async def handle(request: Request) -> Response:
    """``/3.0/…`` and ``/3.1/…``: authorise, then the call; errors in Wantu's format."""
    gw = gateway(request)
    try:
        body = await _body(request)
        bucket = await authorise(request, gw, body)
        return await _dispatch(request, gw, bucket, body)
    except MediagateError as exc:
        return error_response(exc, request_id(request))

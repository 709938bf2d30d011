"""/v1 objects: upload (raw body or multipart, streamed), list by prefix with a cursor, metadata,
bytes, delete, copy and move.

An upload is authorised from its headers before a byte of the body is read: an API key with the
``write`` scope on the bucket, or an upload token (core.uploadtokens), whose use is spent before
the body is read and given back if the upload fails. Bodies stream to staging (never
``request.form()``); multipart goes through the core's streaming parser."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any, Literal

from anyio import CancelScope, to_thread
from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import Response

from mediagate.core import admin, webhooks
from mediagate.core.apikeys import READ, WRITE
from mediagate.core.errors import BadRequest, Conflict, MediagateError
from mediagate.core.formdata import MultipartReader, boundary_from_content_type
from mediagate.core.gateway import Stored
from mediagate.core.grant import UploadGrant
from mediagate.core.keys import existing_dir, existing_key, normalise_key, split_key
from mediagate.core.numbers import parse_uint
from mediagate.core.uploadtokens import (
    TokenGrant,
    check_upload_token,
    is_upload_token,
    release_upload_token,
    verify_upload_token,
)
from mediagate.core.values import Object
from mediagate.http import body_stream, drain_body, gateway
from mediagate.protocols.native import schemas
from mediagate.protocols.native.auth import Caller, Credentials, authenticate, bearer_secret, bucket_for
from mediagate.serving import object_response

router = APIRouter(tags=["objects"])

KEY_FIELD, FILE_FIELD = "key", "file"
_CURSOR = re.compile(r"^[A-Za-z0-9_-]+$")

RAW_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The file's bytes, streamed.",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}
MULTIPART_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FILE_FIELD],
                    "properties": {
                        KEY_FIELD: {
                            "type": "string",
                            "description": "The object key (before the file part); default: the "
                            "file's name (with an upload token: the token's prefix + the name).",
                        },
                        FILE_FIELD: {"type": "string", "format": "binary"},
                    },
                }
            }
        },
    }
}
BYTES = {200: {"content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}}}


def _declared_size(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    size = parse_uint(value)
    if size is None:
        raise BadRequest("Content-Length must be a non-negative integer")
    return size


class _Upload:
    """One upload's authority, whichever credential brought it, and the token use to give back
    if it fails."""

    def __init__(self, request: Request, bucket: str, overwrite: bool) -> None:
        self.request, self.gw = request, gateway(request)
        self.bucket, self.overwrite = bucket, overwrite
        self.token: TokenGrant | None = None
        self.key_id: str | None = None

    async def authorise_key(self, secret: str) -> None:
        """An API key with ``write`` on the bucket, from the headers alone."""
        api_key = await authenticate(self.gw, secret)
        await bucket_for(self.request, api_key, self.bucket, WRITE)
        self.key_id = api_key.key_id

    def by_key(self, key: str) -> UploadGrant:
        """The grant of an authorised API key: this key, nothing else limited but the server's."""
        return UploadGrant.for_key(self.bucket, key, insert_only=not self.overwrite)

    async def by_token(
        self, secret: str, key: str | None, filename: str | None, size: int | None, content_type: str | None
    ) -> UploadGrant:
        """Check the token for this file and spend one use (before the file's bytes are read)."""
        self.token = await to_thread.run_sync(
            lambda: check_upload_token(
                self.gw.catalog,
                secret,
                bucket=self.bucket,
                key=key,
                filename=filename,
                size=size,
                content_type=content_type,
            )
        )
        grant = self.token.upload_grant()  # insert-only unless the token may overwrite
        return replace(grant, insert_only=grant.insert_only or not self.overwrite)

    async def store(self, grant: UploadGrant, chunks: AsyncIterator[bytes], name: str) -> Stored:
        """Stream, check and commit (a key taken under ``overwrite=false`` is 409 ``key_exists``),
        with the webhook event owed, if any, in the object's own commit (core.webhooks)."""
        row = await self.gw.bucket(self.bucket)
        token = self.token
        source = webhooks.Source(
            via="v1", token_id=token.token_id if token else None, key_id=None if token else self.key_id
        )
        url = webhooks.target(row, token.notify_url if token else None)
        notify = webhooks.on_created(row, url, source)
        return await self.gw.upload(grant, chunks, filename=name, notify=notify)

    async def failed(self) -> None:
        """Give the token's use back; shielded, so that a cancelled request still does."""
        if self.token is not None:
            token, self.token = self.token, None
            with CancelScope(shield=True):
                await to_thread.run_sync(release_upload_token, self.gw.catalog, token)


@router.put(
    "/v1/buckets/{bucket}/objects/{key:path}",
    status_code=201,
    response_model=schemas.ObjectOut,
    openapi_extra=RAW_BODY,
    summary="Upload an object (raw body)",
)
async def put_object(
    request: Request, bucket: str, key: str, credentials: Credentials, overwrite: bool = True
) -> schemas.ObjectOut:
    """Store the request body at ``key``: an API key with ``write``, or an upload token whose
    prefix (or fixed key), size and types allow it. ``overwrite=false``: 409 if the key exists."""
    body = body_stream(request)
    upload = _Upload(request, bucket, overwrite)
    try:
        secret = bearer_secret(credentials)
        object_key = normalise_key(key)
        if is_upload_token(secret):
            ctype = request.headers.get("content-type")
            grant = await upload.by_token(secret, object_key, None, _declared_size(request), ctype)
            object_key = upload.token.key if upload.token else object_key
        else:
            await upload.authorise_key(secret)
            grant = upload.by_key(object_key)
        stored = await upload.store(grant, body, split_key(object_key)[1])
    except MediagateError:
        await upload.failed()
        await drain_body(body)
        raise
    except BaseException:
        await upload.failed()
        raise
    return schemas.ObjectOut.of(bucket, stored.object)


@router.post(
    "/v1/buckets/{bucket}/objects",
    status_code=201,
    response_model=schemas.ObjectOut,
    openapi_extra=MULTIPART_BODY,
    summary="Upload an object (multipart form)",
)
async def post_object(
    request: Request, bucket: str, credentials: Credentials, overwrite: bool = True
) -> schemas.ObjectOut:
    """A browser form: an optional ``key`` field, then one ``file`` part, streamed. Same
    credentials as the raw upload."""
    gw = gateway(request)
    body = body_stream(request)
    upload = _Upload(request, bucket, overwrite)
    try:
        secret = bearer_secret(credentials)
        boundary = boundary_from_content_type(request.headers.get("content-type"))
        token = is_upload_token(secret)
        if token:
            await to_thread.run_sync(lambda: verify_upload_token(gw.catalog, secret, bucket=bucket))
        else:
            await upload.authorise_key(secret)
        stored = await _read_form(upload, secret, token, MultipartReader(body, boundary))
        await drain_body(body)  # whatever follows the file part (its closing boundary)
    except MediagateError:
        await upload.failed()
        await drain_body(body)
        raise
    except BaseException:
        await upload.failed()
        raise
    return schemas.ObjectOut.of(bucket, stored.object)


async def _read_form(upload: _Upload, secret: str, token: bool, reader: MultipartReader) -> Stored:
    """Text fields (``key``) up to the file part; then the file, authorised before it is read."""
    limit = upload.gw.settings.max_form_field_size
    fields: dict[str, str] = {}
    while (part := await reader.next_part()) is not None:
        if part.name != FILE_FIELD:
            if part.name in fields:
                raise BadRequest(f"the form field {part.name!r} is given twice", code="duplicate_field")
            fields[part.name] = await reader.read_text(limit=limit)
            continue
        wanted = fields.get(KEY_FIELD) or None
        if token:
            grant = await upload.by_token(secret, wanted, part.filename, None, part.content_type)
            key = upload.token.key if upload.token else ""
        else:
            if wanted is None and not part.filename:
                raise BadRequest("give a 'key' field or a file name", code="key_required")
            key = normalise_key(wanted or (part.filename or "").replace("\\", "/").rsplit("/", 1)[-1])
            grant = upload.by_key(key)
        return await upload.store(grant, reader.stream(), part.filename or split_key(key)[1])
    raise BadRequest("the 'file' field is missing", code="missing_file")


def _cursor_key(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    if not _CURSOR.match(cursor):
        raise BadRequest("the cursor is not one this API gave", code="invalid_cursor")
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise BadRequest("the cursor is not one this API gave", code="invalid_cursor") from exc


def _cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def _recent_cursor(obj: Object) -> str:
    """Where a newest-first page ended: the last object's (created_at, id)."""
    return _cursor(f"{obj.created_at.isoformat()}|{obj.id}")


def _recent_before(cursor: str | None) -> tuple[datetime, int] | None:
    text = _cursor_key(cursor)
    if text is None:
        return None
    try:
        moment, _, number = text.partition("|")
        return datetime.fromisoformat(moment), int(number)
    except ValueError as exc:
        raise BadRequest("the cursor is not one this API gave", code="invalid_cursor") from exc


@router.get("/v1/buckets/{bucket}/objects", response_model=schemas.ObjectList, summary="List objects")
async def list_objects(
    request: Request,
    bucket: str,
    key: Caller,
    prefix: Annotated[str, Query(max_length=1024, description="Only keys starting with this.")] = "",
    delimiter: Annotated[
        Literal["/"] | None,
        Query(description="'/': one folder level (prefix '' or ending in '/'), with its subfolders."),
    ] = None,
    cursor: Annotated[
        str | None, Query(max_length=2048, description="next_cursor of the page before.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    order: Annotated[
        Literal["key", "newest"],
        Query(
            description="'key': by key (bytewise); 'newest': newest upload first (no prefix nor delimiter)."
        ),
    ] = "key",
) -> schemas.ObjectList:
    """Objects by key (bytewise), one page at a time; with ``delimiter=/`` the folder ``prefix``
    names, its subfolders and files merged by name; with ``order=newest`` the whole bucket, newest
    upload first (keyset-paged by upload time, read in an index: as fast on page 1000 as on 1)."""
    gw = gateway(request)
    target = await bucket_for(request, key, bucket, READ)
    if order == "newest":
        if prefix or delimiter is not None:
            raise BadRequest(
                "order=newest lists the whole bucket: no prefix nor delimiter", code="invalid_order"
            )
        recent, more = await admin.recent_page(gw, target, before=_recent_before(cursor), limit=limit)
        return schemas.ObjectList(
            objects=[schemas.ObjectOut.of(bucket, o) for o in recent],
            next_cursor=_recent_cursor(recent[-1]) if more and recent else None,
        )
    start, after = prefix.lstrip("/"), _cursor_key(cursor)
    if delimiter is not None:
        if start and not start.endswith("/"):
            raise BadRequest(
                "with delimiter=/ the prefix names a folder: '' or ending in '/'", code="invalid_prefix"
            )
        folder = existing_dir(start)
        folders, objects, last = await admin.folder_page(gw, target, folder, after=after, limit=limit)
        return schemas.ObjectList(
            objects=[schemas.ObjectOut.of(bucket, o) for o in objects],
            folders=[f + "/" for f in folders],
            next_cursor=_cursor(last) if last is not None else None,
        )
    page, more = await admin.objects_page(gw, target, start, after=after, limit=limit)
    return schemas.ObjectList(
        objects=[schemas.ObjectOut.of(bucket, o) for o in page],
        next_cursor=_cursor(page[-1].key) if more and page else None,
    )


@router.get(
    "/v1/buckets/{bucket}/objects/{key:path}",
    response_model=schemas.ObjectOut,
    summary="An object's metadata",
)
async def get_object(request: Request, bucket: str, key: str, caller: Caller) -> schemas.ObjectOut:
    target = await bucket_for(request, caller, bucket, READ)
    obj = await gateway(request).get_object(target, existing_key(key))
    return schemas.ObjectOut.of(bucket, obj)


@router.head(
    "/v1/buckets/{bucket}/objects/{key:path}",
    response_class=Response,
    responses=BYTES,  # type: ignore[arg-type]
    summary="An object's size, type and ETag",
)
async def head_object(request: Request, bucket: str, key: str, caller: Caller) -> Response:
    target = await bucket_for(request, caller, bucket, READ)
    obj = await gateway(request).get_object(target, existing_key(key))
    return await object_response(request, obj, head=True)


@router.get(
    "/v1/buckets/{bucket}/content/{key:path}",
    response_class=Response,
    responses=BYTES,  # type: ignore[arg-type]
    summary="An object's bytes",
)
async def get_content(request: Request, bucket: str, key: str, caller: Caller) -> Response:
    """The bytes (with ``Range``), for private buckets too."""
    target = await bucket_for(request, caller, bucket, READ)
    obj = await gateway(request).get_object(target, existing_key(key))
    return await object_response(request, obj, head=False)


@router.patch(
    "/v1/buckets/{bucket}/objects/{key:path}", response_model=schemas.ObjectOut, summary="Replace metadata"
)
async def patch_object(
    request: Request, bucket: str, key: str, change: schemas.ObjectPatch, caller: Caller
) -> schemas.ObjectOut:
    target = await bucket_for(request, caller, bucket, WRITE)
    meta = dict(change.meta)
    obj = await gateway(request).edit_meta(target, existing_key(key), lambda _old: meta)
    return schemas.ObjectOut.of(bucket, obj)


@router.delete("/v1/buckets/{bucket}/objects/{key:path}", status_code=204, summary="Delete an object")
async def delete_object(request: Request, bucket: str, key: str, caller: Caller) -> Response:
    """The bucket's webhook, if set, gets an ``object.deleted`` event."""
    target = await bucket_for(request, caller, bucket, WRITE)
    notify = webhooks.on_deleted(target, webhooks.Source(via="v1", key_id=caller.key_id))
    await gateway(request).delete_object(target, existing_key(key), notify=notify)
    return Response(status_code=204)


@router.post(
    "/v1/buckets/{bucket}/copy", status_code=201, response_model=schemas.ObjectOut, summary="Copy an object"
)
async def copy_object(
    request: Request, bucket: str, transfer: schemas.Transfer, caller: Caller
) -> schemas.ObjectOut:
    gw = gateway(request)
    target = await bucket_for(request, caller, bucket, WRITE)
    source, dest = existing_key(transfer.source), normalise_key(transfer.destination)
    if source == dest:
        return schemas.ObjectOut.of(bucket, await gw.get_object(target, source))
    if not transfer.overwrite and await gw.stat_path(target, dest) is not None:
        raise Conflict(f"an object already exists at {dest!r}", code="key_exists")
    return schemas.ObjectOut.of(bucket, await gw.copy_object(target, source, dest))


@router.post("/v1/buckets/{bucket}/move", response_model=schemas.ObjectOut, summary="Move (rename) an object")
async def move_object(
    request: Request, bucket: str, transfer: schemas.Transfer, caller: Caller
) -> schemas.ObjectOut:
    gw = gateway(request)
    target = await bucket_for(request, caller, bucket, WRITE)
    source, dest = existing_key(transfer.source), normalise_key(transfer.destination)
    if source == dest:
        return schemas.ObjectOut.of(bucket, await gw.get_object(target, source))
    obj = await gw.move_object(target, source, dest, replace=transfer.overwrite)
    return schemas.ObjectOut.of(bucket, obj)

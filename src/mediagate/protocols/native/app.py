"""The /v1 API as one ASGI app (FastAPI), mounted in the one-port routing table.

The routing table hands it ``/v1…``, ``/openapi.json``, ``/docs…`` and ``/redoc`` with the path
unchanged. FastAPI's app would take over ``scope["app"]``; it gets a copy of the scope instead and
shares the outer app's ``state`` (the gateway, the caches), so the dialects' helpers it reuses
(``serving.object_response``, ``http.gateway``) work the same here."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from mediagate import cors
from mediagate.core.errors import PayloadTooLarge
from mediagate.core.numbers import parse_uint
from mediagate.protocols.native import access, buckets, docs, errors, objects, operations
from mediagate.protocols.native.schemas import ApiIndex, Error

TITLE = "mediagate /v1 API"
DESCRIPTION = """mediagate's own JSON API: buckets, objects, API keys, upload tokens, tasks,
notifications and usage. Authorise with `Authorization: Bearer <API key>` (make one with
`mediagate key create`); a browser or phone uploads with a short-lived upload token instead
(`POST /v1/buckets/{bucket}/upload-tokens`). Every error is
`{"error": {"code": "...", "message": "...", "request_id": "..."}}` with a stable `code`."""

ERROR_STATUSES = (400, 401, 403, 404, 409, 413, 415, 429, 503, 507)

JSON_BODY_LIMIT = 1024 * 1024
"""Largest body of a request that is not an object upload. FastAPI reads a JSON body whole, and
before the key is checked: without a cap one client without a key could make the server hold a
body as large as an upload may be."""

_UPLOAD_PATH = re.compile(r"^/v1/buckets/[^/]+/objects(/.*)?\Z", re.DOTALL)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mediagate")
    except PackageNotFoundError:
        return "0"


def build() -> FastAPI:
    api = FastAPI(
        title=TITLE,
        description=DESCRIPTION,
        version=_version(),
        openapi_url=docs.OPENAPI_URL,
        docs_url=None,
        redoc_url=None,
        exception_handlers=errors.handlers(),  # type: ignore[arg-type]
    )
    common: dict[int | str, dict[str, Any]] = {
        s: {"model": Error, "description": "Error"} for s in ERROR_STATUSES
    }
    for router in (buckets.router, objects.router, access.router, operations.router):
        api.include_router(router, responses=common)
    api.include_router(docs.router)

    @api.get("/v1", response_model=ApiIndex, tags=["about"], summary="What this API is")
    async def index() -> ApiIndex:
        """No key needed: the API's name, version and where its schema and docs are."""
        return ApiIndex(name="mediagate", version=api.version, openapi=docs.OPENAPI_URL, docs="/docs")

    api.mount(docs.ASSETS_URL, docs.assets(), name="apidocs")

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            api.openapi_schema = _without_422(
                get_openapi(
                    title=api.title, version=api.version, description=api.description, routes=api.routes
                )
            )
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]
    return api


def _without_422(schema: dict[str, Any]) -> dict[str, Any]:
    """Request validation answers 400 ``invalid_request`` in the error shape (errors.py), not
    FastAPI's 422: drop what FastAPI documents for it."""
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            if isinstance(operation, dict):
                operation.get("responses", {}).pop("422", None)
    components = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    return schema


def bucket_of(path: str) -> str | None:
    """The bucket a /v1 path names (``/v1/buckets/<bucket>/…``), if any."""
    parts = path.split("/", 4)
    if len(parts) > 3 and parts[1] == "v1" and parts[2] == "buckets" and parts[3]:
        return parts[3]
    return None


def streams_body(method: str, path: str) -> bool:
    """Whether the request is an object upload, whose body streams (never read whole)."""
    return method in ("PUT", "POST") and _UPLOAD_PATH.match(path) is not None


def too_large() -> PayloadTooLarge:
    return PayloadTooLarge(f"a request body here is at most {JSON_BODY_LIMIT} bytes")


def capped(receive: Receive) -> Receive:
    """``receive`` that refuses a body growing past :data:`JSON_BODY_LIMIT` (a chunked body
    declares no length), as FastAPI reads it: the refusal passes through FastAPI's body parsing
    as an HTTPException and is answered in the error shape (``errors.on_framework_error``)."""
    seen = 0

    async def guarded() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > JSON_BODY_LIMIT:
                raise errors.CoreHTTPException(too_large())
        return message

    return guarded


class NativeApi:
    """The routing table's endpoint for the /v1 rows (see the module docstring).

    Paths under ``/v1/buckets/<bucket>/`` follow the bucket's CORS rules (``mediagate.cors``), as
    its dialect paths do: a web page on an allowed origin uploads there with an upload token."""

    def __init__(self) -> None:
        self.api = build()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.api.state = scope["app"].state
        if scope["type"] == "http" and not streams_body(scope["method"], scope["path"]):
            declared = parse_uint(Request(scope).headers.get("content-length", ""))
            if declared is not None and declared > JSON_BODY_LIMIT:
                await errors.error_response(Request(scope), too_large())(scope, receive, send)
                return
            receive = capped(receive)
        bucket = bucket_of(scope["path"]) if scope["type"] == "http" else None
        if bucket is None:
            await self.api(dict(scope), receive, send)
            return
        request = Request(scope, receive)
        if scope["method"] == "OPTIONS":
            await (await cors.preflight(request, bucket))(scope, receive, send)
            return
        allowed = await cors.decorate(request, bucket, Response())
        extra = [
            (name.encode("latin-1"), value.encode("latin-1"))
            for name, value in allowed.headers.items()
            if name.startswith("access-control-") or name == "vary"
        ]

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start" and extra:
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.api(dict(scope), receive, send_with_cors)

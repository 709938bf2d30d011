"""The one-port routing table: the first path segment decides who answers.

| request                                                   | who answers                      |
| --------------------------------------------------------- | -------------------------------- |
| ``GET /healthz``, ``GET /livez``                          | operations (``health``)          |
| ``GET /metrics``                                          | Prometheus text (``metrics``)    |
| ``GET/HEAD /`` without ``Action=``                        | the landing page (``web.pages``) |
| ``GET/POST /?Action=…&Version=…``, any other ``/``        | ImageX OpenAPI (signed, both     |
|                                                           | schemes): Apply/Commit, STS      |
| ``GET/HEAD /ui``, ``/ui/<file>``                          | the web page's static files      |
| ``POST /mweb/v1/get_upload_token`` (cookie ``sessionid``) | ImageX temporary credentials     |
| ``POST /upload/v1/<StoreUri>``                            | ImageX upload host (seed)        |
| ``PUT /tos-cn-i-<sid>/<name>`` (+ chunk queries)          | ImageX upload host (SDK); bucket |
|                                                           | names never start with ``tos-``  |
| ``PUT/POST /api/proxy/{upload,blockInit,blockUpload,``    | Wantu upload (``UPLOAD_AK_TOP``) |
| ``blockComplete,blockCancel}``                            |                                  |
| ``* /3.0/…``, ``* /3.1/…``                                | Wantu management (``ACL_TOP``)   |
| ``POST /pretreatment/``, ``GET /status/``, ``/result/``   | UPYUN pretreatment API (REST-    |
|                                                           | signed; bucket = ``service``)    |
| ``* /v1/tus/<bucket>/[<upload id>]``                      | tus 1.0 (upload token)           |
| ``* /v1[/…]``, ``GET /openapi.json``, ``/docs[/…]``,      | mediagate's own JSON API         |
| ``/redoc``                                                | (``protocols.native``, FastAPI)  |
| ``OPTIONS /<bucket>[/<path>]``                            | CORS preflight (per bucket)      |
| ``* /<bucket>[/<path>]`` with ``Authorization: UPYUN …``  | UPYUN REST API                   |
| ``POST /<bucket>[/]`` multipart/form-data                 | UPYUN FORM API                   |
| ``GET/HEAD /<bucket>/<key>`` without auth                 | public read                      |
| anything else on a bucket path                            | UPYUN REST API (answers 401)     |
| any other path (``//x``, ``/%2f``: no bucket segment)     | the bucket rows, bucket ``""``   |

Every row takes every method: a method a fixed row does not serve is answered by that row's
dialect (its ``MethodNotAllowed`` error with ``Allow``), never by the framework's plain-text
405, and no path falls through to a plain-text 404.

A new dialect adds a row here, not a special case elsewhere (and teaches
``frontdoor.face_of`` the same row, so that answers given before routing are in its shape).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, request_response
from starlette.types import ASGIApp, Receive, Scope, Send

from mediagate import cors, health, metrics, serving
from mediagate.core.errors import Forbidden, MediagateError, MethodNotAllowed
from mediagate.deferred import Deferred
from mediagate.http import request_id
from mediagate.protocols.imagex import actions as imagex_actions
from mediagate.protocols.imagex import errors as imagex_errors
from mediagate.protocols.imagex import sts as imagex_sts
from mediagate.protocols.imagex import upload as imagex_upload
from mediagate.protocols.tus import handler as tus
from mediagate.protocols.upyun import errors as upyun_errors
from mediagate.protocols.upyun import form as upyun_form
from mediagate.protocols.upyun import pretreatment as upyun_pretreatment
from mediagate.protocols.upyun import rest as upyun_rest
from mediagate.protocols.wantu import blocks as wantu_blocks
from mediagate.protocols.wantu import errors as wantu_errors
from mediagate.protocols.wantu import manage as wantu_manage
from mediagate.protocols.wantu import upload as wantu_upload
from mediagate.web import pages


class AnyPath(Convertor[str]):
    """Starlette's ``path`` without its blind spot: it also matches a decoded ``%0A``, so a key with
    control characters reaches its dialect and gets that dialect's clear error, not a bare 404."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anypath", AnyPath())


Endpoint = Callable[[Request], Awaitable[Response]]
Refusal = Callable[[Request, MediagateError], Response]


def only(methods: list[str], endpoint: Endpoint, refuse: Refusal) -> Endpoint:
    """``endpoint`` for ``methods`` (HEAD too where GET is); ``OPTIONS`` is a CORS preflight with
    the default rules (as these paths name no bucket); any other method gets the dialect's own 405
    from ``refuse``, with ``Allow``. Routes built on this take every method, so the framework never
    answers in plain text for a dialect."""
    allowed = {m.upper() for m in methods} | ({"HEAD"} if "GET" in methods else set())
    allow = ", ".join(sorted(allowed))

    async def guarded(request: Request) -> Response:
        if request.method.upper() in allowed:
            return await endpoint(request)
        if request.method == "OPTIONS":
            preflight = await cors.preflight(request, "")
            if preflight.status_code < 400:
                return preflight
            method = request.headers.get("access-control-request-method", "")
            return refuse(request, Forbidden(f"CORS preflight refused for method {method[:32]!r}"))
        response = refuse(request, MethodNotAllowed(f"{request.method} is not allowed here; use {allow}"))
        response.headers["Allow"] = allow
        return response

    return guarded


def _imagex_action_refusal(request: Request, exc: MediagateError) -> Response:
    return imagex_errors.action_error(request, exc, request.query_params.get("Action", ""))


def _imagex_token_refusal(request: Request, exc: MediagateError) -> Response:
    return imagex_errors.token_error(exc)


def _wantu_refusal(request: Request, exc: MediagateError) -> Response:
    return wantu_errors.error_response(exc, request_id(request))


def _plain_refusal(request: Request, exc: MediagateError) -> Response:
    return serving.error_response(exc.status, exc.message)


async def healthz(request: Request) -> Response:
    return await health.healthz(request)


def _is_upyun_rest(request: Request) -> bool:
    return request.headers.get("authorization", "")[:6].upper() == "UPYUN "


def _is_form_upload(request: Request) -> bool:
    return request.method == "POST" and request.headers.get("content-type", "").lower().startswith(
        "multipart/form-data"
    )


async def bucket_endpoint(request: Request) -> Response:
    bucket: str = request.path_params.get("bucket", "")
    path: str = request.path_params.get("path", "")
    if request.method == "OPTIONS":
        return await cors.preflight(request, bucket)
    if _is_upyun_rest(request):
        response = await upyun_rest.handle(request, bucket, path)
    elif _is_form_upload(request) and not path:
        response = await upyun_form.handle(request, bucket)
    elif request.method in ("GET", "HEAD") and not request.headers.get("authorization"):
        response = await serving.read(request, bucket, path)
    else:
        response = await upyun_rest.handle(request, bucket, path)
    return await cors.decorate(request, bucket, response)


class AnyMethod:
    """An endpoint as an ASGI app, so that its ``Route`` takes every method: Starlette limits a
    plain function endpoint to GET/HEAD when no methods are given, and answers the rest itself in
    plain text. Which methods are served is the dialect's business (see :func:`only`)."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.app = request_response(endpoint)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


def row(path: str, endpoint: Endpoint) -> Route:
    """A routing-table row that takes every method, and matches the whole path: Starlette anchors
    its pattern with ``$``, which also matches before a final newline, so ``/%0A`` would be ``/``
    (ImageX) and ``/healthz%0A`` the health check."""
    route = Route(path, AnyMethod(endpoint))
    pattern = route.path_regex.pattern
    if pattern.endswith("$"):
        route.path_regex = re.compile(pattern[:-1] + r"\Z")
    return route


def wantu_routes() -> list[BaseRoute]:
    """Wantu's fixed paths; they come before the ``/{bucket}`` rows ('api', '3.0', '3.1' are
    reserved bucket names)."""
    upload = ["PUT", "POST"]

    def uploads(path: str, endpoint: Endpoint) -> Route:
        return row(path, only(upload, endpoint, _wantu_refusal))

    return [
        uploads("/api/proxy/upload", wantu_upload.upload),
        uploads("/api/proxy/blockInit", wantu_blocks.block_init),
        uploads("/api/proxy/blockUpload", wantu_blocks.block_upload),
        uploads("/api/proxy/blockComplete", wantu_blocks.block_complete),
        uploads("/api/proxy/blockCancel", wantu_blocks.block_cancel),
        row("/3.0/{path:anypath}", wantu_manage.handle),
        row("/3.1/{path:anypath}", wantu_manage.handle),
    ]


def imagex_routes() -> list[BaseRoute]:
    """ImageX's fixed paths; before the ``/{bucket}`` rows ('mweb' and 'upload' are reserved bucket
    names, and no bucket name starts with ``tos-``)."""
    upload = imagex_errors.upload_error
    actions = only(["GET", "POST"], imagex_actions.openapi, _imagex_action_refusal)

    async def root(request: Request) -> Response:
        return await (pages.landing(request) if pages.wants_landing(request) else actions(request))

    return [
        row("/", root),
        row("/mweb/v1/get_upload_token", only(["POST"], imagex_sts.get_upload_token, _imagex_token_refusal)),
        row("/upload/v1/{store_uri:anypath}", only(["POST"], imagex_upload.seed_upload, upload)),
        row("/tos-cn-i-{sid}/{name:anypath}", only(["GET", "PUT"], imagex_upload.store_endpoint, upload)),
    ]


def _upyun_rest_refusal(request: Request, exc: MediagateError) -> Response:
    return upyun_errors.rest_error(exc, request_id(request))


def upyun_api_routes() -> list[BaseRoute]:
    """UPYUN's pretreatment API; before the ``/{bucket}`` rows ('pretreatment', 'status' and
    'result' are reserved bucket names). With or without the final ``/``."""
    found: list[BaseRoute] = []
    for path, methods, endpoint in (
        ("/pretreatment", ["POST"], upyun_pretreatment.submit),
        ("/status", ["GET"], upyun_pretreatment.status),
        ("/result", ["GET"], upyun_pretreatment.result),
    ):
        guarded = only(methods, endpoint, _upyun_rest_refusal)
        found += [row(path, guarded), row(path + "/", guarded)]
    return found


def tus_routes() -> list[BaseRoute]:
    """tus at ``/v1/tus/``; before any ``/v1`` row ('v1' is a reserved bucket name). Every method
    reaches ``tus.endpoint`` (OPTIONS is tus's discovery or a CORS preflight); paths that name no
    upload answer tus's 404."""
    return [
        row("/v1/tus/{bucket}", tus.endpoint),
        row("/v1/tus/{bucket}/", tus.endpoint),
        row("/v1/tus/{bucket}/{upload_id}", tus.endpoint),
        row("/v1/tus", tus.endpoint),
        row("/v1/tus/{path:anypath}", tus.endpoint),
    ]


def _native_api() -> ASGIApp:
    from mediagate.memory import release_memory
    from mediagate.protocols.native.app import NativeApi

    api = NativeApi()
    release_memory()  # building it frees a few MB of schema-building scratch: give them back
    return api


def native_routes() -> list[BaseRoute]:
    """mediagate's own API, its OpenAPI schema and docs ('v1', 'docs', 'redoc' and
    'openapi.json' are reserved bucket names). The FastAPI app answers every method itself, in
    the /v1 error shape; it is built on the first request to one of these rows
    (:mod:`mediagate.deferred`), so a node that only serves the dialects never loads FastAPI."""
    api = Deferred(_native_api)
    found: list[BaseRoute] = []
    for path in ("/v1", "/v1/{rest:anypath}", "/openapi.json", "/docs", "/docs/{rest:anypath}", "/redoc"):
        route = Route(path, api)
        route.path_regex = re.compile(route.path_regex.pattern.removesuffix("$") + r"\Z")
        found.append(route)
    return found


def routes() -> list[BaseRoute]:
    return [
        row("/healthz", only(["GET"], healthz, _plain_refusal)),
        row("/livez", only(["GET"], health.livez, _plain_refusal)),
        row("/ui", pages.ui_root),
        row("/ui/{path:anypath}", pages.ui_file),
        row("/metrics", only(["GET"], metrics.endpoint, _plain_refusal)),
        *imagex_routes(),
        *wantu_routes(),
        *upyun_api_routes(),
        *tus_routes(),
        *native_routes(),
        row("/{bucket}", bucket_endpoint),
        row("/{bucket}/{path:anypath}", bucket_endpoint),
        row("/{path:anypath}", bucket_endpoint),  # no bucket segment (``//x``): UPYUN's 404
    ]

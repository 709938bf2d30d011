"""The one-port routing table: the first path segment decides who answers.

| request                                                   | who answers                      |
| --------------------------------------------------------- | -------------------------------- |
| ``GET /healthz``                                          | operations                       |
| ``GET/POST /?Action=…&Version=…``                         | ImageX OpenAPI (signed, both     |
|                                                           | schemes): Apply/Commit, STS      |
| ``POST /mweb/v1/get_upload_token`` (cookie ``sessionid``) | ImageX temporary credentials     |
| ``POST /upload/v1/<StoreUri>``                            | ImageX upload host (seed)        |
| ``PUT /tos-cn-i-<sid>/<name>`` (+ chunk queries)          | ImageX upload host (SDK); bucket |
|                                                           | names never start with ``tos-``  |
| ``PUT/POST /api/proxy/{upload,blockInit,blockUpload,``    | Wantu upload (``UPLOAD_AK_TOP``) |
| ``blockComplete,blockCancel}``                            |                                  |
| ``* /3.0/…``, ``* /3.1/…``                                | Wantu management (``ACL_TOP``)   |
| ``OPTIONS /<bucket>[/<path>]``                            | CORS preflight (per bucket)      |
| ``* /<bucket>[/<path>]`` with ``Authorization: UPYUN …``  | UPYUN REST API                   |
| ``POST /<bucket>[/]`` multipart/form-data                 | UPYUN FORM API                   |
| ``GET/HEAD /<bucket>/<key>`` without auth                 | public read                      |
| anything else on a bucket path                            | UPYUN REST API (answers 401)     |

A new dialect adds a row here, not a special case elsewhere.
"""

from __future__ import annotations

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from mediagate import cors, serving
from mediagate.protocols.imagex import actions as imagex_actions
from mediagate.protocols.imagex import sts as imagex_sts
from mediagate.protocols.imagex import upload as imagex_upload
from mediagate.protocols.upyun import form as upyun_form
from mediagate.protocols.upyun import rest as upyun_rest
from mediagate.protocols.wantu import blocks as wantu_blocks
from mediagate.protocols.wantu import manage as wantu_manage
from mediagate.protocols.wantu import upload as wantu_upload


class AnyPath(Convertor[str]):
    """Starlette's ``path`` without its blind spot: it also matches a decoded ``%0A``, so a key with
    control characters reaches its dialect and gets that dialect's clear error, not a bare 404."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anypath", AnyPath())


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def _is_upyun_rest(request: Request) -> bool:
    return request.headers.get("authorization", "")[:6].upper() == "UPYUN "


def _is_form_upload(request: Request) -> bool:
    return request.method == "POST" and request.headers.get("content-type", "").lower().startswith(
        "multipart/form-data"
    )


async def bucket_endpoint(request: Request) -> Response:
    bucket = request.path_params["bucket"]
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


ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"]


def wantu_routes() -> list[BaseRoute]:
    """Wantu's fixed paths; they come before the ``/{bucket}`` rows ('api', '3.0', '3.1' are
    reserved bucket names)."""
    upload = ["PUT", "POST"]
    return [
        Route("/api/proxy/upload", wantu_upload.upload, methods=upload),
        Route("/api/proxy/blockInit", wantu_blocks.block_init, methods=upload),
        Route("/api/proxy/blockUpload", wantu_blocks.block_upload, methods=upload),
        Route("/api/proxy/blockComplete", wantu_blocks.block_complete, methods=upload),
        Route("/api/proxy/blockCancel", wantu_blocks.block_cancel, methods=upload),
        Route("/3.0/{path:path}", wantu_manage.handle, methods=ALL_METHODS),
        Route("/3.1/{path:path}", wantu_manage.handle, methods=ALL_METHODS),
    ]


def imagex_routes() -> list[BaseRoute]:
    """ImageX's fixed paths; before the ``/{bucket}`` rows ('mweb' and 'upload' are reserved bucket
    names, and no bucket name starts with ``tos-``)."""
    return [
        Route("/", imagex_actions.openapi, methods=["GET", "POST"]),
        Route("/mweb/v1/get_upload_token", imagex_sts.get_upload_token, methods=["POST"]),
        Route("/upload/v1/{store_uri:path}", imagex_upload.seed_upload, methods=["POST"]),
        Route("/tos-cn-i-{sid}/{name:path}", imagex_upload.store_endpoint, methods=["GET", "HEAD", "PUT"]),
    ]


def routes() -> list[BaseRoute]:
    return [
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        *imagex_routes(),
        *wantu_routes(),
        Route("/{bucket}", bucket_endpoint, methods=ALL_METHODS),
        Route("/{bucket}/{path:anypath}", bucket_endpoint, methods=ALL_METHODS),
    ]

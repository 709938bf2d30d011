"""``GET/POST /?Action=<name>&Version=<date>``: the OpenAPI entry point.

Cheap first: the Action/Version must be one we serve, the body is bounded, then the signature is
verified (``auth``), then the principal must be allowed the action on the ServiceId. Successes
answer ``{"ResponseMetadata": {...}, "Result": {"RequestId", ...}}``; failures the ImageX error
envelope (``errors``), always a 4xx for bad input.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mediagate.core.errors import BadRequest, MediagateError, NotFound, PayloadTooLarge
from mediagate.core.gateway import Gateway
from mediagate.core.numbers import parse_uint
from mediagate.http import body_stream, gateway, request_id
from mediagate.protocols.imagex import apply, commit, sts
from mediagate.protocols.imagex.auth import Principal, authenticate, require
from mediagate.protocols.imagex.errors import VERSION, action_error, metadata

MAX_BODY = 256 * 1024

Handler = Callable[[Request, Gateway, Principal, dict[str, list[str]], bytes], Awaitable[dict[str, Any]]]


async def _apply(
    request: Request, gw: Gateway, p: Principal, params: dict[str, list[str]], body: bytes
) -> dict[str, Any]:
    require(p, "ApplyImageUpload", _service_id(params))
    return await apply.apply_image_upload(request, gw, p, params)


async def _commit(
    request: Request, gw: Gateway, p: Principal, params: dict[str, list[str]], body: bytes
) -> dict[str, Any]:
    require(p, "CommitImageUpload", _service_id(params))
    return await commit.commit_image_upload(gw, p, commit.parse_body(body))


async def _assume_role(
    request: Request, gw: Gateway, p: Principal, params: dict[str, list[str]], body: bytes
) -> dict[str, Any]:
    service_id = (params.get("ServiceId") or [p.bucket.name])[0]
    require(p, "AssumeRole", service_id)
    return await sts.assume_role(gw, p, params)


ACTIONS: dict[tuple[str, str], Handler] = {
    ("ApplyImageUpload", VERSION): _apply,
    ("CommitImageUpload", VERSION): _commit,
    ("AssumeRole", "2018-01-01"): _assume_role,
    ("AssumeRole", VERSION): _assume_role,
}


def _service_id(params: dict[str, list[str]]) -> str:
    values = params.get("ServiceId")
    if not values or not values[0]:
        raise BadRequest("ServiceId is required", code="MissingParameter")
    return values[0]


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    length = parse_uint(declared) if declared is not None else None
    if length is not None and length > MAX_BODY:
        raise PayloadTooLarge(f"the request body may be at most {MAX_BODY} bytes", code="InvalidParameter")
    body = bytearray()
    async for chunk in body_stream(request):
        body += chunk
        if len(body) > MAX_BODY:
            raise PayloadTooLarge(
                f"the request body may be at most {MAX_BODY} bytes", code="InvalidParameter"
            )
    return bytes(body)


async def openapi(request: Request) -> Response:
    params: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        params.setdefault(key, []).append(value)
    action = (params.get("Action") or [""])[0]
    version = (params.get("Version") or [""])[0]
    try:
        handler = ACTIONS.get((action, version))
        if handler is None:
            raise NotFound(
                f"Action {action[:64]!r} with Version {version[:32]!r} is not served here",
                code="InvalidActionOrVersion",
            )
        body = await _read_body(request)
        principal = await authenticate(request, body)
        result = await handler(request, gateway(request), principal, params, body)
    except MediagateError as exc:
        return action_error(request, exc, action)
    return JSONResponse(
        {
            "ResponseMetadata": metadata(request, action),
            "Result": {"RequestId": request_id(request), **result},
        }
    )

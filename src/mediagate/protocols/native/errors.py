"""The /v1 error shape, the one place it is spelled::

    {"error": {"code": "insufficient_scope", "message": "...", "request_id": "..."}}

``code`` is the core error's stable code and the status its status; request validation is 400
``invalid_request`` (with ``details``), the framework's own 404/405 keep their status. Anything
else is a bug: a 500 ``internal_error`` in the same shape (never a traceback).

This module is imported at start-up (the front door and tus answer in this shape); FastAPI is not:
it is loaded with the /v1 app on its first request (``mediagate.deferred``), so only
:func:`handlers` and :func:`on_invalid_request` name FastAPI's types, and import them there."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mediagate import logs
from mediagate.core.errors import MediagateError, from_os_error
from mediagate.http import request_id

log = logging.getLogger("mediagate.v1")

_FRAMEWORK_CODES = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}


def body(code: str, message: str, request: Request, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "request_id": request_id(request), **extra}}


class CoreHTTPException(HTTPException):
    """A core error raised where FastAPI lets only an HTTPException through unchanged (while it
    reads a request body); answered as that core error."""

    def __init__(self, error: MediagateError) -> None:
        super().__init__(error.status, error.message)
        self.error = error


def error_response(request: Request, exc: MediagateError) -> JSONResponse:
    """The answer for a core error (also used by the front door for refusals before routing)."""
    logs.note_refusal(exc)
    headers = dict(getattr(exc, "headers", None) or {})
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(int(retry_after))
    return JSONResponse(body(exc.code, exc.message, request), status_code=exc.status, headers=headers)


async def on_core_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, MediagateError)
    return error_response(request, exc)


def _detail(error: Any) -> dict[str, Any]:
    location = [str(part) for part in error.get("loc", ())]
    return {"location": location, "message": str(error.get("msg", ""))}


async def on_invalid_request(request: Request, exc: Exception) -> Response:
    from fastapi.exceptions import RequestValidationError

    assert isinstance(exc, RequestValidationError)
    details = [_detail(e) for e in exc.errors()][:20]
    first = details[0] if details else {"location": [], "message": "invalid request"}
    where = ".".join(first["location"][1:] or first["location"]) or "request"
    message = f"{where}: {first['message']}"
    return JSONResponse(body("invalid_request", message, request, details=details), status_code=400)


async def on_framework_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if isinstance(exc, CoreHTTPException):
        return error_response(request, exc.error)
    code = _FRAMEWORK_CODES.get(exc.status_code, "bad_request" if exc.status_code < 500 else "internal_error")
    message = str(exc.detail) if exc.detail else code.replace("_", " ")
    if exc.status_code == 404:
        message = f"there is no {request.url.path} in the /v1 API (see /docs)"
    elif exc.status_code == 405:
        allow = (exc.headers or {}).get("Allow", "")
        message = f"{request.method} is not allowed here" + (f"; use {allow}" if allow else "")
    return JSONResponse(body(code, message, request), status_code=exc.status_code, headers=exc.headers)


async def on_bug(request: Request, exc: Exception) -> Response:
    """An exception no handler knew: a full disk is its core error, anything else a bug."""
    known = from_os_error(exc)
    if known is not None:
        return error_response(request, known)
    log.debug("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    rid = request_id(request)
    return JSONResponse(
        body("internal_error", f"internal error (request id {rid})", request), status_code=500
    )


Handler = Callable[[Request, Exception], Awaitable[Response]]


def handlers() -> dict[type[Exception], Handler]:
    """The /v1 app's exception handlers, for FastAPI's ``exception_handlers``."""
    from fastapi.exceptions import RequestValidationError

    return {
        MediagateError: on_core_error,
        RequestValidationError: on_invalid_request,
        HTTPException: on_framework_error,
        Exception: on_bug,
    }

"""tus answers its errors in the ``/v1`` JSON shape (``{"error": {"code", "message",
"request_id"}}``), with ``Tus-Resumable`` on every answer as the protocol requires; tus clients
show the body's text to their user, and branch on the status alone."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mediagate import logs
from mediagate.core.errors import MediagateError
from mediagate.http import request_id
from mediagate.protocols.tus.headers import VERSION, VersionNotSupported


def error_response(request: Request, exc: MediagateError) -> Response:
    logs.note_refusal(exc)
    headers = {"Tus-Resumable": VERSION, "Cache-Control": "no-store"}
    if isinstance(exc, VersionNotSupported):
        headers["Tus-Version"] = VERSION
    body = {"error": {"code": exc.code, "message": exc.message, "request_id": request_id(request)}}
    return JSONResponse(body, status_code=exc.status, headers=headers)

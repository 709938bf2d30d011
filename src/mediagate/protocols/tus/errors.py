"""tus answers its errors in the ``/v1`` JSON shape (``{"error": {"code", "message",
"request_id"}}``, :mod:`mediagate.protocols.native.errors`), with ``Tus-Resumable`` on every
answer as the protocol requires; tus clients show the body's text to their user and branch on
the status alone."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from mediagate.core.errors import MediagateError
from mediagate.protocols.native import errors as native
from mediagate.protocols.tus.headers import VERSION, VersionNotSupported


def error_response(request: Request, exc: MediagateError) -> Response:
    response = native.error_response(request, exc)
    response.headers["Tus-Resumable"] = VERSION
    response.headers["Cache-Control"] = "no-store"
    if isinstance(exc, VersionNotSupported):
        response.headers["Tus-Version"] = VERSION
    return response

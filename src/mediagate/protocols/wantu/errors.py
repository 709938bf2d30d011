"""Wantu's error shape, rendered from the core's MediagateError in one place.

Body ``{"code": "<sub-error code>", "message": "...", "msg": "...", "requestId": "..."}`` (the seed
names the text ``msg`` for management and ``message`` in the brief's contract: both are sent), and
the same three values as response headers (``code``, ``message``, ``requestId``), because the seed
prints responses as header lines.

| core error                                   | HTTP | Wantu code             |
| -------------------------------------------- | ---- | ---------------------- |
| Unauthorized, Expired, bad Date, namespace   | 401  | AuthenticationFailed   |
| NotFound                                     | 404  | ResourceNotFound       |
| MethodNotAllowed (a method the path lacks)   | 405  | MethodNotAllowed       |
| key exists (insertOnly), folder exists       | 400  | NameDuplicated         |
| folder not empty                             | 400  | NonEmpty               |
| not supported yet                            | 400  | NotSupported           |
| over the bucket's quota (bytes, objects)     | 403  | QuotaExceeded          |
| over an uploads-per-minute limit             | 429  | Throttling             |
| any other 4xx (bad field, size, type, md5 …) | 400  | InvalidArgument        |
| a dependency down (catalog, storage)         | 503  | ServiceUnavailable     |
| no space left                                | 507  | InsufficientStorage    |
| anything else                                | 500  | InternalError          |
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.responses import JSONResponse

from mediagate.core.errors import Expired, MediagateError
from mediagate.logs import note_refusal

AUTHENTICATION_FAILED = "AuthenticationFailed"
INVALID_ARGUMENT = "InvalidArgument"
RESOURCE_NOT_FOUND = "ResourceNotFound"
NAME_DUPLICATED = "NameDuplicated"
NON_EMPTY = "NonEmpty"
NOT_SUPPORTED = "NotSupported"
METHOD_NOT_ALLOWED = "MethodNotAllowed"
INTERNAL_ERROR = "InternalError"
SERVICE_UNAVAILABLE = "ServiceUnavailable"
INSUFFICIENT_STORAGE = "InsufficientStorage"
QUOTA_EXCEEDED = "QuotaExceeded"
THROTTLING = "Throttling"
"""Alibaba Cloud's name for a request refused by flow control (the seed lists no such code)."""

_DUPLICATE = frozenset({"key_exists", "folder_exists", "is_folder", "not_a_folder"})


def wantu_code(exc: MediagateError) -> tuple[int, str]:
    """(HTTP status, Wantu sub-error code) for a core error."""
    if exc.status == 401 or isinstance(exc, Expired):
        return 401, AUTHENTICATION_FAILED
    if exc.status == 404:
        return 404, RESOURCE_NOT_FOUND
    if exc.status == 405:
        return 405, METHOD_NOT_ALLOWED
    if exc.code in _DUPLICATE:
        return 400, NAME_DUPLICATED
    if exc.code == "folder_not_empty":
        return 400, NON_EMPTY
    if exc.code == "not_supported":
        return 400, NOT_SUPPORTED
    if exc.code == "quota_exceeded":
        return 403, QUOTA_EXCEEDED
    if exc.status == 429:
        return 429, THROTTLING
    if 400 <= exc.status < 500:
        return 400, INVALID_ARGUMENT
    if exc.status == 503:
        return 503, SERVICE_UNAVAILABLE
    if exc.status == 507:
        return 507, INSUFFICIENT_STORAGE
    return 500, INTERNAL_ERROR


def header_value(value: object) -> str:
    """A value safe for an HTTP header: percent-encoded when it is not printable ASCII."""
    text = str(value)
    if text.isascii() and text.isprintable():
        return text
    return quote(text, safe="/:;,=@ ")


def as_headers(fields: dict[str, Any]) -> dict[str, str]:
    """The scalar fields of an answer as headers (the seed's ``key: value`` reading)."""
    return {
        k: header_value(v)
        for k, v in fields.items()
        if isinstance(v, (str, int, float)) and len(str(v)) < 2048
    }


def error_response(exc: MediagateError, request_id: str) -> JSONResponse:
    note_refusal(exc)
    status, code = wantu_code(exc)
    body = {"code": code, "message": exc.message, "msg": exc.message, "requestId": request_id}
    headers = as_headers({"code": code, "message": exc.message, "requestId": request_id})
    return JSONResponse(body, status_code=status, headers=headers)

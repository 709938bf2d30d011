"""ImageX's error shapes, rendered from the core's MediagateError in one place.

* OpenAPI actions (``/?Action=``): ``{"ResponseMetadata": {RequestId, Action, Version, Service,
  Region, "Error": {"CodeN", "Code", "Message"}}}`` with the HTTP status (the SDK raises on any
  non-200 with the body text and checks ``"Error" in ResponseMetadata``).
* Upload host: the same ``ResponseMetadata`` plus the upload host's own ``success``/``error``
  fields (``success`` non-zero), so both readers see a failure.
* Token endpoint (Dreamina): ``{"ret": "<code>", "errmsg": "...", "data": null}``.

Dialect code raises core errors whose ``code`` is already an ImageX name (``SignatureDoesNotMatch``);
core codes (``checksum_mismatch`` …) are translated here.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from mediagate.core.errors import MediagateError
from mediagate.http import request_id
from mediagate.logs import note_refusal

VERSION = "2018-08-01"
SERVICE = "ImageX"
REGION = "cn-north-1"

_FROM_CORE = {
    "bad_request": "InvalidParameter",
    "malformed_body": "InvalidParameter",
    "invalid_key": "InvalidParameter",
    "checksum_mismatch": "InvalidParameter",
    "missing_parts": "InvalidParameter",
    "unauthorized": "InvalidAuthorization",
    "forbidden": "AccessDenied",
    "expired": "RequestExpired",
    "policy_violation": "AccessDenied",
    "size_out_of_range": "InvalidFileSize",
    "not_found": "ResourceNotFound",
    "file_not_found": "ResourceNotFound",
    "session_not_found": "InvalidSessionKey",
    "conflict": "ResourceAlreadyExists",
    "key_exists": "ResourceAlreadyExists",
    "payload_too_large": "InvalidFileSize",
    "quota_exceeded": "QuotaExceeded",
    "rate_limited": "FlowLimitExceeded",
    "unsupported_media": "InvalidImageFormat",
    "not_supported": "InvalidParameter",
    "invalid_url": "InvalidParameter",
    "url_not_allowed": "AccessDenied",
    "internal_error": "InternalError",
    "service_unavailable": "ServiceUnavailable",
    "catalog_unavailable": "ServiceUnavailable",
    "storage_unavailable": "ServiceUnavailable",
    "insufficient_storage": "InsufficientStorage",
}

_CODE_N = {
    "InvalidParameter": 100004,
    "MissingParameter": 100003,
    "MissingAuthenticationToken": 100009,
    "InvalidAuthorization": 100009,
    "SignatureDoesNotMatch": 100010,
    "InvalidAccessKey": 100011,
    "InvalidSecurityToken": 100012,
    "RequestExpired": 100013,
    "AccessDenied": 100014,
    "FlowLimitExceeded": 100018,
    "InvalidActionOrVersion": 100002,
    "InvalidCrc32": 600404,
    "InvalidFileSize": 600405,
    "InvalidUploadAuth": 600406,
    "InvalidSessionKey": 600407,
    "SessionKeyCommitted": 600408,
    "ResourceNotFound": 600409,
    "ResourceAlreadyExists": 600410,
    "InvalidImageFormat": 600411,
}


def imagex_code(exc: MediagateError) -> tuple[str, int]:
    note_refusal(exc)
    code = _FROM_CORE.get(exc.code, exc.code)
    if code == exc.code and "_" in code:  # a core code we have no name for
        code = "InvalidParameter" if exc.status < 500 else "InternalError"
    return code, _CODE_N.get(code, 100000 + exc.status)


def metadata(request: Request, action: str) -> dict[str, Any]:
    return {
        "RequestId": request_id(request),
        "Action": action,
        "Version": VERSION,
        "Service": SERVICE,
        "Region": REGION,
    }


def action_error(request: Request, exc: MediagateError, action: str = "") -> JSONResponse:
    code, code_n = imagex_code(exc)
    meta = metadata(request, action)
    meta["Error"] = {"CodeN": code_n, "Code": code, "Message": exc.message}
    return JSONResponse({"ResponseMetadata": meta}, status_code=exc.status)


def upload_error(request: Request, exc: MediagateError) -> JSONResponse:
    code, code_n = imagex_code(exc)
    meta = metadata(request, "Upload")
    meta["Error"] = {"CodeN": code_n, "Code": code, "Message": exc.message}
    body = {
        "success": -1,
        "error": {"code": exc.status, "error": code, "error_code": code_n, "message": exc.message},
        "ResponseMetadata": meta,
    }
    return JSONResponse(body, status_code=exc.status)


def token_error(exc: MediagateError) -> JSONResponse:
    note_refusal(exc)
    ret = "1014" if exc.status == 401 else str(exc.status)
    return JSONResponse({"ret": ret, "errmsg": exc.message, "data": None}, status_code=exc.status)

"""UPYUN's error shapes, rendered from the core's MediagateError in one place.

* REST API: ``{"msg": "...", "code": <8 digits>, "id": "<request id>"}`` with the HTTP status;
  the SDK's resumable uploader branches on ``msg``.
* FORM API: ``{"code": <http status>, "message": "...", "url": "", "time": <unix>}`` (plus the
  8-digit code as ``error_code``), HTTP status = code.

UPYUN's own 8-digit codes are ``<status><5 digits>``; ours follow that pattern with a stable index
per core error code, so clients can branch on them.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.responses import JSONResponse

from mediagate.core.errors import MediagateError
from mediagate.logs import note_refusal

_CODE_INDEX = {
    "bad_request": 1,
    "malformed_body": 2,
    "invalid_key": 3,
    "checksum_mismatch": 4,
    "invalid_policy": 5,
    "missing_field": 6,
    "bucket_mismatch": 7,
    "not_supported": 8,
    "duplicate_field": 9,
    "missing_file": 10,
    "too_many_files": 11,
    "invalid_url": 12,
    "metadata_too_large": 13,  # 40000013: more x-upyun-meta-* than a read could return
    "tasks_number": 10003,  # 40010003 "tasks number error" (UPYUN's own code)
    "decode_tasks": 10033,  # 40010033 "decode tasks error"
    "unauthorized": 1,
    "bad_authorization": 2,
    "signature_mismatch": 3,
    "unknown_operator": 4,
    "date_required": 5,
    "date_skew": 6,
    "bad_date": 7,
    "forbidden": 1,
    "expired": 2,
    "policy_violation": 3,
    "size_out_of_range": 4,
    "file_type_not_allowed": 5,
    "image_width_out_of_range": 6,
    "image_height_out_of_range": 7,
    "folder_not_empty": 8,
    "mime_not_allowed": 9,
    "url_not_allowed": 10,
    "not_found": 1,
    "file_not_found": 2,
    "bucket_not_found": 3,
    "session_not_found": 4,
    "folder_not_found": 5,
    "conflict": 1,
    "key_exists": 2,
    "is_folder": 3,
    "not_a_folder": 4,
    "folder_exists": 5,
    "payload_too_large": 1,
    "quota_exceeded": 2,  # 41300002: the bucket's storage or object quota (core.quotas)
    "rate_limited": 1,  # 42900001: over an uploads-per-minute limit (UPYUN answers 429 4290000x)
    "range_not_satisfiable": 1,
    "unsupported_media": 1,
    "not_an_image": 2,
    "internal_error": 1,
    "service_unavailable": 1,
    "catalog_unavailable": 2,
    "storage_unavailable": 3,
    "insufficient_storage": 1,
}


def upyun_code(exc: MediagateError) -> int:
    return exc.status * 100000 + _CODE_INDEX.get(exc.code, 99)


def rest_error(exc: MediagateError, request_id: str, headers: dict[str, str] | None = None) -> JSONResponse:
    note_refusal(exc)
    body: dict[str, Any] = {"msg": exc.message, "code": upyun_code(exc), "id": request_id}
    return JSONResponse(body, status_code=exc.status, headers=headers)


def form_error_body(exc: MediagateError) -> dict[str, Any]:
    note_refusal(exc)
    return {
        "code": exc.status,
        "message": exc.message,
        "url": "",
        "time": int(time.time()),
        "error_code": upyun_code(exc),
    }


def form_error(exc: MediagateError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(form_error_body(exc), status_code=exc.status, headers=headers)

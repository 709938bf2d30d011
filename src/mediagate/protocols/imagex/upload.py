"""The ImageX upload host: mediagate itself, at the ``UploadHosts`` it hands out.

| request                                               | sender          | step                       |
| ----------------------------------------------------- | --------------- | -------------------------- |
| ``POST /upload/v1/<StoreUri>`` + ``Content-Crc32``    | Dreamina seed   | whole file                 |
| ``PUT /<StoreUri>`` + ``Content-CRC32``               | volcengine SDK  | whole file (< 20 MiB)      |
| ``PUT /<StoreUri>?uploads``                           | SDK             | chunked: init → uploadID   |
| ``PUT /<StoreUri>?partNumber=N&uploadID=…``           | SDK             | chunked: one part          |
| ``PUT /<StoreUri>?uploadID=…`` body ``0:crc,1:crc…``  | SDK             | chunked: merge             |

``Authorization`` is the ``Auth`` of the StoreUri (see ``apply``); it is checked before any body
byte is read. ``Content-CRC32`` is compared as a number (the seed does not zero-pad its hex, the
SDK does); a missing one is not checked. Bytes land as parts of the StoreUri's core session (part
0 for a whole file), so a part may arrive at any process; the merge only fixes the part order
after checking every CRC. Nothing is visible before ``CommitImageUpload``.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mediagate import serving
from mediagate.core.errors import (
    BadRequest,
    ChecksumMismatch,
    Conflict,
    Expired,
    Forbidden,
    MediagateError,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
)
from mediagate.core.numbers import parse_uint
from mediagate.core.values import Bucket, UploadSession
from mediagate.http import body_stream, gateway
from mediagate.protocols.imagex.apply import AUTH_PURPOSE, STORE_PREFIX
from mediagate.protocols.imagex.errors import upload_error
from mediagate.protocols.imagex.tokens import unseal

MAX_MERGE_BODY = 64 * 1024
MAX_PARTS = 10000
_CRC = re.compile(r"^[0-9a-fA-F]{1,8}$")
_MERGE_ENTRY = re.compile(r"^(\d{1,5}):([0-9a-fA-F]{1,8})$")


def _ok(payload: dict[str, Any]) -> JSONResponse:
    return JSONResponse(
        {
            "success": 0,
            "error": {"code": 200, "error": "", "error_code": 0, "message": ""},
            "payload": payload,
        }
    )


def parse_crc32(value: str | None) -> int | None:
    if value is None:
        return None
    value = value.strip()
    if not _CRC.match(value):
        raise BadRequest("Content-CRC32 must be the CRC-32 of the body in hex", code="InvalidCrc32")
    return int(value, 16)


async def _authorise(request: Request, uri: str) -> tuple[Bucket, UploadSession, dict[str, Any]]:
    gw = gateway(request)
    token = request.headers.get("authorization", "").strip()
    payload = unseal(gw.secrets.derived(AUTH_PURPOSE), token)
    if payload is None:
        raise Unauthorized(
            "the upload Authorization is not a valid Auth of this service", code="InvalidUploadAuth"
        )
    if payload.get("u") != uri:
        raise Forbidden("this Auth was issued for another StoreUri", code="InvalidUploadAuth")
    if int(payload.get("e", 0)) <= time.time():
        raise Expired("this Auth has expired; apply for a new upload address", code="ExpiredUploadAuth")
    bucket = await gw.find_bucket(str(payload.get("b")))
    if bucket is None:
        raise NotFound("the service of this Auth no longer exists", code="ResourceNotFound")
    try:
        session = await gw.session(str(payload.get("s")), bucket=bucket)
    except NotFound:
        raise Conflict(
            "this StoreUri's upload is over (committed or expired)", code="SessionKeyCommitted"
        ) from None
    if session.state != "open":
        raise Conflict("this StoreUri was already committed", code="SessionKeyCommitted")
    return bucket, session, payload


async def _put(
    request: Request, session: UploadSession, number: int, *, size: int | None, budget: Budget | None = None
) -> int:
    """Store one part (checked against Content-CRC32, an exact ``size`` or at most the ``budget``'s
    bytes, cut off while streaming); returns its CRC-32."""
    gw = gateway(request)
    crc = parse_crc32(request.headers.get("content-crc32"))
    declared = request.headers.get("content-length")
    length = parse_uint(declared) if declared is not None else None
    if size is not None and length is not None and length != size:
        raise BadRequest(f"the body has {declared} bytes but FileSize was {size}", code="InvalidFileSize")
    if budget is not None and (budget.left <= 0 or (length is not None and length > budget.left)):
        raise budget.exceeded()
    try:
        part = await gw.put_part(
            session,
            number,
            body_stream(request),
            max_size=budget.left if budget is not None else None,
            expected_size=size,
            expected_crc32=crc,
        )
    except ChecksumMismatch as exc:
        code = "InvalidCrc32" if "CRC32" in exc.message else "InvalidFileSize"
        raise BadRequest(exc.message, code=code) from None
    except PayloadTooLarge:
        if budget is None:
            raise
        raise budget.exceeded() from None
    return part.crc32


@dataclass(frozen=True)
class Budget:
    """What a chunk may still hold: the applied FileSize (else the server's upload limit) less the
    parts already stored under other numbers. Two parts racing may both pass; the merge and the
    commit bind the sum again."""

    left: int
    limit: int
    what: str

    def exceeded(self) -> BadRequest:
        return BadRequest(
            f"the parts would hold more than {self.what} ({self.limit} bytes; {max(self.left, 0)} left)",
            code="InvalidFileSize",
        )


async def _part_budget(request: Request, session: UploadSession, number: int, size: int | None) -> Budget:
    gw = gateway(request)
    others = sum(p.size for p in await gw.parts(session) if p.part_number != number)
    if size is not None:
        return Budget(size - others, size, "the FileSize applied for")
    limit = gw.settings.max_upload_size
    return Budget(limit - others, limit, "the server's upload limit")


async def _whole(request: Request, session: UploadSession, payload: dict[str, Any]) -> int:
    size = payload.get("n")
    crc = await _put(request, session, 0, size=size if isinstance(size, int) else None)
    await gateway(request).update_session_data(session, {**session.data, "merged": [0]})
    return crc


async def _chunked(request: Request, session: UploadSession, payload: dict[str, Any]) -> Response:
    gw = gateway(request)
    query = request.query_params
    if "uploads" in query:
        large = request.headers.get("x-storage-mode", "").lower() == "gateway"
        await gw.update_session_data(session, {**session.data, "chunked": True, "large": large})
        return _ok({"uploadID": session.id})
    if query.get("uploadID") != session.id:
        raise BadRequest("unknown uploadID for this StoreUri", code="InvalidParameter")
    if "partNumber" in query:
        raw = query.get("partNumber", "")
        number = parse_uint(raw, max_digits=6)
        if number is None or number > MAX_PARTS:
            raise BadRequest(f"partNumber must be 0..{MAX_PARTS}", code="InvalidParameter")
        size = payload.get("n")
        budget = await _part_budget(request, session, number, size if isinstance(size, int) else None)
        crc = await _put(request, session, number, size=None, budget=budget)
        # a part stored after a merge (or a whole-file PUT) voids it: commit needs a merge that saw it
        await gw.update_session_data(session, {k: v for k, v in session.data.items() if k != "merged"})
        return _ok({"hash": f"{crc:08x}"})
    return await _merge(request, session, payload)


async def _merge(request: Request, session: UploadSession, payload: dict[str, Any]) -> Response:
    gw = gateway(request)
    body = bytearray()
    async for chunk in body_stream(request):
        body += chunk
        if len(body) > MAX_MERGE_BODY:
            raise BadRequest("the merge body is too long", code="InvalidParameter")
    try:
        entries = [e.strip() for e in body.decode("ascii").split(",") if e.strip()]
    except UnicodeDecodeError:
        raise BadRequest("the merge body must be '0:<crc32>,1:<crc32>,…'", code="InvalidParameter") from None
    parsed = [_MERGE_ENTRY.match(e) for e in entries]
    if not entries or any(m is None for m in parsed):
        raise BadRequest("the merge body must be '0:<crc32>,1:<crc32>,…'", code="InvalidParameter")
    crcs = {int(m[1]): int(m[2], 16) for m in parsed if m is not None}
    if sorted(crcs) != list(range(len(entries))):
        raise BadRequest("the merge body must list parts 0..n-1 once each", code="InvalidParameter")
    parts = await gw.parts(session)
    if len(parts) != len(entries):
        raise BadRequest(
            f"{len(parts)} parts were uploaded but the merge lists {len(entries)}", code="InvalidParameter"
        )
    for index, part in enumerate(parts):  # sorted by part number
        if part.crc32 != crcs[index]:
            raise BadRequest(
                f"part {part.part_number}'s CRC32 does not match entry {index}", code="InvalidCrc32"
            )
    size = payload.get("n")
    total = sum(p.size for p in parts)
    if isinstance(size, int) and total != size:
        raise BadRequest(f"the parts hold {total} bytes but FileSize was {size}", code="InvalidFileSize")
    await gw.update_session_data(session, {**session.data, "merged": [p.part_number for p in parts]})
    return _ok({"key": f"{STORE_PREFIX}{session.key}", "size": total})


async def seed_upload(request: Request) -> Response:
    """``POST /upload/v1/<StoreUri>`` (the Dreamina script)."""
    uri = request.path_params["store_uri"]
    try:
        _, session, payload = await _authorise(request, uri)
        crc = await _whole(request, session, payload)
    except MediagateError as exc:
        return upload_error(request, exc)
    return JSONResponse(
        {"code": 2000, "apiversion": "v1", "message": "Success", "data": {"crc32": f"{crc:08x}"}}
    )


async def store_endpoint(request: Request) -> Response:
    """``PUT /tos-cn-i-<sid>/<name>`` (the SDK, whole or chunked); GET/HEAD read the object."""
    sid, name = request.path_params["sid"], request.path_params["name"]
    if request.method in ("GET", "HEAD"):
        return await serving.read(request, sid, name)
    uri = f"{STORE_PREFIX}{sid}/{name}"
    try:
        _, session, payload = await _authorise(request, uri)
        query = request.query_params
        if any(k in query for k in ("uploads", "partNumber", "uploadID")):
            return await _chunked(request, session, payload)
        crc = await _whole(request, session, payload)
    except MediagateError as exc:
        return upload_error(request, exc)
    return _ok({"hash": f"{crc:08x}"})

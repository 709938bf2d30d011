"""UPYUN multi-part uploads on ``PUT /<bucket>/<key>`` (spec §4), both flavours the SDK speaks.

``X-Upyun-Multi-Stage`` is a comma list of ``initiate``, ``upload``, ``complete``; one request may
do several (``initiate,upload`` carries part 0; ``upload,complete`` the last part).

* **Sequential** (``resume.py``): parts must arrive in order. A part out of order is answered
  ``{"msg": "part id error"}`` with ``X-Upyun-Next-Part-Id`` = the part we expect (``-1`` when every
  part is present, so the client sends ``complete``); the SDK resumes from that id.
* **Disorder** (``multi.py``, ``X-Upyun-Multi-Disorder: true`` on initiate): parts in any order
  and in parallel; ``DELETE`` with ``X-Upyun-Multi-Uuid`` cancels (the existing object of that key,
  if any, is untouched).

Answers: initiate and upload are ``204 No Content`` (the node SDK insists), complete is ``204``
too (the node SDK takes 204 or 201, python any 2xx), all with the state in headers. The upload id
``X-Upyun-Multi-Uuid`` is a 36-character UUID (the newer python SDK refuses any other length when
resuming); the 32-hex form is accepted too. ``GET`` with ``X-Upyun-Multi-Uuid`` lists the parts
stored so far as ``{"parts": [{"id", "size", "etag"}]}``, from ``X-Upyun-Part-Id`` on when given
(``list_uploaded_parts`` in the python SDK, ``ListMultipartParts`` in the go SDK).

Initiate takes ``X-Upyun-Multi-Length`` (total bytes; required for sequential uploads),
``X-Upyun-Multi-Part-Size`` (default 1 MiB for sequential uploads; without it a disorder upload
takes parts of any size), ``X-Upyun-Multi-Type`` (or ``Content-Type``), ``x-upyun-meta-*``,
``Content-Secret``; it answers ``X-Upyun-Multi-Uuid``. When length and part size are known every
part must have exactly its size (the last one the remainder). ``Content-MD5`` checks one part,
``X-Upyun-Multi-MD5`` on complete the whole file (or, as the python SDK's own ``test_multi``
computes it, the md5 of the parts' hex MD5s joined in id order). Every answer carries
``X-Upyun-Next-Part-Id``.

Sessions and parts live in the catalog and storage (``Gateway.start_session`` …), so an upload
survives a restart and its parts may land on different processes; nothing is visible before
complete. A completed session is remembered (``keep_record``) so that a repeated completion is
answered ``file already upload``, which the SDK takes as success. The SDK branches on the exact
``msg`` texts below.
"""

from __future__ import annotations

import hashlib
import math
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mediagate.core.errors import BadRequest, ChecksumMismatch, NotFound, PayloadTooLarge
from mediagate.core.gateway import Gateway
from mediagate.core.keys import split_key
from mediagate.core.numbers import parse_uint
from mediagate.core.values import Bucket, UploadPart, UploadSession
from mediagate.protocols.upyun.objects import UploadOptions, parse_md5, stored_headers, upload_options

DIALECT = "upyun"
SEQUENTIAL = "sequential"
DISORDER = "disorder"
DEFAULT_PART_SIZE = 1024 * 1024
MAX_PARTS = 10000
STAGES = frozenset({"initiate", "upload", "complete"})
COMPLETED = "completed"
_UPLOAD_ID = re.compile(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")


class PartIdError(BadRequest):
    """A sequential part out of order; ``X-Upyun-Next-Part-Id`` tells the client where to resume."""

    code = "part_id_error"

    def __init__(self, next_id: int) -> None:
        super().__init__("part id error")
        self.headers = {"X-Upyun-Next-Part-Id": str(next_id)}


class UuidNotFound(NotFound):
    code = "session_not_found"
    default_message = "x-upyun-multi-uuid not found"


class AlreadyUploaded(BadRequest):
    code = "file_already_uploaded"
    default_message = "file already upload"


class Md5NotMatch(ChecksumMismatch):
    default_message = "file md5 not match"


# -- entry points ------------------------------------------------------------------------------------


async def put(
    request: Request, gw: Gateway, bucket: Bucket, key: str, body: AsyncIterator[bytes]
) -> Response:
    """A ``PUT`` carrying ``X-Upyun-Multi-Stage`` (and/or ``X-Upyun-Multi-Uuid``)."""
    headers = request.headers
    stage_header = headers.get("x-upyun-multi-stage")
    if stage_header is None:
        raise BadRequest("X-Upyun-Multi-Stage is required with X-Upyun-Multi-Uuid")
    stages = _stages(stage_header)
    if "initiate" in stages:
        if headers.get("x-upyun-multi-uuid"):
            raise BadRequest("initiate starts a new upload: do not send X-Upyun-Multi-Uuid with it")
        return await _initiate(request, gw, bucket, key, stages, body)
    session = await _session(gw, bucket, key, headers.get("x-upyun-multi-uuid"))
    if session.state == COMPLETED:
        raise AlreadyUploaded()
    next_id: int | None = None
    if "upload" in stages:
        next_id = await _upload(request, gw, session, body)
    elif _content_length(request) > 0:
        raise BadRequest("a complete request carries no body")
    if "complete" in stages:
        return await _complete(request, gw, bucket, session)
    return _answer(session, next_id if next_id is not None else -1)


async def cancel(request: Request, gw: Gateway, bucket: Bucket, key: str) -> Response:
    """``DELETE`` with ``X-Upyun-Multi-Uuid``: abort the upload; no object is deleted."""
    session = await _session(gw, bucket, key, request.headers.get("x-upyun-multi-uuid"))
    if session.state == COMPLETED:
        raise AlreadyUploaded()
    await gw.abort_session(session)
    return Response(status_code=200, headers={"X-Upyun-Multi-Uuid": upload_id(session)})


async def list_parts(request: Request, gw: Gateway, bucket: Bucket, key: str) -> Response:
    """``GET`` with ``X-Upyun-Multi-Uuid``: the parts stored so far, in id order."""
    headers = request.headers
    session = await _session(gw, bucket, key, headers.get("x-upyun-multi-uuid"))
    if session.state == COMPLETED:
        raise AlreadyUploaded()
    begin = headers.get("x-upyun-part-id")
    first = _part_id(begin) if begin is not None and begin.strip() else 0
    parts = sorted(await gw.parts(session), key=lambda p: p.part_number)
    listed = [{"id": p.part_number, "size": p.size, "etag": p.md5} for p in parts if p.part_number >= first]
    next_id = _next_missing(parts, _expected_parts(session))
    return JSONResponse(
        {"parts": listed},
        headers={"X-Upyun-Multi-Uuid": upload_id(session), "X-Upyun-Next-Part-Id": str(next_id)},
    )


# -- steps -------------------------------------------------------------------------------------------


async def _initiate(
    request: Request,
    gw: Gateway,
    bucket: Bucket,
    key: str,
    stages: frozenset[str],
    body: AsyncIterator[bytes],
) -> Response:
    headers = request.headers
    disorder = headers.get("x-upyun-multi-disorder", "").strip().lower() == "true"
    protocol = DISORDER if disorder else SEQUENTIAL
    total = _int_header(headers.get("x-upyun-multi-length"), "X-Upyun-Multi-Length", minimum=0)
    part_size = _int_header(headers.get("x-upyun-multi-part-size"), "X-Upyun-Multi-Part-Size", minimum=1)
    if protocol == SEQUENTIAL:
        if total is None:
            raise BadRequest("X-Upyun-Multi-Length (the file's total size) is required")
        part_size = part_size or DEFAULT_PART_SIZE
    if total is not None and total > gw.settings.max_upload_size:
        raise PayloadTooLarge(f"file exceeds the maximum upload size of {gw.settings.max_upload_size} bytes")
    if total is not None and part_size is not None and _part_count(total, part_size) > MAX_PARTS:
        raise BadRequest(f"at most {MAX_PARTS} parts: use a larger X-Upyun-Multi-Part-Size")
    if "upload" in stages and _part_id(headers.get("x-upyun-part-id")) != 0:
        raise BadRequest("the part sent with initiate must be X-Upyun-Part-Id: 0")
    if "complete" in stages and "upload" not in stages:
        raise BadRequest("initiate,complete without upload: there are no parts to complete")
    kind = headers.get("x-upyun-multi-type") or headers.get("content-type")
    if kind is not None and kind.strip().lower() == "application/octet-stream":
        kind = None  # the SDK's "could not guess": let the bytes decide
    options = upload_options(headers, content_type=kind)
    session = await gw.start_session(
        bucket,
        DIALECT,
        key,
        total_size=total,
        part_size=part_size,
        data={"protocol": protocol, "options": options.to_data()},
        replacing=key,  # a REST upload replaces what the key names
    )
    next_id = 0
    try:
        if "upload" in stages:
            next_id = await _upload(request, gw, session, body)
        if "complete" in stages:
            return await _complete(request, gw, bucket, session)
    except BaseException:
        await gw.abort_session(session)
        raise
    return _answer(session, next_id)


async def _upload(request: Request, gw: Gateway, session: UploadSession, body: AsyncIterator[bytes]) -> int:
    """Store the body as part ``X-Upyun-Part-Id``; returns the next part id we expect (-1: none)."""
    headers = request.headers
    part_id = _part_id(headers.get("x-upyun-part-id"))
    count = _expected_parts(session)
    if count is not None and part_id >= count:
        if _protocol(session) == SEQUENTIAL:
            raise PartIdError(_next_missing(await gw.parts(session), count))
        raise BadRequest(f"part id {part_id} is past the last part ({count - 1}) of this upload")
    if _protocol(session) == SEQUENTIAL:
        expected = _next_missing(await gw.parts(session), count)
        if part_id != expected:
            raise PartIdError(expected)
    md5_header = headers.get("content-md5")
    md5 = parse_md5(md5_header, "Content-MD5") if md5_header is not None else None
    size = _part_length(session, part_id)
    max_size = session.part_size if size is None else None
    await gw.put_part(session, part_id, body, max_size=max_size, expected_md5=md5, expected_size=size)
    return _next_missing(await gw.parts(session), count)


async def _complete(request: Request, gw: Gateway, bucket: Bucket, session: UploadSession) -> Response:
    headers = request.headers
    parts = await gw.parts(session)
    count = _expected_parts(session)
    numbers = [p.part_number for p in parts]
    if count is None:
        count = (max(numbers) + 1) if numbers else 0
    missing = [n for n in range(count) if n not in set(numbers)]
    if missing or count == 0:
        if _protocol(session) == SEQUENTIAL:
            raise PartIdError(missing[0] if missing else 0)
        shown = ", ".join(str(n) for n in missing[:20]) + (" …" if len(missing) > 20 else "")
        raise BadRequest(f"parts missing: {shown or 'all'}", code="missing_parts")
    size = sum(p.size for p in parts)
    if session.total_size is not None and size != session.total_size:
        raise BadRequest(
            f"the parts hold {size} bytes, not the declared X-Upyun-Multi-Length {session.total_size}",
            code="checksum_mismatch",
        )
    md5_header = headers.get("x-upyun-multi-md5")
    multi_md5 = parse_md5(md5_header, "X-Upyun-Multi-MD5") if md5_header else None
    if multi_md5 is not None and multi_md5 == _md5_of_parts(parts, count):
        multi_md5 = None  # the digest of the parts' digests (the SDK's own test): every part matches
    options = UploadOptions.from_data(_data(session).get("options") or {})
    grant = options.grant(bucket.name, session.key, content_md5=multi_md5)
    try:
        stored = await gw.complete_session(
            session,
            grant,
            part_numbers=list(range(count)),
            filename=split_key(session.key)[1],
            keep_record=True,
        )
    except ChecksumMismatch as exc:
        raise Md5NotMatch() from exc
    return Response(
        status_code=204,
        headers={
            **stored_headers(stored.object),
            "X-Upyun-Multi-Uuid": upload_id(session),
            "X-Upyun-Next-Part-Id": "-1",
        },
    )


# -- helpers -----------------------------------------------------------------------------------------


def _answer(session: UploadSession, next_id: int) -> Response:
    return Response(
        status_code=204,
        headers={"X-Upyun-Multi-Uuid": upload_id(session), "X-Upyun-Next-Part-Id": str(next_id)},
    )


def upload_id(session: UploadSession) -> str:
    """The session id as UPYUN spells an upload id: a 36-character UUID."""
    try:
        return str(uuid.UUID(session.id))
    except ValueError:  # not a UUID-shaped id: hand it out as it is
        return session.id


async def _session(gw: Gateway, bucket: Bucket, key: str, value: str | None) -> UploadSession:
    """The upload ``value`` (UUID, with or without hyphens) of this bucket and key (any mismatch
    reads as an unknown uuid)."""
    text = (value or "").strip()
    if not _UPLOAD_ID.fullmatch(text):
        raise UuidNotFound()
    parsed = uuid.UUID(text)
    session: UploadSession | None = None
    for candidate in dict.fromkeys((parsed.hex, str(parsed))):  # however the core spells its ids
        try:
            session = await gw.session(candidate, bucket=bucket)
            break
        except NotFound:
            continue
    if session is None or session.dialect != DIALECT or session.key != key:
        raise UuidNotFound()
    return session


def _md5_of_parts(parts: list[UploadPart], count: int) -> str:
    """md5 of the parts' hex MD5s joined in id order, the other reading of X-Upyun-Multi-MD5."""
    by_id = {p.part_number: p.md5 for p in parts}
    return hashlib.md5("".join(by_id[n] for n in range(count)).encode()).hexdigest()


def _stages(value: str) -> frozenset[str]:
    stages = frozenset(s.strip().lower() for s in value.split(",") if s.strip())
    unknown = stages - STAGES
    if not stages or unknown:
        raise BadRequest("X-Upyun-Multi-Stage is a comma list of initiate, upload, complete")
    return stages


def _int_header(value: str | None, name: str, *, minimum: int) -> int | None:
    if value is None or not value.strip():
        return None
    number = parse_uint(value)
    if number is None or number < minimum:
        raise BadRequest(f"{name} must be an integer of at least {minimum}")
    return number


def _part_id(value: str | None) -> int:
    number = parse_uint(value or "", max_digits=6)
    if number is None or number >= MAX_PARTS:
        raise BadRequest(f"X-Upyun-Part-Id must be an integer from 0 to {MAX_PARTS - 1}")
    return number


def _content_length(request: Request) -> int:
    return parse_uint(request.headers.get("content-length") or "0") or 0


def _part_count(total: int, part_size: int) -> int:
    return max(1, math.ceil(total / part_size))


def _data(session: UploadSession) -> dict[str, Any]:
    return dict(session.data or {})


def _protocol(session: UploadSession) -> str:
    return str(_data(session).get("protocol", SEQUENTIAL))


def _expected_parts(session: UploadSession) -> int | None:
    if session.total_size is None or not session.part_size:
        return None
    return _part_count(session.total_size, session.part_size)


def _part_length(session: UploadSession, part_id: int) -> int | None:
    """The exact size part ``part_id`` must have, when length and part size are known."""
    if session.total_size is None or not session.part_size:
        return None
    return max(0, min(session.part_size, session.total_size - part_id * session.part_size))


def _next_missing(parts: list[UploadPart], count: int | None) -> int:
    """The lowest part id not yet stored; -1 when all ``count`` parts are there."""
    present = {p.part_number for p in parts}
    n = 0
    while n in present:
        n += 1
    return -1 if count is not None and n >= count else n

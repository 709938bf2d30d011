"""Wantu block (multi-part) upload: ``blockInit``, ``blockUpload``, ``blockComplete``, ``blockCancel``.

A block upload is a core upload session (catalog row + parts in storage), so it survives a
restart and its calls may land on different processes. The session id (32 hex) is both of Wantu's
ids: ``uploadId`` is it in upper case, ``id`` the same 128 bits written as a dashed UUID; a call
giving both must give the same upload.

* ``blockInit`` authorises, records the session with the policy and the form fields (dir, name,
  meta-*, var-*) and stores the first block as part 1; if that block is refused the session is
  dropped at once.
* ``blockUpload`` stores part ``partNumber`` (a positive integer; re-sending a number replaces it).
  The policy's sizeLimit binds the whole file: a block that would take the sum of the blocks past
  it is refused before it is read (from its declared ``size``) or while it streams.
* ``blockComplete`` takes ``parts`` = base64 JSON ``[{"eTag", "partNumber"}]`` and, optionally,
  the whole-file ``md5`` (the seed's own example and the JS SDK omit it): every listed part must
  exist with that ETag (case-insensitive, numbers as int or string, no duplicates), and without
  ``md5`` the list must name every uploaded block. They are assembled in partNumber order, and the
  result goes through the same checks, placeholders and answers as a single upload. A refused
  completion keeps the session, so the client can fix and retry.
* ``blockCancel`` drops the session and its parts (200, empty body).

A session keeps the grant it was opened with (the blockInit token's policy and fields). Every
later call needs a valid upload token of the same namespace (the seed: the same token for all)
whose policy allows the same file: the same dir and name, or none (left to the form, as at
blockInit). That token can only narrow the grant: its sizeLimit, if smaller, and its insertOnly
apply too. A token for another file cannot add to, complete or cancel the session (401).
Block ETags are upper-case hex md5, as in the seed's examples.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from mediagate.core import jsonin
from mediagate.core.errors import BadRequest, NotFound, Unauthorized
from mediagate.core.gateway import Gateway
from mediagate.core.values import UploadPart, UploadSession
from mediagate.http import request_id
from mediagate.protocols.wantu.policy import (
    KeyContext,
    WantuPolicy,
    build_grant,
    declared_type,
    name_templates,
    parse_md5,
    parse_size,
    with_leading_slash,
)
from mediagate.protocols.wantu.signing import b64decode, check_dir, parse_upload_token
from mediagate.protocols.wantu.upload import (
    Authorised,
    answer,
    authorise,
    file_fields,
    file_stream,
    guarded,
    media_encode,
    read_form,
    tell,
)

DIALECT = "wantu"
MAX_PART_NUMBER = 10000
_HEX32 = re.compile(r"^[0-9a-fA-F]{32}$")


def _ids(session_id: str) -> dict[str, str]:
    return {"id": str(uuid.UUID(hex=session_id)), "uploadId": session_id.upper()}


def _session_id(fields: dict[str, str]) -> str:
    """The session named by ``uploadId`` and/or ``id`` (they must agree)."""
    upload_id = fields.get("uploadId", "").strip()
    dashed = fields.get("id", "").strip()
    if not upload_id and not dashed:
        raise BadRequest("uploadId and id are required", code="missing_field")
    found: set[str] = set()
    if upload_id:
        if not _HEX32.match(upload_id):
            raise BadRequest("uploadId must be 32 hexadecimal characters", code="invalid_argument")
        found.add(upload_id.lower())
    if dashed:
        try:
            found.add(uuid.UUID(dashed).hex)
        except ValueError as exc:
            raise BadRequest("id is not an upload id", code="invalid_argument") from exc
    if len(found) != 1:
        raise BadRequest("id and uploadId name different uploads", code="invalid_argument")
    return found.pop()


async def _session(gw: Gateway, auth: Authorised, fields: dict[str, str]) -> tuple[UploadSession, KeyContext]:
    """The session named by the form, with its key context, once this call's token is shown to
    allow the session's target (see :func:`_check_target`)."""
    session = await gw.session(_session_id(fields), bucket=auth.bucket)
    if session.dialect != DIALECT:
        raise NotFound("upload not found", code="session_not_found")
    ctx = _context(auth, session)
    _check_target(auth.policy, ctx)
    return session, ctx


def _same_dir(a: str, b: str) -> bool:
    return a.strip("/") == b.strip("/")


def _check_target(policy: WantuPolicy, ctx: KeyContext) -> None:
    """A later call's token must allow the file the session was opened for: its policy names the
    same dir and name, or leaves them to the form (as the blockInit call's did). A token for
    another file cannot add blocks to, complete or cancel this one."""
    if policy.dir is not None and not _same_dir(policy.dir, ctx.dir_template):
        raise Unauthorized(
            "the upload token is for another dir than this block upload", code="grant_mismatch"
        )
    if policy.name is not None and policy.name != ctx.name_template:
        raise Unauthorized(
            "the upload token is for another name than this block upload", code="grant_mismatch"
        )


def _bounded(session_policy: WantuPolicy, current: WantuPolicy) -> WantuPolicy:
    """The session's policy, narrowed by this call's token: the smaller sizeLimit, and insertOnly
    if either asks for it. The session never gains what its own token did not grant."""
    limits = [x for x in (session_policy.size_limit, current.size_limit) if x is not None]
    return replace(
        session_policy,
        size_limit=min(limits) if limits else None,
        insert_only=session_policy.insert_only or current.insert_only,
    )


def _room(limit: int | None, parts: list[UploadPart], number: int) -> int | None:
    """Bytes part ``number`` may have so that the whole file stays within ``limit``."""
    if limit is None:
        return None
    others = sum(p.size for p in parts if p.part_number != number)
    return limit - others


def _part_number(fields: dict[str, str]) -> int:
    raw = fields.get("partNumber", "").strip()
    if not re.fullmatch(r"\d{1,6}", raw) or not 1 <= int(raw) <= MAX_PART_NUMBER:
        raise BadRequest(
            f"partNumber must be an integer from 1 to {MAX_PART_NUMBER}", code="invalid_argument"
        )
    return int(raw)


def _context(auth: Authorised, session: UploadSession) -> KeyContext:
    """The key context of a session, from the policy and fields recorded at blockInit."""
    data = session.data
    policy = WantuPolicy.parse(parse_upload_token(data["token"]).policy())
    fields = {str(k): str(v) for k, v in data["fields"].items()}
    dir_t, name_t = name_templates(policy, fields)
    return KeyContext(auth.bucket, policy, dir_t, name_t, fields)


def _shown(ctx: KeyContext) -> dict[str, str]:
    """dir/name as far as known before the bytes are in (templates not yet rendered)."""
    return {"dir": with_leading_slash(ctx.dir_template), "name": ctx.name_template}


# -- blockInit -----------------------------------------------------------------------------------------


async def _init(request: Request, gw: Gateway, body: AsyncIterator[bytes]) -> Response:
    auth = await authorise(request, gw)
    form = await read_form(request, gw, body, want_file=True)
    assert form.file is not None
    fields = form.fields
    dir_t, name_t = name_templates(auth.policy, fields)
    if "$" not in dir_t:
        check_dir(with_leading_slash(dir_t))
    size, md5 = parse_size(fields), parse_md5(fields)
    limit = auth.policy.size_limit
    if limit is not None and size is not None and size > limit:
        raise BadRequest(f"block size {size} exceeds the policy sizeLimit {limit}", code="size_out_of_range")
    kept = {
        k: v for k, v in fields.items() if k in ("dir", "name") or k.lower().startswith(("meta-", "var-"))
    }
    data: dict[str, Any] = {
        "token": request.headers["authorization"].strip().partition(" ")[2].strip(),
        "fields": kept,
        "filename": form.file.filename,
        "content_type": form.file.content_type,
    }
    session = await gw.start_session(auth.bucket, DIALECT, f"{dir_t.strip('/')}/{name_t}", data=data)
    try:
        part = await gw.put_part(
            session, 1, file_stream(form), max_size=limit, expected_md5=md5, expected_size=size
        )
    except BaseException:
        await gw.abort_session(session)
        raise
    ctx = KeyContext(auth.bucket, auth.policy, dir_t, name_t, kept)
    fields_out = _ids(session.id) | {"partNumber": 1, "eTag": part.md5.upper()} | _shown(ctx)
    return answer(fields_out | {"requestId": request_id(request)})


async def block_init(request: Request) -> Response:
    return await guarded(request, _init)


# -- blockUpload ---------------------------------------------------------------------------------------


async def _upload(request: Request, gw: Gateway, body: AsyncIterator[bytes]) -> Response:
    auth = await authorise(request, gw)
    form = await read_form(request, gw, body, want_file=True)
    number = _part_number(form.fields)
    size, md5 = parse_size(form.fields), parse_md5(form.fields)
    session, ctx = await _session(gw, auth, form.fields)
    limit = _bounded(ctx.policy, auth.policy).size_limit
    room = _room(limit, await gw.parts(session), number)
    if room is not None and (room < 1 or (size is not None and size > room)):
        raise BadRequest(
            f"this block would take the file past the policy sizeLimit {limit}", code="size_out_of_range"
        )
    part = await gw.put_part(
        session, number, file_stream(form), max_size=room, expected_md5=md5, expected_size=size
    )
    fields_out = _ids(session.id) | {"partNumber": number, "eTag": part.md5.upper()} | _shown(ctx)
    return answer(fields_out | {"requestId": request_id(request)})


async def block_upload(request: Request) -> Response:
    return await guarded(request, _upload)


# -- blockComplete -------------------------------------------------------------------------------------


def parse_parts(raw: str) -> list[tuple[int, str]]:
    """``parts`` -> [(partNumber, eTag lower)] in partNumber order; BadRequest when malformed."""
    if not raw.strip():
        raise BadRequest("parts is required", code="missing_field")
    try:
        items = jsonin.loads(b64decode(raw).decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("parts must be URL-safe base64 of a JSON array", code="invalid_argument") from exc
    if not isinstance(items, list) or not items:
        raise BadRequest("parts must be a non-empty JSON array", code="invalid_argument")
    found: dict[int, str] = {}
    for item in items:
        if not isinstance(item, dict):
            raise BadRequest('each part must be {"eTag": ..., "partNumber": ...}', code="invalid_argument")
        number, etag = item.get("partNumber"), item.get("eTag", item.get("etag", item.get("ETag")))
        if isinstance(number, str) and re.fullmatch(r"\d{1,6}", number.strip()):
            number = int(number)
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= MAX_PART_NUMBER:
            raise BadRequest(
                f"partNumber must be an integer from 1 to {MAX_PART_NUMBER}", code="invalid_argument"
            )
        if not isinstance(etag, str) or not _HEX32.match(etag.strip().strip('"')):
            raise BadRequest(
                f"part {number}: eTag must be 32 hexadecimal characters", code="invalid_argument"
            )
        if number in found:
            raise BadRequest(f"part {number} is listed twice", code="invalid_argument")
        found[number] = etag.strip().strip('"').lower()
    return sorted(found.items())


async def _complete(request: Request, gw: Gateway, body: AsyncIterator[bytes]) -> Response:
    auth = await authorise(request, gw)
    form = await read_form(request, gw, body, want_file=False)
    fields = form.fields
    listed = parse_parts(fields.get("parts", ""))
    md5 = parse_md5(fields)
    session, ctx = await _session(gw, auth, fields)
    ctx.policy = _bounded(ctx.policy, auth.policy)
    stored_parts = {p.part_number: p for p in await gw.parts(session)}
    if md5 is None and {n for n, _ in listed} != set(stored_parts):
        raise BadRequest(
            "without md5, parts must list every uploaded block (uploaded: "
            f"{sorted(stored_parts)[:50]}, listed: {[n for n, _ in listed][:50]})",
            code="missing_parts",
        )
    limit = ctx.policy.size_limit
    total = sum(stored_parts[n].size for n, _ in listed if n in stored_parts)
    if limit is not None and total > limit:
        raise BadRequest(
            f"the blocks add up to {total} bytes, over the policy sizeLimit {limit}", code="size_out_of_range"
        )
    for number, etag in listed:
        part = stored_parts.get(number)
        if part is None:
            raise BadRequest(f"part {number} was not uploaded", code="missing_parts")
        if part.md5 != etag:
            raise BadRequest(
                f"part {number}: eTag does not match the uploaded block", code="checksum_mismatch"
            )
    data = session.data
    filename = data.get("filename")
    grant = build_grant(
        ctx,
        size=None,
        md5=md5,
        content_type=declared_type(ctx.policy, data.get("content_type"), filename, ctx.name_template),
    )
    encode = media_encode(gw, ctx.bucket, ctx.policy) if ctx.policy.media_encode is not None else None
    stored = await gw.complete_session(
        session, grant, part_numbers=[n for n, _ in listed], filename=filename, notify=encode
    )
    fields_out = file_fields(request, gw, ctx, stored) | _ids(session.id)
    if encode is not None:
        fields_out["taskId"] = encode.task_id
    return await tell(request, gw, ctx, fields_out)


async def block_complete(request: Request) -> Response:
    return await guarded(request, _complete)


# -- blockCancel ---------------------------------------------------------------------------------------


async def _cancel(request: Request, gw: Gateway, body: AsyncIterator[bytes]) -> Response:
    auth = await authorise(request, gw)
    form = await read_form(request, gw, body, want_file=False)
    session, _ = await _session(gw, auth, form.fields)
    await gw.abort_session(session)
    return Response(status_code=200, headers={"requestId": request_id(request)})


async def block_cancel(request: Request) -> Response:
    return await guarded(request, _cancel)

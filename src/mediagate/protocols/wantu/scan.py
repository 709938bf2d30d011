"""Wantu ``/3.1/scanPorn`` (synchronous, as the seed answers it) and ``/3.0/feedback``.

scanPorn: ``resourceId=<rid>;<rid>…`` (the SDK url-encodes the whole value, so ``;`` may arrive
as ``%3B``), at most :data:`MAX_FILES`. Each file is scored by the offline model
(media.moderation); the answer lists one entry per id, in order::

    {"message": "success", "status": 0, "requestId": …,
     "result": [{"file": {"namespace", "dir", "name"}, "score": 0.0123, "type": 0,
                 "status": 0, "message": "success"}, …]}

``type`` is 1 from a score of 0.8. Per-file ``status`` (the seed's table): 0 scored; 2 the file
cannot be had (no such file, or another namespace's); 3 not a jpg/png/bmp image; 4 a malformed
resourceId or URL; 5 over 10 MB; 100 internal error, which includes "the moderation model is not
installed" (the message says how to install it): no entry ever carries a score the model did not
compute. ``url=<url>;<url>…`` (instead of resourceId, never both: 400) downloads each through the
SSRF guard (core.fetch: public addresses only unless ``allow_private_callbacks``, no redirects,
at most 10 MB and :data:`URL_TIMEOUT` s, :data:`URL_DOWNLOADS` at once) into staging, then
scores it like a stored file; the entry's ``file`` is ``{"url": …}``. Per-URL status: 4 not an
http(s) URL, 2 download failed (unresolvable host, refused address, unreachable, not a 200),
5 over 10 MB, 6 download timed out, 3 not an image. An empty list is 400 InvalidArgument.

scanAdvertising: the same request, checks and answer shape (spec §6.14), but there is no
advertising classifier: a file that passes the checks gets status 100 with a message saying so,
and no entry carries a ``score`` or ``type`` (§6.15).

feedback: repeated ``feedback=<JSON>`` fields, each ``{"file": {namespace, dir, name}, "type":
0|1, "wrong": bool, "score": 0..1}`` (``score`` required when ``wrong``), at most
:data:`MAX_FEEDBACK`; all are checked, then all stored (catalog ``feedback``), or none: 400
InvalidArgument names the bad item. Answer ``{"message": "success", "status": 0}``. Served at
``/3.0/feedback`` (the seed) and ``/3.1/feedback`` (the SDK). ``GET /3.0/feedback?currentPage=&
pageSize=`` lists the namespace's feedback, newest first, in the file-listing page shape.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mediagate.core.errors import BadRequest, MediagateError, PayloadTooLarge, Unauthorized, UnsupportedMedia
from mediagate.core.keys import split_key
from mediagate.http import request_id
from mediagate.protocols.wantu.signing import ResourceId, key_of, parse_resource_id, path_to_dir

if TYPE_CHECKING:
    from mediagate.core.gateway import Gateway
    from mediagate.core.values import Bucket
    from mediagate.media.moderation import Moderator

MAX_FILES = 50
MAX_FEEDBACK = 100
OK, INTERNAL, MISSING, WRONG_TYPE, BAD_ID, TOO_BIG, TIMEOUT = 0, 100, 2, 3, 4, 5, 6
URL_TIMEOUT = 20.0
"""Seconds one ``url=`` download may take (resolving included); then status 6."""
URL_DOWNLOADS = 4
"""``url=`` downloads at once per request."""

_moderator: Moderator | None = None


def _values(body: bytes, name: str) -> list[str]:
    return [v for k, v in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True) if k == name]


def _entry(status: int, message: str, file: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"file": file, "status": status, "message": message}


async def scan_porn(request: Request, gw: Gateway, bucket: Bucket, body: bytes) -> Response:
    return await _scan(request, gw, bucket, body, _porn_one)


async def scan_advertising(request: Request, gw: Gateway, bucket: Bucket, body: bytes) -> Response:
    """``/3.1/scanAdvertising``: scanPorn's request and answer (spec §6.14), but this server has
    no advertising classifier, so a file that passes every check gets status 100 saying so, and
    no entry ever has a ``score`` or ``type`` (spec §6.15)."""
    return await _scan(request, gw, bucket, body, _advertising_one)


Scanner = Callable[["Gateway", Path, dict[str, Any]], Awaitable[dict[str, Any]]]
"""Scores one local file (a stored object's copy or a downloaded URL) into its answer entry."""


async def _scan(request: Request, gw: Gateway, bucket: Bucket, body: bytes, scan_one: Scanner) -> Response:
    ids = ";".join(_values(body, "resourceId"))
    urls = ";".join(_values(body, "url"))
    if ids.strip(" ;") and urls.strip(" ;"):
        raise BadRequest("send resourceId or url, not both", code="invalid_argument")
    items = [i.strip() for i in (ids or urls).split(";") if i.strip()]
    if not items:
        raise BadRequest(
            "resourceId (';'-separated file resourceIds) or url (';'-separated URLs) is required",
            code="invalid_argument",
        )
    if len(items) > MAX_FILES:
        raise BadRequest(f"at most {MAX_FILES} files per scan", code="invalid_argument")
    if ids:
        result = [await _scan_one(gw, bucket, item, scan_one) for item in items]
    else:
        gate = asyncio.Semaphore(URL_DOWNLOADS)
        result = list(await asyncio.gather(*(_scan_url(gw, gate, item, scan_one) for item in items)))
    rid = request_id(request)
    return JSONResponse({"message": "success", "result": result, "status": 0, "requestId": rid})


async def _scan_one(gw: Gateway, bucket: Bucket, raw: str, scan_one: Scanner) -> dict[str, Any]:
    """A resourceId of this namespace, checked (status 4 not a file resourceId, 2 no such file
    here, 5 over 10 MB), then handed to ``scan_one`` as a local file."""
    from mediagate.media.moderation import MAX_BYTES

    try:
        rid = parse_resource_id(raw, file=True)
    except MediagateError:
        return _entry(BAD_ID, "not a valid file resourceId", {"resourceId": raw[:1024]})
    file = {"dir": rid.dir, "name": rid.name, "namespace": rid.namespace or bucket.name}
    if rid.namespace not in ("", bucket.name):
        return _entry(MISSING, "file download failed: no such file in this namespace", file)
    try:
        obj = await gw.get_object(bucket, key_of(rid))
    except MediagateError:
        return _entry(MISSING, "file download failed: no such file", file)
    if obj.size > MAX_BYTES:
        return _entry(TOO_BIG, "file too large: only files under 10 MB are scanned", file)
    async with gw.local_copy(obj) as path:
        return await scan_one(gw, path, file)


async def _scan_url(gw: Gateway, gate: asyncio.Semaphore, url: str, scan_one: Scanner) -> dict[str, Any]:
    """Download through the SSRF guard (at most 10 MB, :data:`URL_TIMEOUT` s), then scan."""
    from mediagate.core import fetch
    from mediagate.media.moderation import MAX_BYTES

    file = {"url": url[:1024]}
    try:
        async with gate, fetch.fetched(gw, url, max_bytes=MAX_BYTES, timeout=URL_TIMEOUT) as path:
            return await scan_one(gw, path, file)
    except fetch.BadUrl as exc:
        return _entry(BAD_ID, f"url format error: {exc.message}", file)
    except fetch.FetchTooLarge as exc:
        return _entry(TOO_BIG, f"file too large: only files under 10 MB are scanned ({exc.message})", file)
    except fetch.FetchTimeout as exc:
        return _entry(TIMEOUT, f"file download timed out: {exc.message}", file)
    except fetch.FetchFailed as exc:
        return _entry(MISSING, f"file download failed: {exc.message}", file)


async def _porn_one(gw: Gateway, path: Path, file: dict[str, Any]) -> dict[str, Any]:
    from mediagate.media.moderation import WANTU_FORMATS, ModerationUnavailable, Moderator

    global _moderator
    if _moderator is None:
        _moderator = Moderator(gw.image_limits)
    try:
        verdict = await _moderator.ascore(path, formats=WANTU_FORMATS)
    except UnsupportedMedia as exc:
        return _entry(WRONG_TYPE, f"wrong file type: only jpg, png and bmp are scanned ({exc.message})", file)
    except PayloadTooLarge as exc:
        return _entry(TOO_BIG, f"file too large: {exc.message}", file)
    except ModerationUnavailable as exc:
        return _entry(INTERNAL, exc.message, file)
    return {"file": file} | verdict.wantu()


NO_ADVERTISING_MODEL = (
    "advertising detection is not available: this server has no advertising classifier installed "
    "(mediagate ships none), so no score is given"
)


async def _advertising_one(gw: Gateway, path: Path, file: dict[str, Any]) -> dict[str, Any]:
    """The checks scanPorn makes of the file itself (jpg/png/bmp), then status 100: no classifier."""
    from anyio import to_thread

    from mediagate.media.moderation import WANTU_FORMATS
    from mediagate.media.probe import probe_for_decode

    info = await to_thread.run_sync(probe_for_decode, path)
    if info is None or info.format not in WANTU_FORMATS:
        kind = "not an image" if info is None else f"{info.format.lower()} image"
        return _entry(WRONG_TYPE, f"wrong file type: only jpg, png and bmp are scanned ({kind})", file)
    return _entry(INTERNAL, NO_ADVERTISING_MODEL, file)


# -- feedback --------------------------------------------------------------------------------------


def _feedback_item(bucket: Bucket, n: int, raw: str) -> tuple[str, int, bool, float | None]:
    def bad(why: str) -> BadRequest:
        return BadRequest(f"feedback[{n}]: {why}", code="invalid_argument")

    try:
        item = json.loads(raw)
    except ValueError:
        raise bad("not JSON") from None
    if not isinstance(item, dict) or not isinstance(item.get("file"), dict):
        raise bad("must be a JSON object with a 'file' object")
    f = item["file"]
    namespace, dir, name = f.get("namespace", ""), f.get("dir") or "/", f.get("name")
    if not all(isinstance(v, str) for v in (namespace, dir, name)) or not name:
        raise bad("file needs string namespace, dir and a name")
    if namespace not in ("", bucket.name):
        raise Unauthorized(
            "the feedback namespace does not belong to this access key", code="bucket_mismatch"
        )
    kind, wrong, score = item.get("type"), item.get("wrong"), item.get("score")
    if isinstance(kind, bool) or kind not in (0, 1):
        raise bad("type must be 0 or 1")
    if not isinstance(wrong, bool):
        raise bad("wrong must be true or false")
    number = isinstance(score, int | float) and not isinstance(score, bool)
    if score is not None and (not number or not 0 <= score <= 1):
        raise bad("score must be a number in [0, 1]")
    if wrong and score is None:
        raise bad("score is required when wrong is true")
    try:
        key = key_of(ResourceId(bucket.name, dir if dir.startswith("/") else "/" + dir, name))
    except MediagateError as exc:
        raise bad(exc.message) from None
    return key, int(kind), wrong, float(score) if score is not None else None


async def feedback(request: Request, gw: Gateway, bucket: Bucket, body: bytes) -> Response:
    raw = _values(body, "feedback")
    if not raw:
        raise BadRequest("feedback (one or more JSON objects) is required", code="invalid_argument")
    if len(raw) > MAX_FEEDBACK:
        raise BadRequest(f"at most {MAX_FEEDBACK} feedback items per call", code="invalid_argument")
    items = [_feedback_item(bucket, n, text) for n, text in enumerate(raw, 1)]
    await gw.add_feedback(bucket, items)
    return JSONResponse({"message": "success", "status": 0, "requestId": request_id(request)})


async def list_feedback(request: Request, gw: Gateway, bucket: Bucket, page: int, size: int) -> Response:
    total, rows = await gw.list_feedback(bucket, offset=(page - 1) * size, limit=size)
    result = []
    for row in rows:
        folder, name = split_key(row.key)
        item: dict[str, Any] = {
            "file": {"namespace": bucket.name, "dir": path_to_dir(folder), "name": name},
            "type": row.type,
            "wrong": row.wrong,
            "createStamp": int(row.created_at.timestamp() * 1000),
        }
        if row.score is not None:
            item["score"] = row.score
        result.append(item)
    return JSONResponse(
        {
            "totalCount": total,
            "totalPage": math.ceil(total / size),
            "currentPage": page,
            "pageSize": size,
            "result": result,
            "requestId": request_id(request),
        }
    )

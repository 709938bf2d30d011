"""Serving objects over HTTP: the public read path and the shared object response.

``object_response`` turns a catalog :class:`Object` into a streamed HTTP response with the
validators and conditional/range semantics of RFC 9110; the public read path (``read``) and the
authenticated UPYUN REST ``GET``/``HEAD`` both use it, so they cannot drift apart.

Public read rules (``GET/HEAD /<bucket>/<key>`` without ``Authorization``):

* Buckets are public-read by default. ``public: false`` in the bucket settings makes every
  anonymous read 403, *including* content-secret URLs: private means private, and a secret
  suffix is an unlisted link, not a credential that should outlive the owner's decision to
  close the bucket. The 403 is given before the object is looked up, so it reveals nothing.
* An object uploaded with a content secret is served only at ``/<bucket>/<key>!<secret>``
  (UPYUN's convention, compared in constant time); its plain URL answers 404 as if absent.
* A folder, the bucket root, an expired object, an unknown bucket: 404. Listing needs REST auth.
* User metadata (``x-upyun-meta-*``) is never sent on public reads.
* Errors are ``{"code": <status>, "message": ...}``; the middleware adds ``X-Request-Id``.

Bytes are streamed from storage in a worker thread (``Gateway.read``), never loaded whole.
"""

from __future__ import annotations

import contextlib
import hmac
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

from anyio import to_thread
from starlette.concurrency import iterate_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from mediagate.bucketconf import bucket_cache
from mediagate.catalog.models import Object
from mediagate.core.errors import Forbidden, InvalidKey, MediagateError, NotFound
from mediagate.core.keys import normalise_key
from mediagate.http import gateway
from mediagate.storage.base import BlobNotFound

SUFFIX_SEPARATOR = "!"


# -- the public URL -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublicPath:
    """One reading of a public URL path: the object key and what followed the ``!`` (if any).

    Today the suffix can only be a content secret; thumbnail versions (``!small``) and
    processing (``!/fw/300``) will be told apart here later."""

    key: str
    suffix: str | None = None


def parse_public_path(path: str) -> list[PublicPath]:
    """The readings of ``path`` to try, in order: the whole path as a key (keys may contain
    ``!``), then the path split at its last ``!`` (``key!secret``). Raises InvalidKey for a
    path that cannot name an object (control characters, ``..``, a trailing ``/``)."""
    readings = [PublicPath(normalise_key(path))]
    head, sep, tail = path.rpartition(SUFFIX_SEPARATOR)
    if sep and head and tail:
        with contextlib.suppress(InvalidKey):
            readings.append(PublicPath(normalise_key(head), tail))
    return readings


# -- conditional requests and ranges -----------------------------------------------------------------


def etag_of(obj: Object) -> str:
    return f'"{obj.md5}"'


def last_modified_of(obj: Object) -> datetime:
    moment = obj.created_at if obj.created_at.tzinfo else obj.created_at.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


def http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def _parse_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _etags(header: str) -> list[str]:
    return [t.strip() for t in header.split(",") if t.strip()]


def _weak_match(header: str, etag: str) -> bool:
    """If-None-Match: weak comparison (``W/"x"`` matches ``"x"``)."""
    return any(t == "*" or t.removeprefix("W/") == etag for t in _etags(header))


def _strong_match(header: str, etag: str) -> bool:
    """If-Match / If-Range: strong comparison (a weak tag never matches)."""
    return any(t == "*" or t == etag for t in _etags(header))


_RANGE = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")


class Unsatisfiable(Exception):
    """Every range lies outside the representation."""


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """The one byte range ``[start, end)`` a ``Range`` header asks for, or None to answer the
    full body (malformed header, other unit, several ranges: RFC 9110 lets us ignore those).
    Raises :class:`Unsatisfiable` when the single range starts past the end."""
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes" or "," in spec:
        return None
    match = _RANGE.match(spec)
    if match is None:
        return None
    first, last = match.group(1), match.group(2)
    if not first and not last:
        return None
    if not first:  # suffix range: the last N bytes
        length = int(last)
        if length == 0 or size == 0:
            raise Unsatisfiable
        return max(0, size - length), size
    start = int(first)
    end = int(last) + 1 if last else size
    if last and end <= start:
        return None  # "5-3" is syntactically invalid: ignore it
    if start >= size:
        raise Unsatisfiable
    return start, min(end, size)


def _precondition(request: Request, etag: str, modified: datetime) -> int | None:
    """RFC 9110 §13.2.2 order: 412 or 304, or None to go on."""
    if_match = request.headers.get("if-match")
    if if_match is not None:
        if not _strong_match(if_match, etag):
            return 412
    else:
        since = _parse_date(request.headers.get("if-unmodified-since"))
        if since is not None and modified > since:
            return 412
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        if _weak_match(if_none_match, etag):
            return 304 if request.method in ("GET", "HEAD") else 412
    elif request.method in ("GET", "HEAD"):
        since = _parse_date(request.headers.get("if-modified-since"))
        if since is not None and modified <= since:
            return 304
    return None


def _if_range_holds(request: Request, etag: str, modified: datetime) -> bool:
    value = request.headers.get("if-range")
    if value is None:
        return True
    value = value.strip()
    if value.startswith(('"', "W/")):
        return value == etag
    return _parse_date(value) == modified


# -- responses ------------------------------------------------------------------------------------


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """The small JSON error of the public read path."""
    return JSONResponse({"code": status, "message": message}, status_code=status, headers=headers)


async def _stream(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Chunks read in a worker thread; the storage iterator is closed even if the client leaves."""
    try:
        async for chunk in iterate_in_threadpool(chunks):
            yield chunk
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            await to_thread.run_sync(close)


async def object_response(
    request: Request, obj: Object, *, head: bool, extra_headers: dict[str, str] | None = None
) -> Response:
    """The HTTP response for reading ``obj``: 200/206 streamed, 304, 412 or 416.

    Handles If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since, If-Range and a
    single byte ``Range`` (ignored for HEAD, as RFC 9110 defines ranges for GET only).
    ``extra_headers`` (e.g. UPYUN's ``x-upyun-*``) are added to 200/206/304 answers.
    Authorisation is the caller's business; this only reads. The caller must have checked
    expiry (``Gateway.get_object`` does). A blob missing from storage raises NotFound."""
    etag = etag_of(obj)
    modified = last_modified_of(obj)
    validators = {"ETag": etag, "Last-Modified": http_date(modified)}
    extra = dict(extra_headers or {})

    status = _precondition(request, etag, modified)
    if status == 304:
        return Response(status_code=304, headers={**validators, **extra})
    if status == 412:
        return error_response(412, "precondition failed", validators)

    size = obj.size
    start, end = 0, size
    ranged = False
    range_header = request.headers.get("range")
    if range_header is not None and not head and _if_range_holds(request, etag, modified):
        try:
            wanted = parse_range(range_header, size)
        except Unsatisfiable:
            return error_response(
                416,
                f"requested range not satisfiable (size {size})",
                {"Content-Range": f"bytes */{size}", **validators},
            )
        if wanted is not None:
            start, end = wanted
            ranged = True

    headers = {
        **validators,
        "Content-Type": obj.mime or "application/octet-stream",
        "Accept-Ranges": "bytes",
        "Content-Length": str(end - start),
        **extra,
    }
    if ranged:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    status_code = 206 if ranged else 200
    if head:
        return Response(status_code=status_code, headers=headers)
    gw = gateway(request)
    try:
        chunks = await to_thread.run_sync(gw.read, obj, start, end)
    except BlobNotFound as exc:
        raise NotFound("file not found", code="file_not_found") from exc
    return StreamingResponse(_stream(chunks), status_code=status_code, headers=headers)


# -- the public read path -----------------------------------------------------------------------------


async def _find(request: Request, bucket_name: str, path: str) -> Object:
    bucket = await bucket_cache(request.app.state, gateway(request)).get(bucket_name)
    if bucket is None:
        raise NotFound("bucket not found", code="bucket_not_found")
    if bucket.settings.get("public") is False:
        raise Forbidden("this bucket is private: reads need an authorised request", code="private_bucket")
    if not path or path.endswith("/"):
        raise NotFound("file not found", code="file_not_found")
    gw = gateway(request)
    for reading in parse_public_path(path):
        try:
            obj = await gw.get_object(bucket, reading.key)
        except NotFound:
            continue
        if obj.content_secret:
            if reading.suffix is not None and hmac.compare_digest(
                reading.suffix.encode(), obj.content_secret.encode()
            ):
                return obj
        elif reading.suffix is None:
            return obj
    raise NotFound("file not found", code="file_not_found")


async def read(request: Request, bucket: str, path: str) -> Response:
    """``GET/HEAD /<bucket>/<path>`` without credentials (see the module docstring)."""
    head = request.method == "HEAD"
    try:
        obj = await _find(request, bucket, path)
        return await object_response(request, obj, head=head)
    except MediagateError as exc:
        return error_response(exc.status, exc.message)

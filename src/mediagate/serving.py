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
* What follows the last ``!`` is read, unambiguously, as: a processing spec when it starts with
  ``/`` (``key!/fw/300/format/webp``); for an object *with* a content secret, the secret,
  optionally followed by a spec (``key!<secret>/fw/300``: a secret never holds '/'), and nothing
  else (its named versions and bare specs answer 404, so a secret link cannot be bypassed); for
  an object without one, a named version of the bucket (``key!small``, see
  ``mediagate bucket version``). Anything else is 404.
* Processed variants (see :func:`variant_response`) are made once, cached on disk
  (``mediagate.thumbcache``), and answered with an ETag derived from the source's MD5 and the
  canonical spec, so conditional requests work without processing anything. With the bucket's
  ``autoformat`` option a variant without an explicit ``format`` is WebP (or AVIF) for clients
  whose ``Accept`` says so, with ``Vary: Accept``. The original (no suffix) is never converted.
  ``X-Mediagate-Cache: HIT|MISS`` says whether this request made the variant.
* A malformed spec is 400; a source that is not an image, is malformed or truncated is 415; an
  image beyond the pixel/size limits is refused from its header before any decode (4xx).
* A folder, the bucket root, an expired object, an unknown bucket: 404. Listing needs REST auth.
* User metadata (``x-upyun-meta-*``) is never sent on public reads.
* User content cannot script the gateway's origin (see :func:`content_headers`): every response
  says ``X-Content-Type-Options: nosniff`` (added by :mod:`mediagate.frontdoor`), and an object of an
  active type (HTML, SVG, XML, XHTML, JavaScript …) is served with ``Content-Security-Policy:
  sandbox`` and ``Content-Disposition: attachment`` unless its bucket's ``inline_active`` setting
  opts in (do that only where user content has an origin of its own; see the README).
* Errors are ``{"code": <status>, "message": ...}``; the front door adds ``X-Request-Id``.
* With ``s3_redirect_reads`` (S3 storage), a public GET of an original answers 307 to a presigned
  S3 URL (valid ``s3_redirect_expiry_seconds``, ``Cache-Control: no-store``) that carries the
  object's type as a response override, instead of streaming the bytes through the node. Only
  after every rule above has passed (private buckets, secrets, expiry), and only for what needs
  nothing of the node: conditional requests that end in 304/412 and HEAD are answered here, as
  are processed variants; objects of an active type (unless the bucket set ``inline_active``)
  are never redirected, since the store's origin cannot send ``Content-Security-Policy:
  sandbox`` or ``nosniff`` and the bytes must not run inline anywhere: they are served by the
  node with the headers above. A presigned URL is a bearer link until it expires.

Bytes are streamed from storage in a worker thread (``Gateway.read``), never loaded whole.
"""

from __future__ import annotations

import contextlib
import functools
import hmac
import logging
import os
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from anyio import to_thread
from starlette.concurrency import iterate_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from mediagate.bucketconf import BucketConf, bucket_cache
from mediagate.config import Settings
from mediagate.core.errors import (
    Forbidden,
    InvalidKey,
    MediagateError,
    NotFound,
)
from mediagate.core.gateway import Gateway, is_expired
from mediagate.core.keys import existing_key
from mediagate.core.preprocess import processing_errors, versions_of
from mediagate.core.values import Bucket, Object
from mediagate.http import gateway
from mediagate.logs import note_refusal
from mediagate.storage.base import BlobNotFound
from mediagate.thumbcache import ThumbCache, variant_key

if TYPE_CHECKING:
    from mediagate.media.spec import ProcessingSpec

log = logging.getLogger("mediagate")
"""A corrupt image is read (and refused) as often as clients ask for its variants."""

SUFFIX_SEPARATOR = "!"


# -- the public URL -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublicPath:
    """One reading of a public URL path: the object key and what followed the ``!`` (if any).

    The suffix is a content secret, a named version (``!small``) or a processing spec
    (``!/fw/300``); :func:`_find` tells them apart against the object and the bucket."""

    key: str
    suffix: str | None = None


def parse_public_path(path: str) -> list[PublicPath]:
    """The readings of ``path`` to try, in order: the whole path as a key (keys may contain
    ``!``), then the path split at its last ``!`` (``key!secret``). Raises InvalidKey for a
    path that cannot name an object (control characters, ``..``, a trailing ``/``)."""
    readings = [PublicPath(existing_key(path))]
    head, sep, tail = path.rpartition(SUFFIX_SEPARATOR)
    if sep and head and tail:
        with contextlib.suppress(InvalidKey):
            readings.append(PublicPath(existing_key(head), tail))
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


_HUGE = 10**18
"""Larger than any object: a range bound with more digits than this is read as this (``int()`` of
thousands of digits is refused by Python, and such a bound means "past any end" anyway)."""


def _bound(digits: str) -> int:
    return int(digits) if len(digits) < 18 else _HUGE


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
        length = _bound(last)
        if length == 0 or size == 0:
            raise Unsatisfiable
        return max(0, size - length), size
    start = _bound(first)
    end = _bound(last) + 1 if last else size
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


# -- what user content may do in a browser -------------------------------------------------------------

ACTIVE_TYPES = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "text/xml",
        "application/xml",
        "text/xsl",
        "application/xslt+xml",
        "text/javascript",
        "application/javascript",
        "application/x-javascript",
        "application/ecmascript",
        "text/ecmascript",
        "text/jscript",
        "application/x-shockwave-flash",
        "text/cache-manifest",
        "multipart/x-mixed-replace",
    }
)
"""Types a browser runs, or that can carry markup it runs, when opened from a URL of ours."""


def is_active(mime: str | None) -> bool:
    """Whether content of this type could script the origin it is served from (any ``+xml``
    type counts: XML can embed XHTML and its scripts). A browser takes the last of a
    comma-separated list of types, so every member is judged (uploads refuse commas, see
    ``core.mediatype``; this covers types stored before that)."""
    for member in (mime or "").split(","):
        base = member.partition(";")[0].strip().lower()
        if base in ACTIVE_TYPES or base.endswith("+xml"):
            return True
    return False


def content_headers(mime: str | None, *, inline_active: bool = False) -> dict[str, str]:
    """Headers that keep stored bytes from acting on the gateway's origin. An active type is
    sandboxed (a unique origin: no cookies, storage or same-origin requests of ours) and offered as
    a download, unless the bucket opted in to serving it inline as it is."""
    if not is_active(mime) or inline_active:
        return {}
    return {"Content-Security-Policy": "sandbox", "Content-Disposition": "attachment"}


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
    request: Request,
    obj: Object,
    *,
    head: bool,
    extra_headers: dict[str, str] | None = None,
    inline_active: bool = False,
) -> Response:
    """The HTTP response for reading ``obj``: 200/206 streamed, 304, 412 or 416.

    Handles If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since, If-Range and a
    single byte ``Range`` (ignored for HEAD, as RFC 9110 defines ranges for GET only).
    ``extra_headers`` (e.g. UPYUN's ``x-upyun-*``) are added to 200/206/304 answers; an active
    type gets :func:`content_headers` (``inline_active``: the bucket opted in to inline).
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
        **content_headers(obj.mime, inline_active=inline_active),
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


async def _find(request: Request, bucket_name: str, path: str) -> tuple[Bucket, Object, str | None]:
    """The object a public path names and the processing spec to apply to it (None: the
    original); see the module docstring for how a ``!`` suffix is read."""
    bucket = await bucket_cache(request.app.state, gateway(request)).get(bucket_name)
    if bucket is None:
        raise NotFound("bucket not found", code="bucket_not_found")
    if bucket.settings.get("public") is False:
        raise Forbidden("this bucket is private: reads need an authorised request", code="private_bucket")
    if not path or path.endswith("/"):
        raise NotFound("file not found", code="file_not_found")
    readings = parse_public_path(path)
    found = await to_thread.run_sync(_objects, gateway(request), bucket.id, [r.key for r in readings])
    for reading, obj in zip(readings, found, strict=True):
        if obj is None or is_expired(obj):
            continue
        suffix = reading.suffix
        if obj.content_secret:
            if suffix is None or suffix.startswith("/"):
                continue
            secret, slash, rest = suffix.partition("/")
            if hmac.compare_digest(secret.encode(), obj.content_secret.encode()):
                return bucket, obj, ("/" + rest) if slash and rest else None
        elif suffix is None:
            return bucket, obj, None
        elif suffix.startswith("/"):
            return bucket, obj, suffix
        else:
            version = versions_of(bucket.settings).get(suffix)
            if version is not None:
                return bucket, obj, version
    raise NotFound("file not found", code="file_not_found")


def _objects(gw: Gateway, bucket_id: int, keys: list[str]) -> list[Object | None]:
    """The object row of every reading of a path, in ONE worker-thread hop (blocking): on a cached
    thumbnail hit (``key!/fw/256`` is two readings) the hops, not the queries, were the cost."""
    rows = [gw.catalog.get_object(bucket_id, key) for key in keys]
    return [None if row is None else Object.of(row) for row in rows]


async def read(request: Request, bucket: str, path: str) -> Response:
    """``GET/HEAD /<bucket>/<path>`` without credentials (see the module docstring)."""
    head = request.method == "HEAD"
    try:
        found, obj, spec_text = await _find(request, bucket, path)
        if spec_text is not None:
            return await variant_response(request, found, obj, spec_text, head=head)
        conf = BucketConf.of(found.settings)
        if not head:
            redirect = _redirect(request, obj, conf)
            if redirect is not None:
                return redirect
        return await object_response(request, obj, head=head, inline_active=conf.inline_active)
    except MediagateError as exc:
        note_refusal(exc)
        return error_response(exc.status, exc.message)


def _redirect(request: Request, obj: Object, conf: BucketConf) -> Response | None:
    """A 307 to a presigned storage URL for ``obj``, or None to serve it here (see the module
    docstring: redirects off, a backend without URLs, an active type, a conditional request)."""
    gw = gateway(request)
    settings = gw.settings
    if not settings.s3_redirect_reads or (is_active(obj.mime) and not conf.inline_active):
        return None
    if _precondition(request, etag_of(obj), last_modified_of(obj)) is not None:
        return None  # 304/412 from the catalog alone, answered by object_response
    url = gw.storage.read_url(
        obj.blob_id,
        expires=settings.s3_redirect_expiry_seconds,
        content_type=obj.mime or "application/octet-stream",
    )
    if url is None:
        return None
    return Response(status_code=307, headers={"Location": url, "Cache-Control": "no-store"})


# -- processed variants -------------------------------------------------------------------------------

VARIANT_CHUNK = 256 * 1024
VARIANT_INLINE = 1024 * 1024
"""Variants up to this size are read whole in one worker-thread hop and sent as one body; larger
ones are streamed in ``VARIANT_CHUNK`` pieces (memory stays bounded)."""


def thumb_cache(state: Any, settings: Settings) -> ThumbCache:
    """The app's one variant cache (kept on ``app.state``, created on first use)."""
    cache: ThumbCache | None = getattr(state, "thumb_cache", None)
    if cache is None:
        cache = ThumbCache(settings.home / "cache", settings.media_cache_max_bytes)
        state.thumb_cache = cache
    return cache


@functools.lru_cache(maxsize=1024)
def _parse_spec(text: str) -> ProcessingSpec:
    """``parse_thumb``, remembered for the hot URLs (a spec is immutable; a refusal is not kept)."""
    from mediagate.media.spec import parse_thumb

    return parse_thumb(text)


def _negotiate(spec: ProcessingSpec, conf: BucketConf, accept: str) -> tuple[ProcessingSpec, bool]:
    """Apply the bucket's ``autoformat`` to a spec without an explicit format; also say whether
    the answer depends on ``Accept`` (then it carries ``Vary: Accept``)."""
    if not conf.autoformat or spec.output_format is not None:
        return spec, False
    accepted = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    if conf.autoformat == "avif" and "image/avif" in accepted:
        return replace(spec, format="avif"), True
    if "image/webp" in accepted:
        return replace(spec, format="webp"), True
    return spec, True


async def variant_response(
    request: Request, bucket: Bucket, obj: Object, spec_text: str, *, head: bool
) -> Response:
    """A processed variant of ``obj``: 200 (made once, then from the cache), 304 or 412.

    The ETag is known before any work (source MD5 + canonical spec), so a revalidation never
    processes anything. Processing errors are 4xx (see the module docstring)."""
    gw = gateway(request)
    spec, varies = _negotiate(
        _parse_spec(spec_text), BucketConf.of(bucket.settings), request.headers.get("accept", "")
    )
    key = variant_key(obj.md5, obj.size, spec.canonical())
    etag = f'"{key[:40]}"'
    modified = last_modified_of(obj)
    validators = {"ETag": etag, "Last-Modified": http_date(modified)}
    if varies:
        validators["Vary"] = "Accept"
    status = _precondition(request, etag, modified)
    if status == 304:
        return Response(status_code=304, headers=validators)
    if status == 412:
        return error_response(412, "precondition failed", validators)

    async def make(dest: Path) -> str:
        return await _process_object(gw, obj, spec, dest)

    cache = thumb_cache(request.app.state, gw.settings)
    variant = await cache.get_or_make(key, make)
    headers = {
        **validators,
        "Content-Type": variant.mime,
        "X-Mediagate-Cache": "HIT" if variant.hit else "MISS",
        **content_headers(variant.mime),
    }
    body: bytes | BinaryIO | None
    if variant.body is not None:  # hot: in memory, no file to read
        size, body = len(variant.body), None if head else variant.body
    else:
        try:
            size, body = await to_thread.run_sync(_open_variant, variant.path, head)
        except FileNotFoundError as exc:  # evicted between the lookup and here: rare; ask again
            raise NotFound("the processed image was evicted; retry", code="variant_evicted") from exc
        if variant.hit and isinstance(body, bytes):
            cache.remember(key, body)
    headers["Content-Length"] = str(size)
    if body is None or isinstance(body, bytes):
        return Response(body or b"", status_code=200, headers=headers)
    return StreamingResponse(_file_stream(body), status_code=200, headers=headers)


def _open_variant(path: Path, head: bool) -> tuple[int, bytes | BinaryIO | None]:
    """Size and body of a cached variant in ONE worker-thread hop (the hit path's main cost was
    a hop per open, fstat and chunk): the whole bytes when small (a thumbnail almost always is),
    else the open file to stream (opened first, so an eviction cannot cut it short); None for HEAD."""
    with contextlib.ExitStack() as stack:
        f = stack.enter_context(open(path, "rb"))
        size = os.fstat(f.fileno()).st_size
        if head:
            return size, None
        if size <= VARIANT_INLINE:
            return size, f.read()
        stack.pop_all()
        return size, f


async def _file_stream(f: BinaryIO) -> AsyncIterator[bytes]:
    """An already-open file (so eviction cannot cut it short), read in a worker thread."""
    try:
        while chunk := await to_thread.run_sync(f.read, VARIANT_CHUNK):
            yield chunk
    finally:
        await to_thread.run_sync(f.close)


async def _process_object(gw: Gateway, obj: Object, spec: ProcessingSpec, dest: Path) -> str:
    """Process the object's bytes into ``dest``; returns the output format. The header probe and
    the bomb guard run in the decode slot's own worker-thread hop (see ``Processor.process``)."""
    async with gw.processor.admission(), gw.local_copy(obj) as src:
        with processing_errors(" for a public read"):
            result = await gw.processor.process(src, spec, dest)
    return result.format

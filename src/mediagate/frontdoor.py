"""The front door: what every request goes through before and after its dialect answers it.

* **Whose request is it** (:func:`face_of`): the dialect that will answer (the routing table's rows,
  read from the path and headers alone), so that anything answered here is in that dialect's own
  error shape, and the access line can name it.
* **A body refused from its declared length**: a ``Content-Length`` beyond what any upload may be
  is answered at once with the dialect's 413, before a byte of the body is read; with
  ``Expect: 100-continue`` the body is not even asked for (uvicorn sends ``100 Continue`` only when
  the app first reads the body, so the client never sends it).
* **No exception reaches the server**: an infrastructure failure that got past its border (a full
  disk while staging, see :func:`mediagate.core.errors.from_os_error`) becomes its core error; any
  other exception is a bug and a dialect-shaped 500 carrying the request id. Either way the client
  gets a whole response, and the log one line, not uvicorn's traceback and a dropped connection.
* **A clean connection**: a response sent before the request body was read to its end says
  ``Connection: close`` (the server then closes instead of reading an unknown rest as the next
  request), so a keep-alive client opens a new connection rather than meeting a reset.
* **One access line** per request (:mod:`mediagate.logs`), and its metrics (:mod:`mediagate.metrics`:
  latency, error code, the uploads the core noted), labelled with the dialect found here.
* **Memory given back** (:mod:`mediagate.memory`): when the last request in flight ends after
  request bodies of some size, freed heap pages go back to the system.
* **Retry-After** on every dialect's 429 (an upload rate limit, core.quotas), unless its renderer
  set one.
* **Headers every response carries**: ``X-Request-Id`` (the id given to the request here; the
  UPYUN SDK reads it) and ``X-Content-Type-Options: nosniff`` (a browser must not guess a type:
  render an upload declared as text or octets as HTML; see :mod:`mediagate.serving`).

One middleware, not one per concern: each ASGI layer costs every request a call and two wrapped
``send`` calls, a measurable share of a small upload's event-loop time (bench/small.py).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mediagate import logs, metrics, serving
from mediagate.core.errors import MediagateError, PayloadTooLarge, from_os_error
from mediagate.core.ids import unique_hex
from mediagate.http import DRAIN_LIMIT, BodyProgress, drain_body, request_id, track_body
from mediagate.memory import QuietTrim
from mediagate.protocols.imagex import errors as imagex_errors
from mediagate.protocols.native import errors as native_errors
from mediagate.protocols.tus import errors as tus_errors
from mediagate.protocols.upyun import errors as upyun_errors
from mediagate.protocols.wantu import errors as wantu_errors

Render = Callable[[Request, MediagateError], Response]

NOSNIFF = (b"x-content-type-options", b"nosniff")

FORM_OVERHEAD = 1024 * 1024
"""Room in a multipart body for the form's fields and framing, beyond the file itself."""


@dataclass(frozen=True)
class Face:
    """The dialect that answers a request, and how it spells an error."""

    dialect: str
    bucket: str
    render: Render


def _upyun_rest(request: Request, exc: MediagateError) -> Response:
    return upyun_errors.rest_error(exc, request_id(request))


def _upyun_form(request: Request, exc: MediagateError) -> Response:
    return upyun_errors.form_error(exc)


def _wantu(request: Request, exc: MediagateError) -> Response:
    return wantu_errors.error_response(exc, request_id(request))


def _imagex_action(request: Request, exc: MediagateError) -> Response:
    return imagex_errors.action_error(request, exc, request.query_params.get("Action", ""))


def _imagex_token(request: Request, exc: MediagateError) -> Response:
    return imagex_errors.token_error(exc)


def _native(request: Request, exc: MediagateError) -> Response:
    return native_errors.error_response(request, exc)


def _plain(request: Request, exc: MediagateError) -> Response:
    return serving.error_response(exc.status, exc.message)


_WANTU_UPLOADS = frozenset(
    f"/api/proxy/{name}" for name in ("upload", "blockInit", "blockUpload", "blockComplete", "blockCancel")
)
_UPYUN_API = frozenset(p + end for p in ("/pretreatment", "/status", "/result") for end in ("", "/"))
_IMAGEX_STORE = re.compile(r"/tos-cn-i-([^/]+)/")
_NATIVE_DOCS = frozenset({"/openapi.json", "/docs", "/redoc"})


def _query_names(scope: Scope) -> set[bytes]:
    """The parameter names of the query string, as Starlette decodes them (``+`` and ``%XX``)."""
    query: bytes = scope.get("query_string", b"")
    return {unquote_to_bytes(p.partition(b"=")[0].replace(b"+", b" ")) for p in query.split(b"&") if p}


def face_of(scope: Scope) -> Face:
    """The routing table's answer to "who answers this request" (see :mod:`mediagate.routing`)."""
    path: str = scope["path"]
    if path in ("/healthz", "/livez", "/metrics"):
        return Face("ops", "", _plain)
    if path == "/v1/tus" or path.startswith("/v1/tus/"):
        return Face("tus", path[len("/v1/tus/") :].partition("/")[0], tus_errors.error_response)
    if path == "/v1" or path.startswith(("/v1/", "/docs/")) or path in _NATIVE_DOCS:
        parts = path.split("/")  # /v1/buckets/<bucket>/…
        bucket = parts[3] if len(parts) > 3 and parts[2] == "buckets" else ""
        return Face("v1", bucket, _native)
    if path == "/":
        if scope["method"] in ("GET", "HEAD") and b"Action" not in _query_names(scope):
            return Face("web", "", _plain)  # the landing page (web.pages)
        return Face("imagex", "", _imagex_action)
    if path == "/ui" or path.startswith("/ui/"):
        return Face("web", "", _plain)
    if path == "/mweb/v1/get_upload_token":
        return Face("imagex", "", _imagex_token)
    store = _IMAGEX_STORE.match(path.removeprefix("/upload/v1"))
    if store or path.startswith("/upload/v1/"):  # the StoreUri names the ServiceId, i.e. the bucket
        return Face("imagex", store.group(1) if store else "", imagex_errors.upload_error)
    if path in _WANTU_UPLOADS or path.startswith(("/3.0/", "/3.1/")):
        return Face("wantu", "", _wantu)
    if path in _UPYUN_API:
        return Face("upyun-rest", "", _upyun_rest)
    bucket, _, rest = path[1:].partition("/")
    headers = {k.lower(): v for k, v in scope.get("headers", [])}
    authorization = headers.get(b"authorization", b"")
    method = scope["method"]
    if authorization[:6].upper() == b"UPYUN ":
        return Face("upyun-rest", bucket, _upyun_rest)
    content_type = headers.get(b"content-type", b"").lower()
    if method == "POST" and content_type.startswith(b"multipart/form-data") and not rest:
        return Face("upyun-form", bucket, _upyun_form)
    if method in ("GET", "HEAD") and not authorization:
        return Face("public", bucket, _plain)
    return Face("upyun-rest", bucket, _upyun_rest)


def body_limit(max_upload_size: int, content_type: bytes) -> int:
    """The largest request body an upload of at most ``max_upload_size`` bytes can need: the file
    itself, or in a multipart form the file base64-encoded (UPYUN's ``b64encoded``) plus fields."""
    if content_type.lower().startswith(b"multipart/"):
        return -(-max_upload_size // 3) * 4 + FORM_OVERHEAD
    return max_upload_size


def declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def _header(scope: Scope, wanted: bytes) -> bytes:
    for name, value in scope.get("headers", []):
        if name.lower() == wanted:
            return bytes(value)
    return b""


class FrontDoor:
    """The ASGI middleware (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.quiet = QuietTrim()
        """Gives memory back once the server goes quiet after request bodies (mediagate.memory)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = unique_hex()
        scope.setdefault("state", {})["request_id"] = rid
        request = Request(scope)
        face = face_of(scope)
        record = logs.RequestRecord(
            request_id=rid,
            method=scope["method"],
            path=scope["path"],
            dialect=face.dialect,
            bucket=face.bucket,
        )
        logs.begin(record)
        declared = declared_length(scope)
        if not _header(scope, b"content-type").lower().startswith(b"multipart/"):
            record.body_size = declared
        chunked = b"chunked" in _header(scope, b"transfer-encoding").lower()
        body = BodyProgress(done=not chunked and not declared)
        body.awaiting_continue = not body.done and _header(scope, b"expect").lower() == b"100-continue"
        track_body(body)
        state = _Exchange()
        self.quiet.started()

        async def tracked_receive() -> Message:
            body.awaiting_continue = False
            message = await receive()
            if message["type"] == "http.disconnect":
                state.disconnected = True
            else:
                self.quiet.read(len(message.get("body", b"")))
                if not message.get("more_body", False):
                    body.done = True
            return message

        async def tracked_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state.status = int(message["status"])
                close = not body.done
                headers = [
                    h
                    for h in message.get("headers", ())
                    if (name := h[0].lower()) != b"x-content-type-options"
                    and not (close and name == b"connection")
                ]
                if state.status == 429 and record.retry_after is not None:
                    headers = _with_retry_after(headers, record.retry_after)
                headers += [(b"x-request-id", rid.encode()), NOSNIFF]
                if close:
                    headers.append((b"connection", b"close"))
                message["headers"] = headers
            await send(message)

        try:
            refusal = self._too_large(scope, declared)
            if refusal is not None:
                await self._refuse_unread(scope, tracked_receive)
                await self._answer(face, request, refusal, tracked_send)
            else:
                await self.app(scope, tracked_receive, tracked_send)
        except Exception as exc:
            await self._fault(face, request, record, state, exc, tracked_send)
        finally:
            self.quiet.ended()
            status = state.status or (499 if state.disconnected else 500)
            logs.write_access(record, status)
            metrics.observe(record, status, time.monotonic() - record.started)

    @staticmethod
    def _too_large(scope: Scope, declared: int | None) -> MediagateError | None:
        if not declared:
            return None
        settings = scope["app"].state.gateway.settings
        limit = body_limit(settings.max_upload_size, _header(scope, b"content-type"))
        if declared <= limit:
            return None
        return PayloadTooLarge(
            f"the request body ({declared} bytes) exceeds the maximum upload size "
            f"of {settings.max_upload_size} bytes"
        )

    @staticmethod
    async def _refuse_unread(scope: Scope, receive: Receive) -> None:
        """A client that waits for ``100 Continue`` is answered without reading (``drain_body``
        knows); one already sending has a little read (bounded), so that it reads our answer
        rather than a reset."""
        await drain_body(Request(scope, receive).stream(), limit=DRAIN_LIMIT)

    @staticmethod
    async def _answer(face: Face, request: Request, exc: MediagateError, send: Send) -> None:
        logs.note_refusal(exc)
        response = face.render(request, exc)
        await response(request.scope, _no_receive, send)

    async def _fault(
        self,
        face: Face,
        request: Request,
        record: logs.RequestRecord,
        state: _Exchange,
        exc: Exception,
        send: Send,
    ) -> None:
        """The answer to an exception no dialect caught (see the module docstring)."""
        error = exc if isinstance(exc, MediagateError) else from_os_error(exc)
        if error is None:
            error = MediagateError(f"internal error (request id {record.request_id})")
            error.__cause__ = exc
            record.exc = exc  # its traceback is logged at DEBUG only
        elif error is not exc:
            error.__cause__ = exc
        if state.status:  # the response had begun: it cannot be replaced, only cut short
            logs.note_refusal(error)
            record.reason = f"response cut short: {record.reason}"
            record.cause = record.cause or logs.describe(exc)
            return
        await self._answer(face, request, error, send)


@dataclass
class _Exchange:
    disconnected: bool = False
    status: int = 0


def _with_retry_after(headers: list[tuple[bytes, bytes]], seconds: int) -> list[tuple[bytes, bytes]]:
    """A 429's headers with ``Retry-After`` (every dialect's, unless its renderer set one)."""
    if any(name.lower() == b"retry-after" for name, _ in headers):
        return headers
    return [*headers, (b"retry-after", str(seconds).encode())]


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}

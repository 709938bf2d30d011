"""The HTTP/1.1 front door: uvicorn's httptools protocol with mediagate's framing and size rules.

Used by ``mediagate serve`` and by the tests' live server (``uvicorn --http
mediagate.httpserver:HTTPProtocol``). It differs from uvicorn's own protocol in three ways:

* **Transfer-Encoding with Content-Length is served** (PHP's curl sends ``Transfer-Encoding:
  chunked`` and ``Content-Length: 0`` on a body-less POST). RFC 9112 §6.3: Transfer-Encoding
  overrides Content-Length, and the server must close the connection after answering, so this
  request is framed by its chunks, answered with ``Connection: close``, and nothing after it on
  the connection is read.
* **Smuggling shapes stay refused** with 400 and a closed connection: a Transfer-Encoding whose
  final coding is not ``chunked`` (or ``chunked`` twice), Transfer-Encoding on HTTP/1.0, and —
  by llhttp itself — duplicate or malformed Content-Length, obs-fold, bare LF, whitespace before
  the colon. A coding other than ``chunked`` before the final ``chunked`` is a 501 (we do not
  decode transfer codings).
* **Upgrade is ignored** (no protocol is upgraded to but WebSocket, and no route takes one): a
  request with ``Upgrade`` but no body is served as HTTP/1.1 and what follows it is read as
  HTTP/1.1; one with a body is refused with 400 (the parser would leave its body unread, and
  an upload would store an empty file).
* **Head sizes are bounded before they are buffered**: one header line (or the request target)
  longer than ``LINE_FACTOR x max_header_size`` -> 431 (414 for the target), and a head longer
  than ``HEAD_FACTOR x max_header_size`` in total -> 431. This is the backstop: a head over
  ``max_header_size`` itself reaches the app, where a dialect that bounds headers (UPYUN REST)
  refuses it in its own error format. Bytes are fed to the parser in slices no
  longer than what is left of the head budget, so an endless header costs at most that budget.
  The trailer section of a chunked body (after the last, empty chunk) is a head too: it gets the
  same per-line and total budgets (a client could otherwise send trailers for ever, each one
  kept in memory), and trailers are read and dropped, never added to the request's headers.
  A refusal is in the error shape of the dialect its target belongs to (``frontdoor.face_of``
  on what was read of the head; ``{"code", "message"}`` when there is no target yet).
  After a refusal the answer is sent with ``Connection: close``, the write side is shut, and what
  the client still sends is read and dropped for ``LINGER_SECONDS`` (closing with unread data
  would make the kernel reset the connection, and the client could lose the answer).
* **A request head has a deadline** (``header_timeout_seconds``), from the connection's start or
  the request's first byte: a head still incomplete then is answered 408 and the connection
  closed; a new connection that sent nothing is closed. uvicorn itself times out only the idle
  time between requests, so connections that send nothing, or a header byte now and then,
  would otherwise be held for ever.

The limits come from the process's ``Settings`` (env / home config), read once per process.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, ClassVar

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from mediagate import logs

log = logging.getLogger("mediagate.http")
refusals = logs.Throttled(log)
"""Refused heads and idle connections: a client makes them at will, so they are throttled."""

LINE_FACTOR = 2
"""One header line or request target may be this many times ``max_header_size``."""
HEAD_FACTOR = 4
"""A whole request head may be this many times ``max_header_size``."""
LINGER_SECONDS = 1.0
"""After a refusal, how long the rest of what the client sends is read and dropped (so that its
kernel does not reset the connection before it has read the answer)."""


REFUSAL_CODES = {
    400: "bad_request",
    408: "request_timeout",
    414: "uri_too_long",
    431: "headers_too_large",
    501: "not_implemented",
}
"""Core error codes of the HTTP layer's refusals (the dialects spell them in their own way)."""


class Refusal(Exception):
    """Raised from a parser callback: answer ``status`` with ``message`` and close. ``status``
    None means stop reading silently (a response is already on its way)."""

    def __init__(self, status: int | None, message: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def transfer_codings(values: list[bytes]) -> list[bytes]:
    """The codings of every Transfer-Encoding field, in order, lower-cased."""
    return [c.strip().lower() for v in values for c in v.split(b",") if c.strip()]


def check_framing(te_values: list[bytes], http_version: str) -> None:
    """Refuse a Transfer-Encoding that is not exactly ``chunked`` on HTTP/1.1 (RFC 9112 §6.1)."""
    if not te_values:
        return
    if http_version != "1.1":
        raise Refusal(400, "Transfer-Encoding is not allowed before HTTP/1.1")
    codings = transfer_codings(te_values)
    if not codings or codings[-1] != b"chunked" or codings.count(b"chunked") != 1:
        raise Refusal(400, "Transfer-Encoding must end in chunked, applied once")
    if codings != [b"chunked"]:
        raise Refusal(501, "only the chunked transfer coding is supported")


class HTTPProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the rules above; everything else is uvicorn's."""

    limits: ClassVar[tuple[int, int] | None] = None
    """(line limit, head limit), read from Settings on first use in this process."""
    head_timeout: ClassVar[float | None] = None
    """Seconds a request head may take, read from Settings with ``limits``."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.parser.set_dangerous_leniencies(lenient_data_after_close=True, lenient_chunked_length=True)
        self.line_limit, self.head_limit = self._limits()
        self.head_timer: asyncio.TimerHandle | None = None
        self.got_bytes = False
        self.in_head = True
        self.head_bytes = 0
        self.url_bytes = 0
        self.te_values: list[bytes] = []
        self.has_length = False
        self.declared_length = False
        """A Content-Length other than 0 was given."""
        self.close_after = False
        self.stopped = False
        self.maybe_trailers = False
        """After a chunk header with no body byte since: the last chunk's trailers may follow."""
        self.trailer_bytes = 0
        self.body_seen = False

    @classmethod
    def _limits(cls) -> tuple[int, int]:
        if cls.limits is None:
            from mediagate.config import Settings

            settings = Settings()
            size = settings.max_header_size
            cls.limits = (size * LINE_FACTOR, size * HEAD_FACTOR)
            cls.head_timeout = settings.header_timeout_seconds
        return cls.limits

    # -- the head deadline ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        if self.head_timeout and self.head_timeout > 0:
            self.head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_timed_out(self) -> None:
        self.head_timer = None
        if self.stopped or self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self._arm_head_timer()  # a request is being answered; we may not be reading: wait
            return
        if not self.got_bytes:
            refusals.info("closed a connection that sent nothing for %s s", self.head_timeout)
            self.stopped = True
            self.transport.close()
            return
        self._refuse(408, f"the request head did not arrive within {self.head_timeout:g} s")

    # -- feeding -------------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.stopped:
            return
        self.got_bytes = True
        self._unset_keepalive_if_required()
        while data and not self.stopped:
            if self.in_head:
                room = self.head_limit - self.head_bytes
                if room <= 0:
                    self._refuse(431, f"the request head is larger than {self.head_limit} bytes")
                    return
                piece, data = data[:room], data[room:]
                self.head_bytes += len(piece)
                self._feed(piece)
            elif self.maybe_trailers:
                room = self.head_limit - self.trailer_bytes
                if room <= 0:
                    self._refuse(431, f"the request trailers are larger than {self.head_limit} bytes")
                    return
                piece, data = data[:room], data[room:]
                self.body_seen = False
                self._feed(piece)
                if self.maybe_trailers and not self.body_seen:  # no body byte came: trailer bytes
                    self.trailer_bytes += len(piece)
            else:
                piece, data = data, b""
                self._feed(piece)

    def _feed(self, piece: bytes) -> None:
        try:
            self.parser.feed_data(piece)
        except httptools.HttpParserUpgrade as exc:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
                self.stopped = True  # the connection now belongs to the websocket protocol
            else:
                # Upgrade ignored (RFC 9110 §7.8): what follows the request is HTTP/1.1 again
                self._unsupported_upgrade_warning()
                rest = piece[int(exc.args[0]) :] if exc.args else b""
                if rest and not self.stopped:
                    self._feed(rest)
        except httptools.HttpParserError as exc:
            refusal = exc.__context__ if isinstance(exc.__context__, Refusal) else None
            if refusal is None:
                self._refuse(400, "Invalid HTTP request received.")
            elif refusal.status is None:
                self.stopped = True
            else:
                self._refuse(refusal.status, refusal.message)

    def _refuse(self, status: int, message: str) -> None:
        """Answer ``status`` and close. A request already handed to the app (its body turned out
        malformed) is told the client went away, so that it stops waiting for the body and its
        own answer is dropped; if that answer has begun, the connection is just closed."""
        self.stopped = True
        refusals.warning("refused a request: %s %s", status, message)
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            if cycle.response_started:
                self.transport.close()
                return
            cycle.disconnected = True
            cycle.message_event.set()
        status, headers, body = self._answer(status, message)
        content = [STATUS_LINE[status]]
        for name, value in [*self.server_state.default_headers, *headers]:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()

    def _answer(self, status: int, message: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """The refusal in the error shape of the dialect the request was for, when its target
        (and the headers read so far) say which (``frontdoor.face_of``); else ``{"code",
        "message"}``. Returns (status, headers without length and connection, body)."""
        generic = (
            status,
            [(b"content-type", b"application/json")],
            json.dumps({"code": status, "message": message}).encode(),
        )
        if not self.url:
            return generic
        try:
            from urllib.parse import unquote

            from starlette.requests import Request

            from mediagate.core.errors import MediagateError
            from mediagate.frontdoor import face_of

            parsed = httptools.parse_url(self.url)
            raw_path = parsed.path or b"/"
            scope: dict[str, Any] = {
                "type": "http",
                "method": self.parser.get_method().decode("ascii", "replace"),
                "path": unquote(raw_path.decode("latin-1")),
                "raw_path": raw_path,
                "query_string": parsed.query or b"",
                "headers": [(name.lower(), value) for name, value in self.headers],
                "state": {},
            }
            error = MediagateError(message)
            error.status = status
            error.code = REFUSAL_CODES.get(status, "bad_request")
            response = face_of(scope).render(Request(scope), error)
            skip = {b"content-length", b"connection"}
            headers = [(k, v) for k, v in response.raw_headers if k.lower() not in skip]
            if response.status_code not in STATUS_LINE:
                return generic
            return response.status_code, headers, bytes(response.body)
        except Exception:  # a target too broken to route: the plain shape will do
            return generic

    # -- parser callbacks ----------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.close_after:
            raise Refusal(None)
        self.in_head = True
        self.url_bytes = 0
        self.te_values = []
        self.has_length = False
        self.maybe_trailers = False
        self.trailer_bytes = 0
        if self.head_timer is None:
            self._arm_head_timer()
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self.url_bytes += len(url)
        if self.url_bytes > self.line_limit:
            raise Refusal(414, f"the request target is longer than {self.line_limit} bytes")
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(name) + len(value) + 2 > self.line_limit:
            raise Refusal(431, f"a request header line is larger than {self.line_limit} bytes")
        if not self.in_head:
            return  # a trailer: read and dropped (the request's headers were handed over already)
        lower = name.lower()
        if lower == b"transfer-encoding":
            self.te_values.append(value)
        elif lower == b"content-length":
            self.has_length = True
            self.declared_length = value.strip() not in (b"", b"0")
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        check_framing(self.te_values, self.parser.get_http_version())
        if self.parser.should_upgrade() and (self.te_values or self.declared_length):
            # llhttp would end an upgrade request at its head and leave the body unread: the app
            # would store an empty file and the body would be parsed as the next request
            raise Refusal(400, "Upgrade is not supported on a request with a body; send it without Upgrade")
        self.in_head = False
        self._cancel_head_timer()
        super().on_headers_complete()
        if self.te_values and self.has_length:
            self.close_after = True
            if self.cycle is not None and self.cycle.scope is self.scope:
                self.cycle.keep_alive = False

    def on_chunk_header(self) -> None:
        self.maybe_trailers = True

    def on_body(self, body: bytes) -> None:
        self.maybe_trailers = False
        self.body_seen = True
        self.trailer_bytes = 0  # what was counted came before a chunk's data: not trailers
        super().on_body(body)

    def on_chunk_complete(self) -> None:
        self.maybe_trailers = False

    def on_message_complete(self) -> None:
        self.maybe_trailers = False
        self.in_head = True
        self.head_bytes = 0
        super().on_message_complete()

"""A pull-style reader over python-multipart's streaming parser.

``request.form()`` spools whole files; this reader hands out one part at a time and streams the
part's bytes, so a caller can read the small text fields (policy, signature), authorise, and only
then start reading the file part. It knows nothing about HTTP: it takes an async byte stream and a
boundary, and raises :class:`MalformedBody` for anything that is not well-formed multipart.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart.exceptions import FormParserError, MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from mediagate.core.errors import BadRequest, MalformedBody


@dataclass
class Part:
    name: str
    filename: str | None
    content_type: str | None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def is_file(self) -> bool:
        return self.filename is not None


def boundary_from_content_type(content_type: str | None) -> bytes:
    if not content_type:
        raise BadRequest("Content-Type multipart/form-data is required")
    mime, params = parse_options_header(content_type)
    if mime != b"multipart/form-data":
        raise BadRequest("Content-Type must be multipart/form-data")
    boundary = params.get(b"boundary")
    if not boundary:
        raise BadRequest("multipart boundary is missing")
    return boundary.strip(b'"')


_BEGIN, _HEADER, _HEADERS_DONE, _DATA, _END, _EOF = range(6)


class MultipartReader:
    """Iterate parts with ``next_part()``; read each with ``stream()`` or ``read_text()``."""

    def __init__(
        self,
        body: AsyncIterator[bytes],
        boundary: bytes,
        *,
        max_header_size: int = 16 * 1024,
        max_parts: int = 256,
    ) -> None:
        self._body = body
        self._events: deque[tuple[int, object]] = deque()
        self._field = bytearray()
        self._value = bytearray()
        self._max_parts = max_parts
        self._parts = 0
        self._finished = False
        self._in_part = False
        try:
            self._parser = MultipartParser(
                boundary,
                callbacks={
                    "on_part_begin": lambda: self._events.append((_BEGIN, None)),
                    "on_header_field": self._on_header_field,
                    "on_header_value": self._on_header_value,
                    "on_header_end": self._on_header_end,
                    "on_headers_finished": lambda: self._events.append((_HEADERS_DONE, None)),
                    "on_part_data": self._on_data,
                    "on_part_end": lambda: self._events.append((_END, None)),
                    "on_end": lambda: self._events.append((_EOF, None)),
                },
                max_header_count=64,
                max_header_size=max_header_size,
            )
        except (FormParserError, ValueError) as exc:
            raise BadRequest("invalid multipart boundary") from exc

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _on_header_end(self) -> None:
        name = bytes(self._field).decode("latin-1").strip().lower()
        value = bytes(self._value).decode("utf-8", "replace").strip()
        self._events.append((_HEADER, (name, value)))
        self._field.clear()
        self._value.clear()

    def _on_data(self, data: bytes, start: int, end: int) -> None:
        if end > start:
            self._events.append((_DATA, bytes(data[start:end])))

    async def _next_event(self) -> tuple[int, object]:
        while not self._events:
            if self._finished:
                raise MalformedBody("multipart body is truncated")
            try:
                chunk = await anext(self._body)
            except StopAsyncIteration:
                self._finished = True
                try:
                    self._parser.finalize()
                except (MultipartParseError, FormParserError) as exc:
                    raise MalformedBody("multipart body is truncated") from exc
                continue
            if not chunk:
                continue
            try:
                self._parser.write(chunk)
            except (MultipartParseError, FormParserError) as exc:
                raise MalformedBody(f"malformed multipart body: {exc}") from exc
        return self._events.popleft()

    async def next_part(self) -> Part | None:
        """Skip the rest of the current part, then return the next one (None at the end)."""
        headers: dict[str, str] = {}
        while True:
            kind, payload = await self._next_event()
            if kind == _EOF:
                return None
            if kind == _BEGIN:
                self._parts += 1
                if self._parts > self._max_parts:
                    raise BadRequest("too many multipart parts")
                headers = {}
            elif kind == _HEADER:
                assert isinstance(payload, tuple)
                headers[str(payload[0])] = str(payload[1])
            elif kind == _HEADERS_DONE:
                self._in_part = True
                return _make_part(headers)
            # _DATA and _END of an unread previous part are skipped

    async def stream(self) -> AsyncIterator[bytes]:
        """The current part's bytes, chunk by chunk."""
        while self._in_part:
            kind, payload = await self._next_event()
            if kind == _DATA:
                assert isinstance(payload, bytes)
                yield payload
            elif kind == _END:
                self._in_part = False
            elif kind == _EOF:
                raise MalformedBody("multipart body is truncated")

    async def read_text(self, *, limit: int) -> str:
        buf = bytearray()
        async for chunk in self.stream():
            buf += chunk
            if len(buf) > limit:
                raise BadRequest("form field too large")
        try:
            return buf.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequest("form field is not valid UTF-8") from exc


def _make_part(headers: dict[str, str]) -> Part:
    disposition = headers.get("content-disposition")
    if disposition is None:
        raise MalformedBody("multipart part without Content-Disposition")
    # The parser wants Latin-1 text; browsers send raw UTF-8 names ("图片.png"). Hand it the UTF-8
    # bytes one per character, and read its byte results back as UTF-8.
    kind, params = parse_options_header(disposition.encode("utf-8").decode("latin-1"))
    if kind != b"form-data" or b"name" not in params:
        raise MalformedBody("multipart part without a form-data name")
    name = params[b"name"].decode("utf-8", "replace")
    raw_filename = params.get(b"filename")
    filename = None if raw_filename is None else raw_filename.decode("utf-8", "replace")
    return Part(name=name, filename=filename, content_type=headers.get("content-type"), headers=headers)

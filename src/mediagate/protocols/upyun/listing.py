"""The UPYUN REST directory listing: request headers in, text body and iter token out.

Wire format (spec §3): one entry per line, ``<name>\\t<N|F>\\t<size>\\t<unix mtime>``, lines joined
by ``\\n`` with no trailing newline (the SDK splits on ``\\n``; an empty folder is an empty body).

Paging: ``X-List-Limit`` (default 1000, at most 10000), ``X-List-Order`` (``asc``/``desc``) and
``X-List-Iter`` (the token of the previous page). The answer's ``x-upyun-list-iter`` header is the
token of the next page, or UPYUN's end marker when nothing follows. Our tokens are opaque to
clients: urlsafe base64 of ``m1:<order>:<last name>``, so a page boundary survives concurrent
inserts and deletes (we page by name, not by offset).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from mediagate.core.errors import BadRequest
from mediagate.core.numbers import parse_uint
from mediagate.core.values import DirEntry

END_TOKEN = "g2gCZAAEbmV4dGQAA2VvZg"
"""UPYUN's "no more entries" iter token (from its public docs)."""

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10000
_TOKEN_PREFIX = "m1"


@dataclass(frozen=True)
class ListRequest:
    limit: int
    descending: bool
    after: str | None
    at_end: bool
    """The client passed the end token back: the answer is an empty page."""


def parse_list_headers(limit: str | None, order: str | None, token: str | None) -> ListRequest:
    """Validate the three X-List-* headers (BadRequest with a message naming the header)."""
    count = DEFAULT_LIMIT
    if limit is not None and limit.strip():
        wanted = parse_uint(limit)
        if wanted is None or wanted < 1:
            raise BadRequest("X-List-Limit must be a positive integer", code="bad_request")
        count = min(wanted, MAX_LIMIT)
    descending = False
    if order is not None and order.strip():
        value = order.strip().lower()
        if value not in ("asc", "desc"):
            raise BadRequest("X-List-Order must be 'asc' or 'desc'", code="bad_request")
        descending = value == "desc"
    after: str | None = None
    at_end = False
    if token is not None and token.strip():
        text = token.strip()
        if text == END_TOKEN:
            at_end = True
        else:
            after = _decode_token(text, descending)
    return ListRequest(count, descending, after, at_end)


def encode_token(last_name: str, descending: bool) -> str:
    raw = f"{_TOKEN_PREFIX}:{'d' if descending else 'a'}:{last_name}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str, descending: bool) -> str:
    bad = BadRequest("X-List-Iter is not a token this server gave out", code="bad_request")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("utf-8")
    except (binascii.Error, ValueError) as exc:
        raise bad from exc
    prefix, _, rest = raw.partition(":")
    order, _, name = rest.partition(":")
    if prefix != _TOKEN_PREFIX or order not in ("a", "d") or not name:
        raise bad
    if (order == "d") != descending:
        raise BadRequest("X-List-Iter was given for the other X-List-Order", code="bad_request")
    return name


def render_entries(entries: list[DirEntry]) -> str:
    return "\n".join(
        f"{e.name}\t{'F' if e.is_folder else 'N'}\t{0 if e.is_folder else e.size}\t{int(e.mtime.timestamp())}"
        for e in entries
    )

"""The UPYUN REST directory listing: request headers in, text body and iter token out.

Wire format (spec §3): one entry per line, ``<name>\\t<N|F>\\t<size>\\t<unix mtime>``, lines joined
by ``\\n`` with no trailing newline (the SDK splits on ``\\n``; an empty folder is an empty body).

Paging: ``X-List-Limit`` (default 1000, at most 10000), ``X-List-Order`` (``asc``/``desc``) and
``X-List-Iter`` (the token of the previous page). The answer's ``x-upyun-list-iter`` header is the
token of the next page, or UPYUN's end marker when nothing follows.

Our tokens are opaque to clients and cannot be forged: ``<payload>.<mac>``, the payload urlsafe
base64 of ``m2:<order>:<last name>`` and the mac a truncated HMAC-SHA256 of the payload and its
scope (the bucket's id and the folder) under a key derived from the server's secret key (shared by
every node; tokens made under a rotated-out key still open while it is configured). A page boundary
is the last name, not an offset, so it survives concurrent inserts and deletes and a deep page
costs what the first does (``Catalog.list_dir``). A token altered, made up, or given out for
another folder or bucket is refused with a 400, never answered with some other folder's names.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from mediagate.core.errors import BadRequest
from mediagate.core.numbers import parse_uint
from mediagate.core.values import DirEntry

END_TOKEN = "g2gCZAAEbmV4dGQAA2VvZg"
"""UPYUN's "no more entries" iter token (from its public docs)."""

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10000
_TOKEN_PREFIX = "m2"
_MAC_BYTES = 16
PURPOSE = "upyun-list-iter"
"""What the token key is derived for (``SecretBox.derive``)."""


@dataclass(frozen=True)
class ListRequest:
    limit: int
    descending: bool
    after: str | None
    at_end: bool
    """The client passed the end token back: the answer is an empty page."""


def parse_list_headers(
    limit: str | None, order: str | None, token: str | None, *, keys: Sequence[bytes], scope: str
) -> ListRequest:
    """Validate the three X-List-* headers (BadRequest with a message naming the header); a token
    must carry a mac under one of ``keys`` for ``scope`` (see :func:`token_scope`)."""
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
            after = _decode_token(text, descending, keys, scope)
    return ListRequest(count, descending, after, at_end)


def token_scope(bucket_id: int, folder: str) -> str:
    """What a token is valid for: one folder of one bucket (a recreated bucket is another)."""
    return f"{bucket_id}/{folder}"


def encode_token(last_name: str, descending: bool, *, key: bytes, scope: str) -> str:
    raw = f"{_TOKEN_PREFIX}:{'d' if descending else 'a'}:{last_name}".encode()
    payload = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return f"{payload}.{_mac(key, scope, payload)}"


def _mac(key: bytes, scope: str, payload: str) -> str:
    digest = hmac.new(key, f"{scope}\n{payload}".encode(), hashlib.sha256).digest()[:_MAC_BYTES]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _decode_token(token: str, descending: bool, keys: Sequence[bytes], scope: str) -> str:
    bad = BadRequest(
        "X-List-Iter is not a token this server gave out for this folder: pass back the "
        "x-upyun-list-iter of the previous page, or start the listing again without it",
        code="bad_request",
    )
    payload, dot, mac = token.partition(".")
    if not dot or not payload or not mac:
        raise bad
    ok = False
    for key in keys:  # every configured key, so that tokens survive a key rotation
        ok |= hmac.compare_digest(_mac(key, scope, payload), mac)
    if not ok:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode("utf-8")
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

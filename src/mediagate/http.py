"""Small HTTP helpers shared by every dialect: request ids, the gateway, the body stream."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextvars import ContextVar
from dataclasses import dataclass

from starlette.requests import ClientDisconnect, Request

from mediagate.core.errors import MalformedBody
from mediagate.core.gateway import Gateway
from mediagate.core.ids import unique_hex


def gateway(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw


def request_id(request: Request) -> str:
    state = request.scope.setdefault("state", {})
    rid: str | None = state.get("request_id")
    if rid is None:
        rid = state["request_id"] = unique_hex()
    return rid


def raw_target(request: Request) -> str:
    """The request-target exactly as the client sent it (percent-encoding kept), with query."""
    raw = request.scope.get("raw_path") or request.scope["path"].encode()
    target = raw.decode("latin-1")
    query = request.scope.get("query_string", b"")
    return f"{target}?{query.decode('latin-1')}" if query else target


async def body_stream(request: Request) -> AsyncIterator[bytes]:
    """The request body, chunk by chunk; a client that goes away mid-body is a malformed body."""
    try:
        async for chunk in request.stream():
            if chunk:
                yield chunk
    except ClientDisconnect as exc:
        raise MalformedBody("the client closed the connection before the body was complete") from exc


@dataclass
class BodyProgress:
    """How far the request body has been read (kept by ``frontdoor.FrontDoor``): ``done`` once its
    end was received; ``awaiting_continue`` while a client that sent ``Expect: 100-continue`` has
    not been asked for a byte, so it has sent none (the server sends 100 at the first read)."""

    done: bool
    awaiting_continue: bool = False


_body_progress: ContextVar[BodyProgress | None] = ContextVar("mediagate_body_progress", default=None)


def track_body(progress: BodyProgress) -> None:
    _body_progress.set(progress)


DRAIN_LIMIT = 1024 * 1024
"""After an early error, at most this much of the unread body is read and dropped."""
DRAIN_SECONDS = 5.0


async def drain_body(
    body: AsyncIterator[bytes], *, limit: int = DRAIN_LIMIT, seconds: float = DRAIN_SECONDS
) -> None:
    """Read (and drop) a little of what the client may still be sending after an early error, so
    that it gets to read our answer instead of a reset connection. Bounded in bytes and time, and
    never raises: a client that stalls or goes away just gets the answer (or nothing) sooner.
    A client still waiting for ``100 Continue`` has sent nothing: it is answered without a read
    (the answer then says ``Connection: close``), so it never sends the body at all."""
    progress = _body_progress.get()
    if progress is not None and progress.awaiting_continue:
        return
    seen = 0
    with contextlib.suppress(Exception):
        async with asyncio.timeout(seconds):
            async for chunk in body:
                seen += len(chunk)
                if seen > limit:
                    break

"""One writer per upload, across nodes: a lease held in the session's state (see the package
docstring). The catalog's compare-and-set makes taking it atomic; ``updated_at`` is its heartbeat."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from mediagate.core.gateway import Gateway
from mediagate.core.values import UploadSession
from mediagate.protocols.tus.headers import Locked

OPEN = "open"
COMPLETED = "completed"
PREFIX = "lock-"
LOCK_WAIT = 3.0
"""Seconds a request waits for another one's lease (a resumed client often arrives before the
server noticed its previous connection dropped)."""
LEASE_STALE = 30.0
HEARTBEAT = 5.0


def is_leased(session: UploadSession) -> bool:
    return session.state.startswith(PREFIX)


def _stale(session: UploadSession, now: datetime) -> bool:
    return session.updated_at < now - timedelta(seconds=LEASE_STALE)


async def _take(gw: Gateway, session_id: str, holder: str, wait: float) -> UploadSession:
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        session = await gw.session(session_id)
        free = session.state == OPEN or (is_leased(session) and _stale(session, datetime.now(UTC)))
        if not free and session.state == COMPLETED:
            return session  # nothing to write: the caller answers from the completed state
        if free and await gw.claim_session(session, expect=session.state, state=holder):
            return await gw.session(session_id)
        if asyncio.get_running_loop().time() >= deadline:
            raise Locked()
        await asyncio.sleep(0.1)


async def _beat(gw: Gateway, session: UploadSession, holder: str) -> None:
    while True:
        await asyncio.sleep(HEARTBEAT)
        with contextlib.suppress(Exception):  # a lost lease shows when the part is recorded
            if not await gw.touch_session(session, holder=holder):
                return


@contextlib.asynccontextmanager
async def lease(
    gw: Gateway, session_id: str, *, wait: float = LOCK_WAIT
) -> AsyncIterator[tuple[UploadSession, str]]:
    """Hold the upload's lease for the block: yields the fresh session and the holder id (its state
    while held). A completed session is yielded as it is, without a lease. On exit the session
    goes back to ``open`` if it is still ours (not completed or ended meanwhile)."""
    holder = PREFIX + secrets.token_hex(5)
    session = await _take(gw, session_id, holder, wait)
    if session.state != holder:
        yield session, holder
        return
    beat = asyncio.create_task(_beat(gw, session, holder))
    try:
        yield session, holder
    finally:
        beat.cancel()
        with contextlib.suppress(BaseException):
            await beat
        with contextlib.suppress(Exception):
            await asyncio.shield(gw.claim_session(session, expect=holder, state=OPEN))

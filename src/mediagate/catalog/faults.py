"""The catalog's border for infrastructure failures: a database that is down, restarting, busy past
its timeout or out of disk becomes a core error here (503 / 507), so no dialect ever renders a
driver exception as a bare 500.

:func:`watch` registers :func:`translate` as an engine's ``handle_error`` hook. It leaves alone what
a caller handles itself or what is a bug: unique-key races, deadlocks and serialisation failures
(:meth:`Catalog._retry` replays those), pre-ping failures (the pool reconnects by itself) and
programming errors (they stay 500s, to be fixed). The driver's error stays chained as the cause,
for the log line; the client sees only the core error's safe message.

One client error is found only here: PostgreSQL cannot hold or compare a NUL in text, and the driver
refuses a parameter with one before it is sent. No name, key or id can contain it, so a request
that carries one (``/%00/x``, ``?prefix=%00``) is a 400 in its dialect's shape, on any backend
mediagate runs on (SQLite simply finds nothing).
"""

from __future__ import annotations

from sqlalchemy import Engine, event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DataError, InterfaceError, OperationalError

from mediagate.core.errors import BadRequest, CatalogUnavailable, InsufficientStorage, MediagateError

_REPLAYED_SQLSTATES = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected
_DISK_FULL_SQLSTATE = "53100"  # PostgreSQL disk_full
_SQLITE_FULL = 13  # "database or disk is full"
_SQLITE_OUTAGE = frozenset({5, 6, 10, 14, 15})
"""SQLite's primary result codes that mean the file is out of reach, not that the statement is
wrong (SQLite reports both as OperationalError): BUSY and LOCKED past the busy timeout, IOERR,
CANTOPEN, PROTOCOL."""


def watch(engine: Engine) -> None:
    event.listen(engine, "handle_error", translate)


def translate(ctx: ExceptionContext) -> None:
    """Raise the core error for an infrastructure failure; return (keep the driver's error) else."""
    if ctx.is_pre_ping:
        return
    error = core_error(ctx.original_exception, ctx.sqlalchemy_exception, is_disconnect=ctx.is_disconnect)
    if error is not None:
        raise error from ctx.original_exception


def core_error(
    original: BaseException, wrapped: BaseException | None, *, is_disconnect: bool
) -> MediagateError | None:
    """The core error a driver error ``original`` (``wrapped`` by SQLAlchemy) stands for, or None
    when it is not an infrastructure failure. Shared by the engine hook and ``catalog.raw``."""
    sqlite_code = getattr(original, "sqlite_errorcode", None)
    if sqlite_code is not None:
        if sqlite_code & 0xFF == _SQLITE_FULL:
            return InsufficientStorage("the catalog database has no space left; retry later")
        if sqlite_code & 0xFF in _SQLITE_OUTAGE:
            return CatalogUnavailable()
        return None
    sqlstate = getattr(original, "sqlstate", None)
    if isinstance(wrapped, DataError | None) and "NUL (0x00)" in str(original):
        return BadRequest("a name, key or text may not contain the NUL character")
    if sqlstate == _DISK_FULL_SQLSTATE:
        return InsufficientStorage("the catalog database has no space left; retry later")
    if sqlstate in _REPLAYED_SQLSTATES:
        return None
    if is_disconnect or isinstance(wrapped, OperationalError | InterfaceError):
        return CatalogUnavailable()
    return None

"""The hot statements on the bare DB-API cursor, behind the repository like everything else.

Every upload runs a handful of tiny statements (look up the bucket and its operator, reserve the
blob, commit the row) and every public read one. Through SQLAlchemy Core each ``execute`` cost
~80-120 us of CPU (execution context, parameter processing, result wrapping) against ~10-20 us for
SQLite to run it, on the one committer thread and the event loop that bound upload throughput.
Here those statements are plain SQL text on the connection's own cursor, with the two things
SQLAlchemy did for them done by hand:

* values: SQLite stores our timestamps as text in SQLAlchemy's format and JSON as text
  (:func:`db_time`, :func:`from_db_time`); psycopg adapts both itself (JSON through a cast);
* errors: a driver error becomes SQLAlchemy's exception class (so :func:`repo.lost_race` and the
  callers' ``except IntegrityError`` see what they always saw), then the catalog's own outage
  mapping (``faults.core_error``) applies, exactly as the engine's ``handle_error`` hook would.

Only statements whose shape never changes live here; everything else stays on SQLAlchemy.

On PostgreSQL they may also be *pipelined* (:func:`pipeline`, :func:`send`): sent without waiting for
the server, their results read once the pipeline is synced, so that the group committer pays one
round trip for many statements (catalog.batch). :func:`execute` and its readers always wait for
their own statement, inside a pipeline too.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Connection, Table
from sqlalchemy.exc import DBAPIError

from mediagate.catalog import faults


class Statement:
    """One SQL statement, written with ``:name`` parameters (SQLite's style), and its
    PostgreSQL spelling (``%(name)s``, or a text of its own where the two differ)."""

    def __init__(self, sqlite: str, postgresql: str | None = None) -> None:
        self.sqlite = sqlite
        self.postgresql = re.sub(r":(\w+)", r"%(\1)s", postgresql or sqlite)

    def text(self, is_pg: bool) -> str:
        return self.postgresql if is_pg else self.sqlite


def is_postgresql(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def db_time(value: datetime | None, is_pg: bool) -> Any:
    """A timestamp as the column stores it: UTC; on SQLite the text SQLAlchemy writes there."""
    if value is None:
        return None
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value if is_pg else value.strftime("%Y-%m-%d %H:%M:%S.%f")


def from_db_time(value: Any) -> datetime | None:
    """The column's value as an aware UTC datetime (SQLite hands back text or naive values)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def db_json(value: Any, is_pg: bool) -> str:
    """JSON as text (PostgreSQL statements cast it: ``CAST(:x AS JSON)``)."""
    return json.dumps(value)


def from_db_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


_PIPELINE = "mediagate_pipeline"
"""Key of ``Connection.info`` holding the :class:`_Pipeline` the connection is in, if any."""


def pipeline(conn: Connection) -> AbstractContextManager[object] | None:
    """A pipeline on ``conn`` (PostgreSQL; None elsewhere): inside it :func:`send` does not wait
    for the server; on leaving it, every result is in (an error of any statement sent in it is
    raised there, as :func:`execute` would raise it)."""
    return _Pipeline(conn) if is_postgresql(conn) else None


class _Pipeline:
    """psycopg's pipeline mode, entered at the first statement :func:`send` sends: leaving a
    pipeline costs a round trip (a Sync) even when nothing was sent in it."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.pipe: Any = None
        self._stack = ExitStack()

    def send_next(self) -> None:
        if self.pipe is None:
            dbapi_conn = self.conn.connection.dbapi_connection
            assert dbapi_conn is not None
            self.pipe = self._stack.enter_context(dbapi_conn.pipeline())

    def __enter__(self) -> _Pipeline:
        self._info = self.conn.info  # kept: an invalidated connection refuses to show it
        self._info[_PIPELINE] = self
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._info.pop(_PIPELINE, None)
        if exc_info[1] is not None and self.conn.invalidated:
            # the connection is gone, and the pipeline with it: the error that found it out is
            # raised; leaving the pipeline fails too, which psycopg would log as a (plain-text)
            # warning were it told of that error
            with contextlib.suppress(Exception):
                self._stack.__exit__(None, None, None)
            return
        try:
            self._stack.__exit__(*exc_info)
        except self.conn.dialect.loaded_dbapi.Error as exc:
            raise _translated(self.conn, "(pipeline)", None, exc) from exc


def send(conn: Connection, statement: Statement, params: Mapping[str, Any] | Sequence[Any] = ()) -> Any:
    """Run ``statement`` like :func:`execute`, but inside a :func:`pipeline` only send it: its
    cursor has its result (rows, ``rowcount``) once the pipeline is synced, and its error, if
    any, is raised there or by a later statement. The cursor may be left to the garbage collector."""
    return execute(conn, statement, params, wait=False)


def execute(
    conn: Connection,
    statement: Statement,
    params: Mapping[str, Any] | Sequence[Any] = (),
    *,
    wait: bool = True,
) -> Any:
    """Run ``statement`` on ``conn``'s DB-API connection (inside whatever transaction it has) and
    return the cursor; driver errors are raised as SQLAlchemy's, or as the core outage errors."""
    is_pg = is_postgresql(conn)
    dbapi_conn = conn.connection.dbapi_connection
    assert dbapi_conn is not None
    cursor = dbapi_conn.cursor()
    sql = statement.text(is_pg)
    listeners = conn.dispatch.before_cursor_execute
    if listeners:  # whoever watches the engine's SQL (logging, tests/catalog) sees these too
        for listener in listeners:
            listener(conn, cursor, sql, params, None, False)
    pipeline: _Pipeline | None = conn.info.get(_PIPELINE) if is_pg else None
    try:
        if pipeline is not None and not wait:
            pipeline.send_next()
        cursor.execute(sql, params)
        if pipeline is not None and wait and pipeline.pipe is not None:
            pipeline.pipe.sync()  # this statement's result (a rowcount, a row) is read right away
    except conn.dialect.loaded_dbapi.Error as exc:
        cursor.close()
        raise _translated(conn, sql, params, exc) from exc
    return cursor


def fetch_one(conn: Connection, statement: Statement, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
    return take_one(execute(conn, statement, params))


def take_one(cursor: Any) -> tuple[Any, ...] | None:
    """The first row of a cursor from :func:`execute` or :func:`send` (once synced); closes it."""
    try:
        row = cursor.fetchone()
    finally:
        cursor.close()
    return None if row is None else tuple(row)


def fetch_all(conn: Connection, statement: Statement, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
    cursor = execute(conn, statement, params)
    try:
        return [tuple(row) for row in cursor.fetchall()]
    finally:
        cursor.close()


def run(conn: Connection, statement: Statement, params: Mapping[str, Any]) -> int:
    """Execute a write; the number of rows it touched."""
    cursor = execute(conn, statement, params)
    try:
        return int(cursor.rowcount)
    finally:
        cursor.close()


def _translated(conn: Connection, sql: str, params: Any, exc: Exception) -> Exception:
    dialect = conn.dialect
    dbapi_conn = conn.connection.dbapi_connection
    is_disconnect = bool(dialect.is_disconnect(exc, dbapi_conn, None))  # type: ignore[arg-type]
    wrapped = DBAPIError.instance(
        sql,
        params,
        exc,
        dialect.loaded_dbapi.Error,
        connection_invalidated=is_disconnect,
        dialect=dialect,
    )
    if is_disconnect:
        conn.invalidate(exc)
    core = faults.core_error(exc, wrapped, is_disconnect=is_disconnect)
    return core if core is not None else wrapped


class Columns:
    """How one table's rows cross the raw cursor, derived from its SQLAlchemy ``Table`` (so a
    migration that adds a column changes these statements too): the column list, and per column
    the conversion its type needs (timestamps and JSON; everything else passes as it is)."""

    def __init__(self, table: Table) -> None:
        from mediagate.catalog.models import UTCDateTime

        self.table = table.name
        self.names = [c.key for c in table.columns]
        self.times = {c.key for c in table.columns if isinstance(c.type, UTCDateTime)}
        self.jsons = {c.key for c in table.columns if isinstance(c.type, JSON)}

    def select(self, where: str) -> Statement:
        """``SELECT <every column> FROM <table> WHERE <where>`` (``:name`` parameters)."""
        # names from the table's metadata, never from a request
        return Statement(f"SELECT {', '.join(self.names)} FROM {self.table} WHERE {where}")  # noqa: S608

    def insert(self, *, returning_id: bool = False) -> Statement:
        """An INSERT of every column but ``id`` (PostgreSQL: ``RETURNING id`` when asked)."""
        names = [n for n in self.names if n != "id"]
        values = [f":{n}" for n in names]
        pg_values = [f"CAST(:{n} AS JSON)" if n in self.jsons else f":{n}" for n in names]
        head = f"INSERT INTO {self.table} ({', '.join(names)}) VALUES "  # noqa: S608 - metadata names
        tail = " RETURNING id" if returning_id else ""
        return Statement(head + f"({', '.join(values)})", head + f"({', '.join(pg_values)})" + tail)

    def bind(self, values: Mapping[str, Any], is_pg: bool) -> dict[str, Any]:
        """``values`` (column -> Python value) as the driver takes them."""
        out = dict(values)
        for name in self.times:
            if name in out:
                out[name] = db_time(out[name], is_pg)
        for name in self.jsons:
            if name in out:
                out[name] = db_json(out[name], is_pg)
        return out

    def load(self, row: Sequence[Any]) -> dict[str, Any]:
        """A row of :meth:`select` as column -> Python value."""
        out = dict(zip(self.names, row, strict=True))
        for name in self.times:
            out[name] = from_db_time(out[name])
        for name in self.jsons:
            out[name] = from_db_json(out[name])
        return out

"""The catalog repository: the only module that speaks SQL.

All methods are synchronous (SQLAlchemy sessions); async callers run them in a worker thread.
Returned ORM objects are detached snapshots (``expire_on_commit=False``).

SQLite is opened in WAL mode with ``synchronous=FULL`` (an acknowledged upload survives a power
cut, not only a process kill), and write transactions start with ``BEGIN IMMEDIATE`` so two
writers queue on the busy timeout instead of deadlocking on a lock upgrade.
Within one process, SQLite write transactions also take a process-wide lock first: SQLite admits
one writer at a time anyway, and a thread waiting on a Python lock is woken the moment the writer
is done, whereas one waiting in SQLite's busy handler polls with sleeps of up to 100 ms (under 32
concurrent uploads that made the p99 latency 2.4 s instead of 0.5 s). The busy timeout still
orders writers from other processes (more workers, the CLI).

PostgreSQL runs READ COMMITTED, so two writers can both see "no row yet" and then collide on a
unique key (the same object key, the same parent folder, the same part number), or both try to
delete the row one of them replaced. Those write methods run through :meth:`Catalog._retry`: the
loser's transaction is rolled back whole and replayed, and then sees the winner's row.

What no unique key can see, a name lock orders (PostgreSQL transaction-scoped advisory locks on
(bucket, path), see :func:`_lock_names`; SQLite's single writer needs none): committing an object
and creating a folder of the same name, and deleting a folder while an object or a subfolder is
committed into it. Each writer takes its name exclusively and its parent folder shared *before*
it reads, so it reads after the other has committed.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    CursorResult,
    Delete,
    Engine,
    Select,
    Table,
    and_,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from mediagate.catalog import faults, raw
from mediagate.catalog.batch import PLAIN, SYNC, GroupCommitter, Steps, run_through
from mediagate.catalog.models import (
    ATTEMPTS_KEPT,
    ApiKey,
    Bucket,
    Credential,
    Delivery,
    DeliveryAttempt,
    Feedback,
    Folder,
    GarbageBlob,
    Object,
    Quota,
    SignatureUse,
    Task,
    TextRule,
    UploadPart,
    UploadSession,
    UploadToken,
)
from mediagate.core.errors import CatalogUnavailable, Conflict, LimitExceeded, NotFound, QuotaExceeded
from mediagate.core.keys import parent_dirs, split_key
from mediagate.core.outbox import NewTask, Notification, Outgoing, TaskDone
from mediagate.core.values import DirEntry

T = TypeVar("T")

RETRIES = 20
"""Replays of a write transaction that lost a race (see the module docstring)."""
UPLOAD_LEASE = timedelta(hours=6)
"""How long a reserved upload blob is safe from the collector unless the caller says otherwise."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite returns naive datetimes; everything we store is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _delete_one(s: Session | Connection, statement: Delete, params: dict[str, Any] | None = None) -> None:
    """Delete the row a transaction just read; if a concurrent writer deleted it first, raise
    StaleDataError so that :meth:`Catalog._retry` replays the transaction on the new state."""
    if cast(CursorResult[Any], s.execute(statement, params)).rowcount != 1:
        raise StaleDataError("row deleted by a concurrent transaction")


# -- hot-path statements ---------------------------------------------------------------------------
# Every upload and every public read runs these. They are built once, with bind parameters, and run
# as Core statements: building a statement and computing its cache key on each call cost five times
# what SQLite takes to run it (~200 us against ~40 us per lookup, measured).

_buckets = cast(Table, Bucket.__table__)
_credentials = cast(Table, Credential.__table__)
_objects = cast(Table, Object.__table__)
_folders = cast(Table, Folder.__table__)
_garbage = cast(Table, GarbageBlob.__table__)
_deliveries = cast(Table, Delivery.__table__)
_tasks = cast(Table, Task.__table__)
_quotas = cast(Table, Quota.__table__)

_at_key = (_objects.c.bucket_id == bindparam("bucket_id"), _objects.c.key == bindparam("key"))
OBJECT_ID_BY_KEY = select(_objects.c.id).where(*_at_key)
FOLDER_ID_BY_PATH = select(_folders.c.id).where(
    _folders.c.bucket_id == bindparam("bucket_id"), _folders.c.path == bindparam("path")
)
INSERT_FOLDER = insert(_folders)
INSERT_DELIVERY = insert(_deliveries)

# The upload's own statements go further, straight to the DB-API cursor (see catalog.raw): through
# Core they still cost ~100 us of CPU each, on the one committer thread and the event loop.
_bucket_columns = raw.Columns(_buckets)
_object_columns = raw.Columns(_objects)
RAW_BUCKET_BY_NAME = _bucket_columns.select("name = :name")
RAW_ACTIVE_SECRETS = raw.Statement(
    "SELECT key_id, sealed_secret FROM credentials"
    " WHERE bucket_id = :bucket_id AND kind = :kind AND revoked_at IS NULL ORDER BY id DESC"
)
RAW_OBJECT_BY_KEY = _object_columns.select("bucket_id = :bucket_id AND key = :key")
RAW_COMMIT_FACTS = raw.Statement(
    # what committing an object must know about its key, in one statement: the committer thread
    # runs every upload's catalog writes one after the other, so each statement there counts
    "SELECT (SELECT id FROM buckets WHERE id = :bucket_id),"
    " (SELECT id FROM folders WHERE bucket_id = :bucket_id AND path = :key),"
    " (SELECT id FROM folders WHERE bucket_id = :bucket_id AND path = :dir),"
    " (SELECT id FROM objects WHERE bucket_id = :bucket_id AND key = :key),"
    " (SELECT blob_id FROM objects WHERE bucket_id = :bucket_id AND key = :key),"
    " (SELECT size FROM objects WHERE bucket_id = :bucket_id AND key = :key)"
)
RAW_INSERT_OBJECT = _object_columns.insert(returning_id=True)
RAW_DELETE_OBJECT_BY_ID = raw.Statement("DELETE FROM objects WHERE id = :object_id")
RAW_INSERT_GARBAGE = raw.Statement(
    "INSERT INTO garbage_blobs (blob_id, created_at, lease_until)"
    " VALUES (:blob_id, :created_at, :lease_until)"
)
RAW_DELETE_GARBAGE = raw.Statement("DELETE FROM garbage_blobs WHERE blob_id = :blob_id")
RAW_BUCKET_BY_ID = _bucket_columns.select("id = :bucket_id")
_quota_columns = raw.Columns(_quotas)
RAW_QUOTA_BY_BUCKET = _quota_columns.select("bucket_id = :bucket_id")
QUOTA_BY_BUCKET = select(_quotas).where(_quotas.c.bucket_id == bindparam("bucket_id"))


def _usage_update(check_bytes: bool, check_objects: bool) -> raw.Statement:
    """SQL adding ``db`` bytes and ``dn`` objects to a bucket's usage counters; with a check, only
    if the result stays within that limit (no row updated = over quota). On the raw cursor: every
    commit runs it, and a Core statement cost four times as much in SQLAlchemy as SQLite takes to
    run it (~55 us against ~15 us, measured); on PostgreSQL it is pipelined with the commit's
    other statements (see :meth:`Catalog._commit_steps`)."""
    sql = "UPDATE quotas SET bytes_used = bytes_used + :db, objects_used = objects_used + :dn"
    sql += " WHERE bucket_id = :bucket"
    if check_bytes:
        sql += " AND (max_bytes IS NULL OR bytes_used + :db <= max_bytes)"
    if check_objects:
        sql += " AND (max_objects IS NULL OR objects_used + :dn <= max_objects)"
    return raw.Statement(sql)


_USAGE_SQL = {(b, o): _usage_update(b, o) for b in (False, True) for o in (False, True)}

POINT_READ = "mediagate_point_read"
"""Execution option of the connections :meth:`Catalog._point_read` uses: no explicit BEGIN."""


_TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected


def lost_race(exc: BaseException) -> bool:
    """A write that failed only because a concurrent transaction got there first, so replaying it
    on the new state is right: a unique-key collision, a row changed under it, or (PostgreSQL) a
    deadlock or serialisation failure between transactions taking row locks in different orders."""
    if isinstance(exc, IntegrityError | StaleDataError):
        return True
    if isinstance(exc, OperationalError):
        return getattr(exc.orig, "sqlstate", None) in _TRANSIENT_SQLSTATES
    return False


def _name_key(bucket_id: int, path: str) -> int:
    """A signed 64-bit advisory lock key for a path of a bucket (a collision only serialises)."""
    digest = hashlib.blake2b(f"{bucket_id}/{path}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


_LOCK_NAME = text("SELECT pg_advisory_xact_lock(:name), pg_advisory_xact_lock_shared(:parent)")
RAW_LOCK_NAME = raw.Statement("SELECT pg_advisory_xact_lock(:name), pg_advisory_xact_lock_shared(:parent)")


def _lock_names(
    conn: Connection, bucket_id: int, *, exclusive: str | None = None, shared: Sequence[str] = ()
) -> None:
    """On PostgreSQL, lock ``exclusive`` (a path written or removed) and ``shared`` (folders that
    must go on existing) until the transaction ends; a no-op on SQLite, where writers are serial."""
    if conn.dialect.name != "postgresql":
        return
    if exclusive is not None and len(shared) == 1:
        key = {"name": _name_key(bucket_id, exclusive), "parent": _name_key(bucket_id, shared[0])}
        conn.execute(_LOCK_NAME, key)
        return
    calls = [f"pg_advisory_xact_lock_shared(:s{i})" for i in range(len(shared))]
    params = {f"s{i}": _name_key(bucket_id, path) for i, path in enumerate(shared)}
    if exclusive is not None:
        calls.insert(0, "pg_advisory_xact_lock(:x)")
        params["x"] = _name_key(bucket_id, exclusive)
    if calls:
        conn.execute(text(f"SELECT {', '.join(calls)}"), params)


def live() -> ColumnElement[bool]:
    """Objects that exist as far as a client can tell: not past their ``expires_at`` (ttl).

    An expired row stays until the collector deletes it; listings, counts and usage apply this one
    condition so that it never shows in the meantime (reads by key check the same in the Gateway)."""
    return or_(Object.expires_at.is_(None), Object.expires_at > utcnow())


@dataclass(frozen=True)
class OperationsCounts:
    sessions: list[tuple[str, int]]
    tasks: list[tuple[str, str, int]]
    deliveries: list[tuple[str, int]]


def make_engine(url: str, *, writer: bool = True, relaxed: bool = False, pre_ping: bool = True) -> Engine:
    """``relaxed``: an SQLite writer whose commits do not fsync (``synchronous=NORMAL``; see
    :attr:`Catalog._relaxed_engine`), with a small pool (used under the write lock, one at a time).
    ``pre_ping`` (PostgreSQL): a round trip at every checkout to find a connection the server has
    ended; off for a caller that retries on a fresh connection itself (:meth:`Catalog._point_read`)."""
    if url.startswith("sqlite"):
        # Sized for the worker threads (anyio's default limit is 40): an overflow connection is
        # closed on return, and reopening one (connect + PRAGMAs) cost more than the query itself.
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=2 if relaxed else 48,
            max_overflow=2 if relaxed else 16,
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL" if relaxed else "PRAGMA synchronous=FULL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            if conn.get_execution_options().get(POINT_READ):
                return  # one SELECT is a consistent snapshot by itself; BEGIN would double its cost
            # straight to the driver: through exec_driver_sql this cost as much as the query itself
            conn.connection.dbapi_connection.execute("BEGIN IMMEDIATE" if writer else "BEGIN")

        return engine
    return create_engine(url, pool_pre_ping=pre_ping, pool_size=10, max_overflow=20)


class Catalog:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url, writer=True)
        self._reader_engine = make_engine(url, writer=False) if url.startswith("sqlite") else self.engine
        self._write_sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(self._reader_engine, expire_on_commit=False)
        point_options: dict[str, Any] = {POINT_READ: True}
        self._unpinged = self._reader_engine
        if not url.startswith("sqlite"):
            # no transaction around one SELECT: without it the pool's ROLLBACK on return was one
            # more round trip to the server per lookup; and no pre-ping, another one (a lookup on a
            # connection the server ended is run again on a new one instead, see _point_read; the
            # committer's batches come from this pool too, see _batch_connection)
            point_options["isolation_level"] = "AUTOCOMMIT"
            self._unpinged = make_engine(url, pre_ping=False)
        self._point_reads = self._unpinged.execution_options(**point_options)
        self._write_lock: AbstractContextManager[object] = (
            threading.RLock() if url.startswith("sqlite") else nullcontext()
        )
        self._committer = GroupCommitter(
            self._batch_connection,
            self._replay,
            is_race=lost_race,
            pipeline=raw.pipeline,
            found_dead=self._found_dead,
        )
        self._relaxed_engine = make_engine(url, relaxed=True) if url.startswith("sqlite") else self.engine
        """Writes that need not reach the disk before they return (:meth:`_relaxed`): a task's
        claim, lease renewal, failed attempt, and a ``done`` that publishes no object. Delivery is at least
        once and tasks are idempotent, so losing one of those to a power cut only runs a task
        again (a lost claim or done) or retries it sooner (a lost failure); the task's creation
        stays durable in its upload's own transaction, and every object a task publishes commits
        on the durable path. SQLite: a second connection with ``synchronous=NORMAL`` (WAL: its
        commits skip the fsync; the next durable commit's WAL fsync covers them, and the delivery
        loop's durable claim comes before any notification they queued is sent). PostgreSQL:
        ``SET LOCAL synchronous_commit = off``, the same trade with the same guarantees. Without
        an fsync to share there is nothing for a group commit to save, so these run in the
        caller's thread: no hand-off to the committer thread and back."""
        for engine in {self.engine, self._reader_engine, self._relaxed_engine, self._unpinged}:
            faults.watch(engine)  # a database outage is a CatalogUnavailable, not a driver error

    def close(self) -> None:
        self._committer.close()
        self.engine.dispose()
        for engine in {self._reader_engine, self._relaxed_engine, self._unpinged} - {self.engine}:
            engine.dispose()

    @contextmanager
    def _write(self) -> Iterator[Session]:
        with self._write_lock, self._write_sessions() as session, session.begin():
            yield session

    @contextmanager
    def _write_connection(self) -> Iterator[Connection]:
        """A write transaction on a bare Connection, for the group-committed hot path."""
        with self._write_lock, self.engine.begin() as conn:
            yield conn

    @contextmanager
    def _batch_connection(self) -> Iterator[Connection]:
        """:meth:`_write_connection` for the committer's batches: on PostgreSQL from the pool
        that lends without a ping (the committer runs a batch again if its connection turns out
        dead before the commit, see ``GroupCommitter._transaction``)."""
        engine = self.engine if self.url.startswith("sqlite") else self._unpinged
        with self._write_lock, engine.begin() as conn:
            yield conn

    def _found_dead(self, conn: Connection) -> bool:
        """Whether ``conn`` was found ended by the server; then so were the pool's others: a new
        pool (without closing the old connections: there is no one to tell)."""
        if self.url.startswith("sqlite") or not conn.invalidated:
            return False
        self._unpinged.dispose(close=False)
        return True

    def _relaxed(self, job: Callable[[Connection], T]) -> T:
        """``job`` in a write transaction of its own whose commit need not be durable (see
        :attr:`_relaxed_engine`), in this thread; replayed if it lost a race."""

        def attempt() -> T:
            with self._write_lock, self._relaxed_engine.begin() as conn:
                if self._relaxed_engine.dialect.name == "postgresql":
                    conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
                return job(conn)

        return self._retry(attempt)

    @staticmethod
    def _retry(attempt: Callable[[], T]) -> T:
        """Run a write transaction, replaying it when it lost a race with a concurrent writer.

        ``attempt`` must do all of its work in one ``_write()`` block; a unique-key collision or a
        row deleted under it rolls that block back whole, so replaying it is safe."""
        for n in range(RETRIES):
            try:
                return attempt()
            except (IntegrityError, StaleDataError, OperationalError) as exc:
                if n == RETRIES - 1 or not lost_race(exc):
                    raise
                time.sleep(random.uniform(0, 0.002 * (n + 1)))
        raise AssertionError("unreachable")

    def _replay(self, job: Callable[[Connection], T]) -> T:
        """A batched job that lost a race, run again alone in its own transaction(s)."""

        def attempt() -> T:
            with self._write_connection() as conn:
                return job(conn)

        return self._retry(attempt)

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with self._read_sessions() as session, session.begin():
            yield session

    def _point_read(self, statement: raw.Statement, **params: Any) -> list[tuple[Any, ...]]:
        """The rows of one hot-path SELECT on the raw cursor (see catalog.raw): no session, no
        BEGIN (one SELECT is a consistent snapshot by itself). On PostgreSQL the pool does not
        ping a connection before lending it: a lookup that finds its connection ended by the
        server (a restart) starts a new pool and runs once more, as a pre-ping would have."""
        for attempt in (1, 2):
            with self._point_reads.connect() as conn:
                try:
                    return raw.fetch_all(conn, statement, params)
                except CatalogUnavailable:
                    if attempt == 2 or not conn.invalidated:
                        raise
            self._unpinged.dispose(close=False)  # its other connections went with the server
        raise AssertionError("unreachable")

    # -- buckets -------------------------------------------------------------------------------

    def create_bucket(
        self,
        name: str,
        settings: dict[str, Any] | None = None,
        *,
        credentials: Sequence[tuple[str, str, str]] = (),
    ) -> Bucket:
        """Create a bucket with its ``credentials`` ((kind, key_id, sealed secret) each) in one
        transaction: either all of it exists or none. Conflict if the name is taken, or an access
        key id is (the database's unique indexes decide, so concurrent creates cannot both win)."""
        try:
            with self._write() as s:
                now = utcnow()
                bucket = Bucket(name=name, created_at=now, settings=settings or {})
                s.add(bucket)
                s.flush()
                s.add(Quota(bucket_id=bucket.id, bytes_used=0, objects_used=0))
                for kind, key_id, sealed in credentials:
                    s.add(
                        Credential(
                            bucket_id=bucket.id,
                            kind=kind,
                            key_id=key_id,
                            sealed_secret=sealed,
                            created_at=now,
                        )
                    )
                s.flush()
                return bucket
        except IntegrityError as exc:
            if self.get_bucket(name) is not None:
                raise Conflict(f"bucket {name!r} already exists", code="bucket_exists") from exc
            raise _key_in_use() from exc

    def get_bucket(self, name: str) -> Bucket | None:
        rows = self._point_read(RAW_BUCKET_BY_NAME, name=name)
        return Bucket(**_bucket_columns.load(rows[0])) if rows else None

    def require_bucket(self, name: str) -> Bucket:
        bucket = self.get_bucket(name)
        if bucket is None:
            raise NotFound(f"bucket {name!r} does not exist", code="bucket_not_found")
        return bucket

    def list_buckets(self) -> list[Bucket]:
        with self._read() as s:
            return list(s.scalars(select(Bucket).order_by(Bucket.name)))

    def update_bucket_settings(self, name: str, changes: dict[str, Any]) -> Bucket:
        with self._write() as s:
            bucket = s.scalar(select(Bucket).where(Bucket.name == name))
            if bucket is None:
                raise NotFound(f"bucket {name!r} does not exist", code="bucket_not_found")
            bucket.settings = {**(bucket.settings or {}), **changes}
            return bucket

    def delete_bucket(self, name: str) -> None:
        """Remove the bucket and everything in it; its blobs go to the garbage list."""
        with self._write() as s:
            bucket = s.scalar(select(Bucket).where(Bucket.name == name))
            if bucket is None:
                raise NotFound(f"bucket {name!r} does not exist", code="bucket_not_found")
            now = utcnow()
            blobs = list(s.scalars(select(Object.blob_id).where(Object.bucket_id == bucket.id)))
            session_ids = select(UploadSession.id).where(UploadSession.bucket_id == bucket.id)
            blobs += list(s.scalars(select(UploadPart.blob_id).where(UploadPart.session_id.in_(session_ids))))
            for blob_id in blobs:
                s.merge(GarbageBlob(blob_id=blob_id, created_at=now))
            s.execute(delete(UploadPart).where(UploadPart.session_id.in_(session_ids)))
            for model in (UploadSession, Object, Folder, Credential, UploadToken, ApiKey, Quota):
                s.execute(delete(model).where(model.bucket_id == bucket.id))
            s.delete(bucket)

    # -- credentials ---------------------------------------------------------------------------

    def add_credential(self, bucket_id: int, kind: str, key_id: str, sealed_secret: str) -> Credential:
        """Conflict if ``key_id`` is an access key id some bucket already has (or had)."""
        try:
            with self._write() as s:
                cred = Credential(
                    bucket_id=bucket_id,
                    kind=kind,
                    key_id=key_id,
                    sealed_secret=sealed_secret,
                    created_at=utcnow(),
                )
                s.add(cred)
                s.flush()
                return cred
        except IntegrityError as exc:
            raise _key_in_use() from exc

    def credentials(self, bucket_id: int, kind: str, *, include_revoked: bool = False) -> list[Credential]:
        with self._read() as s:
            query = select(Credential).where(Credential.bucket_id == bucket_id, Credential.kind == kind)
            if not include_revoked:
                query = query.where(Credential.revoked_at.is_(None))
            return list(s.scalars(query.order_by(Credential.id.desc())))

    def active_secrets(self, bucket_id: int, kind: str) -> list[tuple[str, str]]:
        """(key_id, sealed secret) of the active credentials of ``kind``, newest first: what every
        authorised request looks up, so plain rows, without building ORM objects."""
        rows = self._point_read(RAW_ACTIVE_SECRETS, bucket_id=bucket_id, kind=kind)
        return [(str(key_id), str(sealed)) for key_id, sealed in rows]

    def find_credential(self, kind: str, key_id: str) -> tuple[Credential, Bucket] | None:
        """An active credential by its public id (e.g. an access key id), with its bucket."""
        with self._read() as s:
            row = s.execute(
                select(Credential, Bucket)
                .join(Bucket, Bucket.id == Credential.bucket_id)
                .where(
                    Credential.kind == kind,
                    Credential.key_id == key_id,
                    Credential.revoked_at.is_(None),
                )
            ).first()
            return None if row is None else (row[0], row[1])

    def revoke_credential(self, credential_id: int) -> None:
        with self._write() as s:
            s.execute(update(Credential).where(Credential.id == credential_id).values(revoked_at=utcnow()))

    def count_credentials(self) -> int:
        """Every stored credential, revoked ones included (their secrets are sealed too)."""
        with self._read() as s:
            return int(s.scalar(select(func.count()).select_from(Credential)) or 0)

    def sealed_secrets(self, *, after_id: int = 0, limit: int = 500) -> list[tuple[int, str]]:
        """(credential id, sealed secret) by id, from just after ``after_id``: one page of every
        stored secret, for checking the sealing key and re-sealing them all."""
        with self._read() as s:
            rows = s.execute(
                select(Credential.id, Credential.sealed_secret)
                .where(Credential.id > after_id)
                .order_by(Credential.id)
                .limit(limit)
            ).all()
            return [(int(row[0]), str(row[1])) for row in rows]

    def reseal_credential(self, credential_id: int, old: str, new: str) -> bool:
        """Replace one sealed secret if it is still ``old`` (False if it changed meanwhile)."""
        with self._write() as s:
            result = s.execute(
                update(Credential)
                .where(Credential.id == credential_id, Credential.sealed_secret == old)
                .values(sealed_secret=new)
            )
            return cast(CursorResult[Any], result).rowcount == 1

    # -- objects -------------------------------------------------------------------------------

    def get_object(self, bucket_id: int, key: str) -> Object | None:
        """The object row, read with a Core statement (every public read and cached thumbnail hit
        does this lookup; the ORM's load machinery was most of its cost) into a detached Object."""
        rows = self._point_read(RAW_OBJECT_BY_KEY, bucket_id=bucket_id, key=key)
        return Object(**_object_columns.load(rows[0])) if rows else None

    def reserve_blob(self, blob_id: str, *, lease: timedelta = UPLOAD_LEASE) -> None:
        """Record a blob as garbage *before* it is stored; committing an object un-records it.

        So a crash between storing a blob and committing its row leaves a blob the collector
        will delete, never one that nothing knows about. The collector leaves it alone for
        ``lease`` (see :meth:`garbage`), which is what keeps a slow put, e.g. a large file to S3,
        safe while it is stored."""
        self.submit_reserve(blob_id, lease=lease).result()

    def submit_reserve(self, blob_id: str, *, lease: timedelta = UPLOAD_LEASE) -> Future[None]:
        """:meth:`reserve_blob` through group commit (shares a transaction with concurrent writers)."""

        def job(conn: Connection) -> Steps[None]:
            now = utcnow()
            pg = raw.is_postgresql(conn)
            times = {"created_at": raw.db_time(now, pg), "lease_until": raw.db_time(now + lease, pg)}
            raw.send(conn, RAW_INSERT_GARBAGE, {"blob_id": blob_id, **times})
            return
            yield  # a staged job: the insert goes in the batch's pipeline, nothing to wait for

        return self._committer.submit_staged(job)

    def commit_object(
        self, obj: Object, *, insert_only: bool = False, outbox: Sequence[Outgoing] = ()
    ) -> bool:
        """Make ``obj`` visible: insert, or replace the row of the same key (its old blob becomes
        garbage). Parent folders are created as needed. Raises Conflict under ``insert_only``.
        The ``outbox`` notifications are queued for delivery in the same transaction (core.outbox):
        if the object is committed they are owed, and if anything fails neither exists.
        Returns True if an object was replaced."""
        return self.submit_commit(obj, insert_only=insert_only, outbox=outbox).result()

    def submit_commit(
        self, obj: Object, *, insert_only: bool = False, outbox: Sequence[Outgoing] = ()
    ) -> Future[bool]:
        """:meth:`commit_object` through group commit; the future resolves once it is durable."""
        obj.dir, obj.name = split_key(obj.key)
        notes = tuple(outbox)

        def job(conn: Connection) -> Steps[bool]:
            replaced = yield from self._commit_steps(conn, obj, insert_only)
            if notes:
                yield PLAIN  # the outbox rows go through SQLAlchemy
                _queue_outbox(conn, notes)
            return replaced

        return self._committer.submit_staged(job)

    def _commit_object(self, conn: Connection, obj: Object, insert_only: bool, enforce: bool = True) -> bool:
        """Insert or replace the row, and count it in the bucket's usage: refused (QuotaExceeded)
        when that passes the bucket's quota, unless ``enforce`` is off (a task's outputs: the work
        was accepted; they count, but are not refused)."""
        return run_through(self._commit_steps(conn, obj, insert_only, enforce))

    def _commit_steps(
        self, conn: Connection, obj: Object, insert_only: bool, enforce: bool = True
    ) -> Steps[bool]:
        """:meth:`_commit_object` as a staged job (catalog.batch): on PostgreSQL the committer
        pipelines the stages of a whole batch, so the common case (a new key in an existing
        folder) costs every upload of the batch two shared round trips, not six of its own."""
        # The upload hot path: raw statements (the ORM unit of work, then Core, cost several
        # times the SQL itself). ``obj`` stays a plain, detached snapshot.
        pg = raw.is_postgresql(conn)
        where = {"bucket_id": obj.bucket_id, "key": obj.key, "dir": obj.dir}
        if pg:  # the name locks (see _lock_names), before reading
            locks = {"name": _name_key(obj.bucket_id, obj.key), "parent": _name_key(obj.bucket_id, obj.dir)}
            raw.send(conn, RAW_LOCK_NAME, locks)
        facts_cursor = raw.send(conn, RAW_COMMIT_FACTS, where)
        yield SYNC
        facts = raw.take_one(facts_cursor)
        assert facts is not None
        bucket, folder_at_key, parent_folder, object_id, object_blob, object_size = facts
        if bucket is None:
            raise NotFound("bucket does not exist", code="bucket_not_found")  # deleted meanwhile
        if folder_at_key is not None:
            raise Conflict("a folder of that name exists", code="is_folder")
        now = utcnow()
        deleted = None
        if object_id is not None:
            if insert_only:
                raise Conflict("an object with this key already exists", code="key_exists")
            deleted = raw.send(conn, RAW_DELETE_OBJECT_BY_ID, {"object_id": object_id})
            garbage = {"blob_id": object_blob, "created_at": raw.db_time(now, pg), "lease_until": None}
            raw.send(conn, RAW_INSERT_GARBAGE, garbage)
        if parent_folder is None:
            yield PLAIN  # made through SQLAlchemy, reading as it goes
            self._ensure_folders(conn, obj.bucket_id, obj.dir, now)
        values = {name: getattr(obj, name) for name in _object_columns.names if name != "id"}
        values["meta"] = values["meta"] or {}
        inserted = raw.send(conn, RAW_INSERT_OBJECT, _object_columns.bind(values, pg))
        raw.send(conn, RAW_DELETE_GARBAGE, {"blob_id": obj.blob_id})
        replaced = object_id is not None
        grown = obj.size - (object_size or 0) if replaced else obj.size
        added = 0 if replaced else 1
        counted = _send_usage(conn, obj.bucket_id, grown, added, enforce=enforce)
        yield SYNC
        if deleted is not None and deleted.rowcount != 1:
            raise StaleDataError("row deleted by a concurrent transaction")
        obj.id = raw.take_one(inserted)[0] if pg else inserted.lastrowid  # type: ignore[index]
        if counted is not None and counted.rowcount != 1:
            yield PLAIN
            _usage_refused(conn, obj.bucket_id, grown, added)
        return replaced

    def delete_object(
        self,
        bucket_id: int,
        key: str,
        *,
        outbox: Callable[[Object], Sequence[Notification]] | None = None,
        only_blob: str | None = None,
    ) -> bool:
        """Hide the object at ``key`` (its blob becomes garbage); False if there was none. The
        notifications ``outbox`` makes of the deleted row are queued in the same transaction.
        ``only_blob``: only if the object there is still that version (the collector deleting an
        expired one must not delete the upload that replaced it since it looked; every version has
        its own blob, while SQLite may give the new row the old one's id)."""
        return self._retry(lambda: self._delete_object(bucket_id, key, outbox, only_blob))

    def _delete_object(
        self,
        bucket_id: int,
        key: str,
        outbox: Callable[[Object], Sequence[Notification]] | None,
        only_blob: str | None = None,
    ) -> bool:
        with self._write() as s:
            existing = s.scalar(select(Object).where(Object.bucket_id == bucket_id, Object.key == key))
            if existing is None or (only_blob is not None and existing.blob_id != only_blob):
                return False
            s.merge(GarbageBlob(blob_id=existing.blob_id, created_at=utcnow()))
            _delete_one(s, delete(Object).where(Object.id == existing.id))
            if outbox is not None:
                _queue_deliveries(s.connection(), outbox(existing))
            _count_usage(s.connection(), bucket_id, -existing.size, -1, enforce=False)
            return True

    def rename_object(self, bucket_id: int, key: str, new_key: str, *, replace: bool = True) -> Object:
        """Give object ``key`` the name ``new_key`` in one transaction; its blob moves with it.
        An object already at ``new_key`` is replaced (its blob becomes garbage); the parent folders
        of ``new_key`` are created. NotFound if ``key`` is absent, Conflict if ``new_key`` is a folder
        (or, with ``replace=False``, an object).

        Runs through :meth:`_retry` like the other writers: a concurrent commit to ``new_key``
        (unique-key collision), or a concurrent rename/delete of either row, replays the whole
        transaction on the new state instead of failing or renaming a row it no longer holds."""
        return self._retry(lambda: self._rename_object(bucket_id, key, new_key, replace))

    def _rename_object(self, bucket_id: int, key: str, new_key: str, replace: bool = True) -> Object:
        new_dir, new_name = split_key(new_key)
        with self._write() as s:
            obj = s.scalar(select(Object).where(Object.bucket_id == bucket_id, Object.key == key))
            if obj is None:
                raise NotFound("file not found", code="file_not_found")
            if new_key == key:
                return obj
            _lock_names(s.connection(), bucket_id, exclusive=new_key, shared=[new_dir])
            if s.scalar(select(Folder.id).where(Folder.bucket_id == bucket_id, Folder.path == new_key)):
                raise Conflict("a folder of that name exists", code="is_folder")
            now = utcnow()
            existing = s.scalar(select(Object).where(Object.bucket_id == bucket_id, Object.key == new_key))
            if existing is not None and not replace:
                raise Conflict("a file of that name exists", code="key_exists")
            if existing is not None:
                s.merge(GarbageBlob(blob_id=existing.blob_id, created_at=now))
                _delete_one(s, delete(Object).where(Object.id == existing.id))
                _count_usage(s.connection(), bucket_id, -existing.size, -1, enforce=False)
            self._ensure_folders(s.connection(), bucket_id, new_dir, now)
            # this very row, still at ``key``: not one a concurrent rename has already moved
            moved = s.execute(
                update(Object)
                .where(Object.id == obj.id, Object.key == key)
                .values(key=new_key, dir=new_dir, name=new_name)
                .execution_options(synchronize_session=False)
            )
            if cast(CursorResult[Any], moved).rowcount != 1:
                raise StaleDataError("row renamed or deleted by a concurrent transaction")
            s.expunge(obj)
            obj.key, obj.dir, obj.name = new_key, new_dir, new_name
            return obj

    def update_object_meta(self, bucket_id: int, key: str, meta: dict[str, Any]) -> None:
        with self._write() as s:
            s.execute(
                update(Object).where(Object.bucket_id == bucket_id, Object.key == key).values(meta=meta)
            )

    def edit_object(self, bucket_id: int, key: str, edit: Callable[[Object], None]) -> Object:
        """Apply ``edit`` to object ``key`` (its metadata, its expiry) read and written in one
        transaction with the row locked, so concurrent edits do not undo each other. NotFound if
        the object is absent; an exception from ``edit`` rolls the change back."""

        def attempt() -> Object:
            with self._write() as s:
                query = select(Object).where(Object.bucket_id == bucket_id, Object.key == key)
                obj = s.scalar(query.with_for_update())
                if obj is None:
                    raise NotFound("file not found", code="file_not_found")
                edit(obj)
                s.flush()
                s.expunge(obj)
                return obj

        return self._retry(attempt)

    def usage(self, bucket_id: int, prefix: str = "") -> int:
        """Bytes held by the bucket's live objects (only those under folder ``prefix`` if given)."""
        query = select(func.coalesce(func.sum(Object.size), 0)).where(Object.bucket_id == bucket_id, live())
        if prefix:  # every key under "p/" sorts in ["p/", "p0"): a range of the unique key index
            query = query.where(Object.key >= prefix + "/", Object.key < prefix + "0")
        with self._read() as s:
            return int(s.scalar(query) or 0)

    def expired_objects(self, now: datetime, limit: int = 500) -> list[Object]:
        with self._read() as s:
            return list(
                s.scalars(
                    select(Object).where(Object.expires_at.is_not(None), Object.expires_at < now).limit(limit)
                )
            )

    # -- folders -------------------------------------------------------------------------------

    @staticmethod
    def _ensure_folders(conn: Connection, bucket_id: int, dir_path: str, now: datetime) -> None:
        if not dir_path:
            return
        if conn.execute(FOLDER_ID_BY_PATH, {"bucket_id": bucket_id, "path": dir_path}).first() is not None:
            return  # folders are only ever made with their parents, so every parent exists too
        # the ancestors found must stay while the new folders below them are committed
        _lock_names(conn, bucket_id, shared=parent_dirs(dir_path)[:-1])
        for path in parent_dirs(dir_path):
            if conn.execute(OBJECT_ID_BY_KEY, {"bucket_id": bucket_id, "key": path}).first() is not None:
                raise Conflict(f"{path!r} is a file, not a folder", code="not_a_folder")
            if conn.execute(FOLDER_ID_BY_PATH, {"bucket_id": bucket_id, "path": path}).first() is None:
                parent, name = split_key(path)
                row = {"bucket_id": bucket_id, "path": path, "dir": parent, "name": name, "created_at": now}
                conn.execute(INSERT_FOLDER, row)

    def create_folder(self, bucket_id: int, path: str, *, exist_ok: bool = True) -> bool:
        """Create ``path`` and its parents. Returns False if it already existed."""
        return self._retry(lambda: self._create_folder(bucket_id, path, exist_ok))

    def _create_folder(self, bucket_id: int, path: str, exist_ok: bool) -> bool:
        """The folder's own row is inserted unconditionally once its parents exist: under READ
        COMMITTED a concurrent creator may commit it between our check and our insert, and then the
        unique key (not a second look, which would find it and call it ours) makes us the loser,
        replayed by :meth:`_retry` into "already exists"."""
        parent, name = split_key(path)
        with self._write() as s:
            conn = s.connection()
            _lock_names(conn, bucket_id, exclusive=path, shared=[parent])
            if conn.execute(FOLDER_ID_BY_PATH, {"bucket_id": bucket_id, "path": path}).first() is not None:
                if not exist_ok:
                    raise Conflict("folder already exists", code="folder_exists")
                return False
            now = utcnow()
            self._ensure_folders(conn, bucket_id, parent, now)
            if conn.execute(OBJECT_ID_BY_KEY, {"bucket_id": bucket_id, "key": path}).first() is not None:
                raise Conflict(f"{path!r} is a file, not a folder", code="not_a_folder")
            row = {"bucket_id": bucket_id, "path": path, "dir": parent, "name": name, "created_at": now}
            conn.execute(INSERT_FOLDER, row)
            return True

    def get_folder(self, bucket_id: int, path: str) -> Folder | None:
        with self._read() as s:
            return s.scalar(select(Folder).where(Folder.bucket_id == bucket_id, Folder.path == path))

    def folder_is_empty(self, bucket_id: int, path: str) -> bool:
        with self._read() as s:
            return self._folder_is_empty(s, bucket_id, path)

    @staticmethod
    def _folder_is_empty(s: Session, bucket_id: int, path: str) -> bool:
        has_object = s.scalar(  # an expired object is gone for clients, so it does not count
            select(Object.id).where(Object.bucket_id == bucket_id, Object.dir == path, live()).limit(1)
        )
        has_folder = s.scalar(
            select(Folder.id).where(Folder.bucket_id == bucket_id, Folder.dir == path).limit(1)
        )
        return has_object is None and has_folder is None

    def delete_folder(self, bucket_id: int, path: str) -> None:
        with self._write() as s:
            _lock_names(s.connection(), bucket_id, exclusive=path)  # waits for commits into it
            folder = s.scalar(select(Folder).where(Folder.bucket_id == bucket_id, Folder.path == path))
            if folder is None:
                raise NotFound("folder not found", code="folder_not_found")
            if not self._folder_is_empty(s, bucket_id, path):
                raise Conflict("folder is not empty", code="folder_not_empty")
            s.delete(folder)

    def list_dir(
        self,
        bucket_id: int,
        dir_path: str,
        *,
        limit: int = 1000,
        after: str | None = None,
        descending: bool = False,
    ) -> list[DirEntry]:
        """Folders and objects directly in ``dir_path``, merged and ordered by name.

        Keyset paging: ``after`` is the last name of the previous page, so a page boundary stays
        put while others add or remove entries, and a page deep in a folder of a million entries
        costs what the first one does (two index range reads of ``limit`` rows, one per table,
        merged here)."""
        with self._read() as s:

            def page(model: type[Object] | type[Folder]) -> Any:
                query = select(model).where(model.bucket_id == bucket_id, model.dir == dir_path)
                if model is Object:
                    query = query.where(live())
                if after is not None:
                    query = query.where(model.name < after if descending else model.name > after)
                order = model.name.desc() if descending else model.name.asc()
                return s.scalars(query.order_by(order).limit(limit))

            entries = [DirEntry(f.name, True, 0, as_utc(f.created_at)) for f in page(Folder)]
            entries += [DirEntry(o.name, False, o.size, as_utc(o.created_at), o.mime) for o in page(Object)]
        entries.sort(key=lambda e: e.name, reverse=descending)
        return entries[:limit]

    def count_dir(self, bucket_id: int, dir_path: str) -> int:
        with self._read() as s:
            objects = s.scalar(
                select(func.count())
                .select_from(Object)
                .where(Object.bucket_id == bucket_id, Object.dir == dir_path, live())
            )
            folders = s.scalar(
                select(func.count())
                .select_from(Folder)
                .where(Folder.bucket_id == bucket_id, Folder.dir == dir_path)
            )
            return int(objects or 0) + int(folders or 0)

    def objects_in(self, bucket_id: int, dir_path: str, *, offset: int = 0, limit: int = 100) -> list[Object]:
        """Objects directly in ``dir_path``, ordered by name, from the ``offset``-th on (Wantu's
        page numbers). The offset is walked in the index alone (``ix_objects_dir_live`` holds the
        expiry too, so skipped rows are never read from the table); only the page's rows are."""
        where = (Object.bucket_id == bucket_id, Object.dir == dir_path, live())
        with self._read() as s:
            query = select(Object).where(*where)
            if offset:
                start = select(Object.name).where(*where).order_by(Object.name).offset(offset).limit(1)
                query = query.where(Object.name >= start.scalar_subquery())
            return list(s.scalars(query.order_by(Object.name.asc()).limit(limit)))

    def count_objects_in(self, bucket_id: int, dir_path: str) -> int:
        """Live objects directly in ``dir_path``, counted in the index (Wantu's ``totalCount``:
        its cost grows with the folder, not with the catalog)."""
        with self._read() as s:
            query = select(func.count()).select_from(Object)
            return int(
                s.scalar(query.where(Object.bucket_id == bucket_id, Object.dir == dir_path, live())) or 0
            )

    def folders_in(self, bucket_id: int, dir_path: str, *, offset: int = 0, limit: int = 100) -> list[Folder]:
        """Folders directly in ``dir_path``, ordered by name, from the ``offset``-th on (walked in
        ``ix_folders_dir`` alone, as :meth:`objects_in` does)."""
        where = (Folder.bucket_id == bucket_id, Folder.dir == dir_path)
        with self._read() as s:
            query = select(Folder).where(*where)
            if offset:
                start = select(Folder.name).where(*where).order_by(Folder.name).offset(offset).limit(1)
                query = query.where(Folder.name >= start.scalar_subquery())
            return list(s.scalars(query.order_by(Folder.name.asc()).limit(limit)))

    def objects_from(
        self, bucket_id: int, start: str, *, after: str | None = None, limit: int = 1000
    ) -> list[Object]:
        """Live objects with ``key >= start`` (and ``> after``), by key (bytewise): keyset paging
        for a prefix listing, whose matches are one contiguous run from the prefix on."""
        # one lower bound, the tighter one: given both, SQLite seeks to ``start`` and reads every
        # key up to ``after`` (half the bucket for a page in the middle of a big prefix)
        lower = Object.key > after if after is not None and after >= start else Object.key >= start
        with self._read() as s:
            query = select(Object).where(Object.bucket_id == bucket_id, lower, live())
            return list(s.scalars(query.order_by(Object.key.asc()).limit(limit)))

    def recent_objects(
        self, bucket_id: int, *, before: tuple[datetime, int] | None = None, limit: int = 100
    ) -> list[Object]:
        """Live objects newest first, by (created_at, id) descending; ``before`` is the keyset
        cursor: the (created_at, id) of the last object of the page before. Read in
        ``ix_objects_recent`` order.

        A page after a cursor is two seeks (the rest of the cursor's own upload time, by id; then
        the older times), not one row-value bound: SQLite seeks ``(created_at, id) < (?, ?)`` by
        ``created_at`` alone, so a page inside a run of equal times (a bulk import) would read the
        whole run before it (bench/catalog.py measured 7x at 10^5 objects)."""
        order = (Object.created_at.desc(), Object.id.desc())
        query = select(Object).where(Object.bucket_id == bucket_id, live())
        with self._read() as s:
            if before is None:
                return list(s.scalars(query.order_by(*order).limit(limit)))
            at, last_id = before
            same = query.where(Object.created_at == at, Object.id < last_id)
            page = list(s.scalars(same.order_by(Object.id.desc()).limit(limit)))
            if len(page) < limit:
                older = query.where(Object.created_at < at).order_by(*order).limit(limit - len(page))
                page += s.scalars(older)
            return page

    def count_folders_in(self, bucket_id: int, dir_path: str) -> int:
        """Folders directly in ``dir_path``, counted in ``ix_folders_dir``."""
        with self._read() as s:
            query = select(func.count()).select_from(Folder)
            return int(s.scalar(query.where(Folder.bucket_id == bucket_id, Folder.dir == dir_path)) or 0)

    # -- multi-part sessions -------------------------------------------------------------------

    def create_session(
        self,
        session_id: str,
        bucket_id: int,
        dialect: str,
        key: str,
        *,
        total_size: int | None = None,
        part_size: int | None = None,
        data: dict[str, Any] | None = None,
        cap: Cap | None = None,
        expires_at: datetime | None = None,
    ) -> UploadSession:
        """A new open session; with ``cap``, refused (its error) when the bucket already has
        ``cap.limit`` unfinished sessions of ``dialect`` updated within ``cap.window``."""
        now = utcnow()
        with self._write() as s:
            if cap is not None:
                since = now - (cap.window or timedelta(0))
                live = select(UploadSession.id).where(
                    UploadSession.bucket_id == bucket_id,
                    UploadSession.dialect == dialect,
                    UploadSession.state != "completed",
                    UploadSession.updated_at > since,
                )
                _within(s, bucket_id, live, cap)
            session = UploadSession(
                id=session_id,
                bucket_id=bucket_id,
                dialect=dialect,
                key=key,
                state="open",
                total_size=total_size,
                part_size=part_size,
                data=data or {},
                created_at=now,
                updated_at=now,
                expires_at=expires_at,
            )
            s.add(session)
            return session

    def get_session(self, session_id: str) -> UploadSession | None:
        with self._read() as s:
            return s.get(UploadSession, session_id)

    def update_session(self, session_id: str, **values: Any) -> None:
        """Set columns of a session; ``updated_at`` is refreshed unless given."""
        with self._write() as s:
            s.execute(
                update(UploadSession)
                .where(UploadSession.id == session_id)
                .values(**{"updated_at": utcnow(), **values})
            )

    def transition_session(self, session_id: str, from_state: str, to_state: str) -> bool:
        """Compare-and-set of a session's state; True only for the one caller that moved it."""
        with self._write() as s:
            result = s.execute(
                update(UploadSession)
                .where(UploadSession.id == session_id, UploadSession.state == from_state)
                .values(state=to_state, updated_at=utcnow())
            )
            return bool(getattr(result, "rowcount", 0) == 1)

    def touch_session(self, session_id: str, holder: str) -> bool:
        """Refresh ``updated_at`` of a session whose state is ``holder`` (a lease kept alive);
        False when the session is gone or another state (the lease was lost)."""
        with self._write() as s:
            result = s.execute(
                update(UploadSession)
                .where(UploadSession.id == session_id, UploadSession.state == holder)
                .values(updated_at=utcnow())
            )
            return bool(getattr(result, "rowcount", 0) == 1)

    def add_part(
        self,
        session_id: str,
        part_number: int,
        blob_id: str,
        size: int,
        md5: str,
        crc32: int,
        *,
        holder: str | None = None,
    ) -> None:
        """Record a stored part (replacing a part of the same number, whose blob becomes garbage).

        With ``holder`` the session's state must be exactly that (the writer's lease, see
        ``Gateway.put_part``), checked in the same transaction: else Conflict ``session_locked``."""
        self._retry(lambda: self._add_part(session_id, part_number, blob_id, size, md5, crc32, holder))

    def _add_part(
        self,
        session_id: str,
        part_number: int,
        blob_id: str,
        size: int,
        md5: str,
        crc32: int,
        holder: str | None = None,
    ) -> None:
        now = utcnow()
        with self._write() as s:
            found = s.get(UploadSession, session_id, with_for_update=holder is not None)
            if found is None:
                raise NotFound("upload session not found", code="session_not_found")
            if holder is not None and found.state != holder:
                raise Conflict("another request took over this upload", code="session_locked")
            old = s.get(UploadPart, (session_id, part_number))
            if old is not None:
                s.merge(GarbageBlob(blob_id=old.blob_id, created_at=now))
                _delete_one(
                    s,
                    delete(UploadPart).where(  # this very row, not one a concurrent writer put there
                        UploadPart.session_id == session_id,
                        UploadPart.part_number == part_number,
                        UploadPart.blob_id == old.blob_id,
                    ),
                )
            s.add(
                UploadPart(
                    session_id=session_id,
                    part_number=part_number,
                    blob_id=blob_id,
                    size=size,
                    md5=md5,
                    crc32=crc32,
                    created_at=now,
                )
            )
            s.execute(delete(GarbageBlob).where(GarbageBlob.blob_id == blob_id))
            s.execute(update(UploadSession).where(UploadSession.id == session_id).values(updated_at=now))

    def parts(self, session_id: str) -> list[UploadPart]:
        with self._read() as s:
            return list(
                s.scalars(
                    select(UploadPart)
                    .where(UploadPart.session_id == session_id)
                    .order_by(UploadPart.part_number)
                )
            )

    def end_session(self, session_id: str) -> None:
        """Drop a session and its parts; their blobs become garbage."""
        self._retry(lambda: self._end_session(session_id))

    def _end_session(self, session_id: str) -> None:
        now = utcnow()
        with self._write() as s:
            blob_ids = list(s.scalars(select(UploadPart.blob_id).where(UploadPart.session_id == session_id)))
            for blob_id in blob_ids:
                s.merge(GarbageBlob(blob_id=blob_id, created_at=now))
            s.execute(delete(UploadPart).where(UploadPart.session_id == session_id))
            s.execute(delete(UploadSession).where(UploadSession.id == session_id))

    def finish_session(self, session_id: str) -> None:
        """End a completed session but keep its row (state ``completed``, parts dropped and their
        blobs garbage), so a repeated completion is told apart from an unknown id until the
        collector removes the row with the other stale sessions."""
        now = utcnow()
        with self._write() as s:
            for blob_id in s.scalars(select(UploadPart.blob_id).where(UploadPart.session_id == session_id)):
                s.merge(GarbageBlob(blob_id=blob_id, created_at=now))
            s.execute(delete(UploadPart).where(UploadPart.session_id == session_id))
            s.execute(
                update(UploadSession)
                .where(UploadSession.id == session_id)
                .values(state="completed", updated_at=now)
            )

    def stale_sessions(
        self, older_than: datetime, limit: int = 100, *, now: datetime | None = None
    ) -> list[str]:
        """Sessions idle since before ``older_than``, or whose own expiry has passed by ``now``
        (default: the present)."""
        moment = now or utcnow()
        with self._read() as s:
            idle = select(UploadSession.id).where(UploadSession.updated_at < older_than).limit(limit)
            expired = (
                select(UploadSession.id)
                .where(UploadSession.expires_at.is_not(None), UploadSession.expires_at < moment)
                .limit(limit)
            )
            found = list(s.scalars(idle))
            return found + [i for i in s.scalars(expired) if i not in found][: max(0, limit - len(found))]

    # -- garbage -------------------------------------------------------------------------------

    def garbage(self, older_than: datetime, limit: int = 500, *, now: datetime | None = None) -> list[str]:
        """Garbage blobs recorded before ``older_than`` whose lease (an upload's reservation) is
        over by ``now`` (default: the present)."""
        moment = now or utcnow()
        with self._read() as s:
            return list(
                s.scalars(
                    select(GarbageBlob.blob_id)
                    .where(
                        GarbageBlob.created_at < older_than,
                        or_(GarbageBlob.lease_until.is_(None), GarbageBlob.lease_until <= moment),
                    )
                    .limit(limit)
                )
            )

    def forget_garbage(self, blob_ids: list[str]) -> None:
        if blob_ids:
            with self._write() as s:
                s.execute(delete(GarbageBlob).where(GarbageBlob.blob_id.in_(blob_ids)))

    # -- deliveries ----------------------------------------------------------------------------

    def pending_deliveries(self) -> list[Delivery]:
        """Deliveries not yet delivered or failed, oldest first."""
        with self._read() as s:
            return list(s.scalars(select(Delivery).where(Delivery.state == "pending").order_by(Delivery.id)))

    def enqueue_delivery(self, url: str, body: str, headers: dict[str, str], *, method: str = "POST") -> int:
        now = utcnow()
        with self._write() as s:
            d = Delivery(
                url=url,
                method=method,
                headers=headers,
                body=body,
                attempts=0,
                state="pending",
                next_attempt_at=now,
                created_at=now,
            )
            s.add(d)
            s.flush()
            return d.id

    def next_delivery_at(self) -> datetime | None:
        """When the earliest pending delivery is due (None if none): a cheap read that lets an
        idle delivery loop poll without opening a write transaction."""
        with self._read() as s:
            due = s.scalar(select(func.min(Delivery.next_attempt_at)).where(Delivery.state == "pending"))
        return as_utc(due) if due is not None else None

    def claim_deliveries(self, now: datetime, *, lease: timedelta, limit: int = 20) -> list[Delivery]:
        """Due deliveries, leased to the caller by pushing their next attempt past ``lease``."""
        with self._write() as s:
            rows = list(
                s.scalars(
                    select(Delivery)
                    .where(and_(Delivery.state == "pending", Delivery.next_attempt_at <= now))
                    .order_by(Delivery.next_attempt_at)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            )
            for d in rows:
                d.next_attempt_at = now + lease
            return rows

    def finish_delivery(
        self,
        delivery_id: int,
        *,
        ok: bool,
        error: str | None,
        retry_at: datetime | None,
        status: int | None = None,
    ) -> None:
        with self._write() as s:
            d = s.get(Delivery, delivery_id)
            if d is None:
                return
            d.attempts += 1
            d.last_error = error
            d.last_status = status
            s.add(
                DeliveryAttempt(
                    delivery_id=d.id, number=d.attempts, at=utcnow(), ok=ok, status=status, error=error
                )
            )
            s.flush()
            kept = (
                select(DeliveryAttempt.id)
                .where(DeliveryAttempt.delivery_id == d.id)
                .order_by(DeliveryAttempt.id.desc())
                .offset(ATTEMPTS_KEPT)
                .limit(1)
                .scalar_subquery()
            )
            s.execute(
                delete(DeliveryAttempt).where(DeliveryAttempt.delivery_id == d.id, DeliveryAttempt.id <= kept)
            )
            if ok:
                d.state = "delivered"
                d.delivered_at = utcnow()
            elif retry_at is None:
                d.state = "failed"
            else:
                d.next_attempt_at = retry_at

    def prune_deliveries(self, older_than: datetime) -> int:
        """Delete delivered and failed notifications queued before ``older_than``; pending ones
        stay whatever their age (they are still owed). Without this the table only grows.
        Returns how many rows went."""
        with self._write() as s:
            result = s.execute(
                delete(Delivery).where(
                    Delivery.state.in_(("delivered", "failed")), Delivery.created_at < older_than
                )
            )
            return int(cast(CursorResult[Any], result).rowcount)

    def delivery_attempts(self, delivery_id: int) -> list[DeliveryAttempt]:
        """The kept tries of a delivery, newest first (at most ``ATTEMPTS_KEPT``)."""
        query = select(DeliveryAttempt).where(DeliveryAttempt.delivery_id == delivery_id)
        with self._read() as s:
            return list(s.scalars(query.order_by(DeliveryAttempt.id.desc()).limit(ATTEMPTS_KEPT)))

    def get_delivery(self, delivery_id: int) -> Delivery | None:
        with self._read() as s:
            return s.get(Delivery, delivery_id)

    def list_deliveries(
        self,
        *,
        bucket_id: int | None = None,
        state: str | None = None,
        limit: int = 1000,
        before_id: int | None = None,
    ) -> list[Delivery]:
        """Notifications, newest first; ``before_id`` is the keyset cursor for the next page."""
        query = select(Delivery)
        if bucket_id is not None:
            query = query.where(Delivery.bucket_id == bucket_id)
        if state is not None:
            query = query.where(Delivery.state == state)
        if before_id is not None:
            query = query.where(Delivery.id < before_id)
        with self._read() as s:
            return list(s.scalars(query.order_by(Delivery.id.desc()).limit(limit)))

    def requeue_delivery(self, delivery_id: int) -> None:
        """Send a delivered or failed notification again, now, with a fresh count of attempts.
        Raises NotFound for an unknown id and Conflict for one still pending (it is on its way)."""
        with self._write() as s:
            d = s.get(Delivery, delivery_id, with_for_update=True)
            if d is None:
                raise NotFound(f"notification {delivery_id} does not exist", code="delivery_not_found")
            if d.state == "pending":
                raise Conflict(
                    f"notification {delivery_id} is still pending: the delivery loop will send it "
                    "(see its next attempt in `mediagate notify show`)",
                    code="delivery_pending",
                )
            d.state = "pending"
            d.attempts = 0
            d.next_attempt_at = utcnow()
            d.delivered_at = None

    # -- signatures seen (replay with another method) ----------------------------------------------

    def claim_signature(self, digest: str, method: str, expires_at: datetime) -> str:
        """Record that signature ``digest`` came with ``method`` (until ``expires_at``) and return
        the method it was first seen with: ``method`` itself unless another request used the same
        signature first. An expired record is replaced. Two nodes racing on a new digest collide on
        the primary key and the loser replays (see :meth:`_retry`), reading the winner's method."""
        return self._retry(lambda: self._claim_signature(digest, method, expires_at))

    def _claim_signature(self, digest: str, method: str, expires_at: datetime) -> str:
        with self._write() as s:
            seen = s.get(SignatureUse, digest)
            if seen is not None and as_utc(seen.expires_at) > utcnow():
                return seen.method
            if seen is not None:
                s.delete(seen)
                s.flush()
            s.add(SignatureUse(digest=digest, method=method, expires_at=expires_at))
            return method

    def prune_signatures(self, now: datetime) -> int:
        """Forget signatures that can no longer be accepted (their Date is out of the window)."""
        with self._write() as s:
            result = s.execute(delete(SignatureUse).where(SignatureUse.expires_at <= now))
            return cast(CursorResult[Any], result).rowcount

    # -- tasks (mediagate.tasks) ------------------------------------------------------------------

    def commit_objects(self, objs: Sequence[Object], *, outbox: Sequence[Outgoing] = ()) -> None:
        """Make every one of ``objs`` visible (replacing rows of the same keys) and queue
        ``outbox`` in one transaction: a task's outputs and its ``done`` commit together."""
        for obj in objs:
            obj.dir, obj.name = split_key(obj.key)
        notes = tuple(outbox)

        def job(conn: Connection) -> None:
            for obj in objs:
                self._commit_object(conn, obj, False, enforce=False)
            _queue_outbox(conn, notes)

        # no object: only task state and its notification, which a rerun recreates (see _relaxed)
        relaxed = not objs and all(isinstance(n, TaskDone | Notification) for n in notes)
        self._relaxed(job) if relaxed else self._committer.run(job)

    def get_bucket_by_id(self, bucket_id: int) -> Bucket | None:
        rows = self._point_read(RAW_BUCKET_BY_ID, bucket_id=bucket_id)  # every task attempt reads it
        return Bucket(**_bucket_columns.load(rows[0])) if rows else None

    def get_task(self, task_id: str) -> Task | None:
        with self._read() as s:
            return s.get(Task, task_id)

    def list_tasks(
        self, *, bucket_id: int | None = None, status: str | None = None, limit: int = 1000
    ) -> list[Task]:
        """Tasks, newest first, optionally of one bucket and/or one status (each way has an index
        in that order: ``ix_tasks_recent``, ``ix_tasks_bucket_recent``, ``ix_tasks_status_recent``)."""
        with self._read() as s:
            query = select(Task)
            if bucket_id is not None:
                query = query.where(Task.bucket_id == bucket_id)
            if status is not None:
                query = query.where(Task.status == status)
            return list(s.scalars(query.order_by(Task.created_at.desc(), Task.id.desc()).limit(limit)))

    def tasks_due(self, now: datetime) -> bool:
        """Whether :meth:`dispatch_tasks` has anything to do now: a cheap read that lets an idle
        relay poll without opening a write transaction."""
        with self._read() as s:
            found = s.scalar(
                select(Task.id)
                .where(
                    or_(
                        and_(
                            Task.status == "pending",
                            Task.next_run_at <= now,
                            or_(Task.lease_until.is_(None), Task.lease_until < now),
                        ),
                        and_(Task.status == "running", Task.lease_until < now),
                    )
                )
                .limit(1)
            )
        return found is not None

    def dispatch_tasks(self, now: datetime, *, hold: timedelta, limit: int = 50) -> list[str]:
        """Ids of tasks to hand to the engine now: pending and due, not handed out within ``hold``,
        plus running ones whose worker's lease lapsed (it died: they become pending again). Each
        is marked handed-out until ``now + hold``, so that concurrent relays hand it out once;
        if the engine loses it, it is handed out again after ``hold``. Two relays colliding (a
        deadlock between their row locks on PostgreSQL) replay the transaction (:meth:`_retry`).
        Not durable (:attr:`_relaxed_engine`): a mark lost to a power cut hands a task out again,
        and a duplicate hand-out is a no-op at the claim."""

        def job(conn: Connection) -> list[str]:
            conn.execute(
                update(_tasks)
                .where(_tasks.c.status == "running", _tasks.c.lease_until < now)
                .values(status="pending", lease_until=None, next_run_at=now, updated_at=now)
            )
            ids = list(
                conn.scalars(
                    select(_tasks.c.id)
                    .where(
                        _tasks.c.status == "pending",
                        _tasks.c.next_run_at <= now,
                        or_(_tasks.c.lease_until.is_(None), _tasks.c.lease_until < now),
                    )
                    .order_by(_tasks.c.next_run_at)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            )
            if ids:
                conn.execute(update(_tasks).where(_tasks.c.id.in_(ids)).values(lease_until=now + hold))
            return ids

        return self._relaxed(job)

    def release_tasks(self, task_ids: Sequence[str]) -> None:
        """Undo :meth:`dispatch_tasks` for ids the engine did not take (it is unavailable), so the
        next relay round hands them out again instead of waiting for the hold."""
        if task_ids:
            ids = list(task_ids)
            self._relaxed(
                lambda conn: conn.execute(
                    update(_tasks)
                    .where(_tasks.c.id.in_(ids), _tasks.c.status == "pending")
                    .values(lease_until=None)
                )
            )

    def claim_task(self, task_id: str, now: datetime, *, lease: timedelta) -> Task | None:
        """Take a due pending task for one attempt (running, attempts + 1, leased until
        ``now + lease``); None when it is not pending and due (done, failed, running elsewhere,
        or waiting for its backoff): a duplicate hand-out is a no-op. Claims of concurrent
        workers share one commit (group commit, like uploads)."""

        def job(conn: Connection) -> Task | None:
            claimed = conn.execute(
                update(_tasks)
                .where(_tasks.c.id == task_id, _tasks.c.status == "pending", _tasks.c.next_run_at <= now)
                .values(
                    status="running", attempts=_tasks.c.attempts + 1, lease_until=now + lease, updated_at=now
                )
            )
            if cast(CursorResult[Any], claimed).rowcount != 1:
                return None
            row = conn.execute(select(_tasks).where(_tasks.c.id == task_id)).one()
            return Task(**row._mapping)

        return self._relaxed(job)  # lost to a power cut: the task is simply claimed again

    def renew_task_lease(self, task_id: str, attempt: int, until: datetime) -> bool:
        """Extend a running attempt's lease (the worker's heartbeat); False if it is not ours."""

        def job(conn: Connection) -> bool:
            result = conn.execute(
                update(_tasks)
                .where(_tasks.c.id == task_id, _tasks.c.status == "running", _tasks.c.attempts == attempt)
                .values(lease_until=until)
            )
            return cast(CursorResult[Any], result).rowcount == 1

        return self._relaxed(job)

    def end_task_attempt(
        self,
        task_id: str,
        attempt: int,
        *,
        reason: str,
        retry_at: datetime | None,
        result: dict[str, Any] | None = None,
        outbox: Sequence[Outgoing] = (),
        uncounted: bool = False,
    ) -> bool:
        """A failed attempt: pending again from ``retry_at``, or failed for good (None), with
        ``reason``; ``outbox`` (the failure notification) commits with it. False, and nothing
        written, when the attempt is no longer the task's current one (its lease lapsed).
        ``uncounted``: the attempt is given back (a dependency outage, not the task's fault), so
        it does not bring the task nearer to its ``max_attempts``."""
        now = utcnow()
        notes = tuple(outbox)

        def job(conn: Connection) -> bool:
            values: dict[str, Any] = {"reason": reason[:2000], "lease_until": None, "updated_at": now}
            if retry_at is None:
                values |= {"status": "failed", "finished_at": now}
            else:
                values |= {"status": "pending", "next_run_at": retry_at}
            if uncounted:
                values["attempts"] = _tasks.c.attempts - 1
            if result is not None:
                values["result"] = result
            done = conn.execute(
                update(_tasks)
                .where(_tasks.c.id == task_id, _tasks.c.status == "running", _tasks.c.attempts == attempt)
                .values(**values)
            )
            if cast(CursorResult[Any], done).rowcount != 1:
                return False
            _queue_outbox(conn, notes if retry_at is None else ())
            return True

        return self._relaxed(job)  # lost: the attempt runs again, as after a killed worker

    def prune_tasks(self, finished_before: datetime) -> int:
        """Delete done and failed tasks that finished before ``finished_before``; returns how many."""
        with self._write() as s:
            result = s.execute(
                delete(Task).where(Task.status.in_(("done", "failed")), Task.finished_at < finished_before)
            )
            return int(cast(CursorResult[Any], result).rowcount)

    def retry_task(self, task_id: str) -> Task:
        """Run a failed (or waiting) task again now with a fresh count of attempts. NotFound for
        an unknown id; Conflict for one that is running or done."""
        now = utcnow()
        with self._write() as s:
            task = s.get(Task, task_id)
            if task is None:
                raise NotFound(f"task {task_id!r} does not exist", code="task_not_found")
            if task.status not in ("failed", "pending"):
                raise Conflict(
                    f"task {task_id} is {task.status}; only failed or pending tasks can be retried"
                )
            task.status, task.attempts, task.next_run_at = "pending", 0, now
            task.lease_until, task.finished_at, task.updated_at = None, None, now
            return task

    def queue(self, outbox: Sequence[Outgoing]) -> None:
        """Commit ``outbox`` on its own (new tasks an API call submits, and what goes with them)
        in one transaction: all of it exists afterwards, or none of it."""
        notes = tuple(outbox)
        self._committer.run(lambda conn: _queue_outbox(conn, notes))

    # -- Wantu scanPorn feedback -------------------------------------------------------------------

    def add_feedback(self, items: Sequence[Feedback]) -> None:
        """Store every one of ``items`` (one ``/3.0/feedback`` call), all or none."""
        with self._write() as s:
            s.add_all(items)

    def list_feedback(
        self, bucket_id: int, *, offset: int = 0, limit: int = 100
    ) -> tuple[int, list[Feedback]]:
        """(total, a page of the bucket's feedback, newest first). Both the count and the walk to
        ``offset`` read ``ix_feedback_bucket_recent`` alone; only the page's rows are fetched."""
        with self._read() as s:
            total = s.scalar(
                select(func.count()).select_from(Feedback).where(Feedback.bucket_id == bucket_id)
            )
            query = select(Feedback).where(Feedback.bucket_id == bucket_id)
            if offset:
                start = (
                    select(Feedback.id)
                    .where(Feedback.bucket_id == bucket_id)
                    .order_by(Feedback.id.desc())
                    .offset(offset)
                    .limit(1)
                )
                query = query.where(Feedback.id <= start.scalar_subquery())
            page = s.scalars(query.order_by(Feedback.id.desc()).limit(limit))
            return int(total or 0), list(page)

    # -- /v1 API keys and upload tokens (core.apikeys, core.uploadtokens) ---------------------------

    def add_api_key(self, key: ApiKey, *, cap: Cap | None = None) -> ApiKey:
        """Store a new key; with ``cap``, refused when its bucket has ``cap.limit`` active keys."""
        with self._write() as s:
            if cap is not None and key.bucket_id is not None:
                live = select(ApiKey.id).where(ApiKey.bucket_id == key.bucket_id, ApiKey.revoked_at.is_(None))
                _within(s, key.bucket_id, live, cap)
            s.add(key)
            s.flush()
            return key

    def api_key(self, key_id: str) -> tuple[ApiKey, str | None] | None:
        """The key with public id ``key_id`` (revoked ones too) and its bucket's name."""
        with self._read() as s:
            row = s.execute(
                select(ApiKey, Bucket.name)
                .outerjoin(Bucket, Bucket.id == ApiKey.bucket_id)
                .where(ApiKey.key_id == key_id)
            ).first()
            return None if row is None else (row[0], row[1])

    def list_api_keys(self, *, bucket_id: int | None = None) -> list[tuple[ApiKey, str | None]]:
        """Keys with their bucket's name, newest first; only ``bucket_id``'s when given."""
        query = select(ApiKey, Bucket.name).outerjoin(Bucket, Bucket.id == ApiKey.bucket_id)
        if bucket_id is not None:
            query = query.where(ApiKey.bucket_id == bucket_id)
        with self._read() as s:
            return [(row[0], row[1]) for row in s.execute(query.order_by(ApiKey.id.desc()))]

    def revoke_api_key(self, key_id: str) -> bool:
        """Revoke an active key; False if it was revoked already (or never existed)."""
        with self._write() as s:
            result = s.execute(
                update(ApiKey)
                .where(ApiKey.key_id == key_id, ApiKey.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
            return cast(CursorResult[Any], result).rowcount == 1

    def add_upload_token(self, token: UploadToken, *, cap: Cap | None = None) -> UploadToken:
        """Store a new token; with ``cap``, refused when its bucket has ``cap.limit`` live ones
        (not revoked, nor the key that issued it; not expired; uses left)."""
        with self._write() as s:
            if cap is not None:
                live = (
                    select(UploadToken.id)
                    .join(ApiKey, ApiKey.id == UploadToken.api_key_id)
                    .where(
                        UploadToken.bucket_id == token.bucket_id,
                        UploadToken.revoked_at.is_(None),
                        ApiKey.revoked_at.is_(None),  # a revoked key's tokens are dead too
                        UploadToken.expires_at > utcnow(),
                        UploadToken.uses < UploadToken.max_uses,
                    )
                )
                _within(s, token.bucket_id, live, cap)
            s.add(token)
            s.flush()
            return token

    def upload_token(self, token_id: str) -> tuple[UploadToken, ApiKey, str] | None:
        """A token with the key that issued it and its bucket's name."""
        with self._read() as s:
            row = s.execute(
                select(UploadToken, ApiKey, Bucket.name)
                .join(ApiKey, ApiKey.id == UploadToken.api_key_id)
                .join(Bucket, Bucket.id == UploadToken.bucket_id)
                .where(UploadToken.id == token_id)
            ).first()
            return None if row is None else (row[0], row[1], row[2])

    def consume_upload_token(self, token_id: str, now: datetime) -> int | None:
        """Spend one use of a live token in one conditional UPDATE (two nodes racing for the last
        use: the database lets exactly one succeed). The uses left after it, or None if refused:
        used up, expired, revoked, or its key revoked."""
        live_key = select(ApiKey.id).where(ApiKey.revoked_at.is_(None))
        with self._write() as s:
            result = s.execute(
                update(UploadToken)
                .where(
                    UploadToken.id == token_id,
                    UploadToken.uses < UploadToken.max_uses,
                    UploadToken.expires_at > now,
                    UploadToken.revoked_at.is_(None),
                    UploadToken.api_key_id.in_(live_key),
                )
                .values(uses=UploadToken.uses + 1)
                .returning(UploadToken.max_uses - UploadToken.uses)
            )
            left = result.scalar()
            return None if left is None else int(left)

    def release_upload_token(self, token_id: str) -> None:
        """Give back one use (an upload that spent it failed)."""
        with self._write() as s:
            s.execute(
                update(UploadToken)
                .where(UploadToken.id == token_id, UploadToken.uses > 0)
                .values(uses=UploadToken.uses - 1)
            )

    def list_upload_tokens(self, bucket_id: int) -> list[tuple[UploadToken, ApiKey]]:
        with self._read() as s:
            rows = s.execute(
                select(UploadToken, ApiKey)
                .join(ApiKey, ApiKey.id == UploadToken.api_key_id)
                .where(UploadToken.bucket_id == bucket_id)
                .order_by(UploadToken.created_at.desc(), UploadToken.id)
            )
            return [(row[0], row[1]) for row in rows]

    def revoke_upload_token(self, bucket_id: int, token_id: str) -> bool:
        """Revoke an active token of the bucket; False if none."""
        with self._write() as s:
            result = s.execute(
                update(UploadToken)
                .where(
                    UploadToken.id == token_id,
                    UploadToken.bucket_id == bucket_id,
                    UploadToken.revoked_at.is_(None),
                )
                .values(revoked_at=utcnow())
            )
            return cast(CursorResult[Any], result).rowcount == 1

    def count_objects(self, bucket_id: int) -> int:
        """The bucket's live objects."""
        query = select(func.count()).select_from(Object).where(Object.bucket_id == bucket_id, live())
        with self._read() as s:
            return int(s.scalar(query) or 0)

    # -- quotas (core.quotas) ---------------------------------------------------------------------

    def get_quota(self, bucket_id: int) -> Quota | None:
        """The bucket's limits and usage counters (a point read: every upload to a bucket with
        limits does it)."""
        rows = self._point_read(RAW_QUOTA_BY_BUCKET, bucket_id=bucket_id)
        return Quota(**_quota_columns.load(rows[0])) if rows else None

    def set_quota(self, bucket_id: int, limits: dict[str, int | None]) -> Quota:
        """Change the limits named in ``limits`` (None removes one); the others stay."""

        def attempt() -> Quota:
            with self._write() as s:
                quota = s.get(Quota, bucket_id, with_for_update=True)
                if quota is None:
                    _count_usage(s.connection(), bucket_id, 0, 0, enforce=False, create=True)
                    quota = s.get(Quota, bucket_id)
                    assert quota is not None
                for name, limit in limits.items():
                    setattr(quota, name, limit)
                s.flush()
                s.expunge(quota)
                return quota

        return self._retry(attempt)

    # -- operations (mediagate.metrics) -----------------------------------------------------------

    def operations_counts(self) -> OperationsCounts:
        """What the scrape-time gauges report: open sessions by dialect, tasks by status and kind,
        deliveries by state; three grouped counts in one read transaction."""
        with self._read() as s:
            sessions = s.execute(
                select(UploadSession.dialect, func.count())
                .where(UploadSession.state == "open")
                .group_by(UploadSession.dialect)
            )
            tasks = s.execute(select(Task.status, Task.kind, func.count()).group_by(Task.status, Task.kind))
            deliveries = s.execute(select(Delivery.state, func.count()).group_by(Delivery.state))
            return OperationsCounts(
                sessions=[(d, int(n)) for d, n in sessions],
                tasks=[(st, k, int(n)) for st, k, n in tasks],
                deliveries=[(st, int(n)) for st, n in deliveries],
            )

    # -- textjudge rules ---------------------------------------------------------------------------

    def set_text_rules(self, bucket_id: int, rules: Sequence[tuple[str, str, int]]) -> list[TextRule]:
        """Add ``rules`` ((kind, pattern, label) each) to the bucket's, all or none; a rule the
        bucket has already keeps its row and takes the new label. Returns the rules as stored."""
        now = utcnow()
        with self._write() as s:
            stored = []
            for kind, pattern, label in dict.fromkeys(rules):
                rule = s.scalar(
                    select(TextRule).where(
                        TextRule.bucket_id == bucket_id, TextRule.kind == kind, TextRule.pattern == pattern
                    )
                )
                if rule is None:
                    rule = TextRule(
                        bucket_id=bucket_id, kind=kind, pattern=pattern, label=label, created_at=now
                    )
                    s.add(rule)
                rule.label = label
                stored.append(rule)
            s.flush()
            return stored

    def text_rules(self, bucket_id: int) -> list[TextRule]:
        """The bucket's textjudge rules, oldest first."""
        with self._read() as s:
            query = select(TextRule).where(TextRule.bucket_id == bucket_id).order_by(TextRule.id)
            return list(s.scalars(query))

    def remove_text_rules(
        self, bucket_id: int, *, ids: Sequence[int] = (), patterns: Sequence[tuple[str, str]] = ()
    ) -> int:
        """Delete the bucket's rules with one of ``ids`` or one of ``patterns`` ((kind, pattern)
        each); returns how many went."""
        conditions: list[ColumnElement[bool]] = [TextRule.id.in_(list(ids))] if ids else []
        conditions += [and_(TextRule.kind == k, TextRule.pattern == p) for k, p in patterns]
        if not conditions:
            return 0
        with self._write() as s:
            result = s.execute(delete(TextRule).where(TextRule.bucket_id == bucket_id, or_(*conditions)))
            return int(cast(CursorResult[Any], result).rowcount)


def _key_in_use() -> Conflict:
    return Conflict("that access key id is already in use by another bucket", code="access_key_exists")


@dataclass(frozen=True)
class Cap:
    """At most ``limit`` live rows of one kind per bucket, else ``refusal`` (a LimitExceeded the
    core words). ``window``: for sessions, how recently a live one was last touched."""

    limit: int
    refusal: LimitExceeded
    window: timedelta | None = None


def _within(s: Session, bucket_id: int, live: Select[Any], cap: Cap) -> None:
    """Raise ``cap.refusal`` when ``live`` (the bucket's live rows) already holds ``cap.limit``,
    in the caller's write transaction, before its insert. On PostgreSQL the bucket's row is locked
    first, so that two nodes adding the last one at once are counted one after the other (SQLite
    has one writer at a time). The count stops at the limit: its cost does not grow past it."""
    if s.get_bind().dialect.name == "postgresql":
        s.execute(select(Bucket.id).where(Bucket.id == bucket_id).with_for_update())
    held = s.scalar(select(func.count()).select_from(live.limit(cap.limit).subquery())) or 0
    if held >= cap.limit:
        raise cap.refusal


def _count_usage(
    conn: Connection, bucket_id: int, grown: int, added: int, *, enforce: bool, create: bool = False
) -> None:
    """Add ``grown`` bytes and ``added`` objects to the bucket's usage counters, in the caller's
    transaction (after its change to the objects table). With ``enforce``, growth past the bucket's
    limits raises QuotaExceeded, rolling the caller's transaction back: the commit is the exact
    check, however many uploads race (their row updates queue on the one row)."""
    cursor = _send_usage(conn, bucket_id, grown, added, enforce=enforce, create=create)
    if cursor is None:
        return
    try:
        if cursor.rowcount == 1:
            return
    finally:
        cursor.close()
    _usage_refused(conn, bucket_id, grown, added)


def _send_usage(
    conn: Connection, bucket_id: int, grown: int, added: int, *, enforce: bool, create: bool = False
) -> Any:
    """Send :func:`_count_usage`'s UPDATE (``raw.send``): its cursor, whose ``rowcount`` is 1 if
    the usage was counted; None when there is nothing to count."""
    if not (grown or added or create):
        return None
    checks = (enforce and grown > 0, enforce and added > 0)
    return raw.send(conn, _USAGE_SQL[checks], {"bucket": bucket_id, "db": grown, "dn": added})


def _usage_refused(conn: Connection, bucket_id: int, grown: int, added: int) -> None:
    """The usage UPDATE changed no row: count a bucket that has no quota row yet, or refuse."""
    quota = conn.execute(QUOTA_BY_BUCKET, {"bucket_id": bucket_id}).first()
    if quota is None:  # a bucket older than its row (made by a node not yet upgraded): count it now
        totals = conn.execute(
            select(func.coalesce(func.sum(_objects.c.size), 0), func.count(_objects.c.id)).where(
                _objects.c.bucket_id == bucket_id
            )
        ).one()
        row = {"bucket_id": bucket_id, "bytes_used": int(totals[0]), "objects_used": int(totals[1])}
        conn.execute(insert(_quotas).values(**row))
        return
    if quota.max_objects is not None and added > 0 and quota.objects_used + added > quota.max_objects:
        raise QuotaExceeded(
            f"the bucket holds {quota.objects_used} objects, its quota is {quota.max_objects}"
        )
    raise QuotaExceeded(
        f"storing {grown} more bytes would pass the bucket's quota of {quota.max_bytes} bytes "
        f"({quota.bytes_used} used)"
    )


def _queue_deliveries(conn: Connection, notes: Sequence[Notification]) -> None:
    """Insert ``notes`` into the outbox, in the caller's transaction."""
    if not notes:
        return
    now = utcnow()
    conn.execute(
        INSERT_DELIVERY,
        [
            {
                "url": n.url,
                "method": n.method,
                "headers": dict(n.headers),
                "body": n.body,
                "attempts": 0,
                "state": "pending",
                "next_attempt_at": now,
                "created_at": now,
                "bucket_id": n.bucket_id,
                "signing": n.signing,
            }
            for n in notes
        ],
    )


def _queue_outbox(conn: Connection, items: Sequence[Outgoing]) -> None:
    """Write everything committed with an object, in the caller's transaction: notifications
    into ``deliveries``, new tasks into ``tasks``, and a task's success (fenced by its attempt:
    a lapsed attempt raises LeaseLost, which rolls the whole transaction back)."""
    _queue_deliveries(conn, [i for i in items if isinstance(i, Notification)])
    now = utcnow()
    new = [i for i in items if isinstance(i, NewTask)]
    if new:
        conn.execute(
            insert(_tasks),
            [
                {
                    "id": t.id,
                    "kind": t.kind,
                    "dialect": t.dialect,
                    "bucket_id": t.bucket_id,
                    "source": t.source,
                    "params": t.params,
                    "status": "pending",
                    "attempts": 0,
                    "max_attempts": t.max_attempts,
                    "next_run_at": now,
                    "lease_until": None,
                    "outputs": [],
                    "result": {},
                    "reason": None,
                    "notify_url": t.notify_url,
                    "created_at": now,
                    "updated_at": now,
                    "finished_at": None,
                }
                for t in new
            ],
        )
    for done in (i for i in items if isinstance(i, TaskDone)):
        result = conn.execute(
            update(_tasks)
            .where(_tasks.c.id == done.id, _tasks.c.status == "running", _tasks.c.attempts == done.attempt)
            .values(
                status="done",
                outputs=done.outputs,
                result=done.result,
                reason=None,
                lease_until=None,
                updated_at=now,
                finished_at=now,
            )
        )
        if cast(CursorResult[Any], result).rowcount != 1:
            raise LeaseLost(f"task {done.id}: attempt {done.attempt} no longer holds the task")


class LeaseLost(Conflict):
    """A task attempt tried to finish after its lease lapsed and another attempt took over."""

    code = "lease_lost"

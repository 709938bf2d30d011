"""Group commit: concurrent writers share transactions, yet each write succeeds or fails alone."""

from __future__ import annotations

import gc
import logging
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Connection, event, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import Pool

from mediagate.catalog import Catalog, raw
from mediagate.catalog.models import Bucket, GarbageBlob, Object
from mediagate.core.errors import Conflict, NotFound, QuotaExceeded


@pytest.fixture
def bucket(catalog: Catalog) -> Bucket:
    return catalog.create_bucket("photos")


def new_object(bucket: Bucket, key: str) -> Object:
    return Object(
        bucket_id=bucket.id,
        key=key,
        blob_id=uuid.uuid4().hex,
        size=1,
        md5="0" * 32,
        sha256="0" * 64,
        crc32=0,
        mime="text/plain",
        meta={},
        created_at=datetime.now(UTC),
    )


def count_commits(catalog: Catalog) -> list[int]:
    commits = [0]

    @event.listens_for(catalog.engine, "commit")
    def _count(conn: Any) -> None:
        commits[0] += 1

    return commits


def stored_keys(catalog: Catalog, bucket: Bucket) -> list[str]:
    with catalog._read() as s:
        return sorted(s.scalars(select(Object.key).where(Object.bucket_id == bucket.id)))


def test_concurrent_commits_share_transactions(catalog: Catalog, bucket: Bucket) -> None:
    """64 uploads committing at once need far fewer than 64 transactions (and fsyncs)."""
    commits = count_commits(catalog)
    gate = threading.Event()
    futures: list[Future[bool]] = []
    # hold the committer on a first job so that the others queue up behind it
    blocker = catalog._committer.submit(lambda s: gate.wait(10))
    futures = [catalog.submit_commit(new_object(bucket, f"k{i}")) for i in range(64)]
    gate.set()
    blocker.result(10)
    assert [f.result(10) for f in futures] == [False] * 64
    assert stored_keys(catalog, bucket) == sorted(f"k{i}" for i in range(64))
    assert commits[0] <= 3


def test_a_batch_where_nothing_fails_needs_no_savepoints(catalog: Catalog, bucket: Bucket) -> None:
    savepoints = [0]

    @event.listens_for(catalog.engine, "savepoint")
    def _count(conn: Any, name: str) -> None:
        savepoints[0] += 1

    gate = threading.Event()
    blocker = catalog._committer.submit(lambda s: gate.wait(10))
    futures = [catalog.submit_commit(new_object(bucket, f"k{i}")) for i in range(16)]
    gate.set()
    blocker.result(10)
    assert [f.result(10) for f in futures] == [False] * 16
    assert savepoints[0] == 0


def test_a_failing_write_is_rolled_back_alone(catalog: Catalog, bucket: Bucket) -> None:
    catalog.commit_object(new_object(bucket, "taken"))
    gate = threading.Event()
    blocker = catalog._committer.submit(lambda s: gate.wait(10))
    ok_before = catalog.submit_commit(new_object(bucket, "a"))
    clash = catalog.submit_commit(new_object(bucket, "taken"), insert_only=True)
    ok_after = catalog.submit_commit(new_object(bucket, "b"))
    gate.set()
    blocker.result(10)
    assert ok_before.result(10) is False and ok_after.result(10) is False
    with pytest.raises(Conflict):
        clash.result(10)
    assert stored_keys(catalog, bucket) == ["a", "b", "taken"]


def test_replacing_reports_it_and_makes_the_old_blob_garbage(catalog: Catalog, bucket: Bucket) -> None:
    first = new_object(bucket, "k")
    assert catalog.commit_object(first) is False
    second = new_object(bucket, "k")
    assert catalog.commit_object(second) is True
    with catalog._read() as s:
        assert set(s.scalars(select(GarbageBlob.blob_id))) == {first.blob_id}
        assert s.scalar(select(Object.blob_id).where(Object.key == "k")) == second.blob_id


def test_a_reservation_is_cleared_by_the_commit_of_its_blob(catalog: Catalog, bucket: Bucket) -> None:
    obj = new_object(bucket, "k")
    catalog.reserve_blob(obj.blob_id)
    with catalog._read() as s:
        assert set(s.scalars(select(GarbageBlob.blob_id))) == {obj.blob_id}
    catalog.commit_object(obj)
    with catalog._read() as s:
        assert set(s.scalars(select(GarbageBlob.blob_id))) == set()


def test_a_bucket_deleted_during_an_upload_is_not_found(catalog: Catalog, bucket: Bucket) -> None:
    obj = new_object(bucket, "k")
    catalog.delete_bucket("photos")
    with pytest.raises(NotFound):
        catalog.commit_object(obj)


def test_a_write_that_lost_a_race_is_replayed(catalog: Catalog, bucket: Bucket) -> None:
    """A job failing with a unique-key collision is run again alone, on the new state."""
    attempts: list[int] = []

    def job(s: Connection) -> str:
        attempts.append(1)
        if len(attempts) == 1:  # the first run collides with a row committed meanwhile
            s.execute(
                text("INSERT INTO garbage_blobs (blob_id, created_at) VALUES ('x', :t)"),
                {"t": datetime.now(UTC)},
            )
            s.execute(
                text("INSERT INTO garbage_blobs (blob_id, created_at) VALUES ('x', :t)"),
                {"t": datetime.now(UTC)},
            )
        return "done"

    assert catalog._committer.run(job) == "done"
    assert len(attempts) == 2
    with catalog._read() as s:
        assert list(s.scalars(select(GarbageBlob.blob_id))) == []  # the failed run left nothing


def test_done_means_durable_in_a_fresh_connection(catalog: Catalog, bucket: Bucket) -> None:
    catalog.commit_object(new_object(bucket, "k"))
    other = Catalog(catalog.url)
    try:
        assert other.get_object(bucket.id, "k") is not None
    finally:
        other.close()


# -- pipelined batches (PostgreSQL: one round trip per stage of a batch) -------------------------------


def held_batch(catalog: Catalog, submit: Callable[[], list[Future[Any]]]) -> list[Future[Any]]:
    """The futures of ``submit``'s writes, which all queue while the committer is held, so that
    they run as one batch."""
    gate = threading.Event()
    blocker = catalog._committer.submit(lambda s: gate.wait(10))
    futures = submit()
    gate.set()
    blocker.result(10)
    return futures


def test_a_quota_refusal_read_after_the_pipeline_fails_only_its_own_upload(
    catalog: Catalog, bucket: Bucket
) -> None:
    """The quota check is the usage UPDATE's row count, which a pipelined batch reads only after
    every upload's statements were sent: the one upload it refuses fails, its neighbours commit,
    and the counters hold exactly what was committed."""
    catalog.set_quota(bucket.id, {"max_bytes": 10})
    small_a, big, small_b = new_object(bucket, "a"), new_object(bucket, "big"), new_object(bucket, "b")
    big.size = 100
    futures = held_batch(catalog, lambda: [catalog.submit_commit(o) for o in (small_a, big, small_b)])
    assert futures[0].result(10) is False and futures[2].result(10) is False
    with pytest.raises(QuotaExceeded):
        futures[1].result(10)
    assert stored_keys(catalog, bucket) == ["a", "b"]
    quota = catalog.get_quota(bucket.id)
    assert quota is not None and (quota.bytes_used, quota.objects_used) == (2, 2)


def test_a_constraint_only_the_database_sees_fails_only_its_own_write(
    catalog: Catalog, bucket: Bucket
) -> None:
    """A reservation of a blob id already reserved breaks a unique key in the middle of a
    pipelined batch: that write fails (after its replays), every other write of the batch stands."""
    catalog.reserve_blob("taken")
    objs = [new_object(bucket, f"k{i}") for i in range(4)]

    def submit() -> list[Future[Any]]:
        futures: list[Future[Any]] = [catalog.submit_reserve(o.blob_id) for o in objs[:2]]
        futures.append(catalog.submit_reserve("taken"))
        futures += [catalog.submit_commit(o) for o in objs]
        return futures

    futures = held_batch(catalog, submit)
    with pytest.raises(IntegrityError):
        futures[2].result(10)
    assert [f.result(10) for f in futures[:2] + futures[3:]] == [None, None] + [False] * 4
    assert stored_keys(catalog, bucket) == ["k0", "k1", "k2", "k3"]
    with catalog._read() as s:
        assert set(s.scalars(select(GarbageBlob.blob_id))) == {"taken"}


def test_each_write_is_acknowledged_only_once_committed(catalog: Catalog, bucket: Bucket) -> None:
    """When a write's future resolves, another node already sees its row: "done" means committed,
    for every write of a pipelined batch."""
    other = Catalog(catalog.url)
    seen: dict[str, bool] = {}
    try:
        objs = [new_object(bucket, f"k{i}") for i in range(8)]

        def look(key: str) -> Callable[[Future[bool]], None]:
            def done(_: Future[bool]) -> None:
                seen[key] = other.get_object(bucket.id, key) is not None

            return done

        def submit() -> list[Future[Any]]:
            futures = []
            for o in objs:
                future = catalog.submit_commit(o)
                future.add_done_callback(look(o.key))
                futures.append(future)
            return futures

        assert [f.result(10) for f in held_batch(catalog, submit)] == [False] * 8
        deadline = time.monotonic() + 10
        while len(seen) < len(objs) and time.monotonic() < deadline:  # the last callbacks
            time.sleep(0.01)
        assert seen == {o.key: True for o in objs}
    finally:
        other.close()


def test_a_batch_costs_round_trips_per_stage_not_per_statement(catalog: Catalog, bucket: Bucket) -> None:
    """32 uploads (a reservation and a commit each) in one batch: a handful of round trips to
    PostgreSQL for the whole batch, where one per statement was more than six per upload."""
    if catalog.engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs in the process: no round trips")
    catalog.create_folder(bucket.id, "dir")
    objs = [new_object(bucket, f"dir/k{i}") for i in range(32)]

    def submit() -> list[Future[Any]]:
        return [catalog.submit_reserve(o.blob_id) for o in objs] + [catalog.submit_commit(o) for o in objs]

    with tempfile.TemporaryFile("w+") as trace:

        def _trace(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
            dbapi_conn.pgconn.trace(trace.fileno())

        def _untrace(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.pgconn.untrace()

        catalog.reserve_blob("warm")  # the committer's connection made (not counted)
        event.listen(Pool, "checkout", _trace)  # the committer's connection, from whichever pool
        event.listen(Pool, "checkin", _untrace)
        try:
            futures = held_batch(catalog, submit)
            assert [f.result(10) for f in futures] == [None] * 32 + [False] * 32
        finally:
            event.remove(Pool, "checkout", _trace)
            event.remove(Pool, "checkin", _untrace)
        trace.seek(0)
        round_trips = sum(1 for line in trace if "\tReadyForQuery" in line)
    assert 3 <= round_trips <= 5, round_trips  # 2 pipelined stages and the COMMIT
    assert stored_keys(catalog, bucket) == sorted(o.key for o in objs)


def test_two_nodes_racing_on_one_key_through_their_batches(catalog: Catalog, bucket: Bucket) -> None:
    """Two catalogs (two nodes) commit to one key at once, each in batches of its own: insert-only
    writes have exactly one winner, replacements leave one row and every replaced blob garbage."""
    other = Catalog(catalog.url)
    try:
        nodes = [catalog, other] * 4
        insert_only = [n.submit_commit(new_object(bucket, "once"), insert_only=True) for n in nodes]
        outcomes = []
        for f in insert_only:
            try:
                f.result(30)
                outcomes.append("won")
            except Conflict:
                outcomes.append("conflict")
        assert sorted(outcomes) == ["conflict"] * 7 + ["won"]

        objs = [new_object(bucket, "same") for _ in nodes]
        replacing = [n.submit_commit(o) for n, o in zip(nodes, objs, strict=True)]
        assert sorted(f.result(30) for f in replacing) == [False] + [True] * 7
        live = catalog.get_object(bucket.id, "same")
        assert live is not None
        with catalog._read() as s:
            garbage = set(s.scalars(select(GarbageBlob.blob_id)))
        assert garbage == {o.blob_id for o in objs} - {live.blob_id}
        quota = catalog.get_quota(bucket.id)
        assert quota is not None and quota.objects_used == 2
    finally:
        other.close()


def test_connections_the_server_ended_are_replaced_without_an_error(
    catalog: Catalog, bucket: Bucket, caplog: pytest.LogCaptureFixture
) -> None:
    """The committer's and the point reads' connections are lent without a ping (a round trip
    each time): when the server has ended them (a restart), the batch or the lookup runs again on
    a new connection, once, and nobody sees an error, nor a warning in the log (psycopg's own,
    in plain text); the write is there exactly once."""
    if catalog.engine.dialect.name != "postgresql":
        pytest.skip("an SQLite connection is a file: the server cannot end it")
    catalog.commit_object(new_object(bucket, "before"))
    assert catalog.get_object(bucket.id, "before") is not None
    backend_pid = "SELECT pg_backend_pid()"
    committer_pid = catalog._committer.run(lambda conn: conn.exec_driver_sql(backend_pid).scalar())
    reader_pid = catalog._point_read(raw.Statement(backend_pid))[0][0]
    with catalog.engine.connect() as admin:
        ended = admin.execute(
            text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE pid IN (:a, :b)"),
            {"a": committer_pid, "b": reader_pid},
        ).scalar()
    assert ended == len({committer_pid, reader_pid})
    time.sleep(0.2)  # the backends are gone
    assert catalog.commit_object(new_object(bucket, "after")) is False
    assert catalog.get_object(bucket.id, "after") is not None
    assert stored_keys(catalog, bucket) == ["after", "before"]
    gc.collect()  # a pipeline left open on the dead connection would warn when collected
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []

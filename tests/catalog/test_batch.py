"""Group commit: concurrent writers share transactions, yet each write succeeds or fails alone."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from mediagate.catalog import Catalog
from mediagate.catalog.models import Bucket, GarbageBlob, Object
from mediagate.core.errors import Conflict, NotFound


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

    def job(s: Session) -> str:
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

"""The pipeline (``mediagate.core.gateway.Gateway``) in-process on a real home (SQLite + local
blobs): what is visible, what is garbage, and that a failure at any step leaves no trace."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from mediagate.catalog.models import Bucket, Delivery
from mediagate.catalog.models import Object as ObjectRow
from mediagate.core.errors import BadRequest, Conflict, NotFound, PolicyViolation
from mediagate.core.gateway import Gateway, Stored
from mediagate.core.grant import UploadGrant
from mediagate.core.outbox import Notification
from mediagate.services import build_gateway
from mediagate.storage.base import BlobNotFound
from tests.catalog.test_outbox import refuse_outbox_rows
from tests.conftest import make_home

ZERO = timedelta(0)


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[Gateway]:
    gateway = build_gateway(make_home(tmp_path / "home"))
    yield gateway
    gateway.catalog.close()


@pytest.fixture
def bucket(gw: Gateway) -> Bucket:
    return gw.catalog.create_bucket("photos")


async def chunks(data: bytes, size: int = 65536) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def grant(key: str, **fields: Any) -> UploadGrant:
    return UploadGrant(bucket="photos", render_key=lambda _facts: key, **fields)


def upload(gw: Gateway, key: str, data: bytes, **fields: Any) -> Stored:
    return asyncio.run(gw.upload(grant(key, **fields), chunks(data), filename=key.rsplit("/", 1)[-1]))


def read(gw: Gateway, bucket: Bucket, key: str) -> bytes:
    obj = asyncio.run(gw.get_object(bucket, key))
    return b"".join(gw.read(obj))


def blobs(gw: Gateway) -> set[str]:
    root = gw.settings.home / "blobs"
    return {p.name for p in root.rglob("*") if p.is_file()}


def staging(gw: Gateway) -> list[Path]:
    return list(gw.staging_dir.iterdir())


def garbage(gw: Gateway) -> set[str]:
    later = datetime.now(UTC) + timedelta(days=1)
    return set(gw.catalog.garbage(later, now=later))


# -- single uploads ---------------------------------------------------------------------------------


def test_upload_commits_a_readable_object(gw: Gateway, bucket: Bucket) -> None:
    data = os.urandom(300_000)
    stored = upload(gw, "a/b/c.bin", data, meta={"x-upyun-meta-k": "v"})
    assert not stored.replaced
    obj = stored.object
    assert (obj.key, obj.size, obj.md5) == ("a/b/c.bin", len(data), hashlib.md5(data).hexdigest())
    assert obj.sha256 == hashlib.sha256(data).hexdigest()
    assert obj.meta == {"x-upyun-meta-k": "v"}
    assert read(gw, bucket, "a/b/c.bin") == data
    assert b"".join(gw.read(obj, 10, 20)) == data[10:20]
    assert blobs(gw) == {obj.blob_id}
    assert staging(gw) == []
    assert garbage(gw) == set()


def test_replace_makes_the_old_blob_garbage_and_collection_removes_only_it(
    gw: Gateway, bucket: Bucket
) -> None:
    first = upload(gw, "k.bin", b"first")
    other = upload(gw, "other.bin", b"other")
    second = upload(gw, "k.bin", b"second")
    assert second.replaced
    assert read(gw, bucket, "k.bin") == b"second"
    assert garbage(gw) == {first.object.blob_id}
    assert gw.collect_garbage() == 0  # within the grace period, readers may still stream it
    assert gw.collect_garbage(grace=ZERO) == 1
    assert blobs(gw) == {second.object.blob_id, other.object.blob_id}
    assert read(gw, bucket, "k.bin") == b"second"
    assert read(gw, bucket, "other.bin") == b"other"


def test_collect_garbage_never_removes_a_live_blob(gw: Gateway, bucket: Bucket) -> None:
    for i in range(5):
        upload(gw, f"k{i % 2}.bin", str(i).encode())
    gw.catalog.reserve_blob("orphan-reserved-but-never-stored")
    gw.collect_garbage(grace=ZERO, as_of=datetime.now(UTC) + gw.upload_lease + timedelta(seconds=1))
    live = {asyncio.run(gw.get_object(bucket, f"k{i}.bin")).blob_id for i in range(2)}
    assert blobs(gw) == live
    assert garbage(gw) == set()
    assert [read(gw, bucket, f"k{i}.bin") for i in range(2)] == [b"4", b"3"]


def test_insert_only_refuses_an_existing_key_and_leaves_nothing(gw: Gateway, bucket: Bucket) -> None:
    first = upload(gw, "k.bin", b"first")
    with pytest.raises(Conflict) as info:
        upload(gw, "k.bin", b"second", insert_only=True)
    assert info.value.code == "key_exists"
    assert read(gw, bucket, "k.bin") == b"first"
    assert blobs(gw) == {first.object.blob_id}
    assert staging(gw) == []
    assert upload(gw, "new.bin", b"fresh", insert_only=True).object.key == "new.bin"


def test_a_failed_check_leaves_nothing(gw: Gateway, bucket: Bucket) -> None:
    with pytest.raises(PolicyViolation):
        upload(gw, "k.bin", b"x" * 100, size_range=(0, 10))
    with pytest.raises(PolicyViolation):
        upload(gw, "k.bin", b"x" * 100, allowed_mime=("image/*",))
    assert blobs(gw) == set()
    assert staging(gw) == []
    with pytest.raises(NotFound):
        asyncio.run(gw.get_object(bucket, "k.bin"))


@pytest.mark.parametrize("key", ["dir", "file.bin/child"])
def test_a_commit_that_fails_after_reserve_leaves_no_blob(gw: Gateway, bucket: Bucket, key: str) -> None:
    """The catalog refuses the row (a folder has that name / a file is in the way) after the blob was
    reserved and stored: the blob is removed at once, and nothing is left for anyone to see."""
    upload(gw, "dir/inside.bin", b"inside")
    upload(gw, "file.bin", b"file")
    before = blobs(gw)
    with pytest.raises(Conflict):
        upload(gw, key, b"doomed")
    assert blobs(gw) == before
    assert garbage(gw) == set()
    assert staging(gw) == []
    with pytest.raises(NotFound):
        asyncio.run(gw.get_object(bucket, key))


def test_expired_objects_disappear_and_are_collected(gw: Gateway, bucket: Bucket) -> None:
    g = grant("short.bin", ttl_seconds=60)

    async def run() -> Stored:
        received = await gw.receive(g, chunks(b"short-lived"))
        return await gw.commit(
            g, received, filename="short.bin", created_at=datetime.now(UTC) - timedelta(hours=1)
        )

    stored = asyncio.run(run())
    keep = upload(gw, "keep.bin", b"keep", ttl_seconds=3600)
    with pytest.raises(NotFound):
        asyncio.run(gw.get_object(bucket, "short.bin"))
    gw.collect_garbage(grace=ZERO)  # drops the row; its blob becomes garbage as of now
    assert gw.catalog.get_object(bucket.id, "short.bin") is None
    assert garbage(gw) == {stored.object.blob_id}
    assert gw.collect_garbage(grace=ZERO) == 1  # and goes on the next pass, after the grace
    assert stored.object.blob_id not in blobs(gw)
    assert blobs(gw) == {keep.object.blob_id}
    assert read(gw, bucket, "keep.bin") == b"keep"


def test_delete_object(gw: Gateway, bucket: Bucket) -> None:
    stored = upload(gw, "k.bin", b"bye")
    asyncio.run(gw.delete_object(bucket, "k.bin"))
    with pytest.raises(NotFound):
        asyncio.run(gw.get_object(bucket, "k.bin"))
    with pytest.raises(NotFound):
        asyncio.run(gw.delete_object(bucket, "k.bin"))
    gw.collect_garbage(grace=ZERO)
    with pytest.raises(BlobNotFound):
        gw.storage.open(stored.object.blob_id)


# -- multi-part sessions --------------------------------------------------------------------------


def test_session_parts_complete_out_of_order(gw: Gateway, bucket: Bucket) -> None:
    parts = {1: os.urandom(70_000), 2: b"", 3: os.urandom(1_234_567), 4: b"tail"}

    async def run() -> Stored:
        session = await gw.start_session(bucket, "test", "big.bin", total_size=sum(map(len, parts.values())))
        for number in (3, 1, 4, 2):
            await gw.put_part(session, number, chunks(parts[number]))
        assert [p.part_number for p in await gw.parts(session)] == [1, 2, 3, 4]
        return await gw.complete_session(session, grant("big.bin"), filename="big.bin")

    stored = asyncio.run(run())
    whole = b"".join(parts[n] for n in sorted(parts))
    assert read(gw, bucket, "big.bin") == whole
    assert stored.object.md5 == hashlib.md5(whole).hexdigest()
    assert staging(gw) == []
    assert gw.collect_garbage(grace=ZERO) == 4  # the part blobs, once assembled
    assert blobs(gw) == {stored.object.blob_id}


def test_session_complete_with_an_explicit_order_and_replaced_parts(gw: Gateway, bucket: Bucket) -> None:
    async def run() -> None:
        session = await gw.start_session(bucket, "test", "x.bin")
        await gw.put_part(session, 1, chunks(b"one"))
        await gw.put_part(session, 2, chunks(b"TWO?"))
        await gw.put_part(session, 2, chunks(b"two"))  # a retried part replaces the first try
        await gw.complete_session(session, grant("x.bin"), part_numbers=[2, 1], filename="x.bin")
        with pytest.raises(NotFound):
            await gw.session(session.id)

    asyncio.run(run())
    assert read(gw, bucket, "x.bin") == b"twoone"


def test_session_with_missing_parts_is_refused_and_stays_open(gw: Gateway, bucket: Bucket) -> None:
    async def run() -> None:
        session = await gw.start_session(bucket, "test", "x.bin")
        with pytest.raises(BadRequest) as empty:
            await gw.complete_session(session, grant("x.bin"))
        assert empty.value.code == "missing_parts"
        await gw.put_part(session, 1, chunks(b"one"))
        with pytest.raises(BadRequest):
            await gw.complete_session(session, grant("x.bin"), part_numbers=[1, 2])
        assert (await gw.session(session.id)).id == session.id
        assert len(await gw.parts(session)) == 1

    asyncio.run(run())
    assert staging(gw) == []


def test_a_session_failing_its_checks_keeps_its_parts(gw: Gateway, bucket: Bucket) -> None:
    async def run() -> str:
        session = await gw.start_session(bucket, "test", "x.bin")
        await gw.put_part(session, 1, chunks(b"x" * 100))
        with pytest.raises(PolicyViolation):
            await gw.complete_session(session, grant("x.bin", size_range=(0, 10)))
        return session.id

    session_id = asyncio.run(run())
    assert len(asyncio.run(gw.parts(asyncio.run(gw.session(session_id))))) == 1
    assert staging(gw) == []
    with pytest.raises(NotFound):
        asyncio.run(gw.get_object(bucket, "x.bin"))


def test_abort_session_turns_parts_into_garbage(gw: Gateway, bucket: Bucket) -> None:
    async def run() -> str:
        session = await gw.start_session(bucket, "test", "x.bin")
        await gw.put_part(session, 1, chunks(b"one"))
        await gw.put_part(session, 2, chunks(b"two"))
        await gw.abort_session(session)
        return session.id

    session_id = asyncio.run(run())
    with pytest.raises(NotFound):
        asyncio.run(gw.session(session_id))
    assert len(garbage(gw)) == 2
    assert gw.collect_garbage(grace=ZERO) == 2
    assert blobs(gw) == set()


def test_stale_sessions_are_collected(gw: Gateway, bucket: Bucket) -> None:
    async def run() -> str:
        session = await gw.start_session(bucket, "test", "x.bin")
        await gw.put_part(session, 1, chunks(b"one"))
        return session.id

    stale, fresh = asyncio.run(run()), asyncio.run(run())
    gw.catalog.update_session(stale, updated_at=datetime(2000, 1, 1, tzinfo=UTC))
    gw.collect_garbage(grace=ZERO)  # ends the session; its part is garbage as of now
    assert gw.collect_garbage(grace=ZERO) == 1
    with pytest.raises(NotFound):
        asyncio.run(gw.session(stale))
    assert asyncio.run(gw.session(fresh)).id == fresh
    assert len(blobs(gw)) == 1


def test_a_session_past_its_own_expiry_is_collected_however_fresh(gw: Gateway, bucket: Bucket) -> None:
    """A dialect whose credentials for a session expire (ImageX's apply) gives it ``expires_at``:
    the collector ends it then, with its parts, not once idle for ``session_max_age_seconds``."""

    async def run(expires_at: datetime) -> str:
        session = await gw.start_session(bucket, "test", "x.bin", expires_at=expires_at)
        await gw.put_part(session, 1, chunks(b"one"))
        return session.id

    now = datetime.now(UTC)
    dead, alive = asyncio.run(run(now - timedelta(seconds=1))), asyncio.run(run(now + timedelta(hours=1)))
    gw.collect_garbage(grace=ZERO)
    with pytest.raises(NotFound):
        asyncio.run(gw.session(dead))
    assert asyncio.run(gw.session(alive)).id == alive
    assert gw.collect_garbage(grace=ZERO) == 1  # the dead session's part


def test_a_backlog_of_stale_sessions_goes_in_one_round(gw: Gateway, bucket: Bucket) -> None:
    """Under sustained load sessions go stale at the upload rate (abandoned ones, and completed
    ones whose record is kept): one round must end all of them, not one batch of 100, or the
    backlog grows for as long as more than a batch per round (30 s) goes stale."""
    for n in range(250):
        gw.catalog.create_session(f"s{n:03d}", bucket.id, "test", f"k{n}.bin")
        gw.catalog.update_session(f"s{n:03d}", updated_at=datetime(2000, 1, 1, tzinfo=UTC))
    fresh = asyncio.run(gw.start_session(bucket, "test", "fresh.bin"))
    gw.collect_garbage(grace=ZERO)
    assert gw.catalog.stale_sessions(datetime.now(UTC)) == [fresh.id]


def test_a_backlog_of_expired_objects_goes_in_one_round(gw: Gateway, bucket: Bucket) -> None:
    """Objects with a ttl expire at the upload rate: one round deletes all of them, not 500."""
    past = datetime.now(UTC) - timedelta(hours=1)
    rows = [
        ObjectRow(
            bucket_id=bucket.id,
            key=f"t/{n}.bin",
            blob_id=f"{n:032x}",
            size=1,
            md5="0" * 32,
            sha256="0" * 64,
            crc32=0,
            mime="application/octet-stream",
            meta={},
            created_at=past,
            expires_at=past + timedelta(minutes=1),
        )
        for n in range(1200)
    ]
    gw.catalog.commit_objects(rows)
    keep = upload(gw, "keep.bin", b"keep", ttl_seconds=3600)
    gw.collect_garbage(grace=ZERO)
    assert gw.catalog.expired_objects(datetime.now(UTC)) == []
    assert all(gw.catalog.get_object(bucket.id, f"t/{n}.bin") is None for n in (0, 600, 1199))
    assert read(gw, bucket, keep.object.key) == b"keep"


def test_finished_deliveries_are_pruned_after_the_retention(gw: Gateway) -> None:
    """Delivered and failed notifications go once older than ``delivery_retention_seconds``
    (default a week); pending ones stay, and so do finished ones still within the retention."""
    assert gw.settings.delivery_retention_seconds == 7 * 24 * 3600
    cat = gw.catalog
    old_ok, old_failed, old_pending, new_ok = (
        cat.enqueue_delivery(f"http://x.test/{i}", "", {}) for i in range(4)
    )
    cat.finish_delivery(old_ok, ok=True, error=None, retry_at=None)
    cat.finish_delivery(old_failed, ok=False, error="HTTP 500", retry_at=None)
    cat.finish_delivery(new_ok, ok=True, error=None, retry_at=None)
    eight_days_ago = datetime.now(UTC) - timedelta(days=8)
    with cat._write() as s:
        s.execute(
            update(Delivery)
            .where(Delivery.id.in_([old_ok, old_failed, old_pending]))
            .values(created_at=eight_days_ago)
        )
    gw.collect_garbage()
    assert cat.get_delivery(old_ok) is None
    assert cat.get_delivery(old_failed) is None
    assert cat.get_delivery(old_pending) is not None
    assert cat.get_delivery(new_ok) is not None
    gw.settings.delivery_retention_seconds = 0
    gw.collect_garbage()
    assert cat.get_delivery(new_ok) is None
    assert cat.get_delivery(old_pending) is not None


def test_a_part_with_a_wrong_md5_leaves_nothing(gw: Gateway, bucket: Bucket) -> None:
    async def run() -> None:
        session = await gw.start_session(bucket, "test", "x.bin")
        with pytest.raises(BadRequest):
            await gw.put_part(session, 1, chunks(b"one"), expected_md5="0" * 32)
        assert await gw.parts(session) == []

    asyncio.run(run())
    assert blobs(gw) == set()
    assert garbage(gw) == set()
    assert staging(gw) == []


def test_notifications_commit_with_the_object_they_describe(gw: Gateway, bucket: Bucket) -> None:
    """``notify`` sees the object about to be committed; its notifications are owed exactly when
    the object is visible (the outbox shares the object's transaction)."""
    seen: list[Stored] = []

    def notify(stored: Stored) -> list[Notification]:
        seen.append(stored)
        return [Notification("http://x.test/hook", f"url=/{stored.object.key}&size={stored.object.size}")]

    asyncio.run(gw.upload(grant("a/b.txt"), chunks(b"hello"), filename="b.txt", notify=notify))
    assert [s.object.key for s in seen] == ["a/b.txt"]
    assert [d.body for d in gw.catalog.pending_deliveries()] == ["url=/a/b.txt&size=5"]


def test_an_upload_whose_notification_cannot_be_queued_is_not_stored(gw: Gateway, bucket: Bucket) -> None:
    refuse_outbox_rows(gw.catalog)

    def notify(stored: Stored) -> list[Notification]:
        return [Notification("http://x.test/hook", "body")]

    with pytest.raises(Exception, match="outbox refused"):
        upload_with = gw.upload(grant("a.txt"), chunks(b"hello"), filename="a.txt", notify=notify)
        asyncio.run(upload_with)
    with pytest.raises(NotFound):
        asyncio.run(gw.get_object(bucket, "a.txt"))
    assert gw.catalog.pending_deliveries() == []
    assert blobs(gw) == set()
    assert staging(gw) == []

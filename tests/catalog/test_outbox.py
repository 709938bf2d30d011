"""The transactional outbox: an object and the notifications it is owed commit together, on SQLite
and PostgreSQL. The failure is injected in the database itself (a trigger refusing outbox rows),
so the object commit and the outbox insert are shown to be one transaction, not two."""

from __future__ import annotations

import threading
from concurrent.futures import Future

import pytest
from sqlalchemy import text

from mediagate.catalog import Catalog
from mediagate.catalog.models import Bucket
from mediagate.core.outbox import Notification
from tests.catalog.test_catalog import FUTURE, make_object

HOOK = Notification("http://example.test/hook", "code=200&url=%2Fa.txt", {"Content-Type": "x"})


@pytest.fixture
def bucket(catalog: Catalog) -> Bucket:
    return catalog.create_bucket("photos")


def refuse_outbox_rows(catalog: Catalog) -> None:
    """A database trigger that makes every insert into ``deliveries`` fail."""
    with catalog.engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_outbox BEFORE INSERT ON deliveries "
                    "BEGIN SELECT RAISE(FAIL, 'outbox refused'); END"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE FUNCTION refuse_outbox() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'outbox refused'; END $$"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_outbox BEFORE INSERT ON deliveries "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_outbox()"
                )
            )


def test_an_object_and_its_notifications_commit_together(catalog: Catalog, bucket: Bucket) -> None:
    obj = make_object(bucket, "a.txt")
    catalog.reserve_blob(obj.blob_id)
    catalog.commit_object(obj, outbox=[HOOK, Notification("http://example.test/2", "b", method="PUT")])

    assert catalog.get_object(bucket.id, "a.txt") is not None
    owed = catalog.pending_deliveries()
    assert [(d.url, d.method, d.body, d.headers) for d in owed] == [
        (HOOK.url, "POST", HOOK.body, HOOK.headers),
        ("http://example.test/2", "PUT", "b", {}),
    ]
    assert obj.blob_id not in catalog.garbage(FUTURE, now=FUTURE)


def test_when_the_outbox_insert_fails_the_object_is_not_committed(catalog: Catalog, bucket: Bucket) -> None:
    old = make_object(bucket, "a.txt", b"old")
    catalog.commit_object(old)
    refuse_outbox_rows(catalog)

    new = make_object(bucket, "a.txt", b"new")
    catalog.reserve_blob(new.blob_id)
    with pytest.raises(Exception, match="outbox refused"):
        catalog.commit_object(new, outbox=[HOOK])

    current = catalog.get_object(bucket.id, "a.txt")
    assert current is not None and current.blob_id == old.blob_id  # the old version stays
    assert catalog.pending_deliveries() == []
    garbage = catalog.garbage(FUTURE, now=FUTURE)
    assert new.blob_id in garbage and old.blob_id not in garbage  # the new blob is still garbage
    catalog.commit_object(make_object(bucket, "b.txt"))  # without notifications: unaffected


def test_in_a_group_commit_only_the_job_whose_outbox_fails_fails(catalog: Catalog, bucket: Bucket) -> None:
    refuse_outbox_rows(catalog)
    gate = threading.Event()
    hold = catalog._committer.submit(lambda conn: gate.wait(10))  # queue the others behind it
    futures: dict[str, Future[bool]] = {}
    for i in range(6):
        obj = make_object(bucket, f"k{i}")
        futures[obj.key] = catalog.submit_commit(obj, outbox=[HOOK] if i == 3 else ())
    gate.set()
    hold.result()
    with pytest.raises(Exception, match="outbox refused"):
        futures["k3"].result(30)
    for key, future in futures.items():
        if key != "k3":
            assert future.result(30) is False
    stored = {k for k in futures if catalog.get_object(bucket.id, k) is not None}
    assert stored == set(futures) - {"k3"}

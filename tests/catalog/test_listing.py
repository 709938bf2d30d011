"""Listings and lookups at scale, on SQLite and PostgreSQL: every page is correct under the paging
each dialect's wire uses, and every statement a listing or lookup runs is served by an index.

The second half records the SQL that the real catalog methods send (a SQLAlchemy event on every
engine) and asks the database for its plan: SQLite's ``EXPLAIN QUERY PLAN`` and PostgreSQL's
``EXPLAIN`` with sequential scans and sorts priced out (``enable_seqscan``/``enable_sort`` off, so
one is left only where no index can serve). A full table scan or a sort of the rows fails the test,
so a query that would read a whole bucket of a million objects per page cannot creep in. Timings
at 10^6 objects are in bench/catalog.py, not here.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, event

from mediagate.catalog import Catalog
from mediagate.catalog.models import Bucket, Feedback
from mediagate.core.outbox import NewTask, Notification
from tests.catalog.test_catalog import PAST, commit, make_object, names


@pytest.fixture
def bucket(catalog: Catalog) -> Bucket:
    return catalog.create_bucket("photos")


@pytest.fixture
def filled(catalog: Catalog, bucket: Bucket) -> Bucket:
    """Folder ``d``: objects o00..o29 (every fifth one expired) and folders f00..f11; another
    bucket with the same names; tasks, notifications and feedback of both."""
    other = catalog.create_bucket("other")
    for b in (bucket, other):
        for i in range(30):
            expired = {"expires_at": PAST} if i % 5 == 0 else {}
            catalog.commit_object(make_object(b, f"d/o{i:02d}", **expired))
        for i in range(12):
            catalog.create_folder(b.id, f"d/f{i:02d}")
        tasks = [NewTask(uuid.uuid4().hex, "thumb", "upyun", b.id, "d/o01", {}, None, 3) for _ in range(3)]
        notes = [Notification("http://example.test/", f"n{i}", bucket_id=b.id) for i in range(3)]
        catalog.queue([*tasks, *notes])
        catalog.add_feedback(
            [
                Feedback(bucket_id=b.id, key=f"k{i}", type=0, wrong=False, created_at=datetime.now(UTC))
                for i in range(7)
            ]
        )
    return bucket


LIVE = [f"o{i:02d}" for i in range(30) if i % 5]
FOLDERS = [f"f{i:02d}" for i in range(12)]


# -- pages -------------------------------------------------------------------------------------------


def test_wantu_pages_by_number_skip_expired_objects(catalog: Catalog, filled: Bucket) -> None:
    assert catalog.count_objects_in(filled.id, "d") == len(LIVE) == 24
    for size in (1, 5, 7, 24, 100):
        for offset in range(0, 26, size):
            page = [o.name for o in catalog.objects_in(filled.id, "d", offset=offset, limit=size)]
            assert page == LIVE[offset : offset + size], (offset, size)


def test_wantu_folder_pages_by_number(catalog: Catalog, filled: Bucket) -> None:
    assert catalog.count_folders_in(filled.id, "d") == 12
    for size in (1, 5, 12):
        for offset in range(0, 14, size):
            page = [f.name for f in catalog.folders_in(filled.id, "d", offset=offset, limit=size)]
            assert page == FOLDERS[offset : offset + size], (offset, size)


def test_feedback_pages_newest_first(catalog: Catalog, filled: Bucket) -> None:
    total, everything = catalog.list_feedback(filled.id, limit=100)
    assert total == 7 and [f.key for f in everything] == [f"k{i}" for i in reversed(range(7))]
    for offset in range(8):
        _, page = catalog.list_feedback(filled.id, offset=offset, limit=3)
        assert [f.key for f in page] == [f.key for f in everything[offset : offset + 3]]


def test_upyun_keyset_pages_merge_folders_and_objects(catalog: Catalog, filled: Bucket) -> None:
    whole = sorted(FOLDERS + LIVE)
    for descending in (False, True):
        seen: list[str] = []
        after = None
        while page := catalog.list_dir(filled.id, "d", limit=5, after=after, descending=descending):
            seen += names(page)
            after = page[-1].name
        assert seen == (whole[::-1] if descending else whole)


def test_keyset_pages_stay_put_under_concurrent_inserts(catalog: Catalog, filled: Bucket) -> None:
    """Entries added before the cursor never shift the next page (an offset would repeat one)."""
    first = catalog.list_dir(filled.id, "d", limit=10)
    commit(catalog, filled, "d/a-new")
    catalog.create_folder(filled.id, "d/b-new")
    second = catalog.list_dir(filled.id, "d", limit=10, after=first[-1].name)
    assert names(second) == sorted(FOLDERS + LIVE)[10:20]


def test_recent_objects_page_newest_first_by_created_time_then_id(catalog: Catalog, bucket: Bucket) -> None:
    """Keyset pages by (created_at, id): equal timestamps (a batch) neither repeat nor skip, an
    expired object is not shown, another bucket's objects never appear, and an upload made after
    the first page does not shift the next one."""
    other = catalog.create_bucket("other")
    base = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(23):
        at = base + timedelta(seconds=i // 3)  # three objects per second: ties on created_at
        expired = {"expires_at": PAST} if i == 7 else {}
        for b, extra in ((bucket, expired), (other, {})):
            obj = make_object(b, f"r/{i:02d}", **extra)
            obj.created_at = at
            catalog.commit_object(obj)
    newest = [f"r/{i:02d}" for i in reversed(range(23)) if i != 7]
    for size in (1, 4, 22, 50):
        seen: list[str] = []
        before = None
        while page := catalog.recent_objects(bucket.id, before=before, limit=size):
            seen += [o.key for o in page]
            before = (page[-1].created_at, page[-1].id)
            if len(seen) == 4 and size == 4:
                commit(catalog, bucket, "r/late")  # newer than everything: on no later page
        assert seen == newest, size
        if size == 4:
            newest.insert(0, "r/late")  # on the first page of the next listing


def test_usage_of_a_prefix_is_the_folder_only(catalog: Catalog, bucket: Bucket) -> None:
    for key, size in (("p/a", 1), ("p/q/b", 2), ("p-x", 4), ("p0", 8), ("pa/c", 16), ("q", 32)):
        commit(catalog, bucket, key, b"x" * size)
    assert catalog.usage(bucket.id, "p") == 3
    assert catalog.usage(bucket.id, "p/q") == 2
    assert catalog.usage(bucket.id) == 63


def test_tasks_and_notifications_newest_first(catalog: Catalog, filled: Bucket) -> None:
    tasks = catalog.list_tasks(bucket_id=filled.id)
    assert len(tasks) == 3 and all(t.bucket_id == filled.id for t in tasks)
    keys = [(t.created_at, t.id) for t in catalog.list_tasks()]
    assert keys == sorted(keys, reverse=True) and len(keys) == 6
    notes = catalog.list_deliveries(bucket_id=filled.id)
    assert [d.body for d in notes] == ["n2", "n1", "n0"]
    assert [d.body for d in catalog.list_deliveries(bucket_id=filled.id, before_id=notes[0].id)] == [
        "n1",
        "n0",
    ]


# -- plans -------------------------------------------------------------------------------------------


@contextmanager
def recorded() -> Iterator[list[tuple[str, Any]]]:
    """(statement, parameters) of every SELECT any engine sends meanwhile."""
    seen: list[tuple[str, Any]] = []

    def record(conn: Connection, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT") and not many:
            seen.append((statement, params))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", record)


def full_scans(engine: Engine, statement: str, params: Any, *, ordered_scan: bool) -> list[str]:
    """The plan steps of ``statement`` that read a whole table, walk a whole index or sort rows
    ([] when every table is reached by seeking an index). ``ordered_scan``: walking an index in
    order from one end (a newest-first list with LIMIT and no filter) is fine."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all()
            details = [str(row[-1]) for row in rows]
            bad = [d for d in details if "TEMP B-TREE" in d]
            for d in details:
                if not d.startswith("SCAN ") or d.startswith("SCAN CONSTANT ROW"):
                    continue
                if not (ordered_scan and "INDEX" in d):
                    bad.append(d)
            return bad
        conn.exec_driver_sql("SET enable_seqscan = off")
        conn.exec_driver_sql("SET enable_sort = off")
        plan = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, params).scalar_one()
        plan = json.loads(plan) if isinstance(plan, str) else plan
        bad = []

        def walk(node: dict[str, Any]) -> None:
            kind, table = node["Node Type"], node.get("Relation Name", "?")
            if kind in ("Seq Scan", "Sort", "Incremental Sort"):
                bad.append(f"{kind} on {table}")
            elif kind in ("Index Scan", "Index Only Scan") and "Index Cond" not in node and not ordered_scan:
                bad.append(f"{kind} of all of {node['Index Name']} on {table}")  # a walk, not a seek
            for child in node.get("Plans", []):
                walk(child)

        walk(plan[0]["Plan"])
        return bad


def _cases(catalog: Catalog, b: Bucket) -> dict[str, tuple[Callable[[], object], bool]]:
    """Every lookup and listing path, as the dialects, the CLI and the workers call it."""
    key = datetime.now(UTC) + timedelta(days=1)
    obj = make_object(b, "d/new-upload")
    return {
        "bucket by name": (lambda: catalog.get_bucket("photos"), False),
        "secrets of a bucket": (lambda: catalog.active_secrets(b.id, "upyun"), False),
        "object by key": (lambda: catalog.get_object(b.id, "d/o01"), False),
        "folder by path": (lambda: catalog.get_folder(b.id, "d/f01"), False),
        "upload commit (its lookups)": (lambda: catalog.commit_object(obj), False),
        "folder create": (lambda: catalog.create_folder(b.id, "d/x/y"), False),
        "folder emptiness": (lambda: catalog.folder_is_empty(b.id, "d"), False),
        "folder delete": (lambda: catalog.delete_folder(b.id, "d/f11"), False),
        "UPYUN list, first page": (lambda: catalog.list_dir(b.id, "d", limit=10), False),
        "UPYUN list, by cursor": (lambda: catalog.list_dir(b.id, "d", limit=10, after="o05"), False),
        "UPYUN list, descending": (lambda: catalog.list_dir(b.id, "d", limit=10, descending=True), False),
        "UPYUN usage of a folder": (lambda: catalog.usage(b.id, "d"), False),
        "Wantu files count": (lambda: catalog.count_objects_in(b.id, "d"), False),
        "Wantu files page 3": (lambda: catalog.objects_in(b.id, "d", offset=10, limit=5), False),
        "Wantu folders count": (lambda: catalog.count_folders_in(b.id, "d"), False),
        "Wantu folders page 2": (lambda: catalog.folders_in(b.id, "d", offset=5, limit=5), False),
        "Wantu feedback page 2": (lambda: catalog.list_feedback(b.id, offset=3, limit=3), False),
        "/v1 recent uploads": (lambda: catalog.recent_objects(b.id, limit=10), False),
        "/v1 recent uploads, by cursor": (
            lambda: catalog.recent_objects(b.id, before=(key, 10**6), limit=10),
            False,
        ),
        "delivery attempts": (lambda: catalog.delivery_attempts(1), False),
        "CLI ls": (lambda: catalog.objects_from(b.id, "d/", after="d/o03", limit=10), False),
        "task list of a bucket": (lambda: catalog.list_tasks(bucket_id=b.id, limit=10), False),
        "task list by status": (lambda: catalog.list_tasks(status="pending", limit=10), False),
        "task list": (lambda: catalog.list_tasks(limit=10), True),
        "notify list of a bucket": (lambda: catalog.list_deliveries(bucket_id=b.id, limit=10), False),
        "notify list by status": (lambda: catalog.list_deliveries(state="pending", limit=10), False),
        "notify list": (lambda: catalog.list_deliveries(limit=10, before_id=5), True),
        "expired objects (collector)": (lambda: catalog.expired_objects(key), False),
    }


def test_every_listing_and_lookup_is_served_by_an_index(catalog: Catalog, filled: Bucket) -> None:
    failures: dict[str, list[str]] = {}
    for name, (call, ordered_scan) in _cases(catalog, filled).items():
        with recorded() as statements:
            call()
        assert statements, f"{name}: recorded no SELECT"
        for statement, params in statements:
            bad = full_scans(catalog.engine, statement, params, ordered_scan=ordered_scan)
            if bad:
                failures.setdefault(name, []).append(f"{' '.join(statement.split())[:300]} -> {bad}")
    assert not failures, json.dumps(failures, indent=1)


def test_the_plan_check_sees_a_full_scan(catalog: Catalog, filled: Bucket) -> None:
    """The check itself: a query by a column no index starts with is caught."""
    param = ("%o1%",) if catalog.engine.dialect.name == "sqlite" else {"p": "%o1%"}
    marker = "?" if catalog.engine.dialect.name == "sqlite" else "%(p)s"
    statement = f"SELECT id FROM objects WHERE key LIKE {marker}"
    assert full_scans(catalog.engine, statement, param, ordered_scan=False)

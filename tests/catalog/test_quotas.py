"""A bucket's usage counters and quota (``Catalog`` side of core.quotas), on SQLite and PostgreSQL.

The counters change in the transaction that changes the objects, so after any sequence of
commits, replacements, renames and deletes they equal what the objects themselves add up to; a
commit past the quota is refused whole, and a task's outputs count without being refused.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from mediagate.catalog import Catalog
from mediagate.catalog.models import Object
from mediagate.core.errors import QuotaExceeded


def obj(bucket_id: int, key: str, size: int) -> Object:
    return Object(
        bucket_id=bucket_id,
        key=key,
        blob_id=uuid.uuid4().hex,
        size=size,
        md5="0" * 32,
        sha256="0" * 64,
        crc32=0,
        mime="application/octet-stream",
        meta={},
        created_at=datetime.now(UTC),
    )


def counters(catalog: Catalog, bucket_id: int) -> tuple[int, int]:
    quota = catalog.get_quota(bucket_id)
    assert quota is not None
    objects = sum(catalog.count_objects_in(bucket_id, d) for d in ("", "d", "out"))
    assert (quota.bytes_used, quota.objects_used) == (catalog.usage(bucket_id), objects)
    return quota.bytes_used, quota.objects_used


def test_the_counters_follow_commits_replacements_renames_and_deletes(catalog: Catalog) -> None:
    b = catalog.create_bucket("counted").id
    assert counters(catalog, b) == (0, 0)
    catalog.commit_object(obj(b, "a", 100))
    catalog.commit_object(obj(b, "d/b", 50))
    assert counters(catalog, b) == (150, 2)
    catalog.commit_object(obj(b, "a", 300))  # replaced: grows by 200, no new object
    assert counters(catalog, b) == (350, 2)
    catalog.rename_object(b, "d/b", "a")  # over "a": the 300 bytes go
    assert counters(catalog, b) == (50, 1)
    catalog.rename_object(b, "a", "c")
    assert counters(catalog, b) == (50, 1)
    assert catalog.delete_object(b, "c")
    assert counters(catalog, b) == (0, 0)


def test_a_commit_past_the_quota_is_refused_whole(catalog: Catalog) -> None:
    b = catalog.create_bucket("limited").id
    catalog.set_quota(b, {"max_bytes": 1000, "max_objects": 3})
    catalog.commit_object(obj(b, "a", 600))
    with pytest.raises(QuotaExceeded, match="1000 bytes"):
        catalog.commit_object(obj(b, "b", 500))
    assert catalog.get_object(b, "b") is None
    catalog.commit_object(obj(b, "a", 1000))  # a replacement that fits exactly
    catalog.commit_object(obj(b, "b", 0))
    catalog.commit_object(obj(b, "c", 0))
    with pytest.raises(QuotaExceeded, match="3 objects"):
        catalog.commit_object(obj(b, "d", 0))
    assert counters(catalog, b) == (1000, 3)
    # a task's outputs were accepted work: they count, and are not refused
    catalog.commit_objects([obj(b, "out/1", 10)])
    assert counters(catalog, b)[1] == 4
    catalog.set_quota(b, {"max_bytes": None})
    quota = catalog.get_quota(b)
    assert quota is not None and quota.max_bytes is None and quota.max_objects == 3


def test_a_bucket_without_a_counter_row_is_counted_at_its_next_change(catalog: Catalog) -> None:
    """A bucket made by a node not yet upgraded has no row: the first change counts it whole."""
    from sqlalchemy import text

    b = catalog.create_bucket("older").id
    catalog.commit_object(obj(b, "a", 70))
    with catalog.engine.begin() as conn:
        conn.execute(text("DELETE FROM quotas WHERE bucket_id = :b"), {"b": b})
    catalog.commit_object(obj(b, "b", 30))
    assert counters(catalog, b) == (100, 2)
    catalog.delete_bucket("older")
    assert catalog.get_quota(b) is None


def test_the_migration_counts_what_existing_buckets_hold(catalog_url: str) -> None:
    """0012_quotas on a catalog that already stores objects: each bucket's row starts at what it
    holds, so quotas set afterwards compare against the truth."""
    from sqlalchemy import inspect

    from mediagate.catalog.migrate import downgrade, upgrade

    catalog = Catalog(catalog_url)
    try:
        upgrade(catalog.engine)
        full, empty = catalog.create_bucket("full").id, catalog.create_bucket("empty").id
        for key, size in (("a", 10), ("d/b", 20), ("d/c", 30)):
            catalog.commit_object(obj(full, key, size))
        downgrade(catalog.engine, "0009_api_keys")
        assert "quotas" not in inspect(catalog.engine).get_table_names()
        upgrade(catalog.engine)
        assert counters(catalog, full) == (60, 3)
        assert counters(catalog, empty) == (0, 0)
    finally:
        catalog.close()

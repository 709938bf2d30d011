"""``Catalog.objects_from``: the keyset listing behind ``mediagate ls``, on SQLite and PostgreSQL.

Keys order bytewise on both, so a prefix's keys are one contiguous run starting at the prefix."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mediagate.catalog import Catalog
from mediagate.catalog.models import Bucket
from tests.catalog.test_catalog import commit, make_object

KEYS = ["B", "a%", "a.txt", "a/b", "a_", "img/1", "img/2", "img2", "ä", "日本"]


@pytest.fixture
def filled(catalog: Catalog) -> Bucket:
    bucket = catalog.create_bucket("photos")
    for key in reversed(KEYS):
        commit(catalog, bucket, key)
    catalog.commit_object(make_object(bucket, "img/0", expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    other = catalog.create_bucket("other")
    commit(catalog, other, "img/1")
    return bucket


def keys(catalog: Catalog, bucket: Bucket, start: str, **kw: object) -> list[str]:
    return [o.key for o in catalog.objects_from(bucket.id, start, **kw)]  # type: ignore[arg-type]


def test_bytewise_order_from_a_start(catalog: Catalog, filled: Bucket) -> None:
    assert keys(catalog, filled, "") == sorted(KEYS, key=str.encode)
    assert keys(catalog, filled, "img/") == ["img/1", "img/2", "img2", "ä", "日本"]  # expired img/0 hidden
    assert keys(catalog, filled, "a%")[:2] == ["a%", "a.txt"]  # no LIKE: % and _ are plain bytes


def test_paging_after_a_key(catalog: Catalog, filled: Bucket) -> None:
    seen: list[str] = []
    after = None
    while page := keys(catalog, filled, "", after=after, limit=3):
        seen += page
        after = page[-1]
    assert seen == sorted(KEYS, key=str.encode)

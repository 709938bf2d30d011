"""The catalog (``mediagate.catalog.repo.Catalog``): one suite, run on SQLite and on PostgreSQL.

The catalog decides visibility, so these are the rules an upload's fate depends on: one row per
key, an old version's blob handed to the garbage list in the same transaction that replaces it,
folders that exist exactly when something is in them or they were made, and work queues that
never hand the same row to two workers.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, func, make_url, select, text

from mediagate.catalog import Catalog, DirEntry
from mediagate.catalog.migrate import upgrade
from mediagate.catalog.models import ATTEMPTS_KEPT, Bucket, Folder, GarbageBlob, Object
from mediagate.core.errors import Conflict, NotFound
from tests.conftest import POSTGRES_URL
from tests.support.pg import fresh_schema

PAST = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE = datetime(2100, 1, 1, tzinfo=UTC)


def make_object(bucket: Bucket, key: str, data: bytes = b"data", **extra: Any) -> Object:
    return Object(
        bucket_id=bucket.id,
        key=key,
        blob_id=uuid.uuid4().hex,
        size=len(data),
        md5=hashlib.md5(data).hexdigest(),
        sha256=hashlib.sha256(data).hexdigest(),
        crc32=0,
        mime="application/octet-stream",
        meta={},
        created_at=datetime.now(UTC),
        **extra,
    )


def commit(catalog: Catalog, bucket: Bucket, key: str, data: bytes = b"data", **kw: Any) -> Object:
    obj = make_object(bucket, key, data)
    catalog.commit_object(obj, **kw)
    return obj


def garbage(catalog: Catalog) -> set[str]:
    """Every blob recorded as garbage (reservations included: judged after their leases)."""
    return set(catalog.garbage(FUTURE, limit=10_000, now=FUTURE))


def names(entries: list[DirEntry]) -> list[str]:
    return [e.name for e in entries]


@pytest.fixture
def bucket(catalog: Catalog) -> Bucket:
    return catalog.create_bucket("photos")


# -- buckets -----------------------------------------------------------------------------------------


def test_buckets(catalog: Catalog) -> None:
    made = catalog.create_bucket("alpha", {"public": True})
    catalog.create_bucket("beta")
    assert made.id is not None
    got = catalog.get_bucket("alpha")
    assert got is not None
    assert (got.id, got.settings) == (made.id, {"public": True})
    assert catalog.get_bucket("gamma") is None
    assert [b.name for b in catalog.list_buckets()] == ["alpha", "beta"]
    with pytest.raises(NotFound):
        catalog.require_bucket("gamma")


def test_duplicate_bucket_is_a_conflict(catalog: Catalog) -> None:
    catalog.create_bucket("alpha")
    with pytest.raises(Conflict) as info:
        catalog.create_bucket("alpha")
    assert info.value.code == "bucket_exists"
    assert len(catalog.list_buckets()) == 1


def test_bucket_settings_merge(catalog: Catalog) -> None:
    catalog.create_bucket("alpha", {"public": True, "cors_origins": ["*"]})
    updated = catalog.update_bucket_settings("alpha", {"public": False})
    assert updated.settings == {"public": False, "cors_origins": ["*"]}
    assert catalog.require_bucket("alpha").settings == {"public": False, "cors_origins": ["*"]}
    with pytest.raises(NotFound):
        catalog.update_bucket_settings("nope", {})


def test_deleting_a_bucket_sends_its_blobs_to_the_garbage(catalog: Catalog, bucket: Bucket) -> None:
    other = catalog.create_bucket("other")
    obj = commit(catalog, bucket, "a/b.jpg")
    kept = commit(catalog, other, "a/b.jpg")
    catalog.create_session("s1", bucket.id, "test", "big.bin")
    catalog.reserve_blob("partblob")
    catalog.add_part("s1", 1, "partblob", 10, "0" * 32, 0)
    catalog.add_credential(bucket.id, "aksk", "AK1", "sealed")
    catalog.delete_bucket("photos")
    assert catalog.get_bucket("photos") is None
    assert garbage(catalog) == {obj.blob_id, "partblob"}
    assert catalog.get_session("s1") is None
    assert catalog.find_credential("aksk", "AK1") is None
    assert catalog.get_object(other.id, "a/b.jpg") is not None
    assert kept.blob_id not in garbage(catalog)
    with pytest.raises(NotFound):
        catalog.delete_bucket("photos")


# -- credentials -------------------------------------------------------------------------------------


def test_credentials_active_and_revoked(catalog: Catalog, bucket: Bucket) -> None:
    old = catalog.add_credential(bucket.id, "aksk", "AK-OLD", "sealed-old")
    new = catalog.add_credential(bucket.id, "aksk", "AK-NEW", "sealed-new")
    catalog.add_credential(bucket.id, "form", "", "sealed-form")
    assert [c.key_id for c in catalog.credentials(bucket.id, "aksk")] == ["AK-NEW", "AK-OLD"]  # newest first
    catalog.revoke_credential(old.id)
    assert [c.id for c in catalog.credentials(bucket.id, "aksk")] == [new.id]
    revoked = catalog.credentials(bucket.id, "aksk", include_revoked=True)
    assert [c.id for c in revoked] == [new.id, old.id]
    assert revoked[1].revoked_at is not None
    assert [c.sealed_secret for c in catalog.credentials(bucket.id, "form")] == ["sealed-form"]


def test_active_secrets_are_the_unrevoked_ones_newest_first(catalog: Catalog, bucket: Bucket) -> None:
    old = catalog.add_credential(bucket.id, "aksk", "AK-OLD", "sealed-old")
    catalog.add_credential(bucket.id, "aksk", "AK-NEW", "sealed-new")
    catalog.add_credential(bucket.id, "form", "", "sealed-form")
    assert catalog.active_secrets(bucket.id, "aksk") == [("AK-NEW", "sealed-new"), ("AK-OLD", "sealed-old")]
    catalog.revoke_credential(old.id)
    assert catalog.active_secrets(bucket.id, "aksk") == [("AK-NEW", "sealed-new")]  # at once
    assert catalog.active_secrets(bucket.id, "form") == [("", "sealed-form")]
    assert catalog.active_secrets(bucket.id + 1, "aksk") == []


def test_find_credential(catalog: Catalog, bucket: Bucket) -> None:
    cred = catalog.add_credential(bucket.id, "aksk", "AK1", "sealed")
    found = catalog.find_credential("aksk", "AK1")
    assert found is not None
    assert (found[0].id, found[1].name) == (cred.id, "photos")
    assert catalog.find_credential("upyun", "AK1") is None  # kind matters
    assert catalog.find_credential("aksk", "ak1") is None  # exact id
    catalog.revoke_credential(cred.id)
    assert catalog.find_credential("aksk", "AK1") is None


# -- objects -----------------------------------------------------------------------------------------


def test_commit_inserts_a_visible_row_and_unreserves_its_blob(catalog: Catalog, bucket: Bucket) -> None:
    obj = make_object(bucket, "a/b/c.jpg", b"bytes")
    catalog.reserve_blob(obj.blob_id)
    assert obj.blob_id in garbage(catalog)
    catalog.commit_object(obj)
    got = catalog.get_object(bucket.id, "a/b/c.jpg")
    assert got is not None
    assert (got.blob_id, got.size, got.dir, got.name) == (obj.blob_id, 5, "a/b", "c.jpg")
    assert obj.blob_id not in garbage(catalog)


def test_replacing_sends_the_old_blob_to_the_garbage(catalog: Catalog, bucket: Bucket) -> None:
    first = commit(catalog, bucket, "k.bin", b"one")
    second = commit(catalog, bucket, "k.bin", b"two!")
    got = catalog.get_object(bucket.id, "k.bin")
    assert got is not None
    assert (got.blob_id, got.size) == (second.blob_id, 4)
    assert garbage(catalog) == {first.blob_id}
    with catalog._read() as s:
        assert s.scalar(select(func.count()).select_from(Object)) == 1


def test_insert_only_refuses_an_existing_key(catalog: Catalog, bucket: Bucket) -> None:
    first = commit(catalog, bucket, "k.bin", b"one")
    second = make_object(bucket, "k.bin", b"two")
    catalog.reserve_blob(second.blob_id)
    with pytest.raises(Conflict) as info:
        catalog.commit_object(second, insert_only=True)
    assert info.value.code == "key_exists"
    got = catalog.get_object(bucket.id, "k.bin")
    assert got is not None
    assert got.blob_id == first.blob_id
    assert garbage(catalog) == {second.blob_id}  # still reserved: the collector removes it
    commit(catalog, bucket, "other.bin", insert_only=True)  # a free key is fine


def test_commit_creates_parent_folders(catalog: Catalog, bucket: Bucket) -> None:
    commit(catalog, bucket, "a/b/c/d.jpg")
    for path in ("a", "a/b", "a/b/c"):
        folder = catalog.get_folder(bucket.id, path)
        assert folder is not None
        assert (folder.dir, folder.name) == path.rpartition("/")[::2]
    assert catalog.get_folder(bucket.id, "a/b/c/d.jpg") is None
    commit(catalog, bucket, "a/b/x.jpg")  # existing folders are reused
    with catalog._read() as s:
        assert s.scalar(select(func.count()).select_from(Folder)) == 3


def test_a_file_cannot_take_a_folders_name(catalog: Catalog, bucket: Bucket) -> None:
    commit(catalog, bucket, "a/b.jpg")
    with pytest.raises(Conflict) as info:
        commit(catalog, bucket, "a")
    assert info.value.code == "is_folder"
    assert catalog.get_object(bucket.id, "a") is None


def test_a_folder_cannot_be_made_under_a_file(catalog: Catalog, bucket: Bucket) -> None:
    commit(catalog, bucket, "a/file")
    with pytest.raises(Conflict) as info:
        commit(catalog, bucket, "a/file/child.jpg")
    assert info.value.code == "not_a_folder"
    assert catalog.get_object(bucket.id, "a/file/child.jpg") is None
    assert catalog.get_folder(bucket.id, "a/file") is None
    with pytest.raises(Conflict):
        catalog.create_folder(bucket.id, "a/file/sub")
    with pytest.raises(Conflict):
        catalog.create_folder(bucket.id, "a/file")


def test_delete_object(catalog: Catalog, bucket: Bucket) -> None:
    obj = commit(catalog, bucket, "a/k.bin")
    assert catalog.delete_object(bucket.id, "a/k.bin") is True
    assert catalog.get_object(bucket.id, "a/k.bin") is None
    assert garbage(catalog) == {obj.blob_id}
    assert catalog.delete_object(bucket.id, "a/k.bin") is False
    assert catalog.get_folder(bucket.id, "a") is not None  # folders stay until removed


def test_deleting_one_row_leaves_the_upload_that_replaced_it(catalog: Catalog, bucket: Bucket) -> None:
    """The collector lists expired objects, then deletes them one by one: an upload that replaced
    one in between is another version (its own blob; on SQLite maybe the same row id), and
    deleting only the listed version leaves it alone (deleting by key lost an acknowledged upload)."""
    past = datetime.now(UTC) - timedelta(minutes=1)
    expired = make_object(bucket, "k.bin", b"old", expires_at=past)
    catalog.commit_object(expired)
    fresh = commit(catalog, bucket, "k.bin", b"new")
    assert catalog.delete_object(bucket.id, "k.bin", only_blob=expired.blob_id) is False
    kept = catalog.get_object(bucket.id, "k.bin")
    assert kept is not None and kept.blob_id == fresh.blob_id
    assert catalog.delete_object(bucket.id, "k.bin", only_blob=fresh.blob_id) is True


def test_objects_are_per_bucket(catalog: Catalog, bucket: Bucket) -> None:
    other = catalog.create_bucket("other")
    commit(catalog, bucket, "same.bin", b"mine")
    commit(catalog, other, "same.bin", b"theirs!")
    a, b = catalog.get_object(bucket.id, "same.bin"), catalog.get_object(other.id, "same.bin")
    assert a is not None and b is not None
    assert (a.size, b.size) == (4, 7)
    assert garbage(catalog) == set()


def test_update_object_meta(catalog: Catalog, bucket: Bucket) -> None:
    commit(catalog, bucket, "k.bin")
    catalog.update_object_meta(bucket.id, "k.bin", {"x-upyun-meta-a": "1"})
    got = catalog.get_object(bucket.id, "k.bin")
    assert got is not None
    assert got.meta == {"x-upyun-meta-a": "1"}


def test_usage(catalog: Catalog, bucket: Bucket) -> None:
    other = catalog.create_bucket("other")
    assert catalog.usage(bucket.id) == 0
    commit(catalog, bucket, "a", b"x" * 10)
    commit(catalog, bucket, "b/c", b"x" * 5)
    commit(catalog, other, "a", b"x" * 100)
    assert catalog.usage(bucket.id) == 15
    commit(catalog, bucket, "a", b"x" * 3)  # replaced, not added
    assert catalog.usage(bucket.id) == 8


def test_expired_objects(catalog: Catalog, bucket: Bucket) -> None:
    now = datetime.now(UTC)
    gone = make_object(bucket, "gone", expires_at=now - timedelta(seconds=1))
    later = make_object(bucket, "later", expires_at=now + timedelta(hours=1))
    catalog.commit_object(gone)
    catalog.commit_object(later)
    commit(catalog, bucket, "forever")
    assert [o.key for o in catalog.expired_objects(now)] == ["gone"]
    assert sorted(o.key for o in catalog.expired_objects(now + timedelta(hours=2))) == ["gone", "later"]
    assert len(catalog.expired_objects(now + timedelta(hours=2), limit=1)) == 1


def test_expired_objects_are_invisible_to_listings_counts_and_usage(catalog: Catalog, bucket: Bucket) -> None:
    """A ttl'd object is gone for clients the moment it expires, not when the collector runs."""
    now = datetime.now(UTC)
    catalog.commit_object(make_object(bucket, "d/gone", b"x" * 100, expires_at=now - timedelta(seconds=1)))
    catalog.commit_object(make_object(bucket, "d/later", b"x" * 10, expires_at=now + timedelta(hours=1)))
    commit(catalog, bucket, "d/forever", b"x" * 1)
    live = ["forever", "later"]
    assert names(catalog.list_dir(bucket.id, "d")) == live
    assert names(catalog.list_dir(bucket.id, "d", descending=True)) == live[::-1]
    assert names(catalog.list_dir(bucket.id, "d", limit=1, after="forever")) == ["later"]
    assert catalog.count_dir(bucket.id, "d") == 2
    assert [o.name for o in catalog.objects_in(bucket.id, "d")] == live
    assert catalog.count_objects_in(bucket.id, "d") == 2
    assert catalog.usage(bucket.id) == 11
    assert catalog.usage(bucket.id, "d") == 11
    # the row is still there for the collector
    assert [o.key for o in catalog.expired_objects(datetime.now(UTC))] == ["d/gone"]


# -- listing -----------------------------------------------------------------------------------------


@pytest.fixture
def tree(catalog: Catalog, bucket: Bucket) -> Bucket:
    """photos/: folders b/, d/ (empty, made explicitly), objects a.jpg, c.jpg, e.jpg; b/ holds x."""
    for key in ("a.jpg", "c.jpg", "e.jpg", "b/x.jpg"):
        commit(catalog, bucket, key, key.encode())
    catalog.create_folder(bucket.id, "d")
    return bucket


def test_list_dir_merges_folders_and_objects(catalog: Catalog, tree: Bucket) -> None:
    entries = catalog.list_dir(tree.id, "")
    assert names(entries) == ["a.jpg", "b", "c.jpg", "d", "e.jpg"]
    assert [e.is_folder for e in entries] == [False, True, False, True, False]
    a = entries[0]
    assert (a.size, a.mime) == (5, "application/octet-stream")
    assert a.mtime.tzinfo is not None
    assert names(catalog.list_dir(tree.id, "b")) == ["x.jpg"]


def test_list_dir_descending(catalog: Catalog, tree: Bucket) -> None:
    assert names(catalog.list_dir(tree.id, "", descending=True)) == ["e.jpg", "d", "c.jpg", "b", "a.jpg"]


def test_list_dir_paging_by_after(catalog: Catalog, tree: Bucket) -> None:
    seen: list[str] = []
    after = None
    while page := catalog.list_dir(tree.id, "", limit=2, after=after):
        seen += names(page)
        after = page[-1].name
    assert seen == ["a.jpg", "b", "c.jpg", "d", "e.jpg"]
    assert names(catalog.list_dir(tree.id, "", limit=2, after="c.jpg", descending=True)) == ["b", "a.jpg"]


def test_list_dir_limit(catalog: Catalog, tree: Bucket) -> None:
    assert names(catalog.list_dir(tree.id, "", limit=1)) == ["a.jpg"]
    assert names(catalog.list_dir(tree.id, "", limit=2, after="a.jpg")) == ["b", "c.jpg"]
    assert names(catalog.list_dir(tree.id, "", limit=2, after="d")) == ["e.jpg"]
    assert catalog.list_dir(tree.id, "", limit=2, after="e.jpg") == []
    assert names(catalog.list_dir(tree.id, "", limit=2, after="e.jpg", descending=True)) == ["d", "c.jpg"]


def test_list_dir_of_an_empty_or_missing_dir(catalog: Catalog, tree: Bucket) -> None:
    assert catalog.list_dir(tree.id, "d") == []
    assert catalog.list_dir(tree.id, "nope") == []
    other = catalog.create_bucket("empty")
    assert catalog.list_dir(other.id, "") == []


def test_list_dir_orders_by_code_point(catalog: Catalog, bucket: Bucket) -> None:
    """One order on every backend (a linguistic collation would differ from the merge in Python)."""
    keys = ["B.jpg", "a.jpg", "_x", "Z/y", "中.png", "b/z", "a-b", "ab", "A"]
    for key in keys:
        commit(catalog, bucket, key)
    expected = sorted({k.split("/")[0] for k in keys})
    assert names(catalog.list_dir(bucket.id, "")) == expected
    paged: list[str] = []
    after = None
    while page := catalog.list_dir(bucket.id, "", limit=3, after=after):
        paged += names(page)
        after = page[-1].name
    assert paged == expected


MIXED_NAMES = [
    "B.jpg",
    "a.jpg",
    "_x",
    "Z",
    "中.png",
    "b",
    "a-b",
    "ab",
    "A",
    "é",
    "e",
    "E~",
    "a b",
    ".dot",
    "10",
    "9",
]
"""Names a linguistic collation orders differently from code points (case, punctuation, accents)."""


@contextmanager
def linguistic_database() -> Iterator[str]:
    """A new PostgreSQL database whose default collation is ICU en-US (as a server initialised
    with en_US.UTF-8 would order): the order the "C" collation on name columns must override."""
    name = f"mg_icu_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(
                text(
                    f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' "
                    "LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
                )
            )
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def assert_paging_matches_one_listing(catalog: Catalog, bucket: Bucket) -> None:
    """Every entry exactly once, in the order of one unpaged listing (code point), both ways."""
    for i, name in enumerate(MIXED_NAMES):
        if i % 2:
            catalog.create_folder(bucket.id, f"mix/{name}")
        else:
            commit(catalog, bucket, f"mix/{name}")
    expected = sorted(MIXED_NAMES)
    for descending in (False, True):
        whole = names(catalog.list_dir(bucket.id, "mix", descending=descending))
        assert whole == (expected[::-1] if descending else expected)
        for size in (1, 2, 3, 5):
            paged: list[str] = []
            after = None
            while page := catalog.list_dir(bucket.id, "mix", limit=size, after=after, descending=descending):
                paged += names(page)
                after = page[-1].name
            assert paged == whole, (size, descending)


@pytest.mark.postgres
def test_name_columns_sort_bytewise_on_postgres() -> None:
    """On a database whose default collation is linguistic, SQL paging still agrees with the
    code-point merge: the name/path/key/dir columns carry the "C" collation (migration 0002)."""
    with linguistic_database() as url:
        catalog = Catalog(url)
        try:
            upgrade(catalog.engine)
            with catalog.engine.connect() as conn:
                assert conn.scalar(text("SELECT 'B' < 'a'")) is False  # the database itself is linguistic
                rows = conn.execute(
                    text(
                        "SELECT table_name, column_name, collation_name FROM information_schema.columns "
                        "WHERE table_name IN ('objects', 'folders') "
                        "AND column_name IN ('key', 'path', 'dir', 'name')"
                    )
                ).all()
            assert sorted(rows) == sorted(
                [("objects", c, "C") for c in ("key", "dir", "name")]
                + [("folders", c, "C") for c in ("path", "dir", "name")]
            )
            assert_paging_matches_one_listing(catalog, catalog.create_bucket("mixed"))
        finally:
            catalog.close()


def test_paging_over_mixed_names_returns_each_entry_once(catalog: Catalog, bucket: Bucket) -> None:
    assert_paging_matches_one_listing(catalog, bucket)


def test_count_dir(catalog: Catalog, tree: Bucket) -> None:
    assert catalog.count_dir(tree.id, "") == 5
    assert catalog.count_dir(tree.id, "b") == 1
    assert catalog.count_dir(tree.id, "d") == 0
    assert catalog.count_dir(tree.id, "nope") == 0


# -- folders -----------------------------------------------------------------------------------------


def test_create_folder(catalog: Catalog, bucket: Bucket) -> None:
    assert catalog.create_folder(bucket.id, "x/y/z") is True
    assert all(catalog.get_folder(bucket.id, p) is not None for p in ("x", "x/y", "x/y/z"))
    assert catalog.create_folder(bucket.id, "x/y") is False
    with pytest.raises(Conflict) as info:
        catalog.create_folder(bucket.id, "x/y", exist_ok=False)
    assert info.value.code == "folder_exists"


def test_delete_folder(catalog: Catalog, bucket: Bucket) -> None:
    catalog.create_folder(bucket.id, "x/y")
    commit(catalog, bucket, "f/file.jpg")
    assert not catalog.folder_is_empty(bucket.id, "x")  # holds a folder
    assert not catalog.folder_is_empty(bucket.id, "f")  # holds a file
    assert catalog.folder_is_empty(bucket.id, "x/y")
    with pytest.raises(Conflict) as info:
        catalog.delete_folder(bucket.id, "x")
    assert info.value.code == "folder_not_empty"
    with pytest.raises(Conflict):
        catalog.delete_folder(bucket.id, "f")
    catalog.delete_folder(bucket.id, "x/y")
    catalog.delete_folder(bucket.id, "x")
    assert catalog.get_folder(bucket.id, "x") is None
    with pytest.raises(NotFound) as missing:
        catalog.delete_folder(bucket.id, "x")
    assert missing.value.code == "folder_not_found"
    catalog.delete_object(bucket.id, "f/file.jpg")
    catalog.delete_folder(bucket.id, "f")


def test_an_expired_object_does_not_keep_its_folder_from_being_deleted(
    catalog: Catalog, bucket: Bucket
) -> None:
    past = datetime.now(UTC) - timedelta(seconds=1)
    catalog.commit_object(make_object(bucket, "tmp/old.bin", expires_at=past))
    assert catalog.folder_is_empty(bucket.id, "tmp")
    catalog.delete_folder(bucket.id, "tmp")
    assert catalog.get_folder(bucket.id, "tmp") is None
    catalog.commit_object(make_object(bucket, "tmp/old.bin"))  # the expired row is replaced, not in the way
    assert catalog.get_folder(bucket.id, "tmp") is not None


# -- multi-part sessions -------------------------------------------------------------------------------


def test_sessions_and_parts(catalog: Catalog, bucket: Bucket) -> None:
    made = catalog.create_session(
        "s1", bucket.id, "wantu", "big.bin", total_size=30, part_size=10, data={"dir": "/a"}
    )
    got = catalog.get_session("s1")
    assert got is not None
    assert (got.key, got.state, got.total_size, got.part_size, got.data) == (
        "big.bin",
        "open",
        30,
        10,
        {"dir": "/a"},
    )
    assert got.created_at == made.created_at
    for number, blob in ((2, "blob2"), (1, "blob1")):
        catalog.reserve_blob(blob)
        catalog.add_part("s1", number, blob, 10, "0" * 32, number)
    assert [(p.part_number, p.blob_id) for p in catalog.parts("s1")] == [(1, "blob1"), (2, "blob2")]
    assert garbage(catalog) == set()
    catalog.update_session("s1", state="completing", data={"dir": "/b"})
    updated = catalog.get_session("s1")
    assert updated is not None
    assert (updated.state, updated.data) == ("completing", {"dir": "/b"})
    assert catalog.get_session("nope") is None


def test_replacing_a_part_sends_its_old_blob_to_the_garbage(catalog: Catalog, bucket: Bucket) -> None:
    catalog.create_session("s1", bucket.id, "upyun", "big.bin")
    catalog.add_part("s1", 1, "first", 10, "a" * 32, 1)
    catalog.add_part("s1", 1, "second", 12, "b" * 32, 2)
    parts = catalog.parts("s1")
    assert [(p.part_number, p.blob_id, p.size) for p in parts] == [(1, "second", 12)]
    assert garbage(catalog) == {"first"}


def test_a_part_of_an_unknown_session_is_refused(catalog: Catalog, bucket: Bucket) -> None:
    with pytest.raises(NotFound) as info:
        catalog.add_part("nope", 1, "blob", 1, "0" * 32, 0)
    assert info.value.code == "session_not_found"


def test_end_session_garbages_its_blobs(catalog: Catalog, bucket: Bucket) -> None:
    catalog.create_session("s1", bucket.id, "upyun", "a.bin")
    catalog.create_session("s2", bucket.id, "upyun", "b.bin")
    catalog.add_part("s1", 1, "p1", 1, "0" * 32, 0)
    catalog.add_part("s1", 2, "p2", 1, "0" * 32, 0)
    catalog.add_part("s2", 1, "q1", 1, "0" * 32, 0)
    catalog.end_session("s1")
    assert catalog.get_session("s1") is None
    assert catalog.parts("s1") == []
    assert garbage(catalog) == {"p1", "p2"}
    assert [p.blob_id for p in catalog.parts("s2")] == ["q1"]
    catalog.end_session("s1")  # idempotent


def test_stale_sessions(catalog: Catalog, bucket: Bucket) -> None:
    catalog.create_session("old", bucket.id, "upyun", "a.bin")
    catalog.create_session("fresh", bucket.id, "upyun", "b.bin")
    catalog.update_session("old", updated_at=PAST)
    now = datetime.now(UTC)
    assert catalog.stale_sessions(now - timedelta(minutes=5)) == ["old"]
    catalog.add_part("old", 1, "p", 1, "0" * 32, 0)  # activity makes it fresh again
    assert catalog.stale_sessions(now - timedelta(minutes=5)) == []
    assert sorted(catalog.stale_sessions(datetime.now(UTC) + timedelta(seconds=1))) == ["fresh", "old"]


# -- garbage -----------------------------------------------------------------------------------------


def test_garbage_reserve_and_forget(catalog: Catalog) -> None:
    catalog.reserve_blob("b1")
    catalog.reserve_blob("b2")
    assert catalog.garbage(datetime.now(UTC) - timedelta(minutes=1), now=FUTURE) == []  # not old enough
    assert sorted(catalog.garbage(FUTURE, now=FUTURE)) == ["b1", "b2"]
    assert len(catalog.garbage(FUTURE, limit=1, now=FUTURE)) == 1
    catalog.forget_garbage(["b1", "unknown"])
    catalog.forget_garbage([])
    assert catalog.garbage(FUTURE, now=FUTURE) == ["b2"]


def test_a_reservation_is_not_garbage_until_its_lease_is_over(catalog: Catalog, bucket: Bucket) -> None:
    catalog.reserve_blob("uploading", lease=timedelta(minutes=10))
    old = commit(catalog, bucket, "k")
    commit(catalog, bucket, "k")  # the old version is garbage at once, no lease
    now = datetime.now(UTC)
    assert catalog.garbage(FUTURE) == [old.blob_id]
    assert catalog.garbage(FUTURE, now=now + timedelta(minutes=9)) == [old.blob_id]
    assert sorted(catalog.garbage(FUTURE, now=now + timedelta(minutes=11))) == sorted(
        [old.blob_id, "uploading"]
    )


# -- deliveries ----------------------------------------------------------------------------------------


def test_delivery_lifecycle(catalog: Catalog) -> None:
    now = datetime.now(UTC)
    assert catalog.next_delivery_at() is None
    did = catalog.enqueue_delivery("http://example.test/hook", "a=1", {"Content-Type": "x"}, method="PUT")
    due = catalog.next_delivery_at()
    assert due is not None and due <= datetime.now(UTC)
    claimed = catalog.claim_deliveries(now + timedelta(seconds=1), lease=timedelta(minutes=5))
    assert [(d.id, d.url, d.method, d.body, d.headers) for d in claimed] == [
        (did, "http://example.test/hook", "PUT", "a=1", {"Content-Type": "x"})
    ]
    # leased: nobody else gets it until the lease runs out
    assert catalog.claim_deliveries(now + timedelta(seconds=2), lease=timedelta(minutes=5)) == []
    assert len(catalog.claim_deliveries(now + timedelta(minutes=6), lease=timedelta(minutes=5))) == 1
    catalog.finish_delivery(did, ok=False, error="HTTP 500", retry_at=now + timedelta(hours=1))
    d = catalog.get_delivery(did)
    assert d is not None
    assert (d.attempts, d.state, d.last_error) == (1, "pending", "HTTP 500")
    assert catalog.claim_deliveries(now + timedelta(minutes=30), lease=timedelta(minutes=5)) == []
    assert len(catalog.claim_deliveries(now + timedelta(hours=2), lease=timedelta(minutes=5))) == 1
    catalog.finish_delivery(did, ok=True, error=None, retry_at=None)
    d = catalog.get_delivery(did)
    assert d is not None
    assert (d.attempts, d.state) == (2, "delivered")
    assert catalog.claim_deliveries(FUTURE, lease=timedelta(minutes=5)) == []
    assert catalog.next_delivery_at() is None


def test_prune_deliveries_drops_only_finished_rows_older_than_the_cutoff(catalog: Catalog) -> None:
    ids = {state: catalog.enqueue_delivery(f"http://example.test/{state}", "", {}) for state in STATES}
    catalog.finish_delivery(ids["delivered"], ok=True, error=None, retry_at=None)
    catalog.finish_delivery(ids["failed"], ok=False, error="HTTP 500", retry_at=None)
    catalog.finish_delivery(ids["retrying"], ok=False, error="HTTP 500", retry_at=FUTURE)
    assert catalog.prune_deliveries(datetime.now(UTC) - timedelta(hours=1)) == 0  # all queued just now
    assert catalog.prune_deliveries(FUTURE) == 2
    assert catalog.get_delivery(ids["delivered"]) is None
    assert catalog.get_delivery(ids["failed"]) is None
    for state in ("pending", "retrying"):  # still owed, whatever their age
        d = catalog.get_delivery(ids[state])
        assert d is not None and d.state == "pending"
    assert catalog.prune_deliveries(FUTURE) == 0


STATES = ("delivered", "failed", "pending", "retrying")


def test_each_try_of_a_delivery_is_kept_newest_first_bounded_and_pruned_with_it(catalog: Catalog) -> None:
    did = catalog.enqueue_delivery("http://example.test/hook", "", {})
    other = catalog.enqueue_delivery("http://example.test/other", "", {})
    catalog.finish_delivery(did, ok=False, error="connection refused", retry_at=FUTURE)
    catalog.finish_delivery(did, ok=False, error="HTTP 500", retry_at=FUTURE, status=500)
    catalog.finish_delivery(did, ok=True, error=None, retry_at=None, status=204)
    catalog.finish_delivery(other, ok=True, error=None, retry_at=None, status=200)
    tries = [(a.number, a.ok, a.status, a.error) for a in catalog.delivery_attempts(did)]
    assert tries == [
        (3, True, 204, None),
        (2, False, 500, "HTTP 500"),
        (1, False, None, "connection refused"),
    ]
    catalog.requeue_delivery(did)  # a redelivery counts from 1 again; the history stays
    catalog.finish_delivery(did, ok=True, error=None, retry_at=None, status=200)
    assert [a.number for a in catalog.delivery_attempts(did)] == [1, 3, 2, 1]
    for _ in range(ATTEMPTS_KEPT + 5):  # bounded: only the newest ATTEMPTS_KEPT stay
        catalog.finish_delivery(did, ok=False, error="HTTP 502", retry_at=FUTURE, status=502)
    kept = catalog.delivery_attempts(did)
    assert len(kept) == ATTEMPTS_KEPT and kept[0].number == ATTEMPTS_KEPT + 6
    assert [a.number for a in catalog.delivery_attempts(other)] == [1]
    catalog.finish_delivery(did, ok=True, error=None, retry_at=None, status=200)
    assert catalog.prune_deliveries(FUTURE) == 2
    assert catalog.delivery_attempts(did) == [] and catalog.delivery_attempts(other) == []
    with catalog.engine.connect() as conn:  # gone from the table, not only from the listing
        assert conn.exec_driver_sql("SELECT count(*) FROM delivery_attempts").scalar_one() == 0


def test_a_delivery_out_of_retries_fails(catalog: Catalog) -> None:
    did = catalog.enqueue_delivery("http://example.test/hook", "", {})
    catalog.finish_delivery(did, ok=False, error="timeout", retry_at=None)
    d = catalog.get_delivery(did)
    assert d is not None
    assert (d.state, d.attempts, d.last_error) == ("failed", 1, "timeout")
    assert catalog.claim_deliveries(FUTURE, lease=timedelta(minutes=5)) == []
    catalog.finish_delivery(123456, ok=True, error=None, retry_at=None)  # unknown id: ignored


def test_claims_respect_the_limit_and_due_order(catalog: Catalog) -> None:
    ids = [catalog.enqueue_delivery(f"http://example.test/{i}", "", {}) for i in range(5)]
    first = catalog.claim_deliveries(FUTURE - timedelta(days=1), lease=timedelta(minutes=5), limit=3)
    assert [d.id for d in first] == ids[:3]
    rest = catalog.claim_deliveries(FUTURE - timedelta(days=1), lease=timedelta(minutes=5))
    assert [d.id for d in rest] == ids[3:]


# -- concurrency -------------------------------------------------------------------------------------


def run_threads(n: int, work: Callable[[int], None]) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(n)

    def body(i: int) -> None:
        try:
            start.wait()
            work(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return errors


def test_concurrent_commits_of_different_keys(catalog: Catalog, bucket: Bucket) -> None:
    errors = run_threads(8, lambda i: [commit(catalog, bucket, f"dir/sub/k{i}-{j}") for j in range(5)])
    assert errors == []
    assert catalog.count_dir(bucket.id, "dir/sub") == 40
    assert catalog.get_folder(bucket.id, "dir") is not None


def test_concurrent_commits_of_the_same_key_leave_one_row(catalog: Catalog, bucket: Bucket) -> None:
    blobs: list[str] = []

    def work(i: int) -> None:
        for _ in range(3):
            blobs.append(commit(catalog, bucket, "new/dir/same.bin", str(i).encode()).blob_id)

    assert run_threads(8, work) == []
    with catalog._read() as s:
        rows = list(s.scalars(select(Object).where(Object.key == "new/dir/same.bin")))
        folders = s.scalar(select(func.count()).select_from(Folder))
    assert len(rows) == 1
    assert folders == 2
    # every replaced blob is garbage, the live one is not: nothing leaks, nothing live is lost
    assert garbage(catalog) == set(blobs) - {rows[0].blob_id}


def test_concurrent_insert_only_commits_have_one_winner(catalog: Catalog, bucket: Bucket) -> None:
    outcomes: list[str] = []

    def work(i: int) -> None:
        try:
            commit(catalog, bucket, "once/only.bin", insert_only=True)
            outcomes.append("won")
        except Conflict:
            outcomes.append("conflict")

    assert run_threads(8, work) == []
    assert sorted(outcomes) == ["conflict"] * 7 + ["won"]


def test_concurrent_folder_creates_have_one_winner(catalog: Catalog, bucket: Bucket) -> None:
    """Wantu's folder POST and UPYUN's mkdir refuse an existing folder: of creators racing on one
    new path, exactly one is told it created it (under PostgreSQL a loser used to find the winner's
    committed row on a second look and report it as its own)."""
    for round_ in range(10):
        outcomes: list[str] = []

        def work(i: int, path: str = f"r{round_}/albums/2015") -> None:
            try:
                outcomes.append("won" if catalog.create_folder(bucket.id, path, exist_ok=False) else "?")
            except Conflict:
                outcomes.append("exists")

        assert run_threads(6, work) == []
        assert sorted(outcomes) == ["exists"] * 5 + ["won"], (round_, outcomes)


def test_a_folder_deleted_while_an_object_is_committed_into_it_never_orphans_the_object(
    catalog: Catalog, bucket: Bucket
) -> None:
    """Either the delete comes first and the commit makes the folder again, or the commit does and
    the delete finds the folder not empty: never an object left in a folder that no longer exists."""
    for round_ in range(30):
        folder = f"d{round_}/sub"
        catalog.create_folder(bucket.id, folder)

        def work(i: int, folder: str = folder) -> None:
            if i == 0:
                with contextlib.suppress(Conflict):
                    catalog.delete_folder(bucket.id, folder)
            else:
                commit(catalog, bucket, f"{folder}/x.bin")

        assert run_threads(2, work) == []
        assert catalog.get_object(bucket.id, f"{folder}/x.bin") is not None
        assert catalog.get_folder(bucket.id, folder) is not None, round_
        assert names(catalog.list_dir(bucket.id, folder)) == ["x.bin"]


@pytest.mark.parametrize("parent", ["", "p/q/"])
def test_a_folder_and_an_object_of_one_name_never_both_exist(
    catalog: Catalog, bucket: Bucket, parent: str
) -> None:
    if parent:
        catalog.create_folder(bucket.id, parent.rstrip("/"))
    for round_ in range(30):
        path = f"{parent}same-{round_}"

        def work(i: int, path: str = path) -> None:
            with contextlib.suppress(Conflict):
                if i == 0:
                    catalog.create_folder(bucket.id, path, exist_ok=False)
                else:
                    commit(catalog, bucket, path)

        assert run_threads(2, work) == []
        made = (
            catalog.get_folder(bucket.id, path) is not None,
            catalog.get_object(bucket.id, path) is not None,
        )
        assert made in ((True, False), (False, True)), (round_, made)


def test_concurrent_parts_of_the_same_number(catalog: Catalog, bucket: Bucket) -> None:
    catalog.create_session("s1", bucket.id, "upyun", "big.bin")
    assert run_threads(8, lambda i: catalog.add_part("s1", 1, f"blob{i}", 1, "0" * 32, i)) == []
    parts = catalog.parts("s1")
    assert len(parts) == 1
    assert garbage(catalog) == {f"blob{i}" for i in range(8)} - {parts[0].blob_id}


def test_concurrent_renames_onto_one_key_leave_one_row(catalog: Catalog, bucket: Bucket) -> None:
    """Eight objects renamed onto one new key at once: every rename succeeds (last one wins), one
    row remains, and every blob it replaced is garbage; nothing live is lost."""
    blobs = [commit(catalog, bucket, f"src/{i}.bin", str(i).encode()).blob_id for i in range(8)]
    assert run_threads(8, lambda i: catalog.rename_object(bucket.id, f"src/{i}.bin", "new/dir/one.bin")) == []
    with catalog._read() as s:
        rows = list(s.scalars(select(Object).where(Object.bucket_id == bucket.id)))
    assert [r.key for r in rows] == ["new/dir/one.bin"]
    assert (rows[0].dir, rows[0].name) == ("new/dir", "one.bin")
    assert garbage(catalog) == set(blobs) - {rows[0].blob_id}


def test_concurrent_renames_of_one_object_have_one_winner(catalog: Catalog, bucket: Bucket) -> None:
    """The same object renamed to eight names at once ends up under exactly one of them; the
    others are told it is gone, as they would be one after the other."""
    blob = commit(catalog, bucket, "a.bin").blob_id
    outcomes: list[str] = []

    def work(i: int) -> None:
        try:
            catalog.rename_object(bucket.id, "a.bin", f"to/{i}.bin")
            outcomes.append(f"to/{i}.bin")
        except NotFound:
            outcomes.append("gone")

    assert run_threads(8, work) == []
    won = [o for o in outcomes if o != "gone"]
    assert len(won) == 1 and outcomes.count("gone") == 7
    with catalog._read() as s:
        rows = list(s.scalars(select(Object).where(Object.bucket_id == bucket.id)))
    assert [(r.key, r.blob_id) for r in rows] == [(won[0], blob)]
    assert garbage(catalog) == set()


def test_renames_racing_commits_to_the_target(catalog: Catalog, bucket: Bucket) -> None:
    """Renames onto a key while others upload to it: no error, one row, every loser's blob garbage."""
    sources = [commit(catalog, bucket, f"s/{i}", str(i).encode()).blob_id for i in range(4)]
    committed: list[str] = []

    def work(i: int) -> None:
        if i % 2:
            for j in range(3):
                committed.append(commit(catalog, bucket, "t/target", f"{i}-{j}".encode()).blob_id)
        else:
            catalog.rename_object(bucket.id, f"s/{i}", "t/target")
            catalog.rename_object(bucket.id, f"s/{i + 1}", "t/target")

    assert run_threads(4, work) == []
    with catalog._read() as s:
        rows = list(s.scalars(select(Object).where(Object.bucket_id == bucket.id)))
    assert [r.key for r in rows] == ["t/target"]
    assert garbage(catalog) == (set(sources) | set(committed)) - {rows[0].blob_id}


@pytest.mark.postgres
def test_concurrent_claimers_never_get_the_same_delivery() -> None:
    """Four workers (own engines, as on four nodes) drain one queue: SELECT … FOR UPDATE SKIP
    LOCKED hands every row to exactly one of them. (SQLite serialises writers, so only PostgreSQL
    can get this wrong.)"""
    with fresh_schema() as url:
        claim_concurrently(url)


def claim_concurrently(url: str) -> None:
    workers = [Catalog(url) for _ in range(4)]
    try:
        upgrade(workers[0].engine)
        for i in range(60):
            workers[0].enqueue_delivery(f"http://example.test/{i}", "", {})
        claimed: list[int] = []

        def work(i: int) -> None:
            while batch := workers[i].claim_deliveries(FUTURE, lease=timedelta(hours=1), limit=3):
                claimed.extend(d.id for d in batch)

        assert run_threads(4, work) == []
        assert len(claimed) == 60
        assert len(set(claimed)) == 60
    finally:
        for w in workers:
            w.close()


def test_sqlite_concurrent_writers_do_not_hit_database_is_locked(catalog: Catalog, bucket: Bucket) -> None:
    """Mixed writers and readers at once: writers queue on BEGIN IMMEDIATE, readers never block."""

    def work(i: int) -> None:
        for j in range(10):
            if i % 2:
                commit(catalog, bucket, f"mix/{i}/{j}")
            else:
                catalog.list_dir(bucket.id, "mix")
                catalog.reserve_blob(f"g{i}-{j}")
                catalog.forget_garbage([f"g{i}-{j}"])

    assert run_threads(8, work) == []
    assert catalog.count_dir(bucket.id, "mix") == 4
    with catalog._read() as s:
        assert s.scalar(select(func.count()).select_from(GarbageBlob)) == 0

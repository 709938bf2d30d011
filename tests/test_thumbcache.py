"""The variant cache on a real directory: made once, LRU within its bound on disk, and the small
in-memory copies of hot variants, which follow the files (an evicted or vanished file takes its
bytes out of memory) and stay within their own bound."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

from mediagate.thumbcache import HOT_ITEM_BYTES, ThumbCache, Variant


def maker(body: bytes) -> Callable[[Path], Awaitable[str]]:
    async def make(dest: Path) -> str:
        dest.write_bytes(body)
        return "jpeg"

    return make


def get(cache: ThumbCache, key: str, body: bytes) -> Variant:
    """The variant ``key``, made with ``body`` if the cache does not have it."""
    return asyncio.run(cache.get_or_make(key, maker(body)))


def key(n: int) -> str:
    return f"{n:064x}"


def test_made_once_then_hits_and_hot_after_a_hit_remembers_it(tmp_path: Path) -> None:
    cache = ThumbCache(tmp_path, max_bytes=10_000)
    made = get(cache, key(1), b"a" * 100)
    assert (made.hit, made.body, made.mime, made.size) == (False, b"a" * 100, "image/jpeg", 100)
    assert made.path.read_bytes() == b"a" * 100 and made.path.suffix == ".jpg"
    first_hit = get(cache, key(1), b"never made")
    assert first_hit.hit and first_hit.body is None  # a one-off variant is not kept in memory
    cache.remember(key(1), first_hit.path.read_bytes())
    hot = get(cache, key(1), b"never made")
    assert hot.hit and hot.body == b"a" * 100
    assert cache.misses == 1 and cache.stats()["hot_bytes"] == 100


def test_eviction_and_a_vanished_file_drop_the_memory_copy(tmp_path: Path) -> None:
    cache = ThumbCache(tmp_path, max_bytes=250)
    for n in (1, 2):
        get(cache, key(n), bytes([n]) * 100)
        cache.remember(key(n), bytes([n]) * 100)
    assert cache.stats()["hot_entries"] == 2
    get(cache, key(3), b"c" * 100)  # 300 > 250: key 1, the least recently used, goes
    assert cache.stats()["hot_entries"] == 1 and cache.total_bytes == 200
    assert not any(p.name.startswith(key(1)) for p in tmp_path.rglob("*"))
    victim = get(cache, key(2), b"")
    assert victim.hit and victim.body == bytes([2]) * 100
    victim.path.unlink()  # removed behind the cache's back (another process, an operator)
    assert cache.stats()["hot_entries"] == 1  # the lookup has not happened yet
    remade = get(cache, key(2), b"B" * 100)
    assert not remade.hit and remade.body == b"B" * 100
    assert cache.stats()["hot_entries"] == 0 and cache.misses == 4


def test_memory_copies_stay_within_their_bound(tmp_path: Path) -> None:
    cache = ThumbCache(tmp_path, max_bytes=10**9, hot_bytes=250)
    for n in range(1, 5):
        get(cache, key(n), bytes([n]) * 100)
        cache.remember(key(n), bytes([n]) * 100)
    assert cache.stats()["hot_entries"] == 2 and cache.stats()["hot_bytes"] == 200
    assert get(cache, key(4), b"").body is not None and get(cache, key(1), b"").body is None
    big = b"x" * (HOT_ITEM_BYTES + 1)
    made = get(cache, key(9), big)
    assert made.body is None  # large variants are streamed from their file, never held whole
    cache.remember(key(9), big)
    assert get(cache, key(9), b"").body is None
    cache.remember(key(77), b"not in the index")
    assert get(cache, key(77), b"made").body == b"made" and cache.stats()["hot_bytes"] == 200


def test_a_restart_finds_what_is_on_disk(tmp_path: Path) -> None:
    first = ThumbCache(tmp_path, max_bytes=10_000)
    get(first, key(5), b"e" * 10)
    (tmp_path / key(5)[:2] / f"{key(5)}.0123.tmp").write_bytes(b"left by a crash")
    second = ThumbCache(tmp_path, max_bytes=10_000)
    found = get(second, key(5), b"not again")
    assert found.hit and found.path.read_bytes() == b"e" * 10 and second.misses == 0
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_cleared_cache_directory_is_made_again(tmp_path: Path) -> None:
    cache = ThumbCache(tmp_path / "cache", max_bytes=10_000)
    get(cache, key(1), b"a")
    shutil.rmtree(tmp_path / "cache")  # an operator clearing the cache under a running server
    made = get(cache, key(2), b"b")
    assert not made.hit and made.path.read_bytes() == b"b"
    again = get(cache, key(1), b"A")
    assert not again.hit and again.path.read_bytes() == b"A"


def test_the_index_is_bounded_in_entries_too(tmp_path: Path) -> None:
    """Tiny variants (a 16-px thumbnail, each width another variant) stay far under any byte bound:
    the in-memory index and the files are bounded by their count as well."""
    cache = ThumbCache(tmp_path, max_bytes=10**9, max_entries=5)
    for n in range(8):
        get(cache, key(n), b"t" * 10)
    assert cache.stats()["entries"] == 5 and cache.total_bytes == 50
    assert sorted(p.name[:64] for p in tmp_path.rglob("*.jpg")) == [key(n) for n in range(3, 8)]
    assert get(cache, key(7), b"").hit and not get(cache, key(0), b"t" * 10).hit

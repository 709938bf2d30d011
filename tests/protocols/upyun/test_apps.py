"""protocols.upyun.apps: output names, callback bodies, and ``task_ids`` in a return-url redirect
(the task's life through a server is in tests/tasks/test_engine.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from mediagate.catalog.models import Bucket, Task
from mediagate.core.buckets import BucketCredentials
from mediagate.core.errors import InvalidKey
from mediagate.protocols.upyun.apps import default_key, output_key, result_body
from tests.conftest import LiveServer
from tests.protocols.upyun.forms import policy_of, post, signature


def test_save_as_fills_in_the_sources_folder_name_and_suffix() -> None:
    assert output_key("/t/{filename}_s.{suffix}", "pics/cat.jpg") == "t/cat_s.jpg"
    assert output_key("{filepath}/small/{filename}.webp", "pics/a/cat.jpg") == "pics/a/small/cat.webp"
    assert output_key("{filepath}/{filename}.png", "cat.jpg") == "cat.png"
    assert output_key(None, "cat.jpg") is None
    with pytest.raises(InvalidKey):
        output_key("/../{filename}", "cat.jpg")


def test_without_save_as_the_output_is_named_after_the_source_and_the_task() -> None:
    assert default_key("pics/cat.jpg", "ab" * 16, "webp") == f"pics/cat_{'ab' * 16}.webp"
    assert default_key("cat", "ab" * 16, "png") == f"cat_{'ab' * 16}.png"


def _task(kind: str) -> Task:
    now = datetime.now(UTC)
    return Task(
        id="9d9c32b63a1034834e77672c6f51f661",
        kind=kind,
        dialect="upyun",
        bucket_id=1,
        source="v/in.mp4",
        params={},
        status="done",
        attempts=1,
        max_attempts=3,
        next_run_at=now,
        outputs=[],
        result={},
        created_at=now,
        updated_at=now,
    )


def test_callback_bodies_follow_the_spec_per_kind() -> None:
    bucket = Bucket(id=1, name="upyun-temp", created_at=datetime.now(UTC), settings={})
    ok = {"status": 200, "outputs": ["a/b.mp4"], "result": {}, "reason": None}
    assert result_body(_task("naga"), bucket, ok) == {
        "task_id": "9d9c32b63a1034834e77672c6f51f661",
        "service": "upyun-temp",
        "status_code": 200,
        "path": ["/a/b.mp4"],
        "description": "OK",
    }
    failed = {"status": 415, "outputs": [], "result": {}, "reason": "not an image"}
    assert result_body(_task("imgaudit"), bucket, failed) == {
        "task_id": "9d9c32b63a1034834e77672c6f51f661",
        "service": "upyun-temp",
        "status_code": 415,
        "source": "v/in.mp4",
        "error": "not an image",
    }


def test_task_ids_reach_a_return_url_comma_joined(server: LiveServer, bucket: BucketCredentials) -> None:
    apps = [{"name": "thumb", "x-gmkerl-thumb": "/fw/10"}, {"name": "textjudge"}]
    p = policy_of(bucket, "/n.txt", apps=apps, return_url="http://example.com/back")
    with httpx.Client(base_url=server.url) as client:
        answer = post(
            client,
            bucket.bucket,
            [("policy", p), ("signature", signature(bucket, p)), ("file", ("n.txt", b"hi"))],
        )
    assert answer.status_code == 303
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    ids = query["task_ids"][0].split(",")
    assert len(ids) == 2 and len(set(ids)) == 2 and all(len(i) == 32 for i in ids)
    assert query["code"] == ["200"] and "sign" in query  # the sign leaves task_ids out (seed)

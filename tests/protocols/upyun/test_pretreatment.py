"""UPYUN's pretreatment API, driven by the real upyun python SDK (``pretreat``, ``status``) and by
signed requests where the SDK has no call (``/result/``, the go-sdk's): tasks on a stored video are
recorded, run, published and reported; another bucket's operator sees none of them; bad requests
get UPYUN's REST error JSON."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import upyun

from mediagate.core.buckets import BucketCredentials
from mediagate.core.gateway import Gateway
from mediagate.media import video
from mediagate.media.moderation import score_file
from tests.conftest import LiveServer
from tests.media.test_moderation import blobs
from tests.media.videos import make_video
from tests.protocols.upyun.forms import Receiver, keys_in
from tests.protocols.upyun.rest_client import sign, signed
from tests.tasks.conftest import TaskSite, by_task, verify_upyun_signature
from tests.tasks.conftest import site as site  # the fixture, on both engines
from tests.tasks.test_engine import read_object, wait_for


def sdk(site: TaskSite, creds: BucketCredentials) -> upyun.UpYun:
    up = upyun.UpYun(creds.bucket, creds.operator, creds.password, timeout=60, endpoint=site.server.endpoint)
    up.av.HOST = site.server.endpoint  # the SDK's pretreatment host is fixed (p0.api.upyun.com)
    return up


def query(
    site: TaskSite, creds: BucketCredentials, what: str, ids: list[str], service: str | None = None
) -> Any:
    uri = f"/{what}/?" + urlencode({"service": service or creds.bucket, "task_ids": ",".join(ids)})
    with httpx.Client(base_url=site.url) as client:
        answer = signed(client, creds, "GET", uri)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_pretreat_status_and_result_through_the_sdk(site: TaskSite, tmp_path: Path) -> None:
    creds, other = site.bucket(), site.bucket()
    up, stranger = sdk(site, creds), sdk(site, other)
    up.put("/v/in.mp4", make_video(tmp_path / "in.mp4", size="640x360", seconds=2).read_bytes())
    tasks = [
        {"type": "video", "avopts": "/s/240p(4:3)/as/1", "save_as": "/v/out.mp4", "return_info": True},
        {"type": "hls", "avopts": "/s/360p(16:9)/ht/1", "save_as": "/v/hls/p.m3u8"},
        {"type": "video", "avopts": "/s/tiny", "save_as": "/v/bad.mp4"},
    ]
    with Receiver() as hook:
        ids = up.pretreat(tasks, "/v/in.mp4", hook.url("/cb"))
        assert isinstance(ids, list) and len(ids) == 3 and len(set(ids)) == 3
        done = [site.wait_task(i, "done", "failed", timeout=120) for i in ids]
        wait_for(lambda: len(by_task(hook.requests)) == 3, timeout=30)

    assert [t.status for t in done] == ["done", "done", "failed"], [t.reason for t in done]
    assert up.status(ids) == {ids[0]: 100, ids[1]: 100, ids[2]: -1}
    out = tmp_path / "out.mp4"
    out.write_bytes(read_object(site, creds.bucket, "v/out.mp4"))
    info = video.probe(out)
    assert info.video is not None and (info.video.codec, info.video.width, info.video.height) == (
        "h264",
        320,
        240,
    )
    assert done[1].outputs[0] == "v/hls/p.m3u8" and all(k.startswith("v/hls/p-") for k in done[1].outputs[1:])
    assert "/s/" in (done[2].reason or "") and "tiny" in (done[2].reason or "")

    callbacks = by_task(hook.requests)
    for path, headers, body in hook.requests:
        verify_upyun_signature(creds, path, headers, body)  # signed by the operator who submitted
    assert callbacks[ids[0]]["path"] == ["/v/out.mp4"] and callbacks[ids[0]]["status_code"] == 200
    assert callbacks[ids[2]]["status_code"] == 400 and callbacks[ids[2]]["description"] == done[2].reason

    results = query(site, creds, "result", ids)
    assert set(results) == {"tasks", *ids}
    for i in ids:  # the callback body, without the POST's legacy in-body signature
        expected = {k: v for k, v in callbacks[i].items() if k not in ("signature", "timestamp")}
        assert results["tasks"][i] == expected and results[i] == expected

    # bucket B's operator, asking about bucket A's tasks, learns nothing
    assert stranger.status(ids) == {i: None for i in ids}
    assert query(site, other, "result", ids)["tasks"] == {i: None for i in ids}
    with httpx.Client(base_url=site.url) as client:  # nor with A's name and B's credentials
        uri = "/status/?" + urlencode({"service": creds.bucket, "task_ids": ids[0]})
        assert signed(client, other, "GET", uri).status_code == 401
    assert set(keys_in(site.admin, other.bucket)) == set()


def test_a_task_not_started_is_null_and_a_missing_source_fails_404(site: TaskSite) -> None:
    creds = site.bucket()
    site.pause_workers()
    ids = sdk(site, creds).pretreat([{"type": "probe", "avopts": ""}], "/nothing/here.mp4", "")
    assert sdk(site, creds).status(ids) == {ids[0]: None}
    assert query(site, creds, "result", ids) == {"tasks": {ids[0]: None}, ids[0]: None}
    site.resume_workers()
    failed = site.wait_task(ids[0], "failed", timeout=60)
    assert failed.result == {"status": 404} and "does not exist" in (failed.reason or "")
    body = query(site, creds, "result", ids)[ids[0]]
    assert body["status_code"] == 404 and body["path"] == [] and body["description"] == failed.reason


def post_form(url: str, creds: BucketCredentials, fields: dict[str, str], **auth: str) -> httpx.Response:
    body = urlencode(fields).encode()
    md5 = hashlib.md5(body).hexdigest()
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Content-MD5": md5}
    headers |= sign(creds, "POST", "/pretreatment/", content_md5=md5, **auth)
    with httpx.Client(base_url=url) as client:
        return client.post("/pretreatment/", content=body, headers=headers)


def b64(value: Any) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


def test_bad_submissions_get_upyun_rest_errors_and_record_nothing(
    server: LiveServer, admin: Gateway, bucket: BucketCredentials
) -> None:
    creds = bucket
    base = {"service": creds.bucket, "source": "/a.mp4", "notify_url": "", "accept": "json"}
    cases = [
        ({"tasks": "not base64 !"}, {}, 400, 40010033),
        ({"tasks": b64({"type": "video"})}, {}, 400, 40010033),
        ({"tasks": b64([{"type": "video", "avopts": "/r/1"}] * 11)}, {}, 400, 40010003),
        ({"tasks": b64([])}, {}, 400, 40010003),
        ({"tasks": b64([{"type": 5}])}, {}, 400, None),
        ({"tasks": b64([{"type": "video"}]), "source": "/../x"}, {}, 400, None),
        ({"tasks": b64([{"type": "video"}]), "notify_url": "ftp://x"}, {}, 400, None),
        ({"tasks": b64([{"type": "video"}]), "app_name": "jigsaw"}, {}, 400, None),
        ({"tasks": b64([{"type": "video"}])}, {"password": "wrong"}, 401, None),
        ({"tasks": b64([{"type": "video"}]), "service": "no-such-bucket"}, {}, 401, None),
    ]
    for fields, auth, status, code in cases:
        answer = post_form(server.url, creds, base | fields, **auth)
        assert answer.status_code == status, (fields, answer.text)
        doc = answer.json()
        assert set(doc) == {"msg", "code", "id"} and doc["msg"], doc
        if code is not None:
            assert doc["code"] == code, doc
    with httpx.Client(base_url=server.url) as client:
        wrong_method = signed(client, creds, "GET", "/pretreatment/")
        assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "POST"
        assert set(wrong_method.json()) == {"msg", "code", "id"}
        unsigned = client.get("/status/", params={"service": creds.bucket, "task_ids": "a"})
        assert unsigned.status_code == 401 and set(unsigned.json()) == {"msg", "code", "id"}
        many = ",".join(f"{n:032x}" for n in range(21))
        too_many = signed(
            client, creds, "GET", "/status/?" + urlencode({"service": creds.bucket, "task_ids": many})
        )
        assert too_many.status_code == 400 and too_many.json()["code"] == 40010003
    found = admin.catalog.get_bucket(creds.bucket)
    assert found is not None and admin.catalog.list_tasks(bucket_id=found.id) == []


def test_app_name_imgaudit_scores_a_stored_image_with_the_model(site: TaskSite, tmp_path: Path) -> None:
    creds = site.bucket()
    up = sdk(site, creds)
    picture = blobs(tmp_path / "b.png")
    up.put("/p/b.png", picture.read_bytes())
    with Receiver() as hook:
        (task_id,) = up.av.pretreat([{}], "/p/b.png", hook.url("/audit"), app_name="imgaudit")
        done = site.wait_task(task_id, "done", "failed", timeout=60)
        wait_for(lambda: len(by_task(hook.requests)) == 1)
    assert done.status == "done" and done.kind == "imgaudit", done.reason
    callback = by_task(hook.requests)[task_id]
    verify_upyun_signature(creds, "/audit", hook.requests[0][1], hook.requests[0][2])
    assert callback["source"] == "p/b.png" and callback["status_code"] == 200
    assert callback["result"] == score_file(picture).upyun()
    assert query(site, creds, "result", [task_id])["tasks"][task_id] == callback


def test_the_docs_vconcat_example_runs_through_the_sdk(site: TaskSite, tmp_path: Path) -> None:
    """Test vector C of the spec (the docs' pretreatment example): a transcode and a ``vconcat`` of
    /a/b/c.mp4 and /1/2/3.mp4 after the source; the joined file lasts the sum of the three."""
    creds = site.bucket()
    up = sdk(site, creds)
    up.put("/v/in.mp4", make_video(tmp_path / "in.mp4", seconds=2).read_bytes())
    up.put("/a/b/c.mp4", make_video(tmp_path / "c.mp4", seconds=1).read_bytes())
    up.put("/1/2/3.mp4", make_video(tmp_path / "3.mp4", seconds=1, audio=False).read_bytes())
    encoded = (
        "W3siYXZvcHRzIjoiL3MvMjQwcCg0OjMpL2FzLzEvci8zMCIsInJldHVybl9pbmZvIjp0cnVlLCJzYXZlX2FzIjoiL2EvYi5tcDQiLCJ0"
        "eXBlIjoidmlkZW8ifSx7ImF2b3B0cyI6Ii9pL0wyRXZZaTlqTG0xd05BPT0vaS9MekV2TWk4ekxtMXdOQT09Iiwic2F2ZV9hcyI6Ii9j"
        "b25jYXQvYS5tcDQiLCJ0eXBlIjoidmNvbmNhdCJ9XQ=="
    )
    tasks = json.loads(base64.b64decode(encoded))
    assert tasks[1] == {"avopts": "/i/L2EvYi9jLm1wNA==/i/LzEvMi8zLm1wNA==", "save_as": "/concat/a.mp4",
                        "type": "vconcat"}  # fmt: skip
    with Receiver() as hook:
        ids = up.pretreat(tasks, "/v/in.mp4", hook.url("/cb"))
        done = [site.wait_task(i, "done", "failed", timeout=120) for i in ids]
        wait_for(lambda: len(by_task(hook.requests)) == 2, timeout=30)
    assert [t.status for t in done] == ["done", "done"], [t.reason for t in done]
    assert done[1].outputs == ["concat/a.mp4"]
    joined = tmp_path / "joined.mp4"
    joined.write_bytes(read_object(site, creds.bucket, "concat/a.mp4"))
    info = video.probe(joined)
    assert info.duration is not None and abs(info.duration - 4.0) < 0.3
    assert info.audio is not None  # the silent part got silence, the others keep their sound
    callback = by_task(hook.requests)[ids[1]]
    assert callback["status_code"] == 200 and callback["path"] == ["/concat/a.mp4"]
    assert up.status(ids) == {ids[0]: 100, ids[1]: 100}

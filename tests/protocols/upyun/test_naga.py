"""UPYUN ``naga`` apps end to end, on each engine (tests/tasks/conftest ``site``): a video made
here is uploaded through FORM with ``apps``; workers transcode it with ffmpeg; the outputs are real
media (probed), published through the gateway, and each signed callback carries the spec's fields."""

from __future__ import annotations

import json
from pathlib import Path

from mediagate.media import video
from tests.media.videos import make_video
from tests.protocols.upyun.forms import Receiver, keys_in
from tests.tasks.conftest import TaskSite, by_task, verify_upyun_signature
from tests.tasks.conftest import site as site  # the fixture, on both engines
from tests.tasks.test_engine import form_upload, read_object, wait_for


def probe_object(site: TaskSite, bucket: str, key: str, tmp: Path) -> video.MediaInfo:
    path = tmp / Path(key).name
    path.write_bytes(read_object(site, bucket, key))
    return video.probe(path, own_playlist=path.suffix == ".m3u8")


def test_naga_transcodes_to_mp4_hls_and_frames_with_signed_callbacks(site: TaskSite, tmp_path: Path) -> None:
    creds = site.bucket()
    clip = make_video(tmp_path / "in.mp4", size="640x480", seconds=3).read_bytes()
    apps = [
        {"name": "naga", "type": "video", "avopts": "/s/240p(4:3)/r/15", "save_as": "/out/{filename}.mp4",
         "return_info": True},
        {"name": "naga", "type": "hls", "avopts": "/s/240p(4:3)/ht/1", "save_as": "/hls/index.m3u8"},
        {"name": "naga", "type": "thumbnail", "avopts": "/o/0/n/3/s/160:120", "save_as": "/shots/f.jpg"},
        {"name": "naga", "type": "probe", "avopts": ""},
    ]  # fmt: skip
    with Receiver() as hook:
        answer = form_upload(site, creds, clip, "/v/clip.mp4", apps=apps, notify_url=hook.url("/hook"))
        assert answer.status_code == 200, answer.text
        ids = answer.json()["task_ids"]
        tasks = [site.wait_task(i, "done", "failed", timeout=120) for i in ids]
        assert [t.status for t in tasks] == ["done"] * 4, [t.reason for t in tasks]
        wait_for(lambda: len(by_task(hook.requests)) == 4, timeout=30)

    mp4, hls, shots, meta = tasks
    assert mp4.outputs == ["out/clip.mp4"] and mp4.attempts == 1
    info = probe_object(site, creds.bucket, "out/clip.mp4", tmp_path)
    assert info.video is not None and info.audio is not None
    assert (info.video.codec, info.video.width, info.video.height) == ("h264", 320, 240)
    assert info.audio.codec == "aac" and "mp4" in info.format and round(info.video.fps or 0) == 15

    assert hls.outputs[0] == "hls/index.m3u8" and len(hls.outputs) >= 3
    segments = hls.outputs[1:]
    assert segments == [f"hls/index-{n:05d}.ts" for n in range(len(segments))]
    playlist = read_object(site, creds.bucket, "hls/index.m3u8").decode()
    assert [line for line in playlist.splitlines() if line.endswith(".ts")] == [s[4:] for s in segments]
    for seg in segments:  # each segment plays on its own, in order
        part = probe_object(site, creds.bucket, seg, tmp_path)
        assert part.format == "mpegts" and part.video is not None and part.video.width == 320

    assert shots.outputs == ["shots/f1.jpg", "shots/f2.jpg", "shots/f3.jpg"]
    grab = probe_object(site, creds.bucket, "shots/f2.jpg", tmp_path)
    assert grab.video is not None and (grab.video.width, grab.video.height) == (160, 120)

    assert meta.outputs == []  # probe: metadata only
    assert set(keys_in(site.admin, creds.bucket)) == {
        "v/clip.mp4",
        *mp4.outputs,
        *hls.outputs,
        *shots.outputs,
    }

    callbacks = by_task(hook.requests)
    for path, headers, body in hook.requests:
        if headers["content-type"] == "application/json":
            assert path == "/hook"
            verify_upyun_signature(creds, path, headers, body)
    first = callbacks[mp4.id]
    assert {k: first[k] for k in ("task_id", "service", "status_code", "path", "description")} == {
        "task_id": mp4.id,
        "service": creds.bucket,
        "status_code": 200,
        "path": ["/out/clip.mp4"],
        "description": "OK",
    }
    streams = {s["type"]: s for s in first["info"]["streams"]}
    assert (streams["video"]["video_width"], streams["video"]["video_height"]) == (320, 240)
    assert first["info"]["format"]["filesize"] == len(read_object(site, creds.bucket, "out/clip.mp4"))
    assert len(first["signature"]) == 16 and isinstance(first["timestamp"], int)
    assert "info" not in callbacks[hls.id]  # return_info not asked for
    assert callbacks[hls.id]["path"] == ["/hls/index.m3u8", *("/" + s for s in segments)]
    assert callbacks[shots.id]["path"] == ["/shots/f1.jpg", "/shots/f2.jpg", "/shots/f3.jpg"]
    source_info = callbacks[meta.id]["info"]
    assert source_info["format"]["filesize"] == len(clip)
    assert {s["type"] for s in source_info["streams"]} == {"video", "audio"}


def test_bad_avopts_and_non_video_sources_fail_with_a_readable_reason(site: TaskSite, tmp_path: Path) -> None:
    creds = site.bucket()
    clip = make_video(tmp_path / "in.mp4", seconds=1).read_bytes()
    apps = [
        {"name": "naga", "type": "video", "avopts": "/s/999p(1:1)", "save_as": "/o/a.mp4"},
        {"name": "naga", "type": "video", "avopts": "/t/5", "save_as": "/o/b.mp4"},
        {"name": "naga", "type": "vthumbnail", "avopts": "/o/1"},
        {"name": "naga", "avopts": "/s/240p(4:3)"},
    ]
    with Receiver() as hook:
        answer = form_upload(site, creds, clip, "/v/c.mp4", apps=apps, notify_url=hook.url())
        assert answer.status_code == 200, answer.text
        tasks = [site.wait_task(i, "done", "failed", timeout=60) for i in answer.json()["task_ids"]]
        wait_for(lambda: len(by_task(hook.requests)) == 4)
        text = form_upload(site, creds, b"just text", "/notes.txt", apps=[apps[0] | {"avopts": "/r/25"}])
        not_media = site.wait_task(text.json()["task_ids"][0], "done", "failed", timeout=60)

    assert all(t.status == "failed" and t.attempts == 1 for t in tasks), [
        (t.status, t.attempts) for t in tasks
    ]
    size, key, kind, untyped = tasks
    assert "/s/" in (size.reason or "") and "999p" in (size.reason or "")
    assert "/t/" in (key.reason or "")
    assert "vthumbnail" in (kind.reason or "")
    assert "'type' is required" in (untyped.reason or "")
    callbacks = by_task(hook.requests)
    for t in tasks:
        assert callbacks[t.id]["status_code"] == 400 and callbacks[t.id]["path"] == []
        assert callbacks[t.id]["description"] == t.reason
    assert not_media.status == "failed" and not_media.result == {"status": 415}
    assert "not a readable audio/video file" in (not_media.reason or "")
    assert keys_in(site.admin, creds.bucket) == ["notes.txt", "v/c.mp4"]  # no partial output
    assert str(site.home) not in json.dumps(callbacks) and "/tmp/" not in json.dumps(
        callbacks
    )  # no server path

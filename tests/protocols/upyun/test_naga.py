"""UPYUN ``naga`` apps end to end, on each engine (tests/tasks/conftest ``site``): a video made
here is uploaded through FORM with ``apps``; workers transcode it with ffmpeg; the outputs are real
media (probed), published through the gateway, and each signed callback carries the spec's fields."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from pathlib import Path
from urllib.parse import unquote

import httpx
import psutil

from mediagate.core.buckets import create_bucket
from mediagate.core.gateway import Gateway
from mediagate.media import video
from mediagate.protocols.upyun.naga import grab_keys, hls_keys
from mediagate.services import build_gateway
from tests.conftest import LiveServer, make_home
from tests.media.videos import make_video
from tests.protocols.upyun.forms import Receiver, authorization, keys_in, policy_of, post
from tests.tasks.conftest import FAST, TaskSite, by_task, verify_upyun_signature
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
        {"name": "naga", "type": "audio", "avopts": "/ab/64/ac/1", "save_as": "/a/{filename}.mp3"},
    ]  # fmt: skip
    with Receiver() as hook:
        answer = form_upload(site, creds, clip, "/v/clip.mp4", apps=apps, notify_url=hook.url("/hook"))
        assert answer.status_code == 200, answer.text
        ids = answer.json()["task_ids"]
        tasks = [site.wait_task(i, "done", "failed", timeout=120) for i in ids]
        assert [t.status for t in tasks] == ["done"] * 5, [t.reason for t in tasks]
        wait_for(lambda: len(by_task(hook.requests)) == 5, timeout=30)

    mp4, hls, shots, meta, sound = tasks
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
    assert sound.outputs == ["a/clip.mp3"]
    mp3 = probe_object(site, creds.bucket, "a/clip.mp3", tmp_path)
    assert mp3.video is None and mp3.audio is not None
    assert (mp3.format, mp3.audio.codec, mp3.audio.channels) == ("mp3", "mp3", 1)
    assert set(keys_in(site.admin, creds.bucket)) == {
        "v/clip.mp4",
        *mp4.outputs,
        *hls.outputs,
        *shots.outputs,
        *sound.outputs,
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
    assert callbacks[hls.id]["path"] == ["/hls/index.m3u8"]  # the playlist names its segments
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


def test_a_worker_killed_mid_transcode_leaves_exactly_one_hls_output(site: TaskSite, tmp_path: Path) -> None:
    creds = site.bucket()
    clip = make_video(tmp_path / "long.mp4", size="640x480", seconds=10).read_bytes()
    apps = [{"name": "naga", "type": "hls", "avopts": "/s/720p(16:9)/ht/2", "save_as": "/h/v.m3u8"}]
    with Receiver() as hook:
        answer = form_upload(site, creds, clip, "/in.mp4", apps=apps, notify_url=hook.url())
        assert answer.status_code == 200, answer.text
        (task_id,) = answer.json()["task_ids"]
        site.wait_task(task_id, "running", timeout=30)
        time.sleep(0.5)  # ffmpeg is at work (several seconds for this clip)
        site.kill_workers()  # SIGKILL: ffmpeg dies with it (PR_SET_PDEATHSIG)
        assert site.task(task_id).status == "running"
        site.restart_workers()
        done = site.wait_task(task_id, "done", "failed", timeout=180)
        assert done.status == "done" and done.attempts == 2, (done.status, done.reason)
        wait_for(lambda: len(by_task(hook.requests)) == 1)
        time.sleep(0.5)
        assert len(by_task(hook.requests)) == 1
    segments = done.outputs[1:]
    assert done.outputs[0] == "h/v.m3u8" and segments == [f"h/v-{n:05d}.ts" for n in range(len(segments))]
    assert sorted(keys_in(site.admin, creds.bucket)) == sorted(["in.mp4", *done.outputs])


def ffmpeg_children(pid: int) -> int:
    try:
        kids = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return 0
    count = 0
    for kid in kids:
        with contextlib.suppress(psutil.Error):
            count += kid.name().startswith("ffmpeg")
    return count


def limited_server(tmp_path: Path, **env: str) -> tuple[LiveServer, Gateway]:
    settings = make_home(tmp_path / "home")
    server = LiveServer(settings.home, env={**FAST, **env}).start()
    return server, build_gateway(settings, migrate=False)


def test_transcodes_run_at_most_task_max_transcodes_at_once(tmp_path: Path) -> None:
    server, admin = limited_server(tmp_path, MEDIAGATE_TASK_WORKERS="3", MEDIAGATE_TASK_MAX_TRANSCODES="1")
    try:
        creds = create_bucket(admin.catalog, admin.secrets, f"n{uuid.uuid4().hex[:12]}")
        clip = make_video(tmp_path / "c.mp4", size="640x480", seconds=4).read_bytes()
        apps = [
            {"name": "naga", "type": "video", "avopts": "/s/720p(16:9)", "save_as": f"/o/{n}.mp4"}
            for n in range(3)
        ]
        p = policy_of(creds, "/c.mp4", apps=apps)
        with httpx.Client(base_url=server.url, timeout=30) as client:
            answer = post(
                client,
                creds.bucket,
                [("policy", p), ("authorization", authorization(creds, p)), ("file", ("c.mp4", clip))],
            )
        assert answer.status_code == 200, answer.text
        ids = answer.json()["task_ids"]
        assert server.process is not None
        most, all_running = 0, False
        while not all(getattr(admin.catalog.get_task(i), "status", "") in ("done", "failed") for i in ids):
            most = max(most, ffmpeg_children(server.process.pid))
            statuses = [getattr(admin.catalog.get_task(i), "status", "") for i in ids]
            all_running = all_running or statuses.count("running") == 3
            time.sleep(0.02)
        assert [admin.catalog.get_task(i).status for i in ids] == ["done"] * 3  # type: ignore[union-attr]
        assert all_running  # three workers held the three tasks at once …
        assert most == 1  # … yet only one ffmpeg ran at a time
    finally:
        server.stop()
        admin.catalog.close()


def test_a_transcode_past_the_task_timeout_is_stopped_and_fails_504(tmp_path: Path) -> None:
    server, admin = limited_server(
        tmp_path, MEDIAGATE_TASK_TIMEOUT_SECONDS="1.5", MEDIAGATE_TASK_MAX_ATTEMPTS="2"
    )
    try:
        creds = create_bucket(admin.catalog, admin.secrets, f"n{uuid.uuid4().hex[:12]}")
        clip = make_video(tmp_path / "c.mp4", size="640x480", seconds=20).read_bytes()
        apps = [{"name": "naga", "type": "video", "avopts": "/s/1080p(16:9)", "save_as": "/o/big.mp4"}]
        p = policy_of(creds, "/c.mp4", apps=apps)
        with httpx.Client(base_url=server.url, timeout=30) as client:
            answer = post(
                client,
                creds.bucket,
                [("policy", p), ("authorization", authorization(creds, p)), ("file", ("c.mp4", clip))],
            )
        assert answer.status_code == 200, answer.text
        (task_id,) = answer.json()["task_ids"]
        deadline = time.monotonic() + 60
        while (task := admin.catalog.get_task(task_id)) is None or task.status not in ("done", "failed"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert task.status == "failed" and task.attempts == 2 and task.result == {"status": 504}
        assert "gave up after 2 attempts" in (task.reason or "") and "longer than" in (task.reason or "")
        assert server.process is not None
        wait_for(lambda: ffmpeg_children(server.process.pid) == 0, timeout=10)  # type: ignore[union-attr]
        assert keys_in(admin, creds.bucket) == ["c.mp4"]
    finally:
        server.stop()
        admin.catalog.close()


def test_hls_segments_are_named_after_the_playlist_and_the_playlist_points_at_them(tmp_path: Path) -> None:
    playlist = tmp_path / "output.m3u8"
    playlist.write_text(
        "#EXTM3U\n#EXTINF:2.0,\noutput-00000.ts\n#EXTINF:1.0,\noutput-00001.ts\n#EXT-X-ENDLIST\n"
    )
    segments = [tmp_path / "output-00000.ts", tmp_path / "output-00001.ts"]
    for seg in segments:
        seg.write_bytes(b"ts")
    outputs = hls_keys([playlist, *segments], "视频/第 1 集.m3u8")
    assert [key for key, _ in outputs] == [
        "视频/第 1 集.m3u8",
        "视频/第 1 集-00000.ts",
        "视频/第 1 集-00001.ts",
    ]
    lines = playlist.read_text().splitlines()
    assert [unquote(line) for line in lines if not line.startswith("#")] == [
        "第 1 集-00000.ts",
        "第 1 集-00001.ts",
    ]
    assert all(" " not in line for line in lines if not line.startswith("#"))  # URI-safe


def test_several_frame_grabs_are_numbered_from_one_and_one_grab_is_saved_as_asked(tmp_path: Path) -> None:
    files = [tmp_path / f"output{k}.jpg" for k in (1, 2)]
    assert [k for k, _ in grab_keys(files, "p/img.png", "v/a.mp4", "t" * 32, "png")] == [
        "p/img1.png",
        "p/img2.png",
    ]
    assert [k for k, _ in grab_keys(files[:1], "p/img.png", "v/a.mp4", "t" * 32, "png")] == ["p/img.png"]
    assert [k for k, _ in grab_keys(files[:1], None, "v/a.mp4", "t" * 32, "jpg")] == [f"v/a_{'t' * 32}.jpg"]


def b64path(path: str) -> str:
    import base64

    return base64.urlsafe_b64encode(path.encode()).decode().rstrip("=")


def test_concatenation_and_chains_join_bucket_files_around_the_upload(site: TaskSite, tmp_path: Path) -> None:
    """``/h/`` + upload + ``/i/``: the joined file lasts the sum; ``/codec/copy`` too; a chain
    joins, shrinks and grabs a frame; a missing object is a 404 callback, another size a 400."""
    creds = site.bucket()
    intro = make_video(tmp_path / "intro.mp4", seconds=1).read_bytes()
    outro = make_video(tmp_path / "outro.mp4", seconds=2).read_bytes()
    large = make_video(tmp_path / "large.mp4", size="640x480", seconds=1).read_bytes()
    for key, content in (("/parts/intro.mp4", intro), ("/parts/outro.mp4", outro)):
        assert form_upload(site, creds, content, key).status_code == 200
    assert form_upload(site, creds, large, "/parts/large.mp4").status_code == 200
    clip = make_video(tmp_path / "in.mp4", seconds=2).read_bytes()
    h, i = b64path("/parts/intro.mp4"), b64path("/parts/outro.mp4")
    gone_, large_ = b64path("/parts/gone.mp4"), b64path("/parts/large.mp4")

    def naga(type_: str, avopts: str, save_as: str, **more: object) -> dict[str, object]:
        return {"name": "naga", "type": type_, "avopts": avopts, "save_as": save_as, **more}

    apps = [
        naga("video", f"/h/{h}/i/{i}", "/j/full.mp4", return_info=True),
        naga("video", f"/i/{i}/codec/copy", "/j/copy.mp4"),
        naga("vconcat", f"/i/{i}/i/{i}", "/j/old.mp4"),
        naga("chain", f"/video/i/{i}/video/s/160x120/r/15", "/j/small.mp4"),
        naga("chain", f"/video/h/{h}/thumbnail/o/1/ss/00:00:00.5", "/j/shot.png"),
        naga("video", f"/i/{gone_}", "/j/x.mp4"),
        naga("video", f"/i/{large_}", "/j/y.mp4"),
        naga("video", f"/i/{i}/s/160x120", "/j/z.mp4"),
        naga("chain", f"/video/i/{i}/video/vcodec/copy/s/160x120", "/j/w.mp4"),  # step 2 cannot run
    ]
    with Receiver() as hook:
        answer = form_upload(site, creds, clip, "/v/main.mp4", apps=apps, notify_url=hook.url("/hook"))
        assert answer.status_code == 200, answer.text
        ids = answer.json()["task_ids"]
        tasks = [site.wait_task(t, "done", "failed", timeout=180) for t in ids]
        wait_for(lambda: len(by_task(hook.requests)) == len(apps), timeout=30)
    full, copy, old, _small, shot, gone, bigger, mixed, halfway = tasks
    assert [t.status for t in tasks[:5]] == ["done"] * 5, [t.reason for t in tasks]
    for task, key, seconds in ((full, "j/full.mp4", 5.0), (copy, "j/copy.mp4", 4.0), (old, "j/old.mp4", 6.0)):
        assert task.outputs == [key]
        info = probe_object(site, creds.bucket, key, tmp_path)
        assert info.duration is not None and abs(info.duration - seconds) < 0.3, (key, info.duration)
        assert info.video is not None and (info.video.width, info.video.height) == (320, 240)
        assert info.audio is not None
    chained = probe_object(site, creds.bucket, "j/small.mp4", tmp_path)
    assert chained.video is not None and (chained.video.width, chained.video.height) == (160, 120)
    assert chained.duration is not None and abs(chained.duration - 4.0) < 0.3
    assert round(chained.video.fps or 0) == 15
    assert shot.outputs == ["j/shot.png"]
    picture = probe_object(site, creds.bucket, "j/shot.png", tmp_path)
    assert picture.video is not None and picture.video.codec == "png" and picture.video.width == 320
    # only the chain's last output is kept; no step file, no list file anywhere
    assert {k for k in keys_in(site.admin, creds.bucket) if k.startswith("j/")} == {
        "j/full.mp4", "j/copy.mp4", "j/old.mp4", "j/small.mp4", "j/shot.png"
    }  # fmt: skip

    callbacks = by_task(hook.requests)
    for path, headers, body in hook.requests:
        if headers["content-type"] == "application/json":
            verify_upyun_signature(creds, path, headers, body)
    assert callbacks[full.id]["path"] == ["/j/full.mp4"] and callbacks[full.id]["status_code"] == 200
    assert abs(callbacks[full.id]["info"]["format"]["duration"] - 5.0) < 0.3
    assert callbacks[gone.id]["status_code"] == 404 and "/parts/gone.mp4" in callbacks[gone.id]["description"]
    assert callbacks[bigger.id]["status_code"] == 400
    assert "same resolution" in callbacks[bigger.id]["description"]
    assert "/parts/large.mp4 is 640x480" in (bigger.reason or "")
    assert callbacks[mixed.id]["status_code"] == 400 and "use type 'chain'" in (mixed.reason or "")
    assert callbacks[halfway.id]["status_code"] == 400 and "/vcodec/copy" in (halfway.reason or "")
    assert all(callbacks[t.id]["path"] == [] for t in (gone, bigger, mixed, halfway))

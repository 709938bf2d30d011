"""Wantu media tasks through a live server: ``/3.0/mediaEncode`` with the seed's presets,
``/3.0/snapshot``, their results, notifyUrl, and the upload policy's ``mediaEncode``.

Outputs are downloaded and probed with ffmpeg's own stream dump (media.video.probe, the
ffprobe-equivalent the wheel ships): container, codecs, dimensions, sample rate, bitrate."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from mediagate.core.buckets import create_bucket
from mediagate.core.gateway import Gateway
from mediagate.media.video import MediaInfo, probe
from tests.media.videos import make_video
from tests.protocols.wantu.client import WantuClient
from tests.protocols.wantu.conftest import Receiver


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """2 s of 320x240 H.264/AAC."""
    return make_video(tmp_path_factory.mktemp("v") / "clip.mp4").read_bytes()


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """12 s, small: long enough for two 10 s HLS segments."""
    path = tmp_path_factory.mktemp("v") / "long.mp4"
    return make_video(path, size="192x144", seconds=12, noise=False).read_bytes()


def put(wantu: WantuClient, dir: str, name: str, data: bytes, **policy: Any) -> dict[str, Any]:
    r = wantu.upload(data, policy=wantu.policy(dir=dir, name=name, **policy))
    assert r.status_code == 200, r.text
    return dict(r.json())


def submit(wantu: WantuClient, path: str, **fields: str) -> Any:
    body = "&".join(f"{k}={quote(v, safe='')}" for k, v in fields.items())
    return wantu.manage("POST", path, body=body)


def encode(
    wantu: WantuClient, src: tuple[str, str], out: tuple[str, str], template: str, **extra: str
) -> str:
    fields = {"input": wantu.file_rid(*src), "output": wantu.file_rid(*out), "encodeTemplate": template}
    r = submit(wantu, "/3.0/mediaEncode", **({"usePreset": "1", "force": "0"} | fields | extra))
    assert r.status_code == 200, r.text
    task_id = r.json()["taskId"]
    assert len(task_id) == 32
    return str(task_id)


def wait(wantu: WantuClient, which: str, task_id: str, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        r = wantu.manage("GET", f"/3.0/{which}/{task_id}")
        assert r.status_code == 200, r.text
        body = dict(r.json())
        if body["status"] != "processing":
            return body
        assert body["progress"] == 0 and body["code"] == 202
        assert time.monotonic() < deadline, body
        time.sleep(0.3)


def download(wantu: WantuClient, url: str, dest: Path) -> Path:
    r = wantu.http.get(url)
    assert r.status_code == 200, url
    dest.write_bytes(r.content)
    return dest


def check_av(info: MediaInfo, fmt: str, size: tuple[int, int] | None, samplerate: int) -> None:
    assert fmt in info.format.split(","), info.format
    assert info.video is not None and info.video.codec == "h264"
    assert info.audio is not None and info.audio.codec == "aac" and info.audio.samplerate == samplerate
    if size is not None:
        assert (info.video.width, info.video.height) == size


@pytest.mark.parametrize(
    ("preset", "size", "samplerate", "kbps"),
    [
        ("video-generic-AVC-320x240", (320, 240), 22050, 300 + 128),
        ("video-generic-AVC-360p-4_3", (480, 360), 44100, 600 + 128),
    ],
)
def test_mp4_presets(
    wantu: WantuClient,
    clip: bytes,
    tmp_path: Path,
    preset: str,
    size: tuple[int, int],
    samplerate: int,
    kbps: int,
) -> None:
    put(wantu, "/v", "in.mp4", clip)
    task_id = encode(wantu, ("/v", "in.mp4"), ("/out", f"{preset}.mp4"), preset)
    result = wait(wantu, "mediaEncodeResult", task_id)
    assert result["status"] == "success" and result["code"] == 200 and result["progress"] == 100, result
    assert result["taskId"] == task_id and result["type"] == "mediaEncode"
    assert result["input"] == {"namespace": wantu.namespace, "dir": "/v", "name": "in.mp4"}
    assert result["output"] == {"namespace": wantu.namespace, "dir": "/out", "name": f"{preset}.mp4"}
    assert [o["name"] for o in result["outputs"]] == [f"{preset}.mp4"]
    assert (result["width"], result["height"]) == size and result["format"] == "mp4"
    info = probe(download(wantu, result["outputs"][0]["url"], tmp_path / "out.mp4"))
    check_av(info, "mp4", size, samplerate)
    assert info.duration is not None and abs(info.duration - 2.0) < 0.3
    assert info.bitrate is not None and info.bitrate < 2 * kbps * 1000  # near the preset's rate
    listed = wantu.manage("GET", "/3.0/files", query="dir=%2Fout&pageSize=100").json()["result"]
    assert f"{preset}.mp4" in [f["name"] for f in listed]


def test_hls_preset_writes_a_playlist_and_segments_in_order(
    wantu: WantuClient, long_clip: bytes, tmp_path: Path
) -> None:
    put(wantu, "/v", "long.mp4", long_clip)
    task_id = encode(wantu, ("/v", "long.mp4"), ("/hls", "long.m3u8"), "video-HLS-240K")
    result = wait(wantu, "mediaEncodeResult", task_id)
    assert result["status"] == "success", result
    names = [o["name"] for o in result["outputs"]]
    assert names[0] == "long.m3u8" and len(names) >= 3 and all(n.endswith(".ts") for n in names[1:])
    assert all(o["dir"] == "/hls" for o in result["outputs"])
    playlist = wantu.http.get(result["outputs"][0]["url"]).text
    assert playlist.startswith("#EXTM3U") and "#EXT-X-ENDLIST" in playlist
    listed = [line for line in playlist.splitlines() if line and not line.startswith("#")]
    assert listed == names[1:]  # the segments, in play order, all stored beside the playlist
    total = 0.0
    for n, o in enumerate(result["outputs"][1:]):
        info = probe(download(wantu, o["url"], tmp_path / f"s{n}.ts"))
        check_av(info, "mpegts", (192, 144), 44100)
        total += info.duration or 0
    assert abs(total - 12) < 1.0


def test_template_parameters_and_flv(wantu: WantuClient, clip: bytes, tmp_path: Path) -> None:
    put(wantu, "/v", "t.mp4", clip)
    template = "/format/flv/vBitrate/200/vWidth/160/vHeight/120/vFps/15/aSamplerate/32000/vPreset/veryfast"
    task_id = encode(
        wantu, ("/v", "t.mp4"), ("/v", "t.flv"), template, usePreset="0", seek="0.5", duration="1"
    )
    result = wait(wantu, "mediaEncodeResult", task_id)
    assert result["status"] == "success", result
    info = probe(download(wantu, result["outputs"][0]["url"], tmp_path / "t.flv"))
    check_av(info, "flv", (160, 120), 32000)
    assert info.video is not None and info.video.fps == 15
    assert info.duration is not None and abs(info.duration - 1.0) < 0.3


def test_snapshot(wantu: WantuClient, clip: bytes, tmp_path: Path) -> None:
    put(wantu, "/v", "s.mp4", clip)
    body = {
        "input": wantu.file_rid("/v", "s.mp4"),
        "output": wantu.file_rid("/shots", "s.jpg"),
        "time": "1000",
    }
    r = submit(wantu, "/3.0/snapshot", **body)
    assert r.status_code == 200, r.text
    task_id = r.json()["taskId"]
    result = wait(wantu, "snapshotResult", task_id)
    assert result["status"] == "success" and result["type"] == "snapshot", result
    assert [o["name"] for o in result["outputs"]] == ["s.jpg"]
    meta = wantu.manage("GET", f"/3.0/files/{wantu.file_rid('/shots', 's.jpg')}").json()
    assert meta["mimeType"] == "image/jpeg"
    from PIL import Image

    with Image.open(download(wantu, result["outputs"][0]["url"], tmp_path / "s.jpg")) as im:
        assert im.format == "JPEG" and im.size == (320, 240)
    # a snapshot id is no mediaEncode task
    assert wantu.manage("GET", f"/3.0/mediaEncodeResult/{task_id}").status_code == 404


def test_notify_url_gets_the_result(wantu: WantuClient, clip: bytes, receiver: Receiver) -> None:
    put(wantu, "/v", "n.mp4", clip)
    task_id = encode(
        wantu, ("/v", "n.mp4"), ("/v", "n-small.mp4"), "video-generic-AVC-320x240", notifyUrl=receiver.url
    )
    wait(wantu, "mediaEncodeResult", task_id)
    deadline = time.monotonic() + 30
    while not receiver.calls and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(receiver.calls) == 1
    call = receiver.calls[0]
    assert call.headers["content-type"] == "application/json"
    body = json.loads(call.body)
    assert body["taskId"] == task_id and body["status"] == "success" and body["code"] == 200
    assert [o["name"] for o in body["outputs"]] == ["n-small.mp4"]


def test_not_a_video_fails_with_a_reason(wantu: WantuClient) -> None:
    put(wantu, "/v", "note.txt", b"plain text, no video here\n" * 20)
    task_id = encode(wantu, ("/v", "note.txt"), ("/v", "pic.mp4"), "video-web")
    result = wait(wantu, "mediaEncodeResult", task_id)
    assert result["status"] == "failed" and result["code"] == 415, result
    assert result["message"] and result["outputs"] == []
    assert wantu.manage("GET", f"/3.0/files/{wantu.file_rid('/v', 'pic.mp4')}/exist").status_code == 404


def test_force_0_keeps_an_existing_output(wantu: WantuClient, clip: bytes) -> None:
    put(wantu, "/v", "f.mp4", clip)
    put(wantu, "/v", "f-out.mp4", b"already here")
    task_id = encode(wantu, ("/v", "f.mp4"), ("/v", "f-out.mp4"), "video-generic-AVC-320x240")
    result = wait(wantu, "mediaEncodeResult", task_id)
    assert result["status"] == "success" and result["skipped"] is True and result["outputs"] == []
    meta = wantu.manage("GET", f"/3.0/files/{wantu.file_rid('/v', 'f-out.mp4')}").json()
    assert meta["size"] == len(b"already here")


def test_bad_requests_record_nothing(wantu: WantuClient, clip: bytes) -> None:
    put(wantu, "/v", "b.mp4", clip)
    src, out = wantu.file_rid("/v", "b.mp4"), wantu.file_rid("/v", "b-out.mp4")
    cases = [
        (
            {"input": src, "output": out, "encodeTemplate": "no-such-preset", "usePreset": "1"},
            400,
            "InvalidArgument",
        ),
        (
            {"input": src, "output": out, "encodeTemplate": "/vBitrate/9", "usePreset": "0"},
            400,
            "InvalidArgument",
        ),
        (
            {"input": src, "output": out, "encodeTemplate": "video-web", "usePreset": "2"},
            400,
            "InvalidArgument",
        ),
        ({"input": src, "output": out}, 400, "InvalidArgument"),
        (
            {"input": "!!!", "output": out, "encodeTemplate": "video-web", "usePreset": "1"},
            400,
            "InvalidArgument",
        ),
        (
            {
                "input": wantu.file_rid("/v", "missing.mp4"),
                "output": out,
                "encodeTemplate": "video-web",
                "usePreset": "1",
            },
            404,
            "ResourceNotFound",
        ),
        (
            {
                "input": src,
                "output": wantu.file_rid("/v", "x.mp4", namespace="someone-else"),
                "encodeTemplate": "video-web",
                "usePreset": "1",
            },
            401,
            "AuthenticationFailed",
        ),
        (
            {"input": src, "output": out, "encodeTemplate": "video-web", "usePreset": "1", "watermark": src},
            400,
            "InvalidArgument",  # the watermark must be a png/webp (tests: test_media_watermark.py)
        ),
    ]
    for fields, status, code in cases:
        r = submit(wantu, "/3.0/mediaEncode", **fields)
        assert (r.status_code, r.json()["code"]) == (status, code), (fields, r.text)
    for time_ms in ("", "-1", "1.5"):
        r = submit(wantu, "/3.0/snapshot", input=src, output=out, time=time_ms)
        assert r.status_code == 400 and r.json()["code"] == "InvalidArgument"
    assert wantu.manage("GET", f"/3.0/mediaEncodeResult/{uuid.uuid4().hex}").status_code == 404


def test_another_namespace_cannot_read_a_result(wantu: WantuClient, admin: Gateway, clip: bytes) -> None:
    put(wantu, "/v", "p.mp4", clip)
    task_id = encode(wantu, ("/v", "p.mp4"), ("/v", "p-out.mp4"), "video-generic-AVC-320x240")
    other = create_bucket(admin.catalog, admin.secrets, f"b{uuid.uuid4().hex[:12]}")
    them = WantuClient(str(wantu.http.base_url), other.access_key_id, other.secret_access_key, other.bucket)
    try:
        r = them.manage("GET", f"/3.0/mediaEncodeResult/{task_id}")
        assert r.status_code == 404 and r.json()["code"] == "ResourceNotFound"
        assert task_id not in r.text or "no mediaEncode task" in r.json()["message"]
    finally:
        them.close()
    assert wait(wantu, "mediaEncodeResult", task_id)["status"] == "success"


def test_upload_policy_media_encode(wantu: WantuClient, clip: bytes, tmp_path: Path) -> None:
    spec = {
        "encodeTemplate": "video-generic-AVC-320x240",
        "usePreset": 1,
        "output": wantu.file_rid("/enc", "up.mp4"),
    }
    answer = put(wantu, "/v", "up.mp4", clip, mediaEncode=json.dumps(spec))
    task_id = answer["taskId"]
    result = wait(wantu, "mediaEncodeResult", task_id)
    assert result["status"] == "success" and result["input"]["name"] == "up.mp4", result
    info = probe(download(wantu, result["outputs"][0]["url"], tmp_path / "up.mp4"))
    check_av(info, "mp4", (320, 240), 22050)
    # without output: beside the source, named by the task
    answer = put(
        wantu,
        "/v",
        "up2.mp4",
        clip,
        mediaEncode={"encodeTemplate": "video-generic-AVC-320x240", "usePreset": 1},
    )
    result = wait(wantu, "mediaEncodeResult", answer["taskId"])
    assert [o["name"] for o in result["outputs"]] == [f"up2_{answer['taskId']}.mp4"]


def test_bad_policy_media_encode_refuses_the_upload(wantu: WantuClient, clip: bytes) -> None:
    for bad in ("not json", {"encodeTemplate": "nope", "usePreset": 1}, {"usePreset": 1}):
        r = wantu.upload(clip, policy=wantu.policy(dir="/v", name="never.mp4", mediaEncode=bad))
        assert r.status_code == 400 and r.json()["code"] == "InvalidArgument", r.text
    assert wantu.manage("GET", f"/3.0/files/{wantu.file_rid('/v', 'never.mp4')}/exist").status_code == 404


def test_snapshot_past_the_end_fails_with_a_reason(wantu: WantuClient, clip: bytes) -> None:
    put(wantu, "/v", "end.mp4", clip)
    body = {
        "input": wantu.file_rid("/v", "end.mp4"),
        "output": wantu.file_rid("/v", "end.jpg"),
        "time": "60000",
    }
    r = submit(wantu, "/3.0/snapshot", **body)
    assert r.status_code == 200, r.text
    result = wait(wantu, "snapshotResult", r.json()["taskId"])
    assert result["status"] == "failed" and result["code"] == 400 and "beyond" in result["message"], result
    assert result["outputs"] == []


def test_block_upload_with_policy_media_encode(wantu: WantuClient, clip: bytes) -> None:
    from tests.protocols.wantu.client import md5

    spec = {
        "encodeTemplate": "video-generic-AVC-320x240",
        "usePreset": 1,
        "output": wantu.file_rid("/enc", "blk.mp4"),
    }
    auth = wantu.authorization(wantu.policy(dir="/v", name="blk.mp4", mediaEncode=spec))
    half = len(clip) // 2
    init = wantu.block_init(clip[:half], auth)
    assert init.status_code == 200, init.text
    upload_id, id_ = init.json()["uploadId"], init.json()["id"]
    assert "taskId" not in init.json()  # the task comes with the file, at blockComplete
    assert wantu.block_upload(clip[half:], auth, upload_id, id_, 2).status_code == 200
    parts = [(1, md5(clip[:half]).upper()), (2, md5(clip[half:]).upper())]
    done = wantu.block_complete(auth, upload_id, id_, parts, md5(clip))
    assert done.status_code == 200, done.text
    result = wait(wantu, "mediaEncodeResult", done.json()["taskId"])
    assert result["status"] == "success" and [o["name"] for o in result["outputs"]] == ["blk.mp4"], result
    assert result["input"] == {"namespace": wantu.namespace, "dir": "/v", "name": "blk.mp4"}

"""Wantu ``mediaEncode`` with ``watermark`` + ``watermarkTemplate`` through a live server: the
operator defines named templates with ``mediagate bucket watermark``; the image lands where the
template says, checked by sampling a decoded frame of the output against the bare source."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from mediagate.config import Settings
from mediagate.media.avspec import ThumbnailSpec
from mediagate.media.video import probe, snapshot
from tests.media.videos import make_video
from tests.protocols.wantu.client import WantuClient
from tests.protocols.wantu.test_media import download, encode, put, submit, wait
from tests.support.cli import run_mediagate

GREEN = (0, 255, 0)


def frame(video_file: Path, tmp_path: Path) -> Image.Image:
    [png] = snapshot(ThumbnailSpec(start=1.0, format="png"), video_file, tmp_path / f"f-{video_file.stem}")
    return Image.open(png).convert("RGB")


def near(pixel: Any, colour: tuple[int, ...], tol: int = 40) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(pixel, colour, strict=False))


def cli(home: Path, *args: str) -> Any:
    done = run_mediagate(home, "bucket", "watermark", *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_templates_place_the_watermark_where_they_say(
    wantu: WantuClient, server_home: Settings, tmp_path: Path
) -> None:
    home, ns = server_home.home, wantu.namespace
    cli(home, "add", ns, "corner", "--gravity", "southeast", "--dx", "10", "--dy", "10")
    half = ("--gravity", "northwest", "--dx", "0", "--dy", "0", "--scale", "0.5", "--opacity", "0.5")
    listed = cli(home, "add", ns, "half", *half)
    assert listed["watermarks"]["corner"] == {"gravity": "southeast", "dx": 10, "dy": 10, "scale": None,
                                              "opacity": None}  # fmt: skip
    assert listed["watermarks"]["half"]["scale"] == 0.5

    clip = make_video(tmp_path / "flat.mp4", seconds=2, noise=False)
    mark = tmp_path / "mark.png"
    Image.new("RGBA", (32, 32), (*GREEN, 255)).save(mark)
    put(wantu, "/v", "flat.mp4", clip.read_bytes())
    put(wantu, "/wm", "logo.png", mark.read_bytes())
    logo = wantu.file_rid("/wm", "logo.png")
    bare = frame(clip, tmp_path)

    jobs = {
        "corner": encode(wantu, ("/v", "flat.mp4"), ("/o", "corner.mp4"), "video-generic-AVC-320x240",
                         watermark=logo, watermarkTemplate="corner"),
        "default": encode(wantu, ("/v", "flat.mp4"), ("/o", "default.mp4"), "video-generic-AVC-320x240",
                          watermark=logo),
        "half": encode(wantu, ("/v", "flat.mp4"), ("/o", "half.mp4"), "video-generic-AVC-320x240",
                       watermark=logo, watermarkTemplate="half"),
    }  # fmt: skip
    # the upload policy's mediaEncode takes the same fields
    policy = {"encodeTemplate": "video-generic-AVC-320x240", "usePreset": 1, "watermark": logo,
              "watermarkTemplate": "corner", "output": wantu.file_rid("/o", "policy.mp4")}  # fmt: skip
    jobs["policy"] = put(wantu, "/v", "again.mp4", clip.read_bytes(), mediaEncode=policy)["taskId"]
    frames = {}
    for name, task_id in jobs.items():
        result = wait(wantu, "mediaEncodeResult", task_id)
        assert result["status"] == "success", result
        out = download(wantu, result["outputs"][0]["url"], tmp_path / f"{name}.mp4")
        info = probe(out)
        assert info.video is not None and (info.video.width, info.video.height) == (320, 240)
        frames[name] = frame(out, tmp_path)

    # southeast, 10 px in: the 32x32 mark covers x 278-309, y 198-229
    assert near(frames["corner"].getpixel((294, 214)), GREEN)
    assert not near(bare.getpixel((294, 214)), GREEN)
    assert near(frames["corner"].getpixel((294, 26)), bare.getpixel((294, 26)))
    assert near(frames["policy"].getpixel((294, 214)), GREEN)
    # no template: top-right, 10 px in
    assert near(frames["default"].getpixel((294, 26)), GREEN)
    assert near(frames["default"].getpixel((294, 214)), bare.getpixel((294, 214)))
    # half the width (160x160 from the top-left), at half opacity: a blend, far beyond 32 px
    blended = frames["half"].getpixel((120, 120))
    expected = tuple((a + b) // 2 for a, b in zip(bare.getpixel((120, 120)), GREEN, strict=True))
    assert near(blended, expected, tol=45) and not near(blended, GREEN, tol=30)
    assert near(frames["half"].getpixel((200, 200)), bare.getpixel((200, 200)))


def test_bad_watermark_requests_are_refused_in_the_wantu_shape(
    wantu: WantuClient, server_home: Settings, tmp_path: Path
) -> None:
    clip = make_video(tmp_path / "c.mp4", seconds=1, noise=False).read_bytes()
    put(wantu, "/v", "c.mp4", clip)
    mark = tmp_path / "m.png"
    Image.new("RGBA", (8, 8), (*GREEN, 255)).save(mark)
    put(wantu, "/wm", "m.png", mark.read_bytes())
    base = {"input": wantu.file_rid("/v", "c.mp4"), "output": wantu.file_rid("/o", "x.mp4"),
            "encodeTemplate": "video-web", "usePreset": "1"}  # fmt: skip
    logo = wantu.file_rid("/wm", "m.png")
    cases = [
        ({"watermark": logo, "watermarkTemplate": "nope"}, 400, "unknown watermarkTemplate 'nope'"),
        ({"watermarkTemplate": "corner"}, 400, "watermarkTemplate needs watermark"),
        ({"watermark": wantu.file_rid("/v", "c.mp4")}, 400, ".png or .webp"),
        ({"watermark": wantu.file_rid("/wm", "gone.png")}, 404, ""),
    ]
    for extra, status, message in cases:
        r = submit(wantu, "/3.0/mediaEncode", **(base | extra))
        assert r.status_code == status, (extra, r.text)
        body = r.json()
        assert body["code"] == ("InvalidArgument" if status == 400 else "ResourceNotFound")
        assert message in body["message"]
    # the policy's mediaEncode takes the same fields, checked before the upload is read
    bad = {"encodeTemplate": "video-web", "usePreset": 1, "watermark": logo, "watermarkTemplate": "nope"}
    r = wantu.upload(clip, policy=wantu.policy(dir="/v", name="never.mp4", mediaEncode=bad))
    assert r.status_code == 400 and "unknown watermarkTemplate" in r.json()["message"], r.text


@pytest.mark.parametrize("args", [("--gravity", "top"), ("--scale", "2"), ("--opacity", "1.5")])
def test_the_cli_refuses_bad_templates_and_removes_them(
    wantu: WantuClient, server_home: Settings, args: tuple[str, ...]
) -> None:
    home, ns = server_home.home, wantu.namespace
    done = run_mediagate(home, "bucket", "watermark", "add", ns, "t", *args)
    assert done.returncode == 1 and "error:" in done.stderr
    cli(home, "add", ns, "t")
    assert cli(home, "list", ns)["watermarks"]["t"]["gravity"] == "northeast"
    assert cli(home, "rm", ns, "t")["watermarks"] == {}
    gone = run_mediagate(home, "bucket", "watermark", "rm", ns, "t")
    assert gone.returncode == 1 and "has no watermark template 't'" in gone.stderr
    assert "bucket watermark list" in gone.stderr

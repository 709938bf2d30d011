"""Real ffmpeg on real clips: transcodes checked by probing what came out.

Clips are generated per session by ffmpeg itself (tests/media/videos.py). Bitrates are checked
loosely (0.5x-1.5x the target): a 2 s clip gives the rate control little room, but a wrong unit
(bits for kbits) or an ignored option is still caught.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from PIL import Image

from mediagate.media.averrors import (
    BadMediaOptions,
    MediaTaskError,
    NotMedia,
    TranscodeFailed,
    TranscodeTimeout,
)
from mediagate.media.avopts import parse_avopts
from mediagate.media.avspec import ThumbnailSpec, TranscodeSpec
from mediagate.media.video import MediaInfo, VideoLimits, ffmpeg_exe, grab_every, probe, snapshot, transcode
from mediagate.media.wantu_presets import encode_spec, snapshot_spec
from tests.media.videos import make_video


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """640x480, 2 s, 30 fps, H.264 + AAC mono 44.1 kHz, grainy (high source bitrate)."""
    return make_video(tmp_path_factory.mktemp("clips") / "clip.mp4", size="640x480")


@pytest.fixture(scope="session")
def portrait(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("clips") / "portrait.mp4", size="240x320", noise=False)


def naga(type_: str, avopts: str, save_as: str | None = None) -> TranscodeSpec:
    spec = parse_avopts(type_, avopts, save_as=save_as)
    assert isinstance(spec, TranscodeSpec)
    return spec


def video_kbps(info: MediaInfo) -> float:
    assert info.video is not None and info.video.bitrate is not None
    return info.video.bitrate / 1000


def assert_near(value: float, target: float) -> None:
    assert 0.5 * target <= value <= 1.5 * target, f"{value} not near {target}"


# ------------------------------------------------------------------ probe


def test_probe_reads_container_streams_and_metadata(clip: Path) -> None:
    info = probe(clip)
    assert "mp4" in info.format.split(",") and info.fullname == "QuickTime / MOV"
    assert info.duration == pytest.approx(2.0, abs=0.1)
    assert info.filesize == clip.stat().st_size
    assert info.video is not None and info.audio is not None
    assert (info.video.codec, info.video.width, info.video.height, info.video.fps) == ("h264", 640, 480, 30.0)
    assert (info.audio.codec, info.audio.samplerate, info.audio.channels) == ("aac", 44100, 1)
    assert info.bitrate is not None and info.bitrate > 5_000_000


def test_probe_gives_upyun_return_info(clip: Path) -> None:
    info = probe(clip).to_upyun()
    assert info["format"]["fullname"] == "QuickTime / MOV"
    assert info["format"]["filesize"] == clip.stat().st_size
    v, a = info["streams"]
    assert v["type"] == "video" and v["codec"] == "h264"
    assert v["codec_desc"].startswith("H.264 / AVC")
    assert (v["video_width"], v["video_height"], v["video_fps"]) == (640, 480, 30.0)
    assert a["type"] == "audio" and a["codec_desc"] == "AAC (Advanced Audio Coding)"
    assert (a["audio_channels"], a["audio_samplerate"]) == (1, 44100.0)
    assert v["metadata"]["handler_name"] == "VideoHandler"


def test_probe_sees_the_rotation_tag(tmp_path: Path) -> None:
    src = make_video(tmp_path / "r.mp4", size="320x240", seconds=0.5, noise=False, audio=False)
    turned = tmp_path / "turned.mp4"
    args = ["-loglevel", "error", "-display_rotation", "90", "-i", str(src), "-c", "copy", str(turned)]
    subprocess.run([ffmpeg_exe(), *args], check=True)
    v = probe(turned).video
    assert v is not None and v.rotation in (90, 270) and v.display_size == (240, 320)


# ------------------------------------------------------------------ naga / avopts


def test_240p_preset_with_as_and_r(clip: Path, tmp_path: Path) -> None:
    [out] = transcode(naga("video", "/s/240p(4:3)/as/1/r/30", "/a/b.mp4"), clip, tmp_path, name="b")
    assert out == tmp_path / "b.mp4"
    info = probe(out)
    assert "mp4" in info.format.split(",")
    assert info.video is not None and info.audio is not None
    assert (info.video.codec, info.video.width, info.video.height, info.video.fps) == ("h264", 320, 240, 30.0)
    assert info.audio.codec == "aac"
    assert_near(video_kbps(info), 300)  # the preset's cap: the grainy source is far above it


def test_flv_with_size_bitrates_and_sample_rate(clip: Path, tmp_path: Path) -> None:
    [out] = transcode(naga("video", "/s/360p(16:9)/vb/400/ab/64/ar/22050", "/v/x.flv"), clip, tmp_path)
    info = probe(out)
    assert info.format == "flv" and out.suffix == ".flv"
    assert info.video is not None and info.audio is not None
    assert (info.video.codec, info.video.width, info.video.height) == ("h264", 640, 360)
    assert (info.audio.codec, info.audio.samplerate) == ("aac", 22050)
    assert info.bitrate is not None
    assert_near(info.bitrate / 1000, 400 + 64)


def test_webm_by_format_key(clip: Path, tmp_path: Path) -> None:
    [out] = transcode(naga("video", "/f/webm/s/320x240/vcodec/libvpx-vp9"), clip, tmp_path)
    info = probe(out)
    assert info.format.startswith("matroska,webm") and out.suffix == ".webm"
    assert info.video is not None and info.audio is not None
    assert (info.video.codec, info.audio.codec) == ("vp9", "opus")


def test_audio_task_drops_the_picture(clip: Path, tmp_path: Path) -> None:
    [out] = transcode(naga("audio", "/ab/64/ac/1", "/m/a.mp3"), clip, tmp_path)
    info = probe(out)
    assert info.format == "mp3" and info.video is None
    assert info.audio is not None and info.audio.codec == "mp3" and info.audio.channels == 1
    assert info.audio.bitrate == 64000


def test_an_drops_the_sound(clip: Path, tmp_path: Path) -> None:
    [out] = transcode(naga("video", "/an/1/s/160x120"), clip, tmp_path)
    info = probe(out)
    assert info.audio is None and info.video is not None and info.video.width == 160


def test_ss_es_cut_a_second(clip: Path, tmp_path: Path) -> None:
    [out] = transcode(naga("video", "/ss/00:00:00.5/es/00:00:01.5/s/160x120"), clip, tmp_path)
    assert probe(out).duration == pytest.approx(1.0, abs=0.15)


@pytest.mark.parametrize(
    ("type_", "avopts", "save_as", "fmt", "streams", "duration"),
    [
        ("video", "/s/160x120/r/10", "/a.gif", "gif", [("gif", 160, 120)], 2.0),
        ("video", "/s/160x120", "/a.webp", "webp_anim", [("webp_anim", 160, 120)], None),
        ("video", "/su/2/s/160x120", "/fast.mp4", "mp4", [("h264", 160, 120), ("aac", None, None)], 1.0),
        ("video", "/sp/90/s/120x160", "/turned.mp4", "mp4", [("h264", 120, 160), ("aac", None, None)], 2.0),
        ("nbhd", "/ct/h265/s/160x120", "/n.mp4", "mp4", [("hevc", 160, 120), ("aac", None, None)], 2.0),
        ("video", "/vcodec/copy/acodec/copy", "/c.mkv", "matroska",
         [("h264", 640, 480), ("aac", None, None)], 2),
        ("video", "/vn/1", "/sound.mp4", "mp4", [("aac", None, None)], 2.0),
        ("audio", "/ab/96", "/a.ogg", "ogg", [("vorbis", None, None)], 2.0),
        ("audio", "/ab/64", "/a.m4a", "mp4", [("aac", None, None)], 2.0),
    ],
)  # fmt: skip
def test_more_output_kinds(
    type_: str,
    avopts: str,
    save_as: str,
    fmt: str,
    streams: list[tuple[str, int | None, int | None]],
    duration: float | None,
    clip: Path,
    tmp_path: Path,
) -> None:
    [out] = transcode(naga(type_, avopts, save_as), clip, tmp_path)
    assert out.suffix == Path(save_as).suffix
    info = probe(out)
    assert fmt in info.format.split(",") or info.format == fmt
    assert [(s.codec, s.width, s.height) for s in info.streams] == streams
    if duration is not None:
        assert info.duration == pytest.approx(duration, abs=0.25)


def test_tags_with_newlines_and_fake_stream_lines(tmp_path: Path) -> None:
    """A tag value cannot smuggle a stream into the probe: ffmpeg indents its continuation lines."""
    comment = "line one\nStream #0:7: Video: h264, 9999x9999, 1 kb/s, 1 fps\nkey : value"
    src = make_video(
        tmp_path / "tagged.mp4", seconds=0.5, noise=False, extra=("-metadata", f"comment={comment}")
    )
    info = probe(src)
    assert info.metadata["comment"] == comment
    assert [s.index for s in info.streams] == [0, 1]
    assert info.video is not None and info.video.width == 320


def test_sm_0_drops_the_metadata(tmp_path: Path) -> None:
    src = make_video(tmp_path / "tagged.mp4", seconds=0.5, noise=False, extra=("-metadata", "title=holiday"))
    assert probe(src).metadata["title"] == "holiday"
    [kept] = transcode(naga("video", "/s/160x120"), src, tmp_path / "kept")
    [dropped] = transcode(naga("video", "/sm/0/s/160x120"), src, tmp_path / "dropped")
    assert probe(kept).metadata.get("title") == "holiday"
    assert "title" not in probe(dropped).metadata


def test_audio_only_hls(clip: Path, tmp_path: Path) -> None:
    playlist, *segments = transcode(naga("audio", "/ab/64", "/radio.m3u8"), clip, tmp_path, name="radio")
    assert playlist.name == "radio.m3u8" and segments
    info = probe(playlist, own_playlist=True)
    assert info.video is None and info.audio is not None and info.audio.codec == "aac"


def _frame(video_file: Path, tmp_path: Path) -> Image.Image:
    [png] = snapshot(ThumbnailSpec(start=1.0, format="png"), video_file, tmp_path / f"f-{video_file.stem}")
    return Image.open(png).convert("RGB")


def _near(pixel: tuple[int, ...], colour: tuple[int, int, int], tol: int = 40) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(pixel, colour, strict=False))


@pytest.mark.parametrize(
    ("avopts", "inside", "outside"),
    [
        ("/wmImg/L2EvbWFyay5wbmc", (300 - 16, 15 + 16), (20, 220)),  # northeast, -20/15 by default
        ("/wmImg/L2EvbWFyay5wbmc/wmGravity/southwest/wmDx/10/wmDy/-10", (10 + 16, 198 + 16), (284, 31)),
        ("/wmImg/L2EvbWFyay5wbmc/wmGravity/center", (160, 120), (20, 20)),
    ],
)
def test_watermark_lands_where_gravity_and_offsets_say(
    avopts: str, inside: tuple[int, int], outside: tuple[int, int], tmp_path: Path
) -> None:
    src = make_video(tmp_path / "flat.mp4", seconds=2, noise=False)
    mark = tmp_path / "mark.png"
    Image.new("RGBA", (32, 32), (0, 255, 0, 255)).save(mark)
    spec = naga("video", avopts + "/s/320x240", "/w.mp4")
    assert spec.extra_paths == ("/a/mark.png",)
    [out] = transcode(spec, src, tmp_path / "out", files={"/a/mark.png": mark})
    [plain] = transcode(naga("video", "/s/320x240"), src, tmp_path / "plain")
    marked, bare = _frame(out, tmp_path), _frame(plain, tmp_path)
    assert _near(marked.getpixel(inside), (0, 255, 0))
    assert not _near(bare.getpixel(inside), (0, 255, 0))
    assert _near(marked.getpixel(outside), bare.getpixel(outside))


def test_watermark_must_be_an_image_and_must_be_given(clip: Path, tmp_path: Path) -> None:
    spec = naga("video", "/wmImg/L2EvbWFyay5wbmc/s/160x120")
    with pytest.raises(ValueError, match="local copies"):
        transcode(spec, clip, tmp_path)
    with pytest.raises(BadMediaOptions, match="PNG or WebP"):
        transcode(spec, clip, tmp_path, files={"/a/mark.png": clip})
    text = tmp_path / "mark.png"
    text.write_text("not an image")
    with pytest.raises(BadMediaOptions, match="PNG or WebP"):
        transcode(spec, clip, tmp_path, files={"/a/mark.png": text})


def test_copy_cannot_be_combined_with_picture_changes(clip: Path, tmp_path: Path) -> None:
    with pytest.raises(BadMediaOptions, match="/vcodec/copy"):
        transcode(naga("video", "/vcodec/copy/s/160x120"), clip, tmp_path)


def test_as_turns_the_target_for_a_portrait_source(portrait: Path, tmp_path: Path) -> None:
    [kept] = transcode(naga("video", "/s/240p(4:3)/as/1"), portrait, tmp_path / "as")
    [forced] = transcode(naga("video", "/s/240p(4:3)"), portrait, tmp_path / "plain")
    kv, fv = probe(kept).video, probe(forced).video
    assert kv is not None and fv is not None
    assert (kv.width, kv.height) == (240, 320)
    assert (fv.width, fv.height) == (320, 240)


def test_hls_playlist_and_segments_in_order(clip: Path, tmp_path: Path) -> None:
    outputs = transcode(naga("video", "/ht/1/s/320x240/vb/300", "/live/a.m3u8"), clip, tmp_path, name="a")
    playlist, *segments = outputs
    assert playlist == tmp_path / "a.m3u8"
    assert [s.name for s in segments] == ["a-00000.ts", "a-00001.ts"]
    text = playlist.read_text()
    assert text.startswith("#EXTM3U") and "#EXT-X-ENDLIST" in text
    listed = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert listed == [s.name for s in segments]
    assert sum(float(d) for d in re.findall(r"#EXTINF:([\d.]+),", text)) == pytest.approx(2.0, abs=0.1)
    for seg in segments:
        info = probe(seg)
        assert info.format == "mpegts" and info.video is not None and info.video.codec == "h264"
    whole = probe(playlist, own_playlist=True)
    assert whole.format == "hls" and whole.duration == pytest.approx(2.0, abs=0.1)
    played = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(playlist), "-f", "null", "-"], capture_output=True
    )
    assert played.returncode == 0 and played.stderr == b""


def test_return_info_is_the_outputs_probe(clip: Path, tmp_path: Path) -> None:
    spec = parse_avopts("video", "/s/160x120", save_as="/a.mp4", return_info=True)
    assert isinstance(spec, TranscodeSpec) and spec.return_info
    [out] = transcode(spec, clip, tmp_path)
    info = probe(out).to_upyun()
    assert info["streams"][0]["video_width"] == 160
    assert info["format"]["filesize"] == out.stat().st_size


# ------------------------------------------------------------------ Wantu presets


def test_wantu_320x240_preset(clip: Path, tmp_path: Path) -> None:
    [out] = transcode(encode_spec("video-generic-AVC-320x240", use_preset=True), clip, tmp_path)
    info = probe(out)
    assert "mp4" in info.format.split(",") and info.video is not None and info.audio is not None
    assert (info.video.codec, info.video.width, info.video.height, info.video.fps) == ("h264", 320, 240, 30.0)
    assert (info.audio.codec, info.audio.samplerate, info.audio.channels) == ("aac", 22050, 2)
    assert_near(video_kbps(info), 300)


def test_wantu_480p_4_3_preset(clip: Path, tmp_path: Path) -> None:
    [out] = transcode(encode_spec("video-generic-AVC-480p-4_3", use_preset=True), clip, tmp_path)
    info = probe(out)
    assert info.video is not None and (info.video.width, info.video.height) == (640, 480)
    assert_near(video_kbps(info), 900)


def test_wantu_hls_preset(clip: Path, tmp_path: Path) -> None:
    playlist, *segments = transcode(encode_spec("video-HLS-240K", use_preset=True), clip, tmp_path, name="h")
    assert playlist.name == "h.m3u8" and [s.name for s in segments] == ["h-00000.ts"]  # 10 s segments
    info = probe(playlist, own_playlist=True)
    assert info.video is not None and (info.video.width, info.video.height) == (640, 480)
    size = sum(s.stat().st_size for s in segments)
    assert_near(size * 8 / 2.0 / 1000, 240 + 128)


def test_wantu_flv_template_with_crf(clip: Path, tmp_path: Path) -> None:
    spec = encode_spec("/format/flv/vCrf/30/vWidth/320/vPreset/veryfast/aCodec/mp3", use_preset=False)
    [out] = transcode(spec, clip, tmp_path)
    info = probe(out)
    assert info.format == "flv" and info.video is not None and info.audio is not None
    assert (info.video.width, info.video.height) == (320, 240)  # height follows the aspect ratio
    assert info.audio.codec == "mp3"


# ------------------------------------------------------------------ frame grabs


def test_snapshot_is_a_jpeg_of_the_requested_size(clip: Path, tmp_path: Path) -> None:
    spec = parse_avopts("thumbnail", "/o/1/ss/00:00:01/s/160:120")
    assert isinstance(spec, ThumbnailSpec)
    [out] = snapshot(spec, clip, tmp_path, name="shot")
    assert out == tmp_path / "shot.jpg"
    with Image.open(out) as im:
        assert (im.format, im.size) == ("JPEG", (160, 120))


def test_wantu_snapshot_png_at_source_size(clip: Path, tmp_path: Path) -> None:
    [out] = snapshot(snapshot_spec(1500, output="/v/s.png"), clip, tmp_path)
    with Image.open(out) as im:
        assert (im.format, im.size) == ("PNG", (640, 480))


def test_several_images_evenly_spaced(clip: Path, tmp_path: Path) -> None:
    spec = parse_avopts("thumbnail", "/o/0/n/3/s/64:48", save_as="/p/img.jpg")
    assert isinstance(spec, ThumbnailSpec)
    outputs = snapshot(spec, clip, tmp_path, name="img")
    assert [p.name for p in outputs] == ["img1.jpg", "img2.jpg", "img3.jpg"]
    frames = [Image.open(p).convert("L").tobytes() for p in outputs]
    assert len(set(frames)) == 3  # different instants, different pictures


def test_snapshot_beyond_the_end_is_a_clear_error(clip: Path, tmp_path: Path) -> None:
    with pytest.raises(BadMediaOptions, match=r"beyond the video's end \(2 s\)"):
        snapshot(snapshot_spec(5000), clip, tmp_path)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ bad input, limits


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"this is not a video at all\n" * 100,
        random.Random(7).randbytes(64 * 1024),
        b"\x00\x00\x00\x18ftypmp42" + b"\xff" * 5000,
    ],
    ids=["empty", "text", "random", "fake-mp4-header"],
)
def test_garbage_input_is_a_clean_failure(content: bytes, tmp_path: Path) -> None:
    src = tmp_path / "upload.mp4"
    src.write_bytes(content)
    out = tmp_path / "out"
    for run in (
        lambda: probe(src),
        lambda: transcode(naga("video", "/s/240p(4:3)"), src, out),
        lambda: snapshot(snapshot_spec(0), src, out),
    ):
        with pytest.raises(NotMedia) as caught:
            run()
        assert caught.value.status == 415
        assert str(tmp_path) not in caught.value.reason
    assert not out.exists() or list(out.iterdir()) == []


def test_truncated_video_fails_cleanly_and_leaves_nothing(clip: Path, tmp_path: Path) -> None:
    src = tmp_path / "cut.mp4"
    src.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    out = tmp_path / "out"
    with pytest.raises(MediaTaskError) as caught:
        transcode(naga("video", "/s/240p(4:3)"), src, out)
    assert isinstance(caught.value, NotMedia | TranscodeFailed)
    assert caught.value.reason and str(tmp_path) not in caught.value.reason
    assert list(out.iterdir()) == [] if out.exists() else True


@pytest.mark.parametrize(
    "text",
    [
        "#EXTM3U\n#EXTINF:1,\n{secret}\n#EXT-X-ENDLIST\n",
        "ffconcat version 1.0\nfile '{secret}'\n",
        "#EXTM3U\n#EXTINF:1,\nhttp://127.0.0.1:9/x.ts\n#EXT-X-ENDLIST\n",
    ],
    ids=["hls-local", "concat-local", "hls-network"],
)
def test_sources_that_point_at_other_files_are_refused(text: str, clip: Path, tmp_path: Path) -> None:
    """An upload must not make ffmpeg read another object (here: the clip) or reach the network."""
    src = tmp_path / "evil.m3u8"
    src.write_text(text.format(secret=clip))
    out = tmp_path / "out"
    with pytest.raises(NotMedia, match="point at further files"):
        transcode(naga("video", "/s/160x120"), src, out)
    assert not out.exists() or list(out.iterdir()) == []


def test_a_text_file_is_not_a_video_whatever_its_name(clip: Path, tmp_path: Path) -> None:
    src = tmp_path / "notes.ans"  # ffmpeg picks its tty (ANSI art) reader by this suffix
    src.write_text("hello\n" * 50)
    with pytest.raises(NotMedia, match="text"):
        transcode(naga("video", "/s/160x120"), src, tmp_path / "out")


def test_a_colon_in_the_source_name_is_not_a_protocol(clip: Path, tmp_path: Path) -> None:
    odd = tmp_path / "http:x.mp4"
    odd.write_bytes(clip.read_bytes())
    [out] = transcode(naga("video", "/s/160x120"), odd, tmp_path / "out")
    assert probe(out).video is not None


def test_missing_source(tmp_path: Path) -> None:
    with pytest.raises(NotMedia, match="missing"):
        probe(tmp_path / "nope.mp4")


def test_an_audio_file_cannot_become_a_video(clip: Path, tmp_path: Path) -> None:
    [mp3] = transcode(naga("audio", "/ab/64"), clip, tmp_path / "a")
    with pytest.raises(BadMediaOptions, match="no video stream"):
        transcode(naga("video", "/s/240p(4:3)"), mp3, tmp_path / "b")


def test_ffmpeg_errors_become_a_short_reason(clip: Path, tmp_path: Path) -> None:
    spec = naga("video", "/vcodec/libx264/s/160x120", "/x.ogv")  # Ogg cannot carry H.264: ffmpeg refuses
    out = tmp_path / "out"
    with pytest.raises(TranscodeFailed) as caught:
        transcode(spec, clip, out)
    reason = caught.value.reason
    assert reason.startswith("ffmpeg failed: Unsupported codec id in stream 0") and len(reason) <= 320, reason
    assert str(tmp_path) not in reason and "0x" not in reason
    assert caught.value.status == 500
    assert list(out.iterdir()) == []


def test_timeout_kills_ffmpeg_and_leaves_nothing(clip: Path, tmp_path: Path) -> None:
    slow = encode_spec("/format/mp4/vWidth/1920/vHeight/1080/vPreset/veryslow/vCrf/10", use_preset=False)
    out = tmp_path / "out"
    started = time.monotonic()
    with pytest.raises(TranscodeTimeout) as caught:
        transcode(slow, clip, out, limits=VideoLimits(timeout=0.5))
    assert time.monotonic() - started < 10
    assert caught.value.status == 504 and "0.5 s" in caught.value.reason
    assert [p for p in psutil.Process().children(recursive=True) if "ffmpeg" in p.name()] == []
    assert list(out.iterdir()) == []


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except psutil.Error:  # the probe's ffmpeg may be exiting right now
        return []


def test_a_killed_worker_leaves_no_ffmpeg_running(clip: Path, tmp_path: Path) -> None:
    """SIGKILL of the process that runs transcode(): its ffmpeg dies too and publishes nothing."""
    out = tmp_path / "out"
    code = (
        "import sys; from pathlib import Path\n"
        "from mediagate.media.video import transcode, VideoLimits\n"
        "from mediagate.media.wantu_presets import encode_spec\n"
        "t = '/format/mp4/vWidth/1920/vHeight/1080/vPreset/veryslow/vCrf/10'\n"
        "spec = encode_spec(t, use_preset=False)\n"
        "transcode(spec, Path(sys.argv[1]), Path(sys.argv[2]), limits=VideoLimits(timeout=300))\n"
    )
    worker = subprocess.Popen([sys.executable, "-c", code, str(clip), str(out)])
    try:
        ffmpeg = None
        for _ in range(200):
            kids = [p for p in psutil.Process(worker.pid).children() if "libx264" in _cmdline(p)]
            if kids:
                ffmpeg = kids[0]
                break
            time.sleep(0.05)
        assert ffmpeg is not None, "the worker never started ffmpeg"
        worker.kill()
        worker.wait()
        gone, alive = psutil.wait_procs([ffmpeg], timeout=5)
        for orphan in alive:  # do not leave it running when the assertion below fails
            orphan.kill()
        assert alive == [] and gone == [ffmpeg]
    finally:
        worker.kill()
        worker.wait()
    assert [p for p in out.iterdir() if not p.name.startswith(".")] == []
    [outputs] = [transcode(naga("video", "/s/160x120"), clip, out)]  # the retry publishes its output
    assert [p.name for p in out.iterdir() if not p.name.startswith(".")] == [outputs[0].name]


def test_output_names_cannot_escape_or_be_patterns(clip: Path, tmp_path: Path) -> None:
    for bad in ("../x", "a/b", "x%05d", ".hidden", ""):
        with pytest.raises(ValueError, match="output name"):
            transcode(naga("video", "/s/160x120"), clip, tmp_path, name=bad)
    with pytest.raises(ValueError, match="output folder"):
        transcode(naga("video", "/s/160x120"), clip, tmp_path / "100%d")


def test_relative_output_folder_with_a_colon(
    clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    [shot] = snapshot(snapshot_spec(500), clip, Path("pipe:1"), name="s")
    [movie] = transcode(naga("video", "/s/160x120"), clip, Path("pipe:1"), name="m")
    assert shot.is_file() and movie.is_file() and shot.parent.resolve() == tmp_path / "pipe:1"


def test_source_limits(clip: Path, tmp_path: Path) -> None:
    with pytest.raises(BadMediaOptions, match="limit is 1 s"):
        transcode(naga("video", "/s/160x120"), clip, tmp_path, limits=VideoLimits(max_duration=1))
    with pytest.raises(BadMediaOptions, match="640x480 are larger"):
        transcode(naga("video", "/s/160x120"), clip, tmp_path, limits=VideoLimits(max_source_pixels=100_000))


def test_without_the_video_extra_or_an_ffmpeg_the_error_says_how_to_install_it() -> None:
    """The wheel's ffmpeg is a GPL build behind the optional ``video`` extra: without it (and no
    ffmpeg on PATH) a task fails with the install hint, never with a crash."""
    script = (
        "import sys; sys.modules['imageio_ffmpeg'] = None\n"
        "from mediagate.media.averrors import FfmpegUnavailable\n"
        "from mediagate.media.video import ffmpeg_exe\n"
        "try:\n    ffmpeg_exe()\nexcept FfmpegUnavailable as exc:\n"
        "    print(exc.status, exc.reason)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "IMAGEIO_FFMPEG_EXE"} | {"PATH": "/nonexistent"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.startswith("503 video tasks need ffmpeg: pip install 'mediagate[video]'"), done


def test_grab_every_takes_one_frame_per_interval_in_one_pass(clip: Path, tmp_path: Path) -> None:
    """videoaudit's grabs: 2 s at 0.5 s → 0, 0.5, 1, 1.5 s, resized, in play order; a video
    shorter than the interval still gives its first frame; too many frames is refused."""
    frames = grab_every(clip, tmp_path / "a", interval=0.5, size=(64, 48), name="f")
    assert [t for t, _ in frames] == [0, 0.5, 1.0, 1.5]
    assert [p.name for _, p in frames] == [f"f0000{k}.jpg" for k in range(1, 5)]
    for _, path in frames:
        with Image.open(path) as img:
            assert (img.format, img.size) == ("JPEG", (64, 48))
    assert [t for t, _ in grab_every(clip, tmp_path / "b", interval=10, fmt="png")] == [0]
    with pytest.raises(BadMediaOptions, match="at most 3"):
        grab_every(clip, tmp_path / "c", interval=0.5, max_frames=3)
    assert not list((tmp_path / "c").glob("*.jpg"))

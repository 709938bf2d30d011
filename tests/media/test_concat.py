"""Concatenation (UPYUN ``/h/`` + source + ``/i/``) with real ffmpeg on generated clips: the joined
file lasts the sum of its parts, plays the parts in order, and ffmpeg only ever reads the local
copies it was handed (the list file for ``/codec/copy`` is ours and is gone afterwards)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mediagate.media.averrors import BadMediaOptions, NotMedia
from mediagate.media.avopts import parse_avopts
from mediagate.media.avspec import ConcatSpec
from mediagate.media.video import concat, probe
from tests.media.videos import make_video


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("concat")
    return {
        "a": make_video(d / "a.mp4", seconds=2),
        "b": make_video(d / "b.mp4", seconds=1),
        "mute": make_video(d / "mute.mp4", seconds=1, audio=False),
        "big": make_video(d / "big.mp4", size="640x480", seconds=1),
    }


def job(avopts: str, save_as: str = "/o/j.mp4", type_: str = "video") -> ConcatSpec:
    spec = parse_avopts(type_, avopts, save_as=save_as)
    assert isinstance(spec, ConcatSpec)
    return spec


H_B, I_A = "/h/L2IubXA0", "/i/L2EubXA0"  # /b.mp4 before, /a.mp4 after


@pytest.mark.parametrize("copy", [False, True], ids=["re-encode", "codec-copy"])
def test_joined_video_lasts_the_sum_of_its_parts(clips: dict[str, Path], tmp_path: Path, copy: bool) -> None:
    spec = job(H_B + I_A + ("/codec/copy" if copy else ""))
    files = {"/b.mp4": clips["b"], "/a.mp4": clips["a"]}
    [out] = concat(spec, clips["a"], tmp_path / "out", files=files)
    info = probe(out)
    assert out.name == "output.mp4" and "mp4" in info.format
    assert info.duration is not None and abs(info.duration - 5.0) < 0.25  # 1 + 2 + 2 s
    assert info.video is not None and (info.video.width, info.video.height) == (320, 240)
    assert info.audio is not None and info.video.codec == "h264"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["output.mp4"]  # no list, no stage


def test_a_part_without_sound_is_joined_with_silence(clips: dict[str, Path], tmp_path: Path) -> None:
    [out] = concat(job("/i/L211dGUubXA0"), clips["a"], tmp_path, files={"/mute.mp4": clips["mute"]})
    info = probe(out)
    assert info.audio is not None and info.duration is not None and abs(info.duration - 3.0) < 0.25


def test_audio_concatenation_of_video_files(clips: dict[str, Path], tmp_path: Path) -> None:
    spec = job("/i/L2IubXA0/i/L2IubXA0", save_as="/s.mp3", type_="aconcat")
    [out] = concat(spec, clips["a"], tmp_path, files={"/b.mp4": clips["b"]})
    info = probe(out)
    assert info.format == "mp3" and info.video is None and info.audio is not None
    assert info.duration is not None and abs(info.duration - 4.0) < 0.25


def test_different_resolutions_are_refused_naming_the_file(clips: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(BadMediaOptions, match=r"same resolution: the source is 320x240, /big.mp4 is 640x480"):
        concat(job("/i/L2JpZy5tcDQ"), clips["a"], tmp_path / "o", files={"/big.mp4": clips["big"]})
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


def test_codec_copy_needs_the_same_streams(clips: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(BadMediaOptions, match="same audio codec"):
        concat(job("/i/L211dGUubXA0/codec/copy"), clips["a"], tmp_path, files={"/mute.mp4": clips["mute"]})


@pytest.mark.parametrize(
    "text", ["#EXTM3U\n#EXTINF:1,\n/etc/passwd\n", "ffconcat version 1.0\nfile '/etc/passwd'\n"]
)
def test_a_part_that_points_at_other_files_is_refused(
    clips: dict[str, Path], tmp_path: Path, text: str
) -> None:
    evil = tmp_path / "evil"
    evil.write_text(text)
    with pytest.raises(NotMedia, match=r"/e\.mp4: playlists and other files"):
        concat(job("/i/L2UubXA0/codec/copy"), clips["a"], tmp_path / "o", files={"/e.mp4": evil})

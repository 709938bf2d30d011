"""UPYUN avopts (shared/specs/upyun-apps.md §2) parse into one typed job, or fail naming the key."""

from __future__ import annotations

import pytest

from mediagate.media.averrors import BadMediaOptions
from mediagate.media.avopts import SIZE_PRESETS, parse_avopts, parse_time
from mediagate.media.avspec import (
    ChainSpec,
    ConcatSpec,
    ProbeSpec,
    ThumbnailSpec,
    TranscodeSpec,
    Watermark,
    container,
)


def video(avopts: str, save_as: str | None = None, type_: str = "video") -> TranscodeSpec:
    spec = parse_avopts(type_, avopts, save_as=save_as)
    assert isinstance(spec, TranscodeSpec)
    return spec


def test_the_docs_example_task() -> None:
    spec = video("/s/240p(4:3)/as/1/r/30", "/a/b.mp4")
    assert (spec.width, spec.height, spec.video_bitrate_cap) == (320, 240, 300)
    assert spec.keep_orientation and spec.fps == 30.0
    assert spec.container.name == "mp4" and spec.container.video_codec == "libx264"
    assert spec.hls_segment is None


@pytest.mark.parametrize(
    ("preset", "size"),
    [
        ("1080p(16:9)", (1920, 1080)),
        ("480p(16:9)", (854, 480)),
        ("360p(4:3)", (480, 360)),
        ("2160p(16:9)", (3840, 2160)),
    ],
)
def test_every_size_preset_names_its_size(preset: str, size: tuple[int, int]) -> None:
    spec = video(f"/s/{preset}")
    assert (spec.width, spec.height) == size
    assert spec.video_bitrate_cap == SIZE_PRESETS[preset][2]


def test_explicit_size_and_bitrates() -> None:
    spec = video("/s/640x360/vb/800/ab/96/ar/48000/ac/1")
    assert (spec.width, spec.height, spec.video_bitrate_cap) == (640, 360, None)
    assert (spec.video_bitrate, spec.audio_bitrate, spec.audio_samplerate, spec.audio_channels) == (
        800,
        96,
        48000,
        1,
    )


def test_save_as_suffix_picks_the_container_and_f_is_the_fallback() -> None:
    assert video("/vb/500", "/v/out.flv").container.name == "flv"
    assert video("/f/flv/vb/500", "/v/out.mp4").container.name == "mp4"
    assert video("/f/webm/vb/500", "/v/noext").container.muxer == "webm"
    assert video("/vb/500").container.name == "mp4"


def test_hls_segments_by_ht_or_type() -> None:
    assert video("/ht/4", "/live/a.m3u8").hls_segment == 4
    assert video("/vb/300", "/live/a.m3u8", type_="hls").hls_segment == 10
    assert video("/vb/300", "/live/a.m3u8").is_hls
    with pytest.raises(BadMediaOptions, match=r"\.m3u8"):
        video("/ht/4", "/live/a.mp4")


def test_rotation_speed_times_metadata_codecs() -> None:
    spec = video(
        "/sp/90/su/2.0/ss/00:00:01/es/00:01:00.5/sm/0/vcodec/libx265/acodec/libfdk_aac/pv/main/level/3.1"
    )
    assert spec.rotate == "90" and spec.speed == 2.0
    assert (spec.start, spec.end) == (1.0, 60.5)
    assert not spec.keep_metadata
    assert (spec.video_codec, spec.audio_codec) == ("libx265", "aac")
    assert (spec.profile, spec.level) == ("main", "3.1")


def test_booleans_accept_1_0_true_false() -> None:
    assert video("/an/true").no_audio
    assert not video("/an/0").no_audio
    assert video("/vn/1/f/mp4").no_video


def test_ar_0_keeps_the_source_rate_and_ac_takes_layouts() -> None:
    assert video("/ar/0").audio_samplerate is None
    assert video("/ac/5.1").audio_channels == 6


def test_nbhd_picks_crf_and_refuses_a_bitrate() -> None:
    spec = video("/ct/h265", type_="nbhd")
    assert (spec.video_codec, spec.crf) == ("libx265", 26)
    with pytest.raises(BadMediaOptions, match="/vb/"):
        video("/vb/300", type_="nbhd")


def test_watermark_paths_are_url_safe_base64_with_or_without_padding() -> None:
    spec = video("/wmImg/L2EvYi5wbmc=/s/320x240")  # /a/b.png
    assert spec.watermark == Watermark(path="/a/b.png", gravity="northeast", dx=-20, dy=15)
    assert spec.extra_paths == ("/a/b.png",)
    assert video("/wmImg/L2EvYi5wbmc").watermark == spec.watermark
    spec = video("/wmImg/L-S4reaWh-S7ti5wbmc/wmGravity/southwest/wmDx/10/wmDy/-10")  # /中文件.png
    assert spec.watermark == Watermark(path="/中文件.png", gravity="southwest", dx=10, dy=-10)
    assert video("/wmImg/L2EvYi5wbmc/wmGravity/center").watermark == Watermark("/a/b.png", "center", 0, 0)
    assert video("/s/320x240").extra_paths == ()


def test_audio_task() -> None:
    spec = parse_avopts("audio", "/ab/64/ac/1/ss/00:00:01", save_as="/m/a.mp3")
    assert isinstance(spec, TranscodeSpec)
    assert spec.audio_only and spec.container.name == "mp3"
    assert (spec.audio_bitrate, spec.audio_channels, spec.start) == (64, 1, 1.0)
    vbr = parse_avopts("audio", "/vbr/2", save_as="/m/a.mp3")
    assert isinstance(vbr, TranscodeSpec) and vbr.audio_quality == 2
    with pytest.raises(BadMediaOptions, match="MP3"):
        parse_avopts("audio", "/vbr/2", save_as="/m/a.ogg")


def test_thumbnail_task() -> None:
    one = parse_avopts("thumbnail", "/o/1/ss/00:00:01/s/160:120", save_as="/p/a.png")
    assert one == ThumbnailSpec(count=1, start=1.0, width=160, height=120, format="png")
    many = parse_avopts("thumbnail", "/o/0/n/4/es/00:00:02/f/jpg", save_as="/p/a.png")
    assert many == ThumbnailSpec(count=4, start=0.0, end=2.0, format="jpg")


def test_concatenation_keeps_the_order_of_h_and_i_and_takes_its_format_from_save_as() -> None:
    # /h/ /x.mp4 and /y.mp4 go before the source, /i/ /a/b/c.mp4 after it
    spec = parse_avopts("video", "/h/L3gubXA0/i/L2EvYi9jLm1wNA/h/L3kubXA0/codec/copy", save_as="/o/j.mkv")
    assert spec == ConcatSpec(container=container("mkv"), before=("/x.mp4", "/y.mp4"), after=("/a/b/c.mp4",),
                              copy=True)  # fmt: skip
    assert spec.extra_paths == ("/x.mp4", "/y.mp4", "/a/b/c.mp4")
    # the doc's vconcat example (test vector C) = video + /i/
    old = parse_avopts("vconcat", "/i/L2EvYi9jLm1wNA==/i/LzEvMi8zLm1wNA==", save_as="/concat/a.mp4")
    assert old == ConcatSpec(container=container("mp4"), after=("/a/b/c.mp4", "/1/2/3.mp4"))
    sound = parse_avopts("aconcat", "/i/L2EvYi9jLm1wNA/f/ogg")
    assert isinstance(sound, ConcatSpec) and sound.audio_only and sound.container.name == "ogg"


def test_chain_steps_take_their_own_keys_and_only_the_last_one_sees_save_as() -> None:
    chain = parse_avopts("chain", "/vconcat/i/L2EvYi9jLm1wNA/video/s/240p(4:3)/r/15/thumbnail/o/1",
                         save_as="/foo.jpg", return_info=True)  # fmt: skip
    assert isinstance(chain, ChainSpec) and len(chain.steps) == 3
    joined, small, shot = chain.steps
    assert joined == ConcatSpec(container=container("mp4"), after=("/a/b/c.mp4",))
    assert isinstance(small, TranscodeSpec) and (small.width, small.height, small.fps) == (320, 240, 15)
    assert small.container.name == "mp4" and not small.return_info  # a step's file, not save_as's
    assert shot == ThumbnailSpec(count=1)
    assert chain.extra_paths == ("/a/b/c.mp4",)


def test_probe_task() -> None:
    assert parse_avopts("probe", "") == ProbeSpec()


def test_return_info_travels_with_the_spec() -> None:
    assert video("/vb/300").return_info is False
    spec = parse_avopts("video", "/vb/300", return_info=True)
    assert isinstance(spec, TranscodeSpec) and spec.return_info


@pytest.mark.parametrize(
    ("type_", "avopts", "reason"),
    [
        ("video", "/s/240p(4:3)/r", "'r' has no value"),
        ("video", "/t/10", "unknown avopts key /t/"),
        ("video", "/s/huge", "/s/ must be WxH"),
        ("video", "/s/9000x10", "sides must be"),
        ("video", "/vb/fast", "/vb/ must be a whole number"),
        ("video", "/r/0", "/r/ must be a number"),
        ("video", "/sp/45", "/sp/ must be one of"),
        ("video", "/as/1", "/as/ only applies together with /s/"),
        ("video", "/ss/00:00:05/es/00:00:02", "must come after /ss/"),
        ("video", "/ss/1:75:00", "/ss/ must be a time"),
        ("video", "/ar/12345", "/ar/ must be one of"),
        ("video", "/f/doc", "unsupported output format 'doc'"),
        ("video", "/f/mp3", "needs a video format"),
        ("video", "/i/L2EvYi9jLm1wNA==/s/240p(4:3)", "cannot be mixed with /s/: use type 'chain'"),
        ("video", "/i/L2EvYi9jLm1wNA/codec/h264", "/codec/ must be copy"),
        ("video", "/h/Li4vYS5tcDQ", "absolute bucket path"),
        ("vconcat", "/f/mp4", "needs at least one /i/"),
        ("thumbnail", "/o/1/i/L2EvYi9jLm1wNA", "needs type video or audio"),
        ("video", "/cr/1", "not supported by this server"),
        ("chain", "/s/240p(4:3)", "a chain starts with a step type"),
        ("chain", "/thumbnail/o/1/video/r/25", "chain step 1 (thumbnail): frame grabs and HLS"),
        ("chain", "/video/r/25/probe/x/1", "'probe' cannot be a step"),
        ("chain", "/video/r/1/video/r/2/audio/ab/64/video/r/3/video/r/4", "at most 4 steps"),
        ("chain", "/video/t/1/audio/ab/64", "chain step 1 (video): unknown avopts key /t/"),
        ("chain", "", "at least one step"),
        ("video", "/wmImg/L2EvYi5qcGc", "must name a .png or .webp"),
        ("video", "/wmImg/Li4vYS5wbmc", "absolute bucket path"),
        ("video", "/wmImg/L2EvLi4vYi5wbmc", "absolute bucket path"),
        ("video", "/wmImg/!!!", "URL-safe base64"),
        ("video", "/wmDx/10", "/wmDx/ only applies together with /wmImg/"),
        ("video", "/wmImg/L2EvYi5wbmc/wmGravity/top", "/wmGravity/ must be one of"),
        ("video", "/wmImg/L2EvYi5wbmc/wmDy/1.5", "/wmDy/ must be a whole number"),
        ("vthumbnail", "/o/1", "unknown type 'vthumbnail'"),
        ("thumbnail", "/ss/00:00:01", "/o/ is required"),
        ("thumbnail", "/o/0", "/n/ (number of images) is required"),
        ("thumbnail", "/o/1/f/gif", "jpg or png"),
        ("audio", "/s/240p(4:3)", "unknown avopts key /s/ for type 'audio'"),
    ],
)
def test_bad_options_fail_with_a_reason_naming_the_key(type_: str, avopts: str, reason: str) -> None:
    with pytest.raises(BadMediaOptions) as caught:
        parse_avopts(type_, avopts, save_as="/v/out" if type_ != "audio" else "/a.mp3")
    assert reason in caught.value.reason
    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("00:00:00", 0.0), ("01:02:03", 3723.0), ("00:00:01.5", 1.5), ("02:30", 150.0), ("7.25", 7.25)],
)
def test_times(text: str, seconds: float) -> None:
    assert parse_time("ss", text) == seconds

"""Wantu mediaEncode presets and template parameters (seed appendix) into the same TranscodeSpec."""

from __future__ import annotations

import pytest

from mediagate.media.averrors import BadMediaOptions
from mediagate.media.wantu_presets import PRESETS, encode_spec, parse_template, snapshot_spec


def test_the_seed_lists_twelve_presets() -> None:
    assert len(PRESETS) == 12


def test_320x240_preset() -> None:
    spec = encode_spec("video-generic-AVC-320x240", use_preset=True)
    assert spec.container.name == "mp4"
    assert (spec.width, spec.height, spec.video_bitrate, spec.fps) == (320, 240, 300, 30.0)
    assert (spec.video_codec, spec.audio_codec) == ("libx264", "aac")
    assert (spec.audio_samplerate, spec.audio_bitrate, spec.audio_channels) == (22050, 128, 2)
    assert (spec.gop, spec.profile, spec.preset, spec.crf) == (250, "high", "slow", None)


def test_hls_preset_keeps_the_source_size_and_cuts_10s_segments() -> None:
    spec = encode_spec("video-HLS-240K", use_preset=True)
    assert spec.is_hls and spec.hls_segment == 10
    assert (spec.width, spec.height, spec.video_bitrate) == (None, None, 240)


def test_template_parameters() -> None:
    spec = parse_template(
        "/format/flv/vCrf/20/vBitrate/900/vWidth/640/vPreset/fast/vProfile/main/vGop/50"
        "/vMaxrate/1200/vBufsize/2000/vScanMode/interlaced/aCodec/mp3/aSamplerate/48000"
    )
    assert spec.container.name == "flv"
    assert (spec.crf, spec.video_bitrate) == (20, None)  # a CRF wins over a bitrate
    assert (spec.width, spec.height) == (640, None)
    assert (spec.preset, spec.profile, spec.gop, spec.maxrate, spec.bufsize) == (
        "fast",
        "main",
        50,
        1200,
        2000,
    )
    assert spec.interlaced and spec.audio_codec == "libmp3lame" and spec.audio_samplerate == 48000


def test_no_bitrate_and_no_crf_means_crf_26() -> None:
    assert parse_template("/format/mp4").crf == 26


def test_vfps_0_keeps_the_source_rate() -> None:
    assert parse_template("/format/mp4/vFps/0").fps is None


def test_seek_and_duration_cut_the_source() -> None:
    spec = encode_spec("video-web", use_preset=True, seek=1.5, duration=3)
    assert (spec.start, spec.end) == (1.5, 4.5)


def test_usepreset_0_accepts_template_parameters_only() -> None:
    assert encode_spec("/format/m3u8/vBitrate/200", use_preset=False).is_hls
    with pytest.raises(BadMediaOptions, match="usePreset=1"):
        encode_spec("my-console-template", use_preset=False)


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("/format/avi", "format must be one of mp4, flv, m3u8"),
        ("/vBitrate/5", "vBitrate must be a whole number in [10,50000]"),
        ("/vWidth/5000", "vWidth must be a whole number in [64,4096]"),
        ("/vCrf/52", "vCrf"),
        ("/aSamplerate/8000", "aSamplerate must be one of"),
        ("/aChannels/1", "aChannels"),
        ("/vPreset/ultrafast", "vPreset must be one of"),
        ("/colour/red", "unknown template parameter 'colour'"),
        ("/format", "'format' has no value"),
    ],
)
def test_bad_templates_fail_with_a_reason(template: str, reason: str) -> None:
    with pytest.raises(BadMediaOptions) as caught:
        parse_template(template)
    assert reason in caught.value.reason


def test_unknown_preset() -> None:
    with pytest.raises(BadMediaOptions, match="unknown preset 'video-4k'"):
        encode_spec("video-4k", use_preset=True)


def test_negative_seek_and_empty_duration() -> None:
    with pytest.raises(BadMediaOptions, match="seek"):
        encode_spec("video-web", use_preset=True, seek=-1)
    with pytest.raises(BadMediaOptions, match="duration"):
        encode_spec("video-web", use_preset=True, duration=0)


def test_snapshot_time_is_milliseconds() -> None:
    spec = snapshot_spec(1500, output="/v/shot.png")
    assert (spec.count, spec.start, spec.format) == (1, 1.5, "png")
    assert snapshot_spec(0).format == "jpg"
    with pytest.raises(BadMediaOptions, match="milliseconds"):
        snapshot_spec(-1)

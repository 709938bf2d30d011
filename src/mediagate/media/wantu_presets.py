"""Wantu ``mediaEncode`` presets and template parameters into a :class:`TranscodeSpec`.

The seed's appendix (shared/seeds/wantu-media-api.txt, 预设表/预设参数说明) writes every preset
as a template string, ``/format/mp4/vCodec/H.264/vBitrate/300/...``; :data:`PRESETS` keeps them
verbatim and :func:`parse_template` reads that grammar, so a preset and a hand-written template
go through one parser. ``usePreset=0`` names a console template in Wantu; we have no console,
so there the caller passes the template parameters themselves (a string starting with ``/``).

Defaults are the seed's: H.264 ``high`` profile, preset ``slow``, GOP 250, buffer 6000 kb, CRF 26
when no bitrate is given (a given CRF wins over a bitrate), AAC 128 kbps 44100 Hz stereo; a
size side left out follows the source's aspect ratio, ``vFps`` 0 keeps the source rate.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

from mediagate.media.averrors import BadMediaOptions
from mediagate.media.avspec import ThumbnailSpec, TranscodeSpec, container

PRESETS: dict[str, str] = {
    "video-generic-AVC-1080P": "/format/mp4/vCodec/H.264/vBitrate/5400/vFps/30/vWidth/1920/vHeight/1080"
    "/aCodec/aac/aSamplerate/44100/aBitrate/160",
    "video-generic-AVC-320x240": "/format/mp4/vCodec/H.264/vBitrate/300/vFps/30/vWidth/320/vHeight/240"
    "/aCodec/aac/aSamplerate/22050/aBitrate/128",
    "video-generic-AVC-360p-16_9": "/format/mp4/vCodec/H.264/vBitrate/720/vFps/30/vWidth/640/vHeight/360"
    "/aCodec/aac/aSamplerate/44100/aBitrate/128",
    "video-generic-AVC-360p-4_3": "/format/mp4/vCodec/H.264/vBitrate/600/vFps/30/vWidth/480/vHeight/360"
    "/aCodec/aac/aSamplerate/44100/aBitrate/128",
    "video-generic-AVC-480p-16_9": "/format/mp4/vCodec/H.264/vBitrate/1200/vFps/30/vWidth/854/vHeight/480"
    "/aCodec/aac/aSamplerate/44100/aBitrate/128",
    "video-generic-AVC-480p-4_3": "/format/mp4/vCodec/H.264/vBitrate/900/vFps/30/vWidth/640/vHeight/480"
    "/aCodec/aac/aSamplerate/44100/aBitrate/128",
    "video-generic-AVC-720p-16_9": "/format/mp4/vCodec/H.264/vBitrate/2400/vFps/30/vWidth/1280/vHeight/720"
    "/aCodec/aac/aSamplerate/44100/aBitrate/160",
    "video-HLS-1000K": "/format/m3u8/vCodec/H.264/vBitrate/1000/vFps/30"
    "/aCodec/aac/aSamplerate/44100/aBitrate/128",
    "video-HLS-150K": "/format/m3u8/vCodec/H.264/vBitrate/150/vFps/30"
    "/aCodec/aac/aSamplerate/44100/aBitrate/128",
    "video-HLS-240K": "/format/m3u8/vCodec/H.264/vBitrate/240/vFps/30"
    "/aCodec/aac/aSamplerate/44100/aBitrate/128",
    "video-HLS-640K": "/format/m3u8/vCodec/H.264/vBitrate/640/vFps/30"
    "/aCodec/aac/aSamplerate/44100/aBitrate/128",
    "video-web": "/format/mp4/vCodec/H.264/vBitrate/2200/vFps/30/vWidth/1280/vHeight/720"
    "/aCodec/aac/aSamplerate/44100/aBitrate/160",
}

FORMATS = ("mp4", "flv", "m3u8")
V_PRESETS = ("veryfast", "fast", "medium", "slow", "slower", "veryslow")
PROFILES = ("baseline", "main", "high")
SAMPLE_RATES = (22050, 32000, 44100, 48000, 96000)
V_CODECS = {"h.264": "libx264", "h264": "libx264", "avc": "libx264", "libx264": "libx264"}
A_CODECS = {"aac": "aac", "mp3": "libmp3lame"}
HLS_SEGMENT = 10

T = TypeVar("T")


def encode_spec(
    encode_template: str, *, use_preset: bool, seek: float | None = None, duration: float | None = None
) -> TranscodeSpec:
    """The spec for one ``/3.0/mediaEncode`` call (``seek``/``duration`` in seconds, §6.12)."""
    if use_preset:
        if encode_template not in PRESETS:
            raise BadMediaOptions(
                f"unknown preset {encode_template!r} (presets: {', '.join(sorted(PRESETS))})"
            )
        spec = parse_template(PRESETS[encode_template])
    elif encode_template.startswith("/"):
        spec = parse_template(encode_template)
    else:
        raise BadMediaOptions(
            f"template {encode_template!r} is not defined here: send usePreset=1 with a preset name, "
            "or the template parameters themselves (/format/mp4/vBitrate/800/...)"
        )
    if seek is not None and seek < 0:
        raise BadMediaOptions("seek must not be negative")
    if duration is not None and duration <= 0:
        raise BadMediaOptions("duration must be positive")
    start = seek or None
    end = (seek or 0.0) + duration if duration is not None else None
    return replace(spec, start=start, end=end)


def snapshot_spec(time_ms: int, *, output: str | None = None) -> ThumbnailSpec:
    """One ``/3.0/snapshot`` frame at ``time`` milliseconds; PNG when the output name ends ``.png``."""
    if time_ms < 0:
        raise BadMediaOptions("time must be a non-negative number of milliseconds")
    png = (output or "").lower().endswith(".png")
    return ThumbnailSpec(start=time_ms / 1000, format="png" if png else "jpg")


def parse_template(template: str) -> TranscodeSpec:
    """``/format/mp4/vBitrate/800/...`` (the seed's preset parameters) into a spec."""
    parts = template.strip().strip("/").split("/")
    if len(parts) % 2:
        raise BadMediaOptions(f"template must be /name/value pairs; {parts[-1]!r} has no value")
    p = dict(zip(parts[::2], parts[1::2], strict=True))
    for key in p:
        if key not in _KEYS:
            raise BadMediaOptions(f"unknown template parameter {key!r}")

    fmt = _get(p, "format", _one_of(FORMATS)) or "mp4"
    crf = _get(p, "vCrf", _int_in(0, 51))
    bitrate = _get(p, "vBitrate", _int_in(10, 50000))
    fps = _get(p, "vFps", _int_in(0, 60))
    channels = _get(p, "aChannels", _int_in(2, 2))
    return TranscodeSpec(
        container=container(fmt),
        video_codec=V_CODECS[_get(p, "vCodec", _one_of(tuple(V_CODECS), fold=True)) or "h.264"],
        audio_codec=A_CODECS[_get(p, "aCodec", _one_of(tuple(A_CODECS), fold=True)) or "aac"],
        width=_get(p, "vWidth", _int_in(64, 4096)),
        height=_get(p, "vHeight", _int_in(64, 4096)),
        video_bitrate=None if crf is not None else bitrate,
        crf=crf if crf is not None or bitrate is not None else 26,
        fps=float(fps) if fps else None,
        gop=_get(p, "vGop", _int_in(1, 100000)) or 250,
        profile=_get(p, "vProfile", _one_of(PROFILES, fold=True)) or "high",
        preset=_get(p, "vPreset", _one_of(V_PRESETS, fold=True)) or "slow",
        interlaced=_get(p, "vScanMode", _one_of(("interlaced", "progressive"), fold=True)) == "interlaced",
        maxrate=_get(p, "vMaxrate", _int_in(10, 50000)),
        bufsize=_get(p, "vBufsize", _int_in(1000, 128000)) or 6000,
        audio_samplerate=_get(p, "aSamplerate", _rate) or 44100,
        audio_bitrate=_get(p, "aBitrate", _int_in(8, 1000)) or 128,
        audio_channels=channels or 2,
        hls_segment=HLS_SEGMENT if fmt == "m3u8" else None,
    )


_KEYS = frozenset(
    ["format", "vCodec", "vFps", "vGop", "vProfile", "vBitrate", "vCrf", "vWidth", "vHeight", "vPreset",
     "vScanMode", "vMaxrate", "vBufsize", "aCodec", "aSamplerate", "aBitrate", "aChannels"]
)  # fmt: skip


def _get(p: dict[str, str], key: str, parse: Callable[[str, str], T]) -> T | None:
    return parse(key, p[key]) if key in p else None


def _int_in(low: int, high: int) -> Callable[[str, str], int]:
    def parse(key: str, value: str) -> int:
        if not re.fullmatch(r"\d{1,9}", value) or not low <= int(value) <= high:
            raise BadMediaOptions(f"{key} must be a whole number in [{low},{high}], got {value!r}")
        return int(value)

    return parse


def _one_of(choices: tuple[str, ...], *, fold: bool = False) -> Callable[[str, str], str]:
    def parse(key: str, value: str) -> str:
        v = value.lower() if fold else value
        if v not in choices:
            raise BadMediaOptions(f"{key} must be one of {', '.join(choices)}, got {value!r}")
        return v

    return parse


def _rate(key: str, value: str) -> int:
    if not value.isdigit() or int(value) not in SAMPLE_RATES:
        raise BadMediaOptions(f"{key} must be one of {', '.join(map(str, SAMPLE_RATES))}, got {value!r}")
    return int(value)

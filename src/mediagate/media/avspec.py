"""One typed description of an audio/video job, whichever dialect asked for it.

UPYUN's avopts (:mod:`avopts`) and Wantu's presets and templates (:mod:`wantu_presets`) both
parse into these values, and :mod:`video` is the only code that turns them into an ffmpeg
command line. Every field is already validated: the runner trusts it.

Bitrates are kbps, times seconds, sizes pixels. ``None`` means "as the source" (or the
container's default codec).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mediagate.media.averrors import BadMediaOptions


@dataclass(frozen=True)
class Container:
    """An output format users name (``mp4``, ``m3u8``…) and how ffmpeg writes it."""

    name: str
    muxer: str
    suffix: str
    video_codec: str | None
    audio_codec: str | None


CONTAINERS: dict[str, Container] = {
    c.name: c
    for c in (
        Container("mp4", "mp4", "mp4", "libx264", "aac"),
        Container("mov", "mov", "mov", "libx264", "aac"),
        Container("m4a", "ipod", "m4a", None, "aac"),
        Container("flv", "flv", "flv", "libx264", "aac"),
        Container("m3u8", "hls", "m3u8", "libx264", "aac"),
        Container("ts", "mpegts", "ts", "libx264", "aac"),
        Container("mkv", "matroska", "mkv", "libx264", "aac"),
        Container("webm", "webm", "webm", "libvpx-vp9", "libopus"),
        Container("ogv", "ogg", "ogv", "libtheora", "libvorbis"),
        Container("gif", "gif", "gif", "gif", None),
        Container("webp", "webp", "webp", "libwebp_anim", None),
        Container("mp3", "mp3", "mp3", None, "libmp3lame"),
        Container("ogg", "ogg", "ogg", None, "libvorbis"),
        Container("aac", "adts", "aac", None, "aac"),
        Container("wav", "wav", "wav", None, "pcm_s16le"),
        Container("flac", "flac", "flac", None, "flac"),
    )
}
"""Output formats we write; ``mp4``-family names map to their ffmpeg muxer."""

ALIASES = {"hls": "m3u8", "mpeg4": "mp4", "m4v": "mp4", "oga": "ogg", "jpeg": "jpg"}

X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
                "veryslow")  # fmt: skip
PROFILES = ("baseline", "main", "high")

MAX_SIDE = 4096
"""No output side beyond this (Wantu's vWidth/vHeight bound; UPYUN's largest preset is 3840)."""


def container(name: str) -> Container:
    key = ALIASES.get(name.lower(), name.lower())
    if key not in CONTAINERS:
        raise BadMediaOptions(f"unsupported output format {name!r} (supported: {', '.join(CONTAINERS)})")
    return CONTAINERS[key]


def container_for_suffix(path: str | None) -> Container | None:
    """The container a save_as/output name asks for by its suffix, if it names one we write."""
    if not path or "." not in path.rsplit("/", 1)[-1]:
        return None
    suffix = path.rsplit(".", 1)[-1].lower()
    key = ALIASES.get(suffix, suffix)
    return CONTAINERS.get(key)


GRAVITIES = ("northwest", "north", "northeast", "west", "center", "east", "southwest", "south", "southeast")


@dataclass(frozen=True)
class Watermark:
    """A PNG/WebP from the bucket laid over the picture (UPYUN ``/wmImg/``).

    ``dx``/``dy`` move it from its ``gravity`` corner: positive is east/south.
    """

    path: str
    gravity: str = "northeast"
    dx: int = -20
    dy: int = 15
    scale: float | None = None
    """Width as a fraction of the picture's width (Wantu templates); None = the image's own size."""
    opacity: float | None = None
    """0-1, multiplied into the image's own alpha (Wantu templates); None = as drawn."""


@dataclass(frozen=True)
class TranscodeSpec:
    """Transcode one source into one output (or one HLS playlist with its segments)."""

    container: Container
    audio_only: bool = False
    width: int | None = None
    height: int | None = None
    keep_orientation: bool = False
    """UPYUN ``/as/1``: a portrait source gets the target size turned to portrait too."""
    video_bitrate: int | None = None
    video_bitrate_cap: int | None = None
    """A size preset's cap: min(source bitrate, cap) when no explicit bitrate is given."""
    fps: float | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    audio_bitrate: int | None = None
    audio_quality: int | None = None
    """libmp3lame VBR quality 0-9 (UPYUN ``/vbr/``)."""
    audio_samplerate: int | None = None
    audio_channels: int | None = None
    no_audio: bool = False
    no_video: bool = False
    crf: int | None = None
    gop: int | None = None
    profile: str | None = None
    level: str | None = None
    preset: str | None = None
    maxrate: int | None = None
    bufsize: int | None = None
    interlaced: bool = False
    speed: float | None = None
    rotate: Literal["auto", "90", "180", "270"] = "auto"
    keep_metadata: bool = True
    sar: str | None = None
    dar: str | None = None
    start: float | None = None
    end: float | None = None
    hls_segment: int | None = None
    """Segment seconds; set exactly when the container is ``m3u8``."""
    return_info: bool = False
    watermark: Watermark | None = None

    @property
    def is_hls(self) -> bool:
        return self.container.muxer == "hls"

    @property
    def extra_paths(self) -> tuple[str, ...]:
        """Bucket paths besides the source that the caller fetches and hands to ``transcode``."""
        return (self.watermark.path,) if self.watermark else ()


@dataclass(frozen=True)
class ThumbnailSpec:
    """Frame grabs: one at ``start``, or ``count`` evenly spaced over [start, end)."""

    count: int = 1
    start: float = 0.0
    end: float | None = None
    width: int | None = None
    height: int | None = None
    format: Literal["jpg", "png"] = "jpg"

    @property
    def extra_paths(self) -> tuple[str, ...]:
        return ()


@dataclass(frozen=True)
class ProbeSpec:
    """Metadata only: no output file (UPYUN ``type: probe``)."""


@dataclass(frozen=True)
class ConcatSpec:
    """Join bucket files around the source: ``before`` + source + ``after`` (UPYUN ``/h/`` and
    ``/i/``, in the order given), into one output. Every input must have the same picture size;
    ``copy`` joins the streams as they are (same codecs required), else they are re-encoded."""

    container: Container
    before: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    copy: bool = False
    audio_only: bool = False
    return_info: bool = False

    @property
    def is_hls(self) -> bool:
        return False

    @property
    def extra_paths(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.before, *self.after)))


StepJob = TranscodeSpec | ThumbnailSpec | ConcatSpec


@dataclass(frozen=True)
class ChainSpec:
    """UPYUN ``type: chain``: up to four steps, each working on the previous step's output; only
    the last step's output is kept (frame grabs and HLS only as the last step)."""

    steps: tuple[StepJob, ...]
    return_info: bool = False

    @property
    def extra_paths(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p for step in self.steps for p in step.extra_paths))


AvJob = TranscodeSpec | ThumbnailSpec | ProbeSpec | ConcatSpec | ChainSpec

"""Audio/video work: probe, transcode (HLS included) and frame grabs, by running ffmpeg.

ffmpeg comes from the ``imageio-ffmpeg`` wheel (a static build; ``IMAGEIO_FFMPEG_EXE`` points
at another one), so video works on a fresh machine with nothing installed by hand. It runs as a
separate process, never linked into ours: a malformed file that crashes a decoder takes down
that process only, a timeout kills its whole process group, memory goes back to the system when
it exits, and its GPL build stays a separate program we talk to through its command line.

Contract for callers (the task queue):

* every failure is a :class:`~mediagate.media.averrors.MediaTaskError` with a ``status`` and a
  short ``reason`` that names no server path; nothing else escapes for bad input;
* outputs are written into a private staging folder and moved into ``out_dir`` only when ffmpeg
  succeeded, so a failed or killed run leaves no partial output under the final names; the list
  of outputs is returned (an HLS playlist first, then its segments in play order);
* concurrency is the caller's: each call runs one ffmpeg at a time with ``limits.threads``
  threads, so N workers use at most N x threads cores;
* ffmpeg dies with the worker (``PR_SET_PDEATHSIG``): a SIGKILLed worker leaves no transcode
  running, only a hidden ``.<name>.*.partial`` folder in ``out_dir``; give each attempt a fresh
  ``out_dir`` (or remove those) and the retry publishes exactly one set of outputs.

The stream dump ffmpeg prints for ``-i`` (``av_dump_format``) is the probe: the wheel ships no
ffprobe, and the dump's layout is fixed by the pinned ffmpeg build and checked by the tests.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mediagate.media.averrors import (
    BadMediaOptions,
    FfmpegUnavailable,
    NotMedia,
    TranscodeFailed,
    TranscodeTimeout,
)
from mediagate.media.avspec import ThumbnailSpec, TranscodeSpec, Watermark

STDERR_LIMIT = 1 << 20
"""Bytes of ffmpeg's stderr we read back: enough for any dump, bounded for hostile metadata."""


@dataclass(frozen=True)
class VideoLimits:
    """Per-call budgets. ``timeout`` bounds one ffmpeg run; a grab of n frames runs n of them."""

    timeout: float = 600.0
    probe_timeout: float = 30.0
    threads: int = 2
    max_duration: float = 6 * 3600.0
    max_source_pixels: int = 8192 * 4320


FFMPEG_HINT = "pip install 'mediagate[video]' (or set IMAGEIO_FFMPEG_EXE to an ffmpeg binary)"


@functools.cache
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary: ``IMAGEIO_FFMPEG_EXE``, else the ``video`` extra's wheel, else one on
    PATH. The wheel's build is GPL, so it is an optional extra (``make`` installs it)."""
    named = os.environ.get("IMAGEIO_FFMPEG_EXE")
    if named:
        return named
    try:
        import imageio_ffmpeg
    except ImportError:
        found = shutil.which("ffmpeg")
        if found is None:
            raise FfmpegUnavailable(f"video tasks need ffmpeg: {FFMPEG_HINT}") from None
        return found
    return str(imageio_ffmpeg.get_ffmpeg_exe())


# --------------------------------------------------------------------------- probe


@dataclass(frozen=True)
class StreamInfo:
    index: int
    type: str
    codec: str
    codec_desc: str
    bitrate: int | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    rotation: int = 0
    channels: int | None = None
    samplerate: int | None = None
    attached_pic: bool = False
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def display_size(self) -> tuple[int, int] | None:
        """Width and height as shown, after the rotation tag."""
        if self.width is None or self.height is None:
            return None
        return (self.height, self.width) if self.rotation % 180 else (self.width, self.height)


@dataclass(frozen=True)
class MediaInfo:
    format: str
    fullname: str
    duration: float | None
    bitrate: int | None
    filesize: int
    streams: tuple[StreamInfo, ...]
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def video(self) -> StreamInfo | None:
        return next((s for s in self.streams if s.type == "video" and not s.attached_pic), None)

    @property
    def audio(self) -> StreamInfo | None:
        return next((s for s in self.streams if s.type == "audio"), None)

    def to_upyun(self) -> dict[str, Any]:
        """The ``info`` object of a ``naga`` callback (shared/specs/upyun-apps.md §3.2).

        Stream durations are the container's: the dump gives no per-stream duration.
        """
        streams: list[dict[str, Any]] = []
        for s in self.streams:
            d: dict[str, Any] = {
                "index": s.index,
                "type": s.type,
                "codec": s.codec,
                "codec_desc": s.codec_desc,
            }
            if self.duration is not None:
                d["duration"] = self.duration
            if s.bitrate is not None:
                d["bitrate"] = s.bitrate
            if s.type == "video":
                d.update(video_width=s.width, video_height=s.height, video_fps=s.fps)
                if s.rotation:
                    d["video_rotate"] = s.rotation
            if s.type == "audio":
                d.update(audio_channels=s.channels, audio_samplerate=float(s.samplerate or 0))
            if s.attached_pic:
                d["attached_pic"] = 1
            if s.metadata:
                d["metadata"] = dict(s.metadata)
            streams.append(d)
        fmt: dict[str, Any] = {"format": self.format, "fullname": self.fullname, "filesize": self.filesize}
        if self.duration is not None:
            fmt["duration"] = self.duration
        if self.bitrate is not None:
            fmt["bitrate"] = float(self.bitrate)
        return {"streams": streams, "format": fmt}


def probe(path: Path, *, limits: VideoLimits = VideoLimits(), own_playlist: bool = False) -> MediaInfo:
    """What ``path`` holds; :class:`NotMedia` when it is no audio/video ffmpeg can read.

    Playlists are refused (see ``_REFERENCING``) unless ``own_playlist``: an HLS playlist this
    module wrote, probed for ``return_info``.
    """
    if not path.is_file():
        raise NotMedia("source file is missing")
    with path.open("rb") as f:
        head = f.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(_REFERENCING) and not own_playlist:
        raise NotMedia("playlists and other files that point at further files are not accepted as a source")
    args = [ffmpeg_exe(), "-hide_banner", "-nostdin", *input_args(path)]
    rc, err = _run(args, timeout=limits.probe_timeout, paths={path: "input"})
    info = parse_dump(err, filesize=path.stat().st_size)
    if info is None or not info.streams:
        raise NotMedia(f"source is not a readable audio/video file ({_reason(err) or f'exit {rc}'})")
    if info.format in _REFERENCING_FORMATS and not own_playlist:
        raise NotMedia(f"a {info.format} file points at further files and is not accepted as a source")
    if info.format == "tty":  # ffmpeg renders a .txt/.ans file as video; it is text, not media
        raise NotMedia("source is text, not an audio/video file")
    return info


_REFERENCING = (b"#EXTM3U", b"ffconcat", b"<?xml", b"<MPD", b"v=0")
"""Sources that make ffmpeg open other files or sockets (HLS, concat, DASH, SDP): refused before
ffmpeg sees them, so an upload can never read another object or reach the network."""
_REFERENCING_FORMATS = frozenset({"hls", "dash", "concat", "sdp", "rtsp", "rtp"})


def input_args(src: Path) -> list[str]:
    """``-i`` for an untrusted local file: the ``file:`` protocol only (no network, no
    ``subfile:``/``data:`` tricks) and an explicit ``file:`` prefix, so a ``:`` in the name is
    never read as a protocol."""
    if "%" in str(src):  # image2 would read a %d in the name as a numbered sequence of files
        raise ValueError(f"input path must not contain '%': {src}")
    return ["-protocol_whitelist", "file", "-i", f"file:{src}"]


_INPUT = re.compile(r"^Input #0, (.+), from '")
_DURATION = re.compile(r"^\s+Duration: (N/A|(\d+):(\d\d):(\d\d(?:\.\d+)?)).*?bitrate: (N/A|\d+) kb/s")
_STREAM = re.compile(r"^\s+Stream #0:(\d+)(?:\[\w+\])?(?:\([^)]*\))?: (\w+): ([^\s,]+)(.*)$")
_SIZE = re.compile(r", (\d{1,5})x(\d{1,5})(?=[ ,]|$)")
_FPS = re.compile(r", (\d+(?:\.\d+)?)(k?) fps")
_KBPS = re.compile(r", (\d+) kb/s")
_AUDIO = re.compile(r", (\d+) Hz, ([^,]+)")
_ROTATION = re.compile(r"rotation of (-?\d+(?:\.\d+)?) degrees")
_TAG = re.compile(r"^\s+(\S[^:]*?)\s*: ?(.*)$")
_MORE = re.compile(r"^\s+: ?(.*)$")  # a multi-line tag value goes on after "  : "
_LAYOUTS = {"mono": 1, "stereo": 2, "2.1": 3, "3.0": 3, "quad": 4, "4.0": 4, "5.0": 5, "5.0(side)": 5,
            "5.1": 6, "5.1(side)": 6, "6.1": 7, "7.1": 8}  # fmt: skip


def parse_dump(text: str, *, filesize: int) -> MediaInfo | None:
    """Parse ``ffmpeg -i`` output for input #0; ``None`` when ffmpeg could not open it."""
    fmt: str | None = None
    duration: float | None = None
    bitrate: int | None = None
    meta: dict[str, str] = {}
    streams: list[dict[str, Any]] = []
    target: dict[str, str] | None = None
    target_indent = 0
    for line in text.splitlines():
        if line.startswith(("Input #1", "Output #")):
            break
        if m := _INPUT.match(line):
            fmt, target, target_indent = m.group(1), None, 0
            continue
        if fmt is None:
            continue
        if line.strip() == "Metadata:":
            target = streams[-1]["metadata"] if streams else meta
            target_indent = len(line) - len(line.lstrip()) + 1
            continue
        if m := _DURATION.match(line):
            if m.group(1) != "N/A":
                duration = int(m.group(2)) * 3600 + int(m.group(3)) * 60 + float(m.group(4))
            bitrate = int(m.group(5)) * 1000 if m.group(5) != "N/A" else None
            target = None
            continue
        if m := _STREAM.match(line):
            streams.append(_stream(m))
            target = None
            continue
        if streams and (m := _ROTATION.search(line)):
            streams[-1]["rotation"] = round(-float(m.group(1))) % 360
            continue
        indent = len(line) - len(line.lstrip())
        if target is not None and indent >= target_indent and (m := _MORE.match(line)):
            if target:
                last = next(reversed(target))
                target[last] += "\n" + m.group(1)
        elif target is not None and indent >= target_indent and (m := _TAG.match(line)):
            target[m.group(1)] = m.group(2)
        else:
            target = None
    if fmt is None:
        return None
    names = _format_names()
    codecs = _codec_names()
    return MediaInfo(
        format=fmt,
        fullname=names.get(fmt, fmt),
        duration=duration,
        bitrate=bitrate,
        filesize=filesize,
        streams=tuple(StreamInfo(codec_desc=codecs.get(s["codec"], s["codec"]), **s) for s in streams),
        metadata=meta,
    )


def _stream(m: re.Match[str]) -> dict[str, Any]:
    rest = m.group(4)
    s: dict[str, Any] = {"index": int(m.group(1)), "type": m.group(2).lower(), "codec": m.group(3)}
    s["metadata"] = {}
    s["attached_pic"] = "(attached pic)" in rest
    if kb := _KBPS.search(rest):
        s["bitrate"] = int(kb.group(1)) * 1000
    if s["type"] == "video":
        if size := _SIZE.search(rest):
            s["width"], s["height"] = int(size.group(1)), int(size.group(2))
        if fps := _FPS.search(rest):
            s["fps"] = float(fps.group(1)) * (1000 if fps.group(2) else 1)
    if s["type"] == "audio" and (a := _AUDIO.search(rest)):
        s["samplerate"] = int(a.group(1))
        layout = a.group(2).strip()
        n = re.fullmatch(r"(\d+) channels.*", layout)
        s["channels"] = int(n.group(1)) if n else _LAYOUTS.get(layout)
    return s


@functools.cache
def _format_names() -> dict[str, str]:
    """Demuxer name → long name (``mov,mp4,m4a,3gp,3g2,mj2`` → ``QuickTime / MOV``)."""
    return _listing(["-demuxers"], r"^ D.?\s+(\S+)\s+(.+)$")


@functools.cache
def _codec_names() -> dict[str, str]:
    return _listing(["-codecs"], r"^ [D.][E.][VASDT][I.][L.][S.] (\S+)\s+(.+?)(?: \((?:de|en)coders: .*)?$")


def _listing(flag: list[str], pattern: str) -> dict[str, str]:
    _, out = _run([ffmpeg_exe(), "-hide_banner", *flag], timeout=30, stdout=True)
    return {m.group(1): m.group(2).strip() for line in out.splitlines() if (m := re.match(pattern, line))}


# --------------------------------------------------------------------------- transcode


def transcode(
    spec: TranscodeSpec,
    src: Path,
    out_dir: Path,
    *,
    name: str = "output",
    limits: VideoLimits = VideoLimits(),
    files: Mapping[str, Path] | None = None,
    source: MediaInfo | None = None,
) -> list[Path]:
    """Transcode ``src`` per ``spec`` into ``out_dir/<name>.<suffix>`` (HLS: plus ``<name>-NNNNN.ts``).

    ``files`` maps each of ``spec.extra_paths`` (the watermark) to a local copy; ``source`` is
    ``probe(src)`` when the caller already has it.
    """
    source = _check_source(source or probe(src, limits=limits), limits)
    if not (spec.audio_only or spec.no_video) and source.video is None:
        raise BadMediaOptions("the source has no video stream (use type 'audio' for audio files)")
    if (spec.audio_only or spec.no_video) and source.audio is None:
        raise BadMediaOptions("the source has no audio stream")
    missing = [p for p in spec.extra_paths if p not in (files or {})]
    if missing:
        raise ValueError(f"transcode needs local copies of {missing}")
    watermark = (files or {})[spec.watermark.path] if spec.watermark else None
    if watermark is not None:
        try:
            mark = probe(watermark, limits=limits).video
        except NotMedia:
            mark = None
        if mark is None or mark.codec not in ("png", "webp") or not mark.width or not mark.height:
            raise BadMediaOptions("the watermark (/wmImg/) must be a PNG or WebP image")
    with _staging(out_dir, name) as stage:
        args = transcode_command(spec, src, source, stage, name, threads=limits.threads, watermark=watermark)
        paths = {src: "input", stage: "output", **({watermark: "watermark"} if watermark else {})}
        _ffmpeg(args, timeout=limits.timeout, paths=paths)
        return _publish(stage, out_dir)


def transcode_command(
    spec: TranscodeSpec,
    src: Path,
    source: MediaInfo,
    stage: Path,
    name: str,
    *,
    threads: int,
    watermark: Path | None = None,
) -> list[str]:
    """The exact ffmpeg argv :func:`transcode` runs (public so the benchmark can run it bare)."""
    out = stage / f"{name}.{spec.container.suffix}"
    args = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-threads", str(threads)]
    if spec.start is not None:
        args += ["-ss", _secs(spec.start)]
    if spec.end is not None:
        args += ["-to", _secs(spec.end)]
    args += input_args(src)
    video = not (spec.audio_only or spec.no_video) and spec.container.video_codec is not None
    audio = not spec.no_audio and spec.container.audio_codec is not None and source.audio is not None
    if video and watermark is not None:
        args += input_args(watermark)
    if video:
        args += _video_args(spec, source, watermarked=watermark is not None)
    else:
        args += ["-vn"]
    if audio:
        args += ["-map", "0:a:0", *_audio_args(spec)]
    else:
        args += ["-an"]
    args += ["-map_metadata", "0" if spec.keep_metadata else "-1", "-threads", str(threads)]
    args += ["-filter_threads", str(threads)]
    if spec.container.muxer in ("mp4", "mov", "ipod"):
        args += ["-movflags", "+faststart"]
    if spec.is_hls:
        seg = spec.hls_segment or 10
        if video:
            args += ["-force_key_frames", f"expr:gte(t,n_forced*{seg})"]
        args += ["-f", "hls", "-hls_time", str(seg), "-hls_list_size", "0", "-hls_playlist_type", "vod"]
        args += ["-hls_segment_filename", str(stage / f"{name}-%05d.ts")]
    else:
        args += ["-f", spec.container.muxer]
    return [*args, str(out)]


def _video_args(spec: TranscodeSpec, source: MediaInfo, *, watermarked: bool) -> list[str]:
    codec = spec.video_codec or spec.container.video_codec or "libx264"
    filters = _video_filters(spec, source)
    if codec == "copy":
        if filters or spec.watermark:
            raise BadMediaOptions(
                "/vcodec/copy keeps the picture as it is: it cannot resize, turn or mark it"
            )
        return ["-map", "0:v:0", "-c:v", "copy"]
    if watermarked and spec.watermark is not None:
        base = ",".join(filters) or "null"
        at = _overlay_at(spec.watermark)
        graph = f"[0:v:0]{base}[base];[1:v:0]format=rgba[mark];[base][mark]overlay={at}[out]"
        args = ["-filter_complex", graph, "-map", "[out]", "-c:v", codec]
    else:
        args = ["-map", "0:v:0", "-c:v", codec]
        if filters:
            args += ["-vf", ",".join(filters)]
    if codec in ("libx264", "libx265", "libvpx", "libvpx-vp9", "libtheora"):
        args += ["-pix_fmt", "yuv420p"]
    return args + _encoder_args(spec, source, codec)


def _overlay_at(mark: Watermark) -> str:
    """overlay's x:y for a gravity corner moved by dx (east) and dy (south)."""
    g = mark.gravity
    x = "0" if g.endswith("west") else "main_w-overlay_w" if g.endswith("east") else "(main_w-overlay_w)/2"
    y = (
        "0"
        if g.startswith("north")
        else "main_h-overlay_h"
        if g.startswith("south")
        else "(main_h-overlay_h)/2"
    )
    return f"x={x}+({mark.dx}):y={y}+({mark.dy})"


def _video_filters(spec: TranscodeSpec, source: MediaInfo) -> list[str]:
    filters = []
    turn = {"90": "transpose=1", "180": "hflip,vflip", "270": "transpose=2"}.get(spec.rotate)
    if turn:
        filters.append(turn)
    size = _target_size(spec, source)
    if size is not None:
        filters += [f"scale={size[0]}:{size[1]}", "setsar=1"]
    if spec.sar:
        filters.append(f"setsar={spec.sar.replace(':', '/')}")
    if spec.dar:
        filters.append(f"setdar={spec.dar.replace(':', '/')}")
    if spec.speed:
        filters.append(f"setpts=PTS/{spec.speed:g}")
    return filters


def _encoder_args(spec: TranscodeSpec, source: MediaInfo, codec: str) -> list[str]:
    args: list[str] = []
    bitrate = spec.video_bitrate
    if bitrate is None and spec.crf is None and spec.video_bitrate_cap is not None:
        have = (source.video.bitrate if source.video else None) or source.bitrate
        bitrate = min(have // 1000, spec.video_bitrate_cap) if have else spec.video_bitrate_cap
    if bitrate is not None:
        args += ["-b:v", f"{bitrate}k"]
    elif spec.crf is not None:
        args += ["-crf", str(spec.crf)]
    if spec.maxrate is not None:
        args += ["-maxrate", f"{spec.maxrate}k", "-bufsize", f"{spec.bufsize or 2 * spec.maxrate}k"]
    elif spec.bufsize is not None and bitrate is not None:
        args += ["-bufsize", f"{spec.bufsize}k"]
    if codec in ("libx264", "libx265") and spec.preset:
        args += ["-preset", spec.preset]
    if codec == "libx264" and spec.profile:
        args += ["-profile:v", spec.profile]
    if codec == "libx264" and spec.level:
        args += ["-level", spec.level]
    if spec.gop is not None:
        args += ["-g", str(spec.gop)]
    if spec.fps is not None:
        args += ["-r", f"{spec.fps:g}"]
    if spec.interlaced:
        args += ["-flags", "+ilme+ildct"]
    if spec.container.muxer == "webp":
        args += ["-loop", "0"]
    if codec == "libx265" and spec.container.muxer in ("mp4", "mov"):
        args += ["-tag:v", "hvc1"]  # the tag Apple players require for HEVC in MP4
    return args


def _audio_args(spec: TranscodeSpec) -> list[str]:
    codec = spec.audio_codec or spec.container.audio_codec or "aac"
    if codec == "copy":
        return ["-c:a", "copy"]
    args = ["-c:a", codec]
    if spec.audio_quality is not None:
        args += ["-q:a", str(spec.audio_quality)]
    elif spec.audio_bitrate is not None:
        args += ["-b:a", f"{spec.audio_bitrate}k"]
    if spec.audio_samplerate is not None:
        args += ["-ar", str(spec.audio_samplerate)]
    if spec.audio_channels is not None:
        args += ["-ac", str(spec.audio_channels)]
    if spec.speed:
        args += ["-af", f"atempo={spec.speed:g}"]
    return args


def _target_size(spec: TranscodeSpec, source: MediaInfo) -> tuple[int, int] | None:
    """Even sides (H.264 needs them); a missing side follows the aspect ratio (``-2``)."""
    if spec.width is None and spec.height is None:
        return None
    w, h = spec.width or -2, spec.height or -2
    shown = source.video.display_size if source.video else None
    if spec.keep_orientation and shown and shown[1] > shown[0] and w > h > 0:
        w, h = h, w
    return (w - w % 2 if w > 0 else w, h - h % 2 if h > 0 else h)


# --------------------------------------------------------------------------- frame grabs


def snapshot(
    spec: ThumbnailSpec,
    src: Path,
    out_dir: Path,
    *,
    name: str = "output",
    limits: VideoLimits = VideoLimits(),
) -> list[Path]:
    """Grab ``spec.count`` frames: one → ``<name>.<fmt>``, several → ``<name>1.<fmt>``, ``<name>2…``."""
    source = _check_source(probe(src, limits=limits), limits)
    if source.video is None:
        raise BadMediaOptions("the source has no video stream to take a picture from")
    duration = source.duration
    if duration is not None and spec.start >= duration:
        raise BadMediaOptions(f"time offset {spec.start:g} s is beyond the video's end ({duration:g} s)")
    end = spec.end if spec.end is not None else duration
    if spec.count > 1 and end is None:
        raise BadMediaOptions("the video's duration is unknown: give /es/ for several images")
    if end is not None and duration is not None:
        end = min(end, duration)
    step = ((end or 0.0) - spec.start) / spec.count
    times = [spec.start + k * step for k in range(spec.count)]
    with _staging(out_dir, name) as stage:
        for k, t in enumerate(times, start=1):
            out = stage / f"{name}{k if spec.count > 1 else ''}.{spec.format}"
            args = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
            args += ["-threads", str(limits.threads), "-ss", _secs(t), *input_args(src), "-map", "0:v:0"]
            args += ["-frames:v", "1", "-vf", _grab_filter(spec), *_grab_codec(spec)]
            args += ["-f", "image2", "-update", "1", str(out)]  # one file: its name is no pattern
            _ffmpeg(args, timeout=limits.timeout, paths={src: "input", stage: "output"})
            if not out.is_file():
                raise TranscodeFailed(f"no frame could be decoded at {t:g} s")
        return _publish(stage, out_dir, key=_grab_order)


def grab_every(
    src: Path,
    out_dir: Path,
    *,
    interval: float,
    size: tuple[int, int] | None = None,
    fmt: Literal["jpg", "png"] = "jpg",
    max_frames: int = 500,
    name: str = "output",
    limits: VideoLimits = VideoLimits(),
) -> list[tuple[float, Path]]:
    """One frame every ``interval`` seconds from the start, in one decoding pass (ffmpeg's ``fps``
    filter picks the frame nearest each instant): ``[(shot time in s, file)…]`` in play order,
    files ``<name>00001.<fmt>`` …. More than ``max_frames`` instants → BadMediaOptions."""
    source = _check_source(probe(src, limits=limits), limits)
    if source.video is None:
        raise NotMedia("the source has no video stream to take pictures from")
    duration = source.duration
    if not duration:
        raise NotMedia("the source is not a video of known length (a still image?)")
    count = int(duration // interval) + (0 if duration % interval == 0 and duration > 0 else 1)
    if count > max_frames:
        raise BadMediaOptions(
            f"one frame every {interval:g} s of a {duration:g} s video is {count} frames; "
            f"at most {max_frames}: give a longer interval"
        )
    vf = f"fps=1/{interval:g}:round=near:eof_action=pass"  # pass: a video shorter than one interval
    if size is not None:
        vf += f",scale={size[0]}:{size[1]},setsar=1"
    codec = _grab_codec(ThumbnailSpec(format=fmt))
    with _staging(out_dir, name) as stage:
        args = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y"]
        args += ["-threads", str(limits.threads), *input_args(src), "-map", "0:v:0", "-an"]
        args += ["-vf", vf, "-frames:v", str(count), *codec, "-f", "image2", str(stage / f"{name}%05d.{fmt}")]
        _ffmpeg(args, timeout=limits.timeout, paths={src: "input", stage: "output"})
        files = _publish(stage, out_dir, key=_grab_order)
    return [(round(k * interval, 3), f) for k, f in enumerate(files)]


def _grab_filter(spec: ThumbnailSpec) -> str:
    if spec.width is None and spec.height is None:
        return "null"
    return f"scale={spec.width or -1}:{spec.height or -1},setsar=1"


def _grab_codec(spec: ThumbnailSpec) -> list[str]:
    if spec.format == "png":
        return ["-c:v", "png"]
    return ["-c:v", "mjpeg", "-pix_fmt", "yuvj420p", "-q:v", "2"]


def _grab_order(path: Path) -> tuple[int, str]:
    digits = re.search(r"(\d+)$", path.stem)
    return (int(digits.group(1)) if digits else 0, path.name)


# --------------------------------------------------------------------------- running ffmpeg


def _check_source(info: MediaInfo, limits: VideoLimits) -> MediaInfo:
    if info.duration is not None and info.duration > limits.max_duration:
        raise BadMediaOptions(
            f"source is {info.duration:.0f} s long; the limit is {limits.max_duration:.0f} s"
        )
    v = info.video
    if v and v.width and v.height and v.width * v.height > limits.max_source_pixels:
        raise BadMediaOptions(f"source frames of {v.width}x{v.height} are larger than this server accepts")
    return info


_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")


@contextlib.contextmanager
def _staging(out_dir: Path, name: str) -> Iterator[Path]:
    if not _NAME.fullmatch(name):  # no "/", no "%" (ffmpeg patterns), no leading dot
        raise ValueError(f"output name must match {_NAME.pattern}: {name!r}")
    if "%" in str(out_dir):  # the HLS segment pattern would read it as a placeholder
        raise ValueError(f"output folder must not contain '%': {out_dir}")
    out_dir.mkdir(parents=True, exist_ok=True)
    # absolute, so no "name:" prefix of a relative path is taken for a protocol
    stage = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".partial", dir=out_dir.absolute()))
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _publish(stage: Path, out_dir: Path, key: Callable[[Path], Any] | None = None) -> list[Path]:
    """Move finished outputs into place: playlist first, then files in name (= play) order."""
    files = sorted(stage.iterdir(), key=key or (lambda p: (p.suffix != ".m3u8", p.name)))
    if not files:
        raise TranscodeFailed("ffmpeg finished but wrote no output")
    outputs = []
    for f in files:
        target = out_dir / f.name
        os.replace(f, target)
        outputs.append(target)
    return outputs


def _ffmpeg(args: list[str], *, timeout: float, paths: dict[Path, str]) -> None:
    rc, err = _run(args, timeout=timeout, paths=paths)
    if rc != 0:
        raise TranscodeFailed(f"ffmpeg failed: {_reason(err) or f'exit status {rc}'}")


def _run(
    args: list[str], *, timeout: float, paths: dict[Path, str] | None = None, stdout: bool = False
) -> tuple[int, str]:
    """Run ffmpeg in its own process group; kill the group at ``timeout``. Returns (rc, text)."""
    with tempfile.TemporaryFile() as captured:
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=captured if stdout else subprocess.DEVNULL,
            stderr=subprocess.DEVNULL if stdout else captured,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # only prctl(2): safe between fork and exec
        )
        try:
            rc = proc.wait(timeout=timeout)
        except BaseException as exc:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            if isinstance(exc, subprocess.TimeoutExpired):
                raise TranscodeTimeout(f"ffmpeg ran longer than {timeout:g} s and was stopped") from None
            raise
        captured.seek(0)
        text = captured.read(STDERR_LIMIT).decode("utf-8", "replace")
    for path, label in sorted((paths or {}).items(), key=lambda kv: -len(str(kv[0]))):
        text = text.replace(str(path), label)
    return rc, text


_LIBC = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True) if sys.platform == "linux" else None
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL ffmpeg when the worker dies (even by SIGKILL), so a
    killed worker leaves no orphan transcode running; the retried task starts a fresh one.
    Linux ties this to the *thread* that started ffmpeg, which blocks in :func:`_run` until
    ffmpeg is gone, so a worker thread pool is fine."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


_NOISE = re.compile(r"^\[[^\]]* @ 0x[0-9a-f]+\] ")
_CASCADE = (
    "At least one output file",
    "Input #",
    "Duration:",
    "Task finished with error code",
    "Terminating thread",
    "Error sending frames to consumers",
    "Nothing was written into output file",
    "Could not open encoder before EOF",
    "Error opening input file",
    "Error opening input files",
)


def _reason(stderr: str, limit: int = 300) -> str:
    """ffmpeg's first two error lines (the cause; what follows is its cascade), without ``[ctx @ 0x…]``."""
    lines = []
    for raw in stderr.splitlines():
        line = raw.strip()
        while (m := _NOISE.match(line)) is not None:
            line = line[m.end() :]
        if line and not line.startswith(_CASCADE) and line not in lines:
            lines.append(line)
    text = "; ".join(lines[:2])
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _secs(value: float) -> str:
    return f"{value:.3f}"

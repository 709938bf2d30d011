"""UPYUN's ``avopts`` grammar (``naga`` apps and the pretreatment API) into an :data:`AvJob`.

``/s/240p(4:3)/as/1/r/30``: ``/key/value`` pairs, values never contain ``/``. The task's
``type`` picks the key set (shared/specs/upyun-apps.md §2): ``video``/``hls``/``nbhd``
transcode, ``audio`` transcodes audio, ``thumbnail`` grabs frames, ``probe`` reads metadata.
Anything we cannot honour is a :class:`BadMediaOptions` whose reason names the key, so the
task fails with status 400 and a description the user can act on (§6.17), never a guess.

Bucket paths inside values (``/wmImg/``, ``/i/``, ``/h/``) are URL-safe base64, padding optional;
the caller fetches them (``extra_paths``) and hands the files to ``video``.

Concatenation: ``/h/`` (before the source) and ``/i/`` (after it) repeat and keep their order,
``/codec/copy`` joins without re-encoding; ``vconcat``/``aconcat`` are the old names of
``video``/``audio`` with ``/i/``. Concat keys take no other key but ``/f/`` (the spec: "use
chain"). ``chain``: ``/<type>/<k>/<v>…/<type>/<k>/<v>…``, a type name in key position opens the
next step, at most :data:`MAX_CHAIN` steps, frame grabs and HLS only last.

Not served (a clear 400): ``/cr/`` (reversed GIF/WebP loops).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Literal, TypeVar, cast

from mediagate.media.averrors import BadMediaOptions
from mediagate.media.avspec import (
    GRAVITIES,
    MAX_SIDE,
    PROFILES,
    AvJob,
    ChainSpec,
    ConcatSpec,
    Container,
    ProbeSpec,
    ThumbnailSpec,
    TranscodeSpec,
    Watermark,
    container,
    container_for_suffix,
)

SIZE_PRESETS: dict[str, tuple[int, int, int]] = {
    "2160p(16:9)": (3840, 2160, 8000),
    "1440p(16:9)": (2560, 1440, 4000),
    "1080p(16:9)": (1920, 1080, 2560),
    "720p(16:9)": (1280, 720, 1500),
    "720p(4:3)": (960, 720, 1500),
    "540p(16:9)": (960, 540, 800),
    "480p(16:9)": (854, 480, 800),
    "480p(4:3)": (640, 480, 500),
    "480p(3:2)": (720, 480, 512),
    "360p(16:9)": (640, 360, 500),
    "360p(4:3)": (480, 360, 384),
    "240p(4:3)": (320, 240, 300),
}
"""``/s/`` presets: width, height, bitrate cap in kbps (§2.6; the two old-page presets keep their
old fixed rate as the cap)."""

TYPES = ("video", "hls", "nbhd", "audio", "thumbnail", "probe", "vconcat", "aconcat", "chain")
STEP_TYPES = ("video", "hls", "nbhd", "audio", "thumbnail", "vconcat", "aconcat")
"""Types that may be a step of a ``chain``; their names in key position open a step."""
MAX_CHAIN = 4
CONCAT_KEYS = frozenset(["i", "h", "codec"])
NOT_SERVED_KEYS = {
    "cr": "reversed GIF/WebP loops",
}
MAX_CONCAT = 20
"""Files joined to one source (``/i/`` plus ``/h/``); each is bounded like a source."""
SAMPLE_RATES = (0, 16000, 22050, 24000, 32000, 44100, 48000)
CHANNELS = {"1": 1, "2": 2, "5.1": 6, "7.1": 8}
ACODECS = {"libmp3lame": "libmp3lame", "libfdk_aac": "aac", "aac": "aac", "libvorbis": "libvorbis",
           "libopus": "libopus", "copy": "copy"}  # fmt: skip
VCODECS = ("libx264", "libx265", "libvpx", "libvpx-vp9", "libtheora", "copy")
SCENES = ("auto", "self_portrait", "animation", "film_calm", "film_dramatic")

_VIDEO_KEYS = frozenset(["f", "s", "as", "vb", "r", "sp", "sm", "vcodec", "acodec", "an", "vn", "su", "ar",
                         "ac", "sar", "dar", "pv", "level", "ht", "ss", "es", "ab", "ct",
                         "scene", "wmImg", "wmGravity", "wmDx", "wmDy"])  # fmt: skip
_AUDIO_KEYS = frozenset(["f", "ac", "ab", "vbr", "sm", "ss", "es", "ar", "acodec"])
_THUMB_KEYS = frozenset(["o", "n", "ss", "es", "s", "f"])

T = TypeVar("T")


def parse_avopts(type_: str, avopts: str, *, save_as: str | None = None, return_info: bool = False) -> AvJob:
    """Parse one ``naga`` task. ``save_as`` only lends its suffix (the container, §2.2)."""
    if type_ not in TYPES:
        raise BadMediaOptions(f"unknown type {type_!r} (expected one of: {', '.join(TYPES)})")
    if type_ == "chain":
        return _chain(avopts, save_as, return_info)
    return _step(type_, _tokens(avopts), save_as, return_info)


def _step(type_: str, tokens: list[tuple[str, str]], save_as: str | None, return_info: bool) -> AvJob:
    if type_ == "probe":
        _pairs(tokens)
        return ProbeSpec()
    if type_ in ("vconcat", "aconcat") or any(k in CONCAT_KEYS for k, _ in tokens):
        return _concat(type_, tokens, save_as, return_info)
    pairs = _pairs(tokens)
    if type_ == "thumbnail":
        return _thumbnail(pairs, save_as)
    if type_ == "audio":
        return _audio(pairs, save_as, return_info)
    return _video(type_, pairs, save_as, return_info)


def _tokens(avopts: str) -> list[tuple[str, str]]:
    """The ``/key/value`` pairs in order (``/i/`` and ``/h/`` repeat, so no dict here)."""
    parts = avopts.strip().strip("/").split("/") if avopts.strip().strip("/") else []
    if len(parts) % 2:
        raise BadMediaOptions(f"avopts must be /key/value pairs; {parts[-1]!r} has no value")
    tokens = list(zip(parts[::2], parts[1::2], strict=True))
    for key, value in tokens:
        if key in NOT_SERVED_KEYS:
            raise BadMediaOptions(f"/{key}/ ({NOT_SERVED_KEYS[key]}) is not supported by this server")
        if not value:
            raise BadMediaOptions(f"/{key}/ has an empty value")
    return tokens


def _pairs(tokens: list[tuple[str, str]]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for key, value in tokens:
        if key in CONCAT_KEYS:
            raise BadMediaOptions(f"/{key}/ (concatenation) does not apply to this type")
        pairs[key] = value  # a repeated key: the later one wins, as UPYUN's processing does
    return pairs


def _concat(type_: str, tokens: list[tuple[str, str]], save_as: str | None, return_info: bool) -> ConcatSpec:
    """``/h/``… source ``/i/``…, ``/codec/copy``; nothing else but ``/f/`` (§2.3: use chain)."""
    if type_ not in ("video", "audio", "vconcat", "aconcat"):
        raise BadMediaOptions(f"concatenation (/i/, /h/) needs type video or audio, not {type_!r}")
    audio = type_ in ("audio", "aconcat")
    before = [bucket_path("h", v) for k, v in tokens if k == "h"]
    after = [bucket_path("i", v) for k, v in tokens if k == "i"]
    if not before and not after:
        raise BadMediaOptions(f"type {type_!r} needs at least one /i/ (a base64 bucket path to append)")
    if len(before) + len(after) > MAX_CONCAT:
        raise BadMediaOptions(f"at most {MAX_CONCAT} files can be joined to the source")
    others = sorted({k for k, _ in tokens} - CONCAT_KEYS - {"f"})
    if others:
        raise BadMediaOptions(
            f"concatenation (/i/, /h/, /codec/) cannot be mixed with /{others[0]}/: "
            "use type 'chain' to concatenate and then process"
        )
    pairs = {k: v for k, v in tokens}
    copy = pairs.get("codec")
    if copy is not None and copy != "copy":
        raise BadMediaOptions(f"/codec/ must be copy (join without re-encoding), got {copy!r}")
    out = _output_container(pairs, save_as, "mp3" if audio else "mp4")
    if audio and out.audio_codec is None:
        raise BadMediaOptions(f"audio concatenation needs an audio format, not {out.name!r}")
    if not audio and (out.video_codec is None or out.muxer == "hls"):
        raise BadMediaOptions(f"video concatenation cannot write {out.name!r} (mp4, flv, mkv, ts, webm…)")
    return ConcatSpec(container=out, before=tuple(before), after=tuple(after), copy=copy == "copy",
                      audio_only=audio, return_info=return_info)  # fmt: skip


def _chain(avopts: str, save_as: str | None, return_info: bool) -> ChainSpec:
    """``/video/s/240p(4:3)/thumbnail/o/1``: each step works on the previous one's output."""
    parts = avopts.strip().strip("/").split("/") if avopts.strip().strip("/") else []
    steps: list[tuple[str, list[str]]] = []
    i = 0
    while i < len(parts):
        if parts[i] in STEP_TYPES:
            steps.append((parts[i], []))
            i += 1
            continue
        if parts[i] in ("chain", "probe"):
            raise BadMediaOptions(f"type {parts[i]!r} cannot be a step of a chain")
        if not steps:
            raise BadMediaOptions(
                f"a chain starts with a step type ({', '.join(STEP_TYPES)}), not /{parts[i]}/"
            )
        steps[-1][1].extend(parts[i : i + 2])
        i += 2
    if not steps:
        raise BadMediaOptions("a chain needs at least one step, e.g. /video/s/240p(4:3)/thumbnail/o/1")
    if len(steps) > MAX_CHAIN:
        raise BadMediaOptions(f"a chain has at most {MAX_CHAIN} steps, got {len(steps)}")
    jobs: list[TranscodeSpec | ThumbnailSpec | ConcatSpec] = []
    for n, (type_, words) in enumerate(steps, start=1):
        last = n == len(steps)
        try:
            job = _step(type_, _tokens("/".join(words)), save_as if last else None, return_info and last)
        except BadMediaOptions as exc:
            raise BadMediaOptions(f"chain step {n} ({type_}): {exc.reason}") from None
        assert not isinstance(job, ProbeSpec | ChainSpec)  # _step never makes these
        if not last and (isinstance(job, ThumbnailSpec) or job.is_hls):
            raise BadMediaOptions(f"chain step {n} ({type_}): frame grabs and HLS can only be the last step")
        jobs.append(job)
    return ChainSpec(steps=tuple(jobs), return_info=return_info)


def _check_keys(pairs: dict[str, str], allowed: frozenset[str], type_: str) -> None:
    for key in pairs:
        if key not in allowed:
            raise BadMediaOptions(f"unknown avopts key /{key}/ for type {type_!r}")


def _get(pairs: dict[str, str], key: str, parse: Callable[[str, str], T]) -> T | None:
    return parse(key, pairs[key]) if key in pairs else None


def _bool(key: str, value: str) -> bool:
    if value.lower() in ("1", "true"):
        return True
    if value.lower() in ("0", "false"):
        return False
    raise BadMediaOptions(f"/{key}/ must be 1 or 0, got {value!r}")


def _int_in(low: int, high: int) -> Callable[[str, str], int]:
    def parse(key: str, value: str) -> int:
        if not re.fullmatch(r"\d{1,9}", value) or not low <= int(value) <= high:
            raise BadMediaOptions(f"/{key}/ must be a whole number from {low} to {high}, got {value!r}")
        return int(value)

    return parse


def _float_in(low: float, high: float) -> Callable[[str, str], float]:
    def parse(key: str, value: str) -> float:
        if not re.fullmatch(r"\d{1,6}(\.\d{1,6})?", value) or not low <= float(value) <= high:
            raise BadMediaOptions(f"/{key}/ must be a number from {low:g} to {high:g}, got {value!r}")
        return float(value)

    return parse


def _one_of(choices: tuple[str, ...]) -> Callable[[str, str], str]:
    def parse(key: str, value: str) -> str:
        if value not in choices:
            raise BadMediaOptions(f"/{key}/ must be one of {', '.join(choices)}, got {value!r}")
        return value

    return parse


def parse_time(key: str, value: str) -> float:
    """``HH:MM:SS`` (UPYUN), also ``MM:SS``, plain seconds and a fraction (``00:00:01.5``)."""
    m = re.fullmatch(r"(?:(?:(\d{1,3}):)?([0-5]?\d):)?(\d{1,6}(?:\.\d{1,6})?)", value)
    if not m or (m.group(2) is not None and float(m.group(3)) >= 60):
        raise BadMediaOptions(f"/{key}/ must be a time like 00:01:30, got {value!r}")
    hours, minutes, seconds = m.group(1) or "0", m.group(2) or "0", m.group(3)
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _ratio(key: str, value: str) -> str:
    m = re.fullmatch(r"(\d{1,5}):(\d{1,5})", value)
    if not m or int(m.group(1)) == 0 or int(m.group(2)) == 0:
        raise BadMediaOptions(f"/{key}/ must be a ratio like 16:9, got {value!r}")
    return value


def parse_size(key: str, value: str) -> tuple[int, int]:
    """``WxH`` or ``W:H`` (thumbnails use the colon form, §6.10)."""
    m = re.fullmatch(r"(\d{1,5})[x:](\d{1,5})", value)
    if not m:
        raise BadMediaOptions(f"/{key}/ must be WxH (640x480) or a preset like 240p(4:3), got {value!r}")
    w, h = int(m.group(1)), int(m.group(2))
    if not (2 <= w <= MAX_SIDE and 2 <= h <= MAX_SIDE):
        raise BadMediaOptions(f"/{key}/ sides must be from 2 to {MAX_SIDE} pixels, got {value!r}")
    return w, h


def _span(pairs: dict[str, str]) -> tuple[float | None, float | None]:
    start, end = _get(pairs, "ss", parse_time), _get(pairs, "es", parse_time)
    if start is not None and end is not None and end <= start:
        raise BadMediaOptions(f"/es/ ({pairs['es']}) must come after /ss/ ({pairs['ss']})")
    return start, end


def _output_container(pairs: dict[str, str], save_as: str | None, default: str) -> Container:
    by_suffix = container_for_suffix(save_as)
    if by_suffix is not None:
        return by_suffix
    return container(pairs.get("f", default))


def _video(type_: str, pairs: dict[str, str], save_as: str | None, return_info: bool) -> TranscodeSpec:
    _check_keys(pairs, _VIDEO_KEYS, type_)
    out = _output_container(pairs, save_as, "m3u8" if type_ == "hls" else "mp4")
    if out.video_codec is None:
        raise BadMediaOptions(f"type {type_!r} needs a video format, not {out.name!r}")
    hls = _get(pairs, "ht", _int_in(1, 3600))
    if type_ == "hls" or hls is not None:
        if out.name != "m3u8":
            raise BadMediaOptions("HLS segmenting (/ht/) needs save_as ending in .m3u8")
        hls = hls or 10
    elif out.name == "m3u8":
        hls = 10

    spec = TranscodeSpec(container=out, hls_segment=hls, return_info=return_info)
    if "s" in pairs:
        if pairs["s"] in SIZE_PRESETS:
            w, h, cap = SIZE_PRESETS[pairs["s"]]
            spec = replace(spec, width=w, height=h, video_bitrate_cap=cap)
        else:
            w, h = parse_size("s", pairs["s"])
            spec = replace(spec, width=w, height=h)
        spec = replace(spec, keep_orientation=bool(_get(pairs, "as", _bool)))
    elif "as" in pairs:
        raise BadMediaOptions("/as/ only applies together with /s/")

    vcodec = _get(pairs, "vcodec", _one_of(VCODECS))
    if type_ == "nbhd":
        if "vb" in pairs:
            raise BadMediaOptions("/vb/ cannot be set for type 'nbhd' (it picks its own quality)")
        kind = _get(pairs, "ct", _one_of(("h264", "h265"))) or "h264"
        scene = _get(pairs, "scene", _one_of(SCENES))
        if scene is not None and kind != "h264":
            raise BadMediaOptions("/scene/ only applies with /ct/h264")
        vcodec = "libx265" if kind == "h265" else "libx264"
        spec = replace(spec, crf=26, video_bitrate_cap=None)
    elif "ct" in pairs or "scene" in pairs:
        raise BadMediaOptions("/ct/ and /scene/ only apply to type 'nbhd'")

    start, end = _span(pairs)
    speed = _get(pairs, "su", _float_in(1.0, 10.0))
    return replace(
        spec,
        watermark=_watermark(pairs),
        video_codec=vcodec,
        audio_codec=_get(pairs, "acodec", _acodec),
        video_bitrate=_get(pairs, "vb", _int_in(10, 100000)),
        audio_bitrate=_get(pairs, "ab", _int_in(8, 1000)),
        fps=_get(pairs, "r", _float_in(1, 120)),
        rotate=_get(pairs, "sp", _rotation) or "auto",
        keep_metadata=_get(pairs, "sm", _bool) is not False,
        no_audio=bool(_get(pairs, "an", _bool)),
        no_video=bool(_get(pairs, "vn", _bool)),
        speed=speed if speed != 1.0 else None,
        audio_samplerate=_get(pairs, "ar", _samplerate),
        audio_channels=_get(pairs, "ac", _channels),
        sar=_get(pairs, "sar", _ratio),
        dar=_get(pairs, "dar", _ratio),
        profile=_get(pairs, "pv", _one_of(PROFILES)),
        level=_get(pairs, "level", _level),
        start=start,
        end=end,
    )


def _watermark(pairs: dict[str, str]) -> Watermark | None:
    if "wmImg" not in pairs:
        for key in ("wmGravity", "wmDx", "wmDy"):
            if key in pairs:
                raise BadMediaOptions(f"/{key}/ only applies together with /wmImg/")
        return None
    path = bucket_path("wmImg", pairs["wmImg"])
    if not path.lower().endswith((".png", ".webp")):
        raise BadMediaOptions("/wmImg/ must name a .png or .webp image")
    gravity = _get(pairs, "wmGravity", _one_of(GRAVITIES)) or "northeast"
    dx, dy = (-20, 15) if gravity == "northeast" else (0, 0)
    offset = _int_signed(-10000, 10000)
    return Watermark(path=path, gravity=gravity, dx=_or(_get(pairs, "wmDx", offset), dx),
                     dy=_or(_get(pairs, "wmDy", offset), dy))  # fmt: skip


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def _int_signed(low: int, high: int) -> Callable[[str, str], int]:
    def parse(key: str, value: str) -> int:
        if not re.fullmatch(r"-?\d{1,6}", value) or not low <= int(value) <= high:
            raise BadMediaOptions(f"/{key}/ must be a whole number from {low} to {high}, got {value!r}")
        return int(value)

    return parse


def bucket_path(key: str, value: str) -> str:
    """A URL-safe base64 bucket path (``L2EvYi5wbmc`` → ``/a/b.png``), padding optional."""
    try:
        raw = base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_", validate=True)
        path = raw.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadMediaOptions(f"/{key}/ must be the URL-safe base64 of a bucket path") from None
    if not path.startswith("/") or "\x00" in path or any(p in ("..", ".") for p in path.split("/")):
        raise BadMediaOptions(f"/{key}/ must decode to an absolute bucket path such as /a/b.png")
    return path


def _acodec(key: str, value: str) -> str:
    return ACODECS[_one_of(tuple(ACODECS))(key, value)]


def _rotation(key: str, value: str) -> Literal["auto", "90", "180", "270"]:
    return cast(Literal["auto", "90", "180", "270"], _one_of(("auto", "90", "180", "270"))(key, value))


def _samplerate(key: str, value: str) -> int | None:
    if not value.isdigit() or int(value) not in SAMPLE_RATES:
        raise BadMediaOptions(f"/{key}/ must be one of {', '.join(map(str, SAMPLE_RATES))}, got {value!r}")
    return int(value) or None  # 0 keeps the source rate (§6.8)


def _channels(key: str, value: str) -> int:
    if value not in CHANNELS:
        raise BadMediaOptions(f"/{key}/ must be one of {', '.join(CHANNELS)}, got {value!r}")
    return CHANNELS[value]


def _level(key: str, value: str) -> str:
    if not re.fullmatch(r"[1-6](\.[0-2])?", value):
        raise BadMediaOptions(f"/{key}/ must be an H.264 level such as 3.0 or 4.1, got {value!r}")
    return value


def _audio(pairs: dict[str, str], save_as: str | None, return_info: bool) -> TranscodeSpec:
    _check_keys(pairs, _AUDIO_KEYS, "audio")
    out = _output_container(pairs, save_as, "mp3")
    if out.audio_codec is None:
        raise BadMediaOptions(f"type 'audio' needs an audio format, not {out.name!r}")
    quality = _get(pairs, "vbr", _int_in(0, 9))
    acodec = _get(pairs, "acodec", _acodec)
    if quality is not None and (acodec or out.audio_codec) != "libmp3lame":
        raise BadMediaOptions("/vbr/ only applies to MP3 output")
    start, end = _span(pairs)
    return TranscodeSpec(
        container=out,
        audio_only=True,
        no_video=True,
        audio_codec=acodec,
        audio_bitrate=_get(pairs, "ab", _int_in(8, 1000)),
        audio_quality=quality,
        audio_samplerate=_get(pairs, "ar", _samplerate),
        audio_channels=_get(pairs, "ac", _int_in(1, 8)),
        keep_metadata=_get(pairs, "sm", _bool) is not False,
        start=start,
        end=end,
        return_info=return_info,
    )


def _thumbnail(pairs: dict[str, str], save_as: str | None) -> ThumbnailSpec:
    _check_keys(pairs, _THUMB_KEYS, "thumbnail")
    one = _get(pairs, "o", _bool)
    if one is None:
        raise BadMediaOptions("/o/ is required for type 'thumbnail' (1 = one image)")
    count = 1 if one else _get(pairs, "n", _int_in(1, 100))
    if count is None:
        raise BadMediaOptions("/n/ (number of images) is required when /o/ is 0")
    fmt = pairs.get("f")
    if fmt is None:
        fmt = "png" if (save_as or "").lower().endswith(".png") else "jpg"
    elif fmt not in ("jpg", "png"):
        raise BadMediaOptions(f"/f/ must be jpg or png for thumbnails, got {fmt!r}")
    start, end = _span(pairs)
    size = _get(pairs, "s", parse_size)
    return ThumbnailSpec(
        count=count,
        start=start or 0.0,
        end=None if one else end,
        width=size[0] if size else None,
        height=size[1] if size else None,
        format="png" if fmt == "png" else "jpg",
    )

"""The UPYUN image-processing grammar, parsed once into a :class:`ProcessingSpec`.

``/fw/300/format/webp``: key/value path segments (a leading ``/`` is optional). The same spec
serves upload-time ``x-gmkerl-thumb``, on-the-fly ``GET /<bucket>/<key>!/fw/300`` and named
versions, and its :meth:`ProcessingSpec.canonical` string keys the result cache, so two spellings
of the same work (``/quality/80/fw/300`` and ``fw/300/quality/80``) share one cached result.

Resize modes (one per spec; a later one replaces an earlier one, as in UPYUN):

=========== ============================================================================
``fw/W``     width W, height follows the aspect ratio
``fh/H``     height H, width follows
``fwfh/WxH`` fit inside WxH; an image already inside is left alone (``fwfh2``: enlarge too)
``fxfn/WxH`` cover WxH (both sides at least W and H); small images are left alone (``fxfn2``:
             enlarge too)
``both/WxH`` exactly WxH, aspect ratio not kept (enlarges too)
``sq/S``     an SxS square: cover, then centre crop
``max/M``    longest side M;  ``min/M``: shortest side M
``scale/P``  P percent (1-1000); ``wscale/P``, ``hscale/P``: width or height only
=========== ============================================================================

``force/true`` lets ``fwfh``/``fxfn`` enlarge. ``crop/WxHaXaY`` (before the resize) and
``clip/WxHaXaY`` (after it) take offsets from ``gravity/<northwest|north|…|center>``.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field, replace

from mediagate.core.errors import BadRequest

MAX_SIDE = 10000
"""No output side may be asked for beyond this (the engine also checks the computed result)."""

GRAVITIES = (
    "northwest",
    "north",
    "northeast",
    "west",
    "center",
    "east",
    "southwest",
    "south",
    "southeast",
)

FORMATS = {"jpg": "jpg", "jpeg": "jpg", "png": "png", "webp": "webp", "gif": "gif", "avif": "avif"}

SINGLE_MODES = ("fw", "fh", "sq", "max", "min", "scale", "wscale", "hscale")
PAIR_MODES = ("fwfh", "fwfh2", "fxfn", "fxfn2", "both")

_PAIR = re.compile(r"^(\d{1,6})x(\d{1,6})$")
_BOX = re.compile(r"^(\d{1,6})x(\d{1,6})a(-?\d{1,6})a(-?\d{1,6})$")
_COLOUR = re.compile(r"^[0-9a-fA-F]{6}([0-9a-fA-F]{2})?$")
_TRUE = {"true", "1", "on", "yes"}
_FALSE = {"false", "0", "off", "no"}


@dataclass(frozen=True)
class Box:
    """A rectangle of ``width``x``height`` offset by ``x``, ``y`` from the gravity corner."""

    width: int
    height: int
    x: int = 0
    y: int = 0

    def text(self) -> str:
        return f"{self.width}x{self.height}a{self.x}a{self.y}"


@dataclass(frozen=True)
class Resize:
    mode: str
    a: int
    b: int = 0

    def text(self) -> str:
        return f"{self.mode}/{self.a}x{self.b}" if self.mode in PAIR_MODES else f"{self.mode}/{self.a}"


@dataclass(frozen=True)
class TextWatermark:
    text: str
    size: int = 32
    colour: str = "000000"
    """RRGGBB or RRGGBBAA."""
    align: str = "northwest"
    margin_x: int = 20
    margin_y: int = 20
    opacity: int = 100

    def text_spec(self) -> str:
        encoded = base64.urlsafe_b64encode(self.text.encode()).decode().rstrip("=")
        return (
            f"watermark/text/{encoded}/size/{self.size}/color/{self.colour}/align/{self.align}"
            f"/margin/{self.margin_x}x{self.margin_y}/opacity/{self.opacity}"
        )


@dataclass(frozen=True)
class ProcessingSpec:
    """Everything one processing request asks for; the engine applies it in a fixed order:
    orient, crop, resize, clip, rotate, blur, unsharp, watermark, border, canvas, encode."""

    resize: Resize | None = None
    force: bool = False
    gravity: str = "northwest"
    crop: Box | None = None
    clip: Box | None = None
    auto_orient: bool = True
    rotate: int = 0
    """Clockwise degrees after auto-orientation, 0-359."""
    format: str | None = None
    """jpg, png, webp, gif or avif; None keeps the source's format (BMP/TIFF/HEIF become jpg/png)."""
    quality: int | None = None
    lossless: bool = False
    compress: bool = False
    progressive: bool = False
    strip: bool = True
    """UPYUN drops metadata by default; ``exifswitch/true`` (or ``strip/false``) keeps it."""
    unsharp: bool = False
    blur: tuple[int, float] | None = None
    watermark: TextWatermark | None = None
    border: tuple[int, int, str] | None = None
    canvas: tuple[Box, str] | None = None
    extra: tuple[tuple[str, str], ...] = field(default=())
    """Accepted but meaningless here (e.g. ``noicc``): kept so canonical() still tells them apart."""

    @property
    def output_format(self) -> str | None:
        """The requested output format (``jpg``, ``png``, ``webp``, ``gif``, ``avif``) or None for
        "as the source"."""
        return self.format

    @property
    def is_noop(self) -> bool:
        return self == ProcessingSpec()

    def canonical(self) -> str:
        """One stable text per distinct piece of work, whatever order the request spelled it in."""
        parts: list[str] = []
        if self.resize is not None:
            parts.append(self.resize.text())
        if self.force:
            parts.append("force/true")
        if self.crop is not None or self.clip is not None or self.canvas is not None:
            parts.append(f"gravity/{self.gravity}")
        if self.crop is not None:
            parts.append(f"crop/{self.crop.text()}")
        if self.clip is not None:
            parts.append(f"clip/{self.clip.text()}")
        if not self.auto_orient:
            parts.append("auto-orient/false")
        if self.rotate:
            parts.append(f"rotate/{self.rotate}")
        if self.format is not None:
            parts.append(f"format/{self.format}")
        if self.quality is not None:
            parts.append(f"quality/{self.quality}")
        for name in ("lossless", "compress", "progressive", "unsharp"):
            if getattr(self, name):
                parts.append(f"{name}/true")
        if not self.strip:
            parts.append("strip/false")
        if self.blur is not None:
            parts.append(f"gaussblur/{self.blur[0]}x{self.blur[1]:g}")
        if self.watermark is not None:
            parts.append(self.watermark.text_spec())
        if self.border is not None:
            parts.append(f"border/{self.border[0]}x{self.border[1]}/brdcolor/{self.border[2]}")
        if self.canvas is not None:
            parts.append(f"canvas/{self.canvas[0].text()}/cvscolor/{self.canvas[1]}")
        parts.extend(f"{k}/{v}" for k, v in self.extra)
        return "/" + "/".join(parts)


def parse_thumb(spec: str) -> ProcessingSpec:
    """Parse ``/fw/300/format/webp``-style processing parameters; BadRequest names the bad one."""
    text = spec.strip()
    if len(text) > 2048:
        raise BadRequest("image processing parameters are too long", code="bad_thumb")
    segments = [s for s in text.strip("/").split("/")]
    if segments == [""]:
        raise BadRequest("empty image processing parameters", code="bad_thumb")
    if any(s == "" for s in segments):
        raise BadRequest("empty segment in image processing parameters", code="bad_thumb")
    values: dict[str, object] = {}
    extra: list[tuple[str, str]] = []
    wm: dict[str, str] = {}
    i = 0
    while i < len(segments):
        key = segments[i].lower()
        if key == "watermark":  # a marker: ``/watermark/text/<b64>/…`` or ``/watermark/url/<b64>/…``
            wm["type"] = ""
            i += 1
            continue
        if i + 1 >= len(segments):
            raise BadRequest(f"image processing parameter {key!r} has no value", code="bad_thumb")
        value = segments[i + 1]
        i += 2
        if key in SINGLE_MODES:
            low, high = (1, 1000) if key.endswith("scale") else (1, MAX_SIDE)
            values["resize"] = Resize(key, _int(key, value, low, high))
        elif key in PAIR_MODES:
            w, h = _pair(key, value)
            values["resize"] = Resize(key, w, h)
        elif key == "force":
            values["force"] = _bool(key, value)
        elif key == "gravity":
            g = value.lower()
            if g not in GRAVITIES:
                raise BadRequest(f"gravity {value!r} is not one of {', '.join(GRAVITIES)}", code="bad_thumb")
            values["gravity"] = g
        elif key in ("crop", "clip"):
            values[key] = _box(key, value)
        elif key == "rotate":
            if value.lower() == "auto":
                values["auto_orient"] = True
            else:
                degrees = _int(key, value, -360, 360)
                values["rotate"] = degrees % 360
        elif key in ("auto-orient", "autoorient"):
            values["auto_orient"] = _bool(key, value)
        elif key == "format":
            fmt = FORMATS.get(value.lower())
            if fmt is None:
                raise BadRequest(
                    f"format {value!r} is not supported (use {', '.join(sorted(set(FORMATS.values())))})",
                    code="bad_thumb",
                )
            values["format"] = fmt
        elif key == "quality":
            values["quality"] = _int(key, value, 1, 100)
        elif key in ("lossless", "compress", "progressive", "unsharp"):
            values[key] = _bool(key, value)
        elif key == "strip":
            values["strip"] = _bool(key, value)
        elif key == "exifswitch":
            values["strip"] = not _bool(key, value)
        elif key == "gaussblur":
            m = _PAIR.match(value)
            if m is None:
                raise BadRequest(f"gaussblur {value!r} must be <radius>x<sigma>", code="bad_thumb")
            radius, sigma = int(m.group(1)), int(m.group(2))
            if not (0 < radius <= 50 and 0 < sigma <= 50):
                raise BadRequest("gaussblur radius and sigma must be 1-50", code="bad_thumb")
            values["blur"] = (radius, float(sigma))
        elif key == "url":
            raise BadRequest("image watermarks (watermark/url) are not supported", code="not_supported")
        elif key in ("text", "size", "color", "align", "margin", "opacity", "font"):
            if "type" not in wm:
                raise BadRequest(
                    f"{key!r} belongs to a watermark: start with /watermark/text/", code="bad_thumb"
                )
            wm[key] = value
        elif key == "border":
            w, h = _pair(key, value, limit=1000)
            values["border"] = (w, h, "FFFFFF")
        elif key == "brdcolor":
            values["_brdcolor"] = _colour(key, value)
        elif key == "canvas":
            values["canvas"] = (_box(key, value), "FFFFFFFF")
        elif key == "cvscolor":
            values["_cvscolor"] = _colour(key, value)
        elif key in ("noicc", "lossy"):
            _bool(key, value)
            extra.append((key, value.lower()))
        else:
            raise BadRequest(f"unknown image processing parameter {key!r}", code="bad_thumb")
    border = values.pop("_brdcolor", None)
    if border is not None:
        if "border" not in values:
            raise BadRequest("brdcolor needs border", code="bad_thumb")
        b = values["border"]
        assert isinstance(b, tuple)
        values["border"] = (b[0], b[1], border)
    cvs = values.pop("_cvscolor", None)
    if cvs is not None:
        if "canvas" not in values:
            raise BadRequest("cvscolor needs canvas", code="bad_thumb")
        c = values["canvas"]
        assert isinstance(c, tuple)
        values["canvas"] = (c[0], cvs)
    if wm:
        values["watermark"] = _watermark(wm)
    result = ProcessingSpec(extra=tuple(extra))
    return replace(result, **values)  # type: ignore[arg-type]


LEGACY_TYPES = {
    "fix_width": "fw",
    "fix_height": "fh",
    "fix_width_or_height": "fwfh",
    "fix_both": "both",
    "fix_max": "max",
    "fix_min": "min",
    "fix_scale": "scale",
}


def parse_legacy(fields_: dict[str, str]) -> ProcessingSpec | None:
    """The old ``x-gmkerl-type/value/quality/unsharp/rotate/crop/exif-switch`` fields as a spec,
    or None when none of them asks for processing. ``x-gmkerl-thumbnail`` (a named version) and
    ``x-gmkerl-type: get_meta/get_theme_color`` are the caller's."""
    f = {k.lower(): v.strip() for k, v in fields_.items()}
    kind = f.get("x-gmkerl-type", "").lower()
    touched = False
    values: dict[str, object] = {}
    if kind and kind not in ("get_meta", "get_theme_color"):
        mode = LEGACY_TYPES.get(kind)
        if mode is None:
            raise BadRequest(f"x-gmkerl-type {kind!r} is not a known type", code="bad_thumb")
        value = f.get("x-gmkerl-value")
        if not value:
            raise BadRequest(f"x-gmkerl-type {kind} needs x-gmkerl-value", code="bad_thumb")
        if mode in PAIR_MODES:
            w, h = _pair("x-gmkerl-value", value)
            values["resize"] = Resize(mode, w, h)
        else:
            low, high = (1, 1000) if mode == "scale" else (1, MAX_SIDE)
            values["resize"] = Resize(mode, _int("x-gmkerl-value", value, low, high))
        touched = True
    if "x-gmkerl-crop" in f:
        values["crop"] = _box("x-gmkerl-crop", f["x-gmkerl-crop"])
        touched = True
    if "x-gmkerl-rotate" in f:
        rot = f["x-gmkerl-rotate"].lower()
        if rot == "auto":
            values["auto_orient"] = True
        else:
            degrees = _int("x-gmkerl-rotate", rot, 1, 360)
            values["rotate"] = degrees % 360
        touched = True
    if not touched and "x-gmkerl-quality" not in f and "x-gmkerl-unsharp" not in f:
        return None
    values["quality"] = _int("x-gmkerl-quality", f.get("x-gmkerl-quality", "95"), 1, 100)
    values["unsharp"] = _bool("x-gmkerl-unsharp", f.get("x-gmkerl-unsharp", "true"))
    if "x-gmkerl-exif-switch" in f:
        values["strip"] = not _bool("x-gmkerl-exif-switch", f["x-gmkerl-exif-switch"])
    return replace(ProcessingSpec(), **values)  # type: ignore[arg-type]


def overlay_legacy(base: ProcessingSpec, fields_: dict[str, str]) -> ProcessingSpec:
    """``base`` (a named version, ``x-gmkerl-thumbnail``, or ``x-gmkerl-thumb``) with the old
    table's fields that were given applied on top, as the seed allows ("可搭配其他 x-gmkerl-*
    参数使用"): each given field replaces what the base says about the same thing (size, crop,
    rotation, quality, sharpening, EXIF); the rest of the base stays. One pass, so the engine's
    fixed order (orient, crop, resize, rotate, …) applies to the whole."""
    f = {k.lower(): v.strip() for k, v in fields_.items() if k.lower() in LEGACY_FIELDS}
    if f.get("x-gmkerl-type", "").lower() in ("get_meta", "get_theme_color"):
        del f["x-gmkerl-type"]  # information, not processing: the caller answers it
    legacy = parse_legacy(f) if f else None
    if legacy is None:
        return base
    changes: dict[str, object] = {}
    if "x-gmkerl-type" in f:
        changes["resize"] = legacy.resize
    if "x-gmkerl-crop" in f:
        changes["crop"] = legacy.crop
    if "x-gmkerl-rotate" in f:
        if f["x-gmkerl-rotate"].lower() == "auto":
            changes["auto_orient"] = True
        else:
            changes["rotate"] = legacy.rotate
    if "x-gmkerl-quality" in f:
        changes["quality"] = legacy.quality
    if "x-gmkerl-unsharp" in f:
        changes["unsharp"] = legacy.unsharp
    if "x-gmkerl-exif-switch" in f:
        changes["strip"] = legacy.strip
    return replace(base, **changes)  # type: ignore[arg-type]


LEGACY_FIELDS = frozenset(
    {
        "x-gmkerl-type",
        "x-gmkerl-value",
        "x-gmkerl-quality",
        "x-gmkerl-unsharp",
        "x-gmkerl-rotate",
        "x-gmkerl-crop",
        "x-gmkerl-exif-switch",
    }
)
"""The old table's ``x-gmkerl-*`` fields (:func:`parse_legacy`)."""


def _int(name: str, value: str, low: int, high: int) -> int:
    if not re.fullmatch(r"-?\d{1,7}", value):
        raise BadRequest(f"{name} must be a whole number, not {value[:40]!r}", code="bad_thumb")
    number = int(value)
    if not low <= number <= high:
        raise BadRequest(f"{name} {number} is out of range {low}-{high}", code="bad_thumb")
    return number


def _pair(name: str, value: str, limit: int = MAX_SIDE) -> tuple[int, int]:
    m = _PAIR.match(value)
    if m is None:
        raise BadRequest(f"{name} must be <width>x<height>, not {value[:40]!r}", code="bad_thumb")
    w, h = int(m.group(1)), int(m.group(2))
    if not (1 <= w <= limit and 1 <= h <= limit):
        raise BadRequest(f"{name} {w}x{h} is out of range 1-{limit}", code="bad_thumb")
    return w, h


def _box(name: str, value: str) -> Box:
    m = _BOX.match(value)
    if m is None:
        pair = _PAIR.match(value)
        if pair is None:
            raise BadRequest(f"{name} must be <w>x<h>a<x>a<y>, not {value[:40]!r}", code="bad_thumb")
        box = Box(int(pair.group(1)), int(pair.group(2)))
    else:
        box = Box(int(m.group(1)), int(m.group(2)), int(m.group(3)), int(m.group(4)))
    if not (1 <= box.width <= 30000 and 1 <= box.height <= 30000):
        raise BadRequest(f"{name} size {box.width}x{box.height} is out of range", code="bad_thumb")
    return box


def _bool(name: str, value: str) -> bool:
    v = value.lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise BadRequest(f"{name} must be true or false, not {value[:40]!r}", code="bad_thumb")


def _colour(name: str, value: str) -> str:
    if not _COLOUR.match(value):
        raise BadRequest(f"{name} must be RRGGBB or RRGGBBAA, not {value[:40]!r}", code="bad_thumb")
    return value.upper()


def _watermark(wm: dict[str, str]) -> TextWatermark:
    if "text" not in wm:
        raise BadRequest("a text watermark needs watermark/text/<base64 text>", code="bad_thumb")
    raw = wm["text"]
    try:
        padded = raw.replace("-", "+").replace("_", "/") + "=" * (-len(raw) % 4)
        text = base64.b64decode(padded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadRequest("watermark text must be URL-safe base64 of UTF-8 text", code="bad_thumb") from None
    if not text or len(text) > 200:
        raise BadRequest("watermark text must be 1-200 characters", code="bad_thumb")
    align = wm.get("align", "northwest").lower()
    if align not in GRAVITIES:
        raise BadRequest(f"watermark align {align!r} is not one of {', '.join(GRAVITIES)}", code="bad_thumb")
    margin = _PAIR.match(wm.get("margin", "20x20"))
    if margin is None or int(margin.group(1)) > 1000 or int(margin.group(2)) > 1000:
        raise BadRequest("watermark margin must be <x>x<y>, each 0-1000", code="bad_thumb")
    return TextWatermark(
        text=text,
        size=_int("size", wm.get("size", "32"), 4, 1000),
        colour=_colour("color", wm.get("color", "000000")),
        align=align,
        margin_x=int(margin.group(1)),
        margin_y=int(margin.group(2)),
        opacity=_int("opacity", wm.get("opacity", "100"), 0, 100),
    )


__all__ = [
    "GRAVITIES",
    "LEGACY_TYPES",
    "Box",
    "ProcessingSpec",
    "Resize",
    "TextWatermark",
    "parse_legacy",
    "parse_thumb",
]

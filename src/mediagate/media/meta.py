"""UPYUN ``x-gmkerl-type: get_meta`` and ``get_theme_color`` answers.

Meta comes from the header (no decode); theme colours from a small shrink-on-load thumbnail, so
both stay cheap whatever the image's size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image as PILImage

from mediagate.core.errors import BadRequest, UnsupportedMedia
from mediagate.core.exif import read_exif
from mediagate.media._vips import vips
from mediagate.media.limits import ImageLimits
from mediagate.media.probe import check_limits, probe

THEME_SAMPLE_SIDE = 128


def image_meta(path: Path, limits: ImageLimits | None = None) -> dict[str, Any]:
    """``{"width", "height", "frames", "type", "orientation", "EXIF": {...}}``: width and height
    as displayed (EXIF orientation applied), type as UPYUN names it ("JPEG", "PNG" …)."""
    info = probe(path)
    if info is None:
        raise UnsupportedMedia("the file is not an image", code="not_an_image")
    if limits is not None:
        check_limits(info, limits)
    meta: dict[str, Any] = {
        "width": info.width,
        "height": info.height,
        "frames": info.frames,
        "type": info.format,
        "orientation": info.orientation,
    }
    exif = read_exif(path)
    if exif:
        meta["EXIF"] = exif
    return meta


def theme_colors(
    path: Path, count: int = 256, fmt: str = "dec", limits: ImageLimits | None = None
) -> list[int] | list[str]:
    """Dominant colours, most frequent first: ``dec`` gives integers ``0xRRGGBB`` in decimal,
    ``hex`` gives ``"#RRGGBB"`` strings (``x-gmkerl-extract-format``)."""
    if fmt not in ("dec", "hex"):
        raise BadRequest(f"x-gmkerl-extract-format must be dec or hex, not {fmt[:20]!r}", code="bad_thumb")
    if not 1 <= count <= 256:
        raise BadRequest("x-gmkerl-extract-color-count must be 1-256", code="bad_thumb")
    info = probe(path)
    if info is None:
        raise UnsupportedMedia("the file is not an image", code="not_an_image")
    check_limits(info, limits or ImageLimits())
    pyvips = vips()
    try:
        if info.format == "BMP":
            with PILImage.open(path) as im:
                im.thumbnail((THEME_SAMPLE_SIDE, THEME_SAMPLE_SIDE))
                sample = im.convert("RGB")
        else:
            thumb = pyvips.Image.thumbnail(f"{path}[fail_on=truncated]", THEME_SAMPLE_SIDE)
            if thumb.hasalpha():
                thumb = thumb.flatten(background=[255] * (thumb.bands - 1))
            if thumb.bands < 3:
                thumb = thumb.colourspace("srgb")
            thumb = thumb.cast("uchar")
            sample = PILImage.frombytes("RGB", (thumb.width, thumb.height), thumb.write_to_memory())
    except (pyvips.Error, OSError, ValueError):
        raise UnsupportedMedia("the image is corrupt or truncated", code="bad_image") from None
    quantised = sample.quantize(colors=count, method=PILImage.Quantize.FASTOCTREE, kmeans=1)
    palette = quantised.getpalette() or []
    counted = [(int(n), int(i)) for n, i in quantised.getcolors(maxcolors=256) or []]  # type: ignore[arg-type]
    counted.sort(key=lambda c: -c[0])
    colours: list[int] = []
    for _, index in counted:
        r, g, b = palette[index * 3 : index * 3 + 3]
        value = (r << 16) | (g << 8) | b
        if value not in colours:
            colours.append(value)
    if fmt == "hex":
        return [f"#{c:06X}" for c in colours]
    return colours

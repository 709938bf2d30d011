"""What an image is, from its header alone, and the bomb guard that runs before any decode.

libvips opens lazily: ``new_from_file`` reads the header and decodes no pixel, so probing a
50000x50000 PNG of a few KB costs a header read. The magic-number check comes first, so a file
that is no image never loads libvips (see ``_vips``). BMP has no libvips loader in the binary
wheel, so Pillow (also lazy) answers for it.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from mediagate.media._vips import vips
from mediagate.media.limits import ImageLimits

PILImage.MAX_IMAGE_PIXELS = None  # our own limits apply, from the header, before decoding

MIME = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "AVIF": "image/avif",
    "HEIF": "image/heif",
    "TIFF": "image/tiff",
    "BMP": "image/bmp",
}

_LOADERS = {
    "jpegload": "JPEG",
    "pngload": "PNG",
    "gifload": "GIF",
    "webpload": "WEBP",
    "tiffload": "TIFF",
    "heifload": "HEIF",  # AVIF or HEIF: told apart by heif-compression
}

_MAGIC = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
)


@dataclass(frozen=True)
class ImageProbe:
    format: str
    mime: str
    width: int
    """Displayed width: EXIF orientation 5-8 swaps width and height, as UPYUN reports them."""
    height: int
    raw_width: int
    raw_height: int
    frames: int
    orientation: int
    colourspace: str | None

    @property
    def animated(self) -> bool:
        return self.frames > 1


def probe(path: Path) -> ImageProbe | None:
    """Header-only facts about ``path``; None if it is not an image format we process."""
    try:
        with open(path, "rb") as f:
            head = f.read(32)
    except OSError:
        return None
    kind = _magic(head)
    if kind is None:
        return None
    if kind == "BMP":
        return _probe_pillow(path)
    pyvips = vips()  # only now, for something that looks like an image
    try:
        image = pyvips.Image.new_from_file(str(path), access="sequential")
        loader = str(image.get("vips-loader"))
        fmt = _LOADERS.get(loader)
        if fmt is None:
            return None
        if fmt == "HEIF" and _field(image, "heif-compression") == "av1":
            fmt = "AVIF"
        frames = int(_field(image, "n-pages") or 1)
        orientation = int(_field(image, "orientation") or 1)
        width = int(image.width)
        height = int(image.height)
        page_height = _field(image, "page-height")
        if frames > 1 and page_height:
            height = int(page_height)
        colourspace = str(image.interpretation) if image.interpretation else None
    except (pyvips.Error, ValueError, TypeError):
        return None
    if not 1 <= orientation <= 8:
        orientation = 1
    shown_w, shown_h = (height, width) if orientation >= 5 else (width, height)
    return ImageProbe(
        format=fmt,
        mime=MIME[fmt],
        width=shown_w,
        height=shown_h,
        raw_width=width,
        raw_height=height,
        frames=max(frames, 1),
        orientation=orientation,
        colourspace=colourspace,
    )


def probe_for_decode(path: Path) -> ImageProbe | None:
    """:func:`probe` for a file about to be decoded: a JPEG's facts come from Pillow's read of its
    markers (~70 us against libvips' ~450 us; the dimensions, orientation and colour space are
    the same). Pillow does not check the Huffman tables there, so a JPEG whose tables are corrupt
    passes this probe, which is why it is only for a caller whose decode refuses such a file."""
    with contextlib.suppress(OSError), open(path, "rb") as f:
        if _magic(f.read(32)) == "JPEG":
            found = _probe_jpeg(path)
            if found is not None:
                return found
    return probe(path)


def check_limits(p: ImageProbe, limits: ImageLimits) -> None:
    """Refuse an image too large to decode, from its header: the decompression-bomb guard."""
    limits.check(p.raw_width, p.raw_height, p.frames)


def _magic(head: bytes) -> str | None:
    for prefix, kind in _MAGIC:
        if head.startswith(prefix):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[4:8] == b"ftyp":
        return "HEIF"
    return None


def _field(image: Any, name: str) -> Any:
    if image.get_typeof(name) == 0:
        return None
    return image.get(name)


_JPEG_SPACES = {"RGB": "srgb", "L": "b-w", "CMYK": "cmyk"}
"""Pillow's mode of a JPEG -> libvips' interpretation of the same file."""


def _probe_jpeg(path: Path) -> ImageProbe | None:
    """A JPEG's facts from its markers with Pillow (see :func:`probe_for_decode`); None when
    Pillow cannot tell, and libvips then judges the file."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with PILImage.open(path, formats=("JPEG", "MPO")) as im:
                width, height = im.size
                mode = im.mode
                orientation = im.getexif().get(0x0112, 1)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, TypeError, KeyError):
        return None
    colourspace = _JPEG_SPACES.get(mode)
    if colourspace is None or width <= 0 or height <= 0:
        return None
    if not isinstance(orientation, int) or not 1 <= orientation <= 8:
        orientation = 1
    shown_w, shown_h = (height, width) if orientation >= 5 else (width, height)
    return ImageProbe(
        format="JPEG",
        mime=MIME["JPEG"],
        width=shown_w,
        height=shown_h,
        raw_width=width,
        raw_height=height,
        frames=1,  # an MPO's extra pictures are not frames: libvips reads one page too
        orientation=orientation,
        colourspace=colourspace,
    )


def _probe_pillow(path: Path) -> ImageProbe | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with PILImage.open(path) as im:
                if im.format != "BMP":
                    return None
                width, height = im.size
                mode = im.mode
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        return None
    return ImageProbe(
        format="BMP",
        mime=MIME["BMP"],
        width=width,
        height=height,
        raw_width=width,
        raw_height=height,
        frames=1,
        orientation=1,
        colourspace="srgb" if mode in ("RGB", "RGBA", "P") else "b-w",
    )

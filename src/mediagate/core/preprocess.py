"""Upload-time image processing: the one hook every dialect's upload goes through.

:meth:`Gateway.commit <mediagate.core.gateway.Gateway.commit>` calls :func:`preprocess` after the
bytes are staged and before anything is published, so the *processed* image is what gets saved
and every dialect (UPYUN FORM/REST, Wantu, ImageX) honours it without dialect code in the core.

Two sources of work, applied in this order:

1. the grant's ``processing`` fields (a dialect puts them there; today UPYUN's ``x-gmkerl-*``):
   ``x-gmkerl-thumb`` (the processing grammar), ``x-gmkerl-thumbnail`` (a named version of the
   bucket, see ``mediagate bucket version``), or the old ``x-gmkerl-type``/``-value``/``-quality``
   /``-unsharp``/``-rotate``/``-crop``/``-exif-switch`` table; fields of that table given next to
   a thumb or a version are applied on top of it (``media.spec.overlay_legacy``).
   ``x-gmkerl-type: get_meta`` and ``get_theme_color`` (``x-gmkerl-extract-color-count``,
   ``x-gmkerl-extract-format``) change nothing; they add ``meta`` / ``theme_color`` to
   :attr:`Preprocessed.extra` for the answer.
   Asking to process a file that is not an image is a 415 ``not_an_image``.
2. the bucket's ``normalise`` policy (:class:`Normalise`, set with ``mediagate bucket normalise``):
   auto-orient, strip EXIF/GPS, HEIC/HEIF to JPEG or AVIF, convert to WebP/AVIF with a quality,
   cap the longest side. It applies to images only; other files pass untouched.

Before any decode the header is probed and checked against the pixel/dimension/frame limits (the
bomb guard). The result replaces the staged file; it is re-hashed, so the stored size, MD5 and
dimensions describe the stored bytes. Transport integrity (``Content-MD5``, exact length) is
checked by the caller on the bytes the client sent; every other grant check runs on the result.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anyio import to_thread

from mediagate.core.errors import BadRequest, MediagateError, UnsupportedMedia, from_os_error
from mediagate.core.ingest import Received, hash_file, new_staging_path
from mediagate.core.numbers import parse_uint
from mediagate.logs import Throttled
from mediagate.media.spec import LEGACY_FIELDS

if TYPE_CHECKING:
    from mediagate.config import Settings
    from mediagate.media.process import Processor
    from mediagate.media.spec import ProcessingSpec

log = logging.getLogger("mediagate")
bad_images = Throttled(log)
"""Clients upload as many corrupt images as they like."""

THUMB = "x-gmkerl-thumb"
THUMBNAIL = "x-gmkerl-thumbnail"
TYPE = "x-gmkerl-type"
COLOR_COUNT = "x-gmkerl-extract-color-count"
COLOR_FORMAT = "x-gmkerl-extract-format"
INFO_TYPES = ("get_meta", "get_theme_color")
KNOWN_FIELDS = LEGACY_FIELDS | {THUMB, THUMBNAIL, COLOR_COUNT, COLOR_FORMAT}
VERSION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
"""A thumbnail version name (``key!<name>``): never starts with '/', so it cannot read as a spec."""

NORMALISE_FORMATS = ("webp", "avif", "jpg")
HEIC_TARGETS = ("jpg", "avif")


@dataclass(frozen=True)
class Normalise:
    """A bucket's normalise-on-ingest policy (``Bucket.settings["normalise"]``)."""

    auto_orient: bool = True
    strip: bool = False
    heic_to: str | None = None
    format: str | None = None
    quality: int | None = None
    max_side: int | None = None

    @classmethod
    def of(cls, value: Any) -> Normalise | None:
        """Read the stored setting leniently (malformed parts are dropped); None when off."""
        if not isinstance(value, Mapping) or not value.get("enabled", True):
            return None
        quality, max_side = value.get("quality"), value.get("max_side")
        conf = cls(
            auto_orient=value.get("auto_orient") is not False,
            strip=value.get("strip") is True,
            heic_to=value.get("heic_to") if value.get("heic_to") in HEIC_TARGETS else None,
            format=value.get("format") if value.get("format") in NORMALISE_FORMATS else None,
            quality=quality if isinstance(quality, int) and 1 <= quality <= 100 else None,
            max_side=max_side if isinstance(max_side, int) and max_side > 0 else None,
        )
        return conf if conf.active else None

    @property
    def active(self) -> bool:
        return bool(self.strip or self.heic_to or self.format or self.quality or self.max_side)

    def as_setting(self) -> dict[str, Any]:
        return {
            "auto_orient": self.auto_orient,
            "strip": self.strip,
            "heic_to": self.heic_to,
            "format": self.format,
            "quality": self.quality,
            "max_side": self.max_side,
        }

    def spec_text(self, source_format: str) -> str | None:
        """The processing grammar that normalises an image of ``source_format`` (``jpeg``,
        ``heif``, …), or None when this policy has nothing to do to it."""
        fmt = self.format
        if source_format.lower() in ("heif", "heic") and self.heic_to and not fmt:
            fmt = self.heic_to
        if not (self.max_side or self.strip or fmt or self.quality):
            return None
        # fwfh fits inside NxN and, unlike max, never enlarges a smaller image
        steps = [f"/fwfh/{self.max_side}x{self.max_side}"] if self.max_side else []
        steps.append(f"/auto-orient/{str(self.auto_orient).lower()}")
        steps.append(f"/strip/{str(self.strip).lower()}")
        if fmt:
            steps.append(f"/format/{fmt}")
        if self.quality:
            steps.append(f"/quality/{self.quality}")
        return "".join(steps)


@dataclass
class Preprocessed:
    """The outcome of :func:`preprocess`: the file to publish (maybe the same one) and extras
    for the dialect's answer (``meta``, ``theme_color``)."""

    received: Received
    processed: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def versions_of(settings: Mapping[str, Any] | None) -> dict[str, str]:
    """A bucket's named thumbnail versions (name -> processing grammar)."""
    value = (settings or {}).get("versions")
    if not isinstance(value, Mapping):
        return {}
    return {str(k): str(v) for k, v in value.items() if isinstance(v, str) and VERSION_NAME.match(str(k))}


def wants_processing(processing: Mapping[str, str], bucket_settings: Mapping[str, Any] | None) -> bool:
    """Cheap test: is there anything for :func:`preprocess` to do?"""
    return bool(processing) or Normalise.of((bucket_settings or {}).get("normalise")) is not None


def grant_spec(
    processing: Mapping[str, str], bucket_settings: Mapping[str, Any] | None
) -> ProcessingSpec | None:
    """The processing the grant's ``x-gmkerl-*`` fields ask for (None: only info, or nothing).
    Raises BadRequest for unknown fields, an unknown version or bad parameters."""
    from mediagate.media.spec import overlay_legacy, parse_legacy, parse_thumb

    unknown = sorted(set(processing) - KNOWN_FIELDS)
    if unknown:
        raise BadRequest(f"unknown image processing parameter {unknown[0]!r}", code="bad_processing")
    if THUMB in processing:
        return overlay_legacy(parse_thumb(processing[THUMB]), dict(processing))
    if THUMBNAIL in processing:
        name = processing[THUMBNAIL].strip()
        spec_text = versions_of(bucket_settings).get(name)
        if spec_text is None:
            raise BadRequest(
                f"x-gmkerl-thumbnail: the bucket has no thumbnail version {name!r}", code="unknown_version"
            )
        # the version, with any of the old table's fields given next to it applied on top
        return overlay_legacy(parse_thumb(spec_text), dict(processing))
    legacy = {k: v for k, v in processing.items() if k in LEGACY_FIELDS}
    if legacy.get(TYPE, "").strip() in INFO_TYPES:
        legacy.pop(TYPE)
        if not legacy:
            return None
        raise BadRequest(f"x-gmkerl-type {processing[TYPE]!r} takes no other x-gmkerl-* processing fields")
    return parse_legacy(legacy) if legacy else None


def _color_request(processing: Mapping[str, str]) -> tuple[int, str]:
    count = parse_uint(processing.get(COLOR_COUNT, "256"), max_digits=3)
    if count is None or not 1 <= count <= 256:
        raise BadRequest(f"{COLOR_COUNT} must be a whole number from 1 to 256", code="bad_processing")
    fmt = processing.get(COLOR_FORMAT, "dec").strip().lower()
    if fmt not in ("dec", "hex"):
        raise BadRequest(f"{COLOR_FORMAT} must be 'dec' or 'hex'", code="bad_processing")
    return count, fmt


async def preprocess(
    settings: Settings,
    processor: Processor,
    processing: Mapping[str, str],
    bucket_settings: Mapping[str, Any] | None,
    received: Received,
) -> Preprocessed:
    """Run the grant's processing, then the bucket's normalise policy, on a staged file.

    On success the returned ``received`` is the file to publish; when it differs from the input,
    the input is left for the caller to discard (its path may still be needed, e.g. for EXIF
    placeholders). On failure every file this step made is removed."""
    from mediagate.media.probe import check_limits, probe

    spec = grant_spec(processing, bucket_settings)
    info_type = processing.get(TYPE, "").strip()
    info_wanted = info_type in INFO_TYPES
    if info_type == "get_theme_color":
        _color_request(processing)  # refuse bad parameters before any work
    normalise = Normalise.of((bucket_settings or {}).get("normalise"))
    source = await to_thread.run_sync(probe, received.path)
    if source is None:
        if spec is not None or info_wanted:
            raise UnsupportedMedia("the file is not an image, so it cannot be processed", code="not_an_image")
        return Preprocessed(received)
    check_limits(source, processor.limits)

    out = Preprocessed(received)
    current = received
    made: list[Path] = []
    try:
        steps: list[ProcessingSpec] = []
        if spec is not None:
            steps.append(spec)
        for step in steps:
            current = await _run(settings, processor, current, step, made)
        if normalise is not None:
            fmt = source.format if current is received else (await _probe_format(current.path))
            text = normalise.spec_text(fmt)
            if text is not None:
                from mediagate.media.spec import parse_thumb

                current = await _run(settings, processor, current, parse_thumb(text), made)
        if info_wanted:
            out.extra |= await _info(info_type, processing, current.path)
    except BaseException:
        for path in made:
            path.unlink(missing_ok=True)
        raise
    out.received = current
    out.processed = current is not received
    return out


async def _probe_format(path: Path) -> str:
    from mediagate.media.probe import probe

    found = await to_thread.run_sync(probe, path)
    return found.format if found is not None else ""


async def _run(
    settings: Settings, processor: Processor, src: Received, spec: ProcessingSpec, made: list[Path]
) -> Received:
    """One processing pass into a new staging file beside its source (the staging directory of
    the process that received it, see core.staging), re-hashed."""
    dest = new_staging_path(src.path.parent)
    made.append(dest)
    with processing_errors():
        await processor.process(src.path, spec, dest)
    size, md5, sha256, crc32 = await to_thread.run_sync(hash_file, dest)
    if src.path in made:
        src.path.unlink(missing_ok=True)
    return Received(dest, size, md5, sha256, crc32)


@contextmanager
def processing_errors(context: str = "") -> Iterator[None]:
    """A processing pass's failure as the client's error: a core error as it is, our disk's
    (full, failing) as its own (``from_os_error``), anything else a decoder's complaint about the
    bytes, not our bug: logged (``context`` says where), 415 UnsupportedMedia."""
    try:
        yield
    except MediagateError:
        raise
    except Exception as exc:
        failure = from_os_error(exc)
        if failure is not None:
            raise failure from exc
        bad_images.warning("image processing failed%s: %s: %s", context, type(exc).__name__, exc)
        raise UnsupportedMedia("the image is malformed or truncated and cannot be processed") from None


async def _info(info_type: str, processing: Mapping[str, str], path: Path) -> dict[str, Any]:
    from mediagate.media.meta import image_meta, theme_colors

    try:
        if info_type == "get_meta":
            return {"meta": await to_thread.run_sync(image_meta, path)}
        count, fmt = _color_request(processing)
        colors = await to_thread.run_sync(lambda: theme_colors(path, count=count, fmt=fmt))
        return {"theme_color": colors}
    except MediagateError:
        raise
    except Exception as exc:
        failure = from_os_error(exc)  # our disk (full, failing), not the client's image
        if failure is not None:
            raise failure from exc
        bad_images.warning("image metadata failed: %s: %s", type(exc).__name__, exc)
        raise UnsupportedMedia("the image is malformed or truncated and cannot be read") from None

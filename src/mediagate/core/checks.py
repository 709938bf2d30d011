"""Check: what the bytes really are, and whether the grant allows them.

The type is sniffed from the first bytes of the file, never taken from the filename. Image facts
come from :func:`mediagate.media.probe.probe`, the one probe the whole gateway uses (range checks,
response fields, placeholders, processing): header only, so a decompression bomb costs a header
read here, and width/height are the *displayed* size, EXIF orientation 5-8 swapping them, as
UPYUN reports them. The processing pipeline applies its pixel limits before it decodes anything.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from pathlib import Path

import filetype

from mediagate.core.errors import ChecksumMismatch, PolicyViolation, UnsupportedMedia
from mediagate.core.grant import UploadGrant
from mediagate.core.ingest import Received
from mediagate.core.savekey import split_filename
from mediagate.core.secrets import constant_time_equal
from mediagate.media.limits import ImageLimits
from mediagate.media.probe import probe

SNIFF_BYTES = 8192


@dataclass(frozen=True)
class MediaInfo:
    mime: str
    width: int | None = None
    height: int | None = None
    frames: int | None = None
    image_type: str | None = None  # e.g. "PNG", "JPEG"

    @property
    def is_image(self) -> bool:
        return self.width is not None


def sniff(path: Path, filename: str | None = None) -> MediaInfo:
    """The real type of a staged file: image header first, then magic numbers, then text."""
    image = probe_image(path)
    if image is not None:
        return image
    with open(path, "rb") as f:
        head = f.read(SNIFF_BYTES)
    kind = filetype.guess(head)
    if kind is not None:
        return MediaInfo(mime=kind.mime)
    if _looks_like_text(head):
        guessed, _ = mimetypes.guess_type(filename or "")
        if guessed and guessed.startswith(("text/", "application/json", "application/xml")):
            return MediaInfo(mime=guessed)
        return MediaInfo(mime="text/plain")
    return MediaInfo(mime="application/octet-stream")


def probe_image(path: Path) -> MediaInfo | None:
    """The header probe as check facts; None for anything that is not an image we can read."""
    found = probe(path)
    if found is None:
        return None
    return MediaInfo(
        mime=found.mime, width=found.width, height=found.height, frames=found.frames, image_type=found.format
    )


def _looks_like_text(head: bytes) -> bool:
    if not head:
        return False
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # a multi-byte character cut at the sniff boundary is still text
        if exc.start < len(head) - 4:
            return False
    return True


IMAGE_EXTENSIONS = frozenset(
    {"jpg", "jpeg", "jpe", "png", "gif", "webp", "bmp", "heic", "heif", "avif", "tif", "tiff"}
)


def checked_as_image(grant: UploadGrant) -> bool:
    """Whether the grant accepts images only: a width/height range, or allowed types (media
    types or file extensions) that are all images. Then the image limits apply at upload, not
    only when the image is processed."""
    if grant.width_range is not None or grant.height_range is not None:
        return True
    mimes, exts = grant.allowed_mime, grant.allowed_extensions
    if mimes and all(p.strip().lower().startswith("image/") for p in mimes):
        return True
    return bool(exts) and all(e.lower() in IMAGE_EXTENSIONS for e in exts or ())


def check_received(
    grant: UploadGrant,
    received: Received,
    info: MediaInfo,
    filename: str | None,
    *,
    limits: ImageLimits | None = None,
) -> None:
    """Every check the grant asks for, cheapest first. Raises; returns nothing on success.

    With ``limits``, an image uploaded under a grant that checks it as an image
    (:func:`checked_as_image`) must also fit the decode limits (from its header): a
    50000x50000 PNG is refused even where its width range would allow it."""
    if grant.exact_size is not None and received.size != grant.exact_size:
        raise ChecksumMismatch(f"file length {received.size} does not match the declared {grant.exact_size}")
    if grant.size_range is not None:
        low, high = grant.size_range
        if not low <= received.size <= high:
            raise PolicyViolation(
                f"file size {received.size} is outside the allowed range {low}-{high}",
                code="size_out_of_range",
            )
    if grant.content_md5 is not None and not constant_time_equal(grant.content_md5.lower(), received.md5):
        raise ChecksumMismatch("Content-MD5 does not match the uploaded file")
    if grant.allowed_extensions is not None:
        _, ext = split_filename(filename)
        if ext.lower() not in grant.allowed_extensions:
            raise PolicyViolation(
                f"file extension {ext or '(none)'!r} is not allowed", code="file_type_not_allowed"
            )
    if grant.allowed_mime is not None and not any(
        mime_matches(pattern, info.mime) for pattern in grant.allowed_mime
    ):
        raise PolicyViolation(f"file type {info.mime} is not allowed", code="mime_not_allowed")
    if limits is not None and info.is_image and checked_as_image(grant):
        limits.check(info.width or 0, info.height or 0, info.frames or 1)
    if grant.width_range is not None or grant.height_range is not None:
        if not info.is_image:
            raise UnsupportedMedia("the file is not an image", code="not_an_image")
        for label, value, bounds in (
            ("width", info.width, grant.width_range),
            ("height", info.height, grant.height_range),
        ):
            if bounds is not None and value is not None and not bounds[0] <= value <= bounds[1]:
                raise PolicyViolation(
                    f"image {label} {value} is outside the allowed range {bounds[0]}-{bounds[1]}",
                    code=f"image_{label}_out_of_range",
                )


def mime_matches(pattern: str, mime: str) -> bool:
    """``mime`` against a grant's pattern: exact, ``type/*`` or ``*``."""
    pattern = pattern.strip().lower()
    if pattern in ("*", "*/*"):
        return True
    if pattern.endswith("/*"):
        return mime.lower().startswith(pattern[:-1])
    return mime.lower() == pattern

"""EXIF of an image file, read from its header only (no pixel is decoded).

Used by placeholder renderers (Wantu ``${exif.Make}``); any file that is not an image with EXIF
gives an empty table, never an error, so a template can be written without knowing the file.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

from PIL import ExifTags, Image, UnidentifiedImageError

MAX_VALUE_CHARS = 256
"""Longer values (maker notes, thumbnails) are dropped: they are binary blobs, not text."""

_EXIF_IFD = 0x8769


def read_exif(path: Path) -> dict[str, str]:
    """``{"Make": "Canon", "Model": …, "DateTimeOriginal": …}``: tag names as Pillow spells them,
    values as text; the base IFD and the Exif sub-IFD are merged."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                exif = im.getexif()
                tags: dict[int, object] = dict(exif.items())
                with contextlib.suppress(KeyError, ValueError, TypeError, OSError):
                    tags.update(exif.get_ifd(_EXIF_IFD))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError):
        return {}
    found: dict[str, str] = {}
    for tag, raw in tags.items():
        if tag == _EXIF_IFD:
            continue
        name = ExifTags.TAGS.get(tag, f"Tag{tag:04X}")
        text = _as_text(raw)
        if text is not None:
            found[name] = text
    return found


def _as_text(raw: object) -> str | None:
    if isinstance(raw, bytes):
        try:
            text = raw.rstrip(b"\x00").decode("ascii")
        except UnicodeDecodeError:
            return None
    elif isinstance(raw, tuple):
        text = ",".join(str(v) for v in raw)
    elif isinstance(raw, (dict, list)):
        return None
    else:
        text = str(raw).rstrip("\x00")
    return text if len(text) <= MAX_VALUE_CHARS else None

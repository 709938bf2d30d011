"""Save-key templates, two syntaxes:

* ``{placeholder}`` (UPYUN): :func:`render_upyun`. Unknown ``{names}`` are left as written, as
  UPYUN does.
* ``${name}`` / ``$(name)`` (Wantu): :func:`render_dollar`, a plain substitution from a value table
  the caller builds; names are case-insensitive and an unknown name renders empty.

Rendering happens after the bytes are received (``{filemd5}``, ``${width}`` need them) and before
the insert-only check; a key goes through :func:`mediagate.core.keys.normalise_key`, so a template
cannot escape the bucket whatever the client sent.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from mediagate.core.keys import normalise_key

_PLACEHOLDER = re.compile(r"\{(\.?[a-z0-9]+)\}")


@dataclass(frozen=True)
class FileFacts:
    """What is known about an uploaded file when its key is rendered."""

    filename: str | None
    md5: str
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    size: int | None = None
    mime: str | None = None
    """The type sniffed from the bytes (or declared, when the grant sets one)."""
    width: int | None = None
    height: int | None = None
    path: Path | None = None
    """The staged file, for renderers that read more of it (EXIF); valid only while rendering."""


def split_filename(filename: str | None) -> tuple[str, str]:
    """('sample', 'jpg') for 'dir\\sample.jpg'; the client's directories are dropped."""
    if not filename:
        return "", ""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, ext = base.rpartition(".")
    if not dot or not stem:
        return base, ""
    return stem, ext


def render_upyun(template: str, facts: FileFacts) -> str:
    """Render an UPYUN save-key and normalise it (raises InvalidKey if it escapes)."""
    now = facts.now.astimezone(UTC)
    stem, ext = split_filename(facts.filename)

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        match name:
            case "year":
                return f"{now.year:04d}"
            case "mon":
                return f"{now.month:02d}"
            case "day":
                return f"{now.day:02d}"
            case "hour":
                return f"{now.hour:02d}"
            case "min":
                return f"{now.minute:02d}"
            case "sec":
                return f"{now.second:02d}"
            case "filemd5":
                return facts.md5
            case "random":
                return secrets.token_hex(8)
            case "random32":
                return secrets.token_hex(16)
            case "filename":
                return stem
            case "suffix":
                return ext
            case ".suffix":
                return f".{ext}" if ext else ""
        return match.group(0)

    return normalise_key(_PLACEHOLDER.sub(value, template))


_DOLLAR = re.compile(r"\$(?:\{\s*([A-Za-z0-9_.\-]+)\s*\}|\(\s*([A-Za-z0-9_.\-]+)\s*\))")


def placeholder_names(template: str) -> set[str]:
    """The (lower-cased) ``${name}`` / ``$(name)`` placeholders a template uses."""
    return {(m.group(1) or m.group(2)).lower() for m in _DOLLAR.finditer(template)}


def render_dollar(template: str, values: Mapping[str, str]) -> str:
    """Substitute ``${name}`` and ``$(name)`` (spaces inside allowed) from ``values``, whose keys
    are lower-case; lookup is case-insensitive and an unknown name renders as the empty string.
    The result is not normalised: callers use it for keys, paths and free text alike."""

    def value(match: re.Match[str]) -> str:
        return values.get((match.group(1) or match.group(2)).lower(), "")

    return _DOLLAR.sub(value, template)

"""Object keys: normalised, and refused if they could escape the bucket.

A key is a relative, '/'-separated path with no empty, '.' or '..' segment, no NUL or control
character, at most 1024 UTF-8 bytes. Leading slashes and doubled slashes are folded away (the
dialects all write keys as '/a/b.jpg'); what remains must name a file, not the root.
"""

from __future__ import annotations

import re

from mediagate.core.errors import InvalidKey

MAX_KEY_BYTES = 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def normalise_key(raw: str, *, allow_folder: bool = False) -> str:
    """Return the canonical key for ``raw`` or raise InvalidKey.

    With ``allow_folder`` a trailing slash is accepted and dropped (a folder path); the root
    itself is still refused.
    """
    if _CONTROL.search(raw):
        raise InvalidKey("key contains control characters")
    if raw.endswith("/") and not allow_folder and raw.strip("/"):
        raise InvalidKey("key ends with '/', which names a folder, not a file")
    segments = [s for s in raw.split("/") if s]
    if not segments:
        raise InvalidKey("key is empty or only '/'")
    if any(s in (".", "..") for s in segments):
        raise InvalidKey("key may not contain '.' or '..' segments")
    key = "/".join(segments)
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise InvalidKey(f"key is longer than {MAX_KEY_BYTES} bytes")
    return key


def normalise_dir(raw: str) -> str:
    """A directory path: like a key, but '' (the root) is allowed."""
    if not raw.strip("/"):
        if _CONTROL.search(raw):
            raise InvalidKey("path contains control characters")
        return ""
    return normalise_key(raw, allow_folder=True)


def split_key(key: str) -> tuple[str, str]:
    """('a/b', 'c.jpg') for 'a/b/c.jpg'; ('', 'c.jpg') at the root."""
    head, _, tail = key.rpartition("/")
    return head, tail


def parent_dirs(dir_path: str) -> list[str]:
    """Every ancestor folder of ``dir_path`` including itself: 'a/b' -> ['a', 'a/b']."""
    if not dir_path:
        return []
    parts = dir_path.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]

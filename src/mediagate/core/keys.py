"""Object keys: normalised, and refused if they could escape the bucket.

A key is a relative, '/'-separated path with no empty, '.' or '..' segment, no invisible
character (below), at most 1024 UTF-8 bytes. Leading slashes and doubled slashes are folded away
(the dialects all write keys as '/a/b.jpg'); what remains must name a file, not the root.

Invisible characters are refused, by every dialect alike (each renders InvalidKey its own way),
whether the key comes from a path, a policy, a form's filename or a tus ``filename``: the C0 and C1
controls (UPYUN and OSS refuse control characters; a newline in a key splits log lines and
listings), the bidirectional controls U+202A-U+202E, U+2066-U+2069, U+200E/U+200F, U+061C (they
make ``evil<U+202E>gpj.exe`` show as ``evilexe.jpg``), the other invisible format characters (zero
width space U+200B, word joiner and invisible operators U+2060-U+2064, byte order mark U+FEFF,
soft hyphen U+00AD, Mongolian vowel separator U+180E, interlinear annotations U+FFF9-U+FFFB,
tag characters U+E0000-U+E007F, which smuggle invisible text to readers such as language models,
and the layout controls of Egyptian, Duployan and musical notation), the line and paragraph
separators U+2028/U+2029, and lone surrogates (not text; UTF-8 cannot hold them). That is every
character of Unicode's Cc, Cf, Cs, Zl and Zp categories but three kinds, which scripts need and
which render visibly or join visible letters: the zero width non-joiner and joiner U+200C/U+200D
(Persian and Indic spelling, emoji sequences) and the prepended concatenation marks (Arabic
number signs U+0600-U+0605 and their kin). Keys are never rewritten to remove them: a key that is
not what the client sent would be a silent surprise, so the client gets a clear error instead.
"""

from __future__ import annotations

import re

from mediagate.core.errors import InvalidKey

MAX_KEY_BYTES = 1024
_CONTROL = re.compile(
    "[\x00-\x1f\x7f-\x9f\xad\u061c\u180e\u200b\u200e\u200f\u2028-\u202e\u2060-\u206f"
    "\ud800-\udfff\ufeff\ufff9-\ufffb\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0000-\U000e007f]"
)
"""The characters a key may not hold (the module docstring)."""

_NEVER_STORED = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
"""The characters no version of mediagate ever stored in a key: all a lookup refuses."""


def _refused(found: re.Match[str], what: str) -> InvalidKey:
    char = found.group()
    if char < " " or char == "\x7f":
        return InvalidKey(f"{what} contains control characters")
    return InvalidKey(
        f"{what} contains the invisible or control character U+{ord(char):04X}, which names "
        "cannot hold (bidirectional controls, zero width and other format characters are refused)"
    )


def normalise_key(raw: str, *, allow_folder: bool = False) -> str:
    """Return the canonical key for ``raw`` or raise InvalidKey.

    With ``allow_folder`` a trailing slash is accepted and dropped (a folder path); the root
    itself is still refused.
    """
    return _normalise(raw, allow_folder, _CONTROL)


def existing_key(raw: str, *, allow_folder: bool = False) -> str:
    """:func:`normalise_key` for a name that is looked up, not given to something new (a read, a
    delete, a copy's or move's source, a metadata edit): the invisible characters refused since
    session 5 are let through, so an object stored before that rule can still be read, renamed
    away or deleted. A new name still meets the whole rule."""
    return _normalise(raw, allow_folder, _NEVER_STORED)


def _normalise(raw: str, allow_folder: bool, refused: re.Pattern[str]) -> str:
    if found := refused.search(raw):
        raise _refused(found, "key")
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
    return _dir(raw, _CONTROL)


def existing_dir(raw: str) -> str:
    """:func:`normalise_dir` for a path that is looked up (see :func:`existing_key`)."""
    return _dir(raw, _NEVER_STORED)


def _dir(raw: str, refused: re.Pattern[str]) -> str:
    if not raw.strip("/"):
        if found := refused.search(raw):
            raise _refused(found, "path")
        return ""
    return _normalise(raw, True, refused)


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

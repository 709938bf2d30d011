"""Is this text a media type we may store and serve back as ``Content-Type``?

A declared type (UPYUN's Content-Type header or policy field, a Wantu part's Content-Type) is
stored with the object and sent verbatim on every read. Anything but RFC 9110 ``type/subtype``
tokens with printable-ASCII parameters would either be refused by the HTTP layer on each read
(non-Latin-1 text, control characters: a 500 for the object's whole life) or split a header.

A comma is refused too: browsers read ``Content-Type`` as a comma-separated list and use the last
type in it (Fetch, "extract a MIME type"), so ``text/plain; charset=utf-8,text/html`` would be
rendered as HTML on our origin while we took it for plain text.
"""

from __future__ import annotations

import re

MAX_LENGTH = 255

_MEDIA_TYPE = re.compile(r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(?:\s*;[\x20-\x7e]*)?")


def is_media_type(text: str) -> bool:
    """True for ``image/png`` or ``text/plain; charset=utf-8``; False for anything else."""
    return len(text) <= MAX_LENGTH and "," not in text and _MEDIA_TYPE.fullmatch(text) is not None

"""Parsing and spelling tus headers: versions, lengths, ``Upload-Metadata``, ``Upload-Checksum``."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime

from mediagate.core.errors import BadRequest, MediagateError

VERSION = "1.0.0"
EXTENSIONS = (
    "creation",
    "creation-with-upload",
    "creation-defer-length",
    "termination",
    "checksum",
    "expiration",
)
CHECKSUM_ALGORITHMS = ("md5", "sha1", "sha256", "crc32")
OFFSET_STREAM = "application/offset+octet-stream"
MAX_METADATA = 4096
"""Bytes of ``Upload-Metadata`` we keep (it is echoed on every HEAD)."""

_METADATA_KEY = re.compile(r"^[\x21-\x2b\x2d-\x7e]+$")  # printable ASCII, no space, no comma
_DIGITS = re.compile(r"^[0-9]{1,19}$")


class VersionNotSupported(MediagateError):
    code = "tus_version_not_supported"
    status = 412
    default_message = f"only tus {VERSION} is supported (Tus-Resumable: {VERSION})"


class WrongContentType(MediagateError):
    code = "tus_content_type"
    status = 415
    default_message = f"a PATCH body must be Content-Type: {OFFSET_STREAM}"


class OffsetMismatch(MediagateError):
    code = "offset_mismatch"
    status = 409
    default_message = "Upload-Offset does not match the upload's current offset"


class Locked(MediagateError):
    code = "upload_locked"
    status = 423
    default_message = "another request is writing to this upload; retry shortly"


class Gone(MediagateError):
    code = "upload_expired"
    status = 410
    default_message = "the upload has expired"


class TusChecksumMismatch(MediagateError):
    code = "checksum_mismatch"
    status = 460
    default_message = "Upload-Checksum does not match the request body; the part was discarded"


def check_version(value: str | None) -> None:
    if value is None or value.strip() != VERSION:
        raise VersionNotSupported()


def length(value: str | None, name: str) -> int | None:
    """A non-negative decimal header value, or None when absent."""
    if value is None:
        return None
    value = value.strip()
    if not _DIGITS.match(value):
        raise BadRequest(f"{name} must be a non-negative integer", code="invalid_header")
    return int(value)


def metadata(value: str | None) -> dict[str, str]:
    """``Upload-Metadata``: comma-separated ``key base64value`` pairs (the value may be absent)."""
    if value is None or not value.strip():
        return {}
    if len(value) > MAX_METADATA:
        raise BadRequest(f"Upload-Metadata is longer than {MAX_METADATA} bytes", code="invalid_metadata")
    found: dict[str, str] = {}
    # the pairs are named by position, never echoed: the answer's message goes to the access log,
    # and a client may put anything there (its token, say)
    for number, pair in enumerate(value.split(","), start=1):
        parts = pair.strip().split(" ")
        key = parts[0]
        if not _METADATA_KEY.match(key) or len(parts) > 2:
            raise BadRequest(
                f"Upload-Metadata pair {number} is malformed: 'key base64value', the key printable "
                "ASCII without spaces or commas",
                code="invalid_metadata",
            )
        if key in found:
            raise BadRequest(f"Upload-Metadata pair {number} repeats a key", code="invalid_metadata")
        try:
            decoded = base64.b64decode(parts[1], validate=True) if len(parts) == 2 else b""
            found[key] = decoded.decode("utf-8")
        except (binascii.Error, ValueError) as exc:
            raise BadRequest(
                f"Upload-Metadata pair {number}: the value is not base64 of UTF-8 text",
                code="invalid_metadata",
            ) from exc
    return found


def expires(moment: datetime) -> str:
    """``Upload-Expires`` in the RFC 9110 date format."""
    return format_datetime(moment, usegmt=True)


@dataclass
class Checksum:
    """A declared ``Upload-Checksum``, hashed as the body streams past."""

    algorithm: str
    digest: bytes
    _hash: hashlib._Hash | None = field(default=None, repr=False)
    _crc: int = 0

    def __post_init__(self) -> None:
        if self.algorithm != "crc32":
            self._hash = hashlib.new(self.algorithm)

    def update(self, chunk: bytes) -> None:
        if self._hash is not None:
            self._hash.update(chunk)
        else:
            self._crc = zlib.crc32(chunk, self._crc)

    def matches(self) -> bool:
        got = self._hash.digest() if self._hash is not None else self._crc.to_bytes(4, "big")
        return hmac.compare_digest(got, self.digest)


def checksum(value: str | None) -> Checksum | None:
    """``Upload-Checksum: <algorithm> <base64 digest>``; crc32 is the 4 big-endian bytes."""
    if value is None:
        return None
    algorithm, _, encoded = value.strip().partition(" ")
    algorithm = algorithm.lower()
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise BadRequest(
            f"checksum algorithm {algorithm[:20]!r} is not supported; use one of "
            + ", ".join(CHECKSUM_ALGORITHMS),
            code="checksum_algorithm",
        )
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest("Upload-Checksum digest is not base64", code="invalid_header") from exc
    if len(digest) != (4 if algorithm == "crc32" else hashlib.new(algorithm).digest_size):
        raise BadRequest(
            f"Upload-Checksum digest has the wrong length for {algorithm}", code="invalid_header"
        )
    return Checksum(algorithm, digest)

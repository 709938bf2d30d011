"""Upload sources: a local path, an http(s) URL, or a ``data:`` URI (the seed's three inputs).

Every source becomes a local file with its size, MD5 and CRC-32 computed in one pass, so the
dialect adapters can declare them up front (ImageX wants the CRC, Wantu the MD5) and stream the
bytes with flat memory. URL sources are fetched with a size limit and timeouts, never follow a
redirect to an unchecked address, and are refused for private/loopback addresses unless allowed
(the same SSRF guard the server uses for its own outgoing calls, ``core.notify.check_url``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import mimetypes
import os
import re
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

from mediagate.urlguard import UrlRefused, resolve

DEFAULT_MAX_FETCH = 512 * 1024 * 1024
MAX_REDIRECTS = 5
_DATA = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^;,]*)*?)(?P<b64>;base64)?,", re.I)


class SourceError(Exception):
    """A source that cannot be read (missing file, refused URL, bad data URI, too large)."""


@dataclass
class Source:
    """One file to upload, staged locally. ``cleanup`` removes a temporary copy."""

    label: str
    path: Path
    filename: str
    size: int
    md5: str
    crc32: int
    content_type: str
    temporary: bool = False

    def cleanup(self) -> None:
        if self.temporary:
            self.path.unlink(missing_ok=True)


def _facts(path: Path) -> tuple[int, str, int]:
    md5, crc, size = hashlib.md5(), 0, 0
    with path.open("rb") as f:
        while block := f.read(1024 * 1024):
            md5.update(block)
            crc = zlib.crc32(block, crc)
            size += len(block)
    return size, md5.hexdigest(), crc & 0xFFFFFFFF


def _guess(filename: str) -> str:
    return mimetypes.guess_type(filename)[0] or "application/octet-stream"


def _staged(label: str, path: Path, filename: str, content_type: str | None, temporary: bool) -> Source:
    size, md5, crc = _facts(path)
    return Source(label, path, filename, size, md5, crc, content_type or _guess(filename), temporary)


def from_path(raw: str) -> Source:
    path = Path(raw).expanduser()
    if not path.is_file():
        raise SourceError(f"{raw}: no such file")
    return _staged(raw, path, path.name, None, False)


def from_data_uri(raw: str, *, max_size: int = DEFAULT_MAX_FETCH) -> Source:
    match = _DATA.match(raw)
    if match is None:
        raise SourceError("a data: URI must look like data:image/png;base64,....")
    payload = raw[match.end() :]
    if len(payload) > max_size * 4 // 3 + 4:
        raise SourceError(f"the data: URI holds more than {max_size} bytes")
    try:
        data = base64.b64decode(payload, validate=True) if match["b64"] else unquote(payload).encode()
    except (binascii.Error, ValueError) as exc:
        raise SourceError("the data: URI's base64 payload is invalid") from exc
    content_type = (match["type"] or "text/plain").lower()
    ext = mimetypes.guess_extension(content_type) or ".bin"
    fd, name = tempfile.mkstemp(prefix="mediagate-", suffix=ext)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return _staged("data: URI", Path(name), f"upload{ext}", content_type, True)


def from_url(
    url: str,
    *,
    allow_private: bool = False,
    max_size: int = DEFAULT_MAX_FETCH,
    timeout: float = 30.0,
    client: httpx.Client | None = None,
) -> Source:
    """Download ``url`` (checking every redirect hop against the SSRF guard) into a temp file."""
    own = client is None
    http = client or httpx.Client(follow_redirects=False, trust_env=False)
    fd, name = tempfile.mkstemp(prefix="mediagate-")
    path = Path(name)
    try:
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            try:
                target = asyncio.run(resolve(current, allow_private=allow_private))
            except UrlRefused as exc:
                raise SourceError(f"{current}: {exc}") from None
            target_url, headers, extensions = target.request_args()
            request = http.build_request(
                "GET", target_url, headers=headers, extensions=extensions, timeout=timeout
            )
            resp = http.send(request, stream=True, follow_redirects=False)
            try:
                if resp.is_redirect and "location" in resp.headers:
                    current = str(httpx.URL(current).join(resp.headers["location"]))
                    continue
                if resp.status_code != 200:
                    raise SourceError(f"{url}: the server answered {resp.status_code}")
                declared = resp.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > max_size:
                    raise SourceError(f"{url}: larger than the {max_size}-byte limit")
                written = 0
                with os.fdopen(fd, "wb") as f:
                    fd = -1
                    for chunk in resp.iter_bytes():
                        written += len(chunk)
                        if written > max_size:
                            raise SourceError(f"{url}: larger than the {max_size}-byte limit")
                        f.write(chunk)
                content_type = resp.headers.get("content-type", "").split(";")[0].strip() or None
                filename = Path(unquote(urlsplit(current).path)).name or "download"
                return _staged(url, path, filename, content_type, True)
            finally:
                resp.close()
        raise SourceError(f"{url}: too many redirects")
    except httpx.HTTPError as exc:
        path.unlink(missing_ok=True)
        raise SourceError(f"{url}: {type(exc).__name__}: {exc}") from None
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    finally:
        if fd >= 0:
            os.close(fd)
        if own:
            http.close()


def open_source(raw: str, *, allow_private: bool = False, max_size: int = DEFAULT_MAX_FETCH) -> Source:
    """A path, an http(s) URL or a data: URI."""
    lowered = raw[:8].lower()
    if lowered.startswith("data:"):
        return from_data_uri(raw, max_size=max_size)
    if lowered.startswith(("http://", "https://")):
        return from_url(raw, allow_private=allow_private, max_size=max_size)
    if "://" in raw[:16]:
        raise SourceError(f"{raw[:80]}: only local paths, http(s) URLs and data: URIs are sources")
    return from_path(raw)


Progress = Callable[[int], None]
"""Called with the number of bytes just sent."""


class ChunkReader:
    """An iterable over a byte range of a file that reports progress (an httpx request body)."""

    def __init__(
        self,
        path: Path,
        progress: Progress | None,
        *,
        start: int = 0,
        length: int | None = None,
        block: int = 256 * 1024,
    ) -> None:
        self.path, self.progress, self.start, self.length, self.block = path, progress, start, length, block

    def __iter__(self) -> Iterator[bytes]:
        remaining = self.length
        with self.path.open("rb") as f:
            f.seek(self.start)
            while remaining is None or remaining > 0:
                data = f.read(self.block if remaining is None else min(self.block, remaining))
                if not data:
                    break
                if remaining is not None:
                    remaining -= len(data)
                if self.progress:
                    self.progress(len(data))
                yield data

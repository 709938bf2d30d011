"""Download a URL a client names into a staging file: through the SSRF guard, bounded in size
and time, never following redirects (each hop would need its own check).

Used where a dialect takes a URL instead of a stored object (Wantu ``/3.1/scanPorn`` ``url=``).
Every outcome a caller must tell apart is its own exception, with a message that names no
server path: :class:`BadUrl` (not an http(s) URL), :class:`FetchFailed` (refused by the guard,
unreachable, not a 200), :class:`FetchTooLarge`, :class:`FetchTimeout`. The file is removed when
the ``with`` block ends, whatever happens.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from mediagate import urlguard
from mediagate.core.ingest import new_staging_path
from mediagate.core.notify import is_http_url

if TYPE_CHECKING:
    from mediagate.core.gateway import Gateway

CHUNK = 64 * 1024


class FetchError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadUrl(FetchError):
    """Not an absolute http(s) URL."""


class FetchFailed(FetchError):
    """Refused by the SSRF guard, unresolvable, unreachable, or answered other than 200."""


class FetchTooLarge(FetchError):
    """Longer than ``max_bytes`` (by its Content-Length or by what arrived)."""


class FetchTimeout(FetchError):
    """Not complete within ``timeout`` seconds."""


@contextlib.asynccontextmanager
async def fetched(gw: Gateway, url: str, *, max_bytes: int, timeout: float) -> AsyncIterator[Path]:
    """A staging file holding the body of ``GET url`` for the length of the block."""
    if not is_http_url(url):
        raise BadUrl("not an absolute http(s) URL")
    try:
        async with asyncio.timeout(timeout):
            target = await urlguard.resolve(url, allow_private=gw.settings.allow_private_callbacks)
    except urlguard.UrlRefused as exc:  # the shape was checked: an unresolvable or refused host
        raise FetchFailed(str(exc)) from None
    except TimeoutError:
        raise FetchTimeout(f"resolving the host took longer than {timeout:g} s") from None
    dest = new_staging_path(gw.staging_dir)
    try:
        await _download(target, dest, max_bytes=max_bytes, timeout=timeout)
        yield dest
    finally:
        dest.unlink(missing_ok=True)


async def _download(target: urlguard.Target, dest: Path, *, max_bytes: int, timeout: float) -> None:
    import httpx

    address, headers, extensions = target.request_args()
    try:
        async with (
            asyncio.timeout(timeout),
            httpx.AsyncClient(follow_redirects=False, trust_env=False, timeout=timeout) as client,
            client.stream("GET", address, headers=headers, extensions=extensions) as answer,
        ):
            if answer.status_code != 200:
                raise FetchFailed(f"the server answered HTTP {answer.status_code}")
            declared = answer.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise FetchTooLarge(f"the file is {int(declared)} bytes; the limit is {max_bytes}")
            size = 0
            with dest.open("wb") as out:
                async for chunk in answer.aiter_bytes(CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise FetchTooLarge(f"the file is larger than {max_bytes} bytes")
                    out.write(chunk)
    except (TimeoutError, httpx.TimeoutException):
        raise FetchTimeout(f"the download took longer than {timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise FetchFailed(f"the download failed ({type(exc).__name__})") from None

"""Serving the page's static files: read once from the package, answered from memory.

Only files that exist under ``static/`` when the process starts can be served: a request names an
entry of that index, never a filesystem path, so no ``..``, ``%2f`` or symlink reaches the disk.
Every answer carries a strong ``ETag`` (the content's SHA-256) and honours ``If-None-Match``.
Vendored files live under a versioned folder (``vendor/uppy-6.0.1/``), so they are cached for a
year as immutable; the page's own files are revalidated on every load (``no-cache``), so an
upgrade shows at once. Every answer also carries the page's Content Security Policy.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable

from starlette.requests import Request
from starlette.responses import Response

STATIC = "static"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".json": "application/json",
}

CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        # Uppy sets its element styles through the CSSOM (allowed); no inline <style> or style="".
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
"""No inline script, no eval, nothing from another origin: the page talks to its own server only
(thumbnails and previews are this server's public read path; Uppy's previews are ``blob:``)."""

PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
"""Headers of every page response (``X-Content-Type-Options: nosniff`` is added for all responses
by :class:`mediagate.frontdoor.FrontDoor`)."""


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str
    cache_control: str


def _content_type(name: str) -> str:
    dot = name.rfind(".")
    if dot < 0:  # LICENSE, README
        return CONTENT_TYPES[".txt"]
    return CONTENT_TYPES.get(name[dot:], "application/octet-stream")


def _walk(folder: Traversable, prefix: str, found: dict[str, Asset]) -> None:
    for entry in folder.iterdir():
        name = prefix + entry.name
        if entry.is_dir():
            _walk(entry, name + "/", found)
        elif entry.is_file() and not entry.name.startswith("."):
            body = entry.read_bytes()
            immutable = name.startswith("vendor/")
            found[name] = Asset(
                body=body,
                content_type=_content_type(entry.name),
                etag='"' + hashlib.sha256(body).hexdigest()[:32] + '"',
                cache_control="public, max-age=31536000, immutable" if immutable else "no-cache",
            )


@cache
def index() -> dict[str, Asset]:
    """Every shipped file by its path under ``static/`` (``index.html``, ``js/app.js`` …)."""
    found: dict[str, Asset] = {}
    _walk(resources.files("mediagate.web").joinpath(STATIC), "", found)
    return found


def _matches(if_none_match: str, etag: str) -> bool:
    tags = {t.strip().removeprefix("W/") for t in if_none_match.split(",")}
    return "*" in tags or etag in tags


def asset_response(request: Request, name: str) -> Response | None:
    """The answer for the static file ``name`` (``""`` is the page itself), or None if there is no
    such file."""
    asset = index().get(name or "index.html")
    if asset is None:
        return None
    headers = {**PAGE_HEADERS, "ETag": asset.etag, "Cache-Control": asset.cache_control}
    if _matches(request.headers.get("if-none-match", ""), asset.etag):
        return Response(status_code=304, headers=headers)
    body = b"" if request.method == "HEAD" else asset.body
    headers["Content-Length"] = str(len(asset.body))
    return Response(body, media_type=asset.content_type, headers=headers)

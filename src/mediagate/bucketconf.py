"""Per-bucket serving options (``Bucket.settings``), with their defaults in one place.

=================  =========  ==============================================================
setting            default    meaning
=================  =========  ==============================================================
``public``         ``True``   anonymous ``GET/HEAD /<bucket>/<key>`` allowed; ``False`` -> 403
``cors_origins``   ``["*"]``  browser origins allowed to call the bucket (reads *and* uploads:
                              direct browser upload is the product's point). Entries are
                              ``*``, an origin ``https://app.example.com[:port]``, or a
                              subdomain pattern ``https://*.example.com``. ``[]`` = no CORS.
``cors_max_age``   ``600``    seconds a browser may cache a preflight answer
``versions``       ``{}``     named thumbnail versions, name -> processing spec: served at
                              ``/<bucket>/<key>!<name>``, and ``x-gmkerl-thumbnail: <name>``
                              on upload (``mediagate bucket version set B small "/fw/300"``)
``autoformat``     ``False``  processed variants without an explicit ``format`` are WebP for
                              clients that ``Accept: image/webp`` (``"avif"``: AVIF first)
``normalise``      off        normalise on ingest, every dialect (``core.preprocess.Normalise``):
                              ``{"auto_orient", "strip", "heic_to", "format", "quality",
                              "max_side"}`` (``mediagate bucket normalise set``)
``inline_active``  ``False``  serve active types (HTML, SVG, XML, JS …) inline as they are; by
                              default they are sandboxed (``Content-Security-Policy: sandbox``)
                              downloads (``Content-Disposition: attachment``), so an upload
                              cannot script the gateway's origin. Turn on only when reads come
                              from a separate content origin (``serving.content_headers``)
``webhook_url``    none       where ``/v1`` and tus uploads and ``/v1`` deletes are announced
                              (core.webhooks; an upload token's ``notify_url`` wins), signed
                              with the bucket's webhook secret (``mediagate bucket webhook``)
``watermarks``     ``{}``     Wantu ``watermarkTemplate`` names -> placement of the
                              ``watermark`` image on ``/3.0/mediaEncode`` outputs:
                              ``{"gravity", "dx", "dy", "scale", "opacity"}``
                              (``mediagate bucket watermark add B NAME --gravity southeast``)
=================  =========  ==============================================================

The settings are read on every request through :class:`BucketCache`, which keeps a bucket row
for :data:`CACHE_SECONDS` so that a change made by the CLI (another process) reaches a running
server within a few seconds without a catalog query per request.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from anyio import to_thread

from mediagate.core.errors import BadRequest
from mediagate.core.gateway import Gateway
from mediagate.core.values import Bucket
from mediagate.media.avspec import GRAVITIES, Watermark

DEFAULT_CORS_ORIGINS: tuple[str, ...] = ("*",)
DEFAULT_CORS_MAX_AGE = 600
CACHE_SECONDS = 2.0


@dataclass(frozen=True)
class BucketConf:
    public: bool = True
    cors_origins: tuple[str, ...] = DEFAULT_CORS_ORIGINS
    cors_max_age: int = DEFAULT_CORS_MAX_AGE
    autoformat: str | None = None
    """None (off), "webp" (WebP when accepted) or "avif" (AVIF, else WebP, when accepted)."""
    inline_active: bool = False

    @classmethod
    def of(cls, settings: Mapping[str, Any] | None) -> BucketConf:
        """Read the settings leniently: a malformed value falls back to its default."""
        s = settings or {}
        origins = s.get("cors_origins")
        max_age = s.get("cors_max_age")
        return cls(
            public=s.get("public") is not False,
            cors_origins=(
                tuple(o for o in origins if isinstance(o, str))
                if isinstance(origins, list)
                else DEFAULT_CORS_ORIGINS
            ),
            cors_max_age=max_age if isinstance(max_age, int) and max_age >= 0 else DEFAULT_CORS_MAX_AGE,
            autoformat=_autoformat(s.get("autoformat")),
            inline_active=s.get("inline_active") is True,
        )


def _autoformat(value: Any) -> str | None:
    if value is True or value == "webp":
        return "webp"
    return "avif" if value == "avif" else None


def check_version(name: str, spec: str) -> tuple[str, str]:
    """A thumbnail version as stored: the name must be usable after ``!`` (not start with '/')
    and the spec must parse; BadRequest says what is wrong."""
    from mediagate.core.preprocess import VERSION_NAME
    from mediagate.media.spec import parse_thumb

    if not VERSION_NAME.match(name):
        raise BadRequest(
            f"version name {name!r} must be 1-64 of A-Z a-z 0-9 _ . - starting with a letter or digit"
        )
    text = spec.strip()
    parse_thumb(text)
    return name, text if text.startswith("/") else "/" + text


@dataclass(frozen=True)
class WatermarkTemplate:
    """Where a Wantu ``watermark`` image goes (Wantu's templates are console objects with no
    documented grammar; these fields are those of Alibaba's MTS watermark templates).

    ``dx``/``dy`` are margins in pixels from the ``gravity`` corner *inwards* (for ``center``,
    ``north``/``south`` along x and ``west``/``east``/``center`` along y: a shift east/south);
    ``scale`` is the image's width as a fraction of the picture's (None: its own size);
    ``opacity`` 0-1 fades it (None: as drawn).
    """

    gravity: str = "northeast"
    dx: int = 10
    dy: int = 10
    scale: float | None = None
    opacity: float | None = None

    def as_setting(self) -> dict[str, Any]:
        return {"gravity": self.gravity, "dx": self.dx, "dy": self.dy, "scale": self.scale,
                "opacity": self.opacity}  # fmt: skip

    def watermark(self, path: str) -> Watermark:
        """The overlay of the image at bucket ``path`` (``dx`` east / ``dy`` south, signed)."""
        dx = -self.dx if self.gravity.endswith("east") else self.dx
        dy = -self.dy if self.gravity.startswith("south") else self.dy
        return Watermark(path, self.gravity, dx, dy, scale=self.scale, opacity=self.opacity)


DEFAULT_WATERMARK = WatermarkTemplate()
"""Without ``watermarkTemplate``: the image at its own size, 10 px in from the top-right corner
(MTS's default corner)."""
WATERMARK_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"


def check_watermark_template(
    name: str,
    *,
    gravity: str = "northeast",
    dx: int = 10,
    dy: int = 10,
    scale: float | None = None,
    opacity: float | None = None,
) -> WatermarkTemplate:
    """A template as the CLI defines it, or BadRequest saying which field is wrong."""
    import re

    if not re.fullmatch(WATERMARK_NAME, name):
        raise BadRequest(f"template name {name!r}: use 1-64 letters, digits, '_', '.', '-'")
    if gravity not in GRAVITIES:
        raise BadRequest(f"gravity must be one of {', '.join(GRAVITIES)}, got {gravity!r}")
    if not (-4096 <= dx <= 4096 and -4096 <= dy <= 4096):
        raise BadRequest("dx and dy must be from -4096 to 4096 pixels")
    if scale is not None and not 0 < scale <= 1:
        raise BadRequest("scale must be a fraction of the picture's width in (0, 1]")
    if opacity is not None and not 0 <= opacity <= 1:
        raise BadRequest("opacity must be from 0 (invisible) to 1 (as drawn)")
    return WatermarkTemplate(gravity=gravity, dx=dx, dy=dy, scale=scale, opacity=opacity)


def watermark_templates(settings: Mapping[str, Any] | None) -> dict[str, WatermarkTemplate]:
    """The bucket's templates; a malformed entry (edited by hand) is left out."""
    found: dict[str, WatermarkTemplate] = {}
    raw = (settings or {}).get("watermarks")
    for name, value in raw.items() if isinstance(raw, dict) else ():
        if not isinstance(value, dict):
            continue
        try:
            fields = {k: value[k] for k in value if k in _TEMPLATE_KEYS}
            found[name] = check_watermark_template(name, **fields)
        except (BadRequest, TypeError):
            continue
    return found


_TEMPLATE_KEYS = ("gravity", "dx", "dy", "scale", "opacity")


def normalise_origin(value: str) -> str:
    """Canonical spelling of an allowed-origin entry, or BadRequest with the reason."""
    value = value.strip()
    if value == "*":
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadRequest(f"{value!r} is not an origin: expected '*' or scheme://host[:port]")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise BadRequest(f"{value!r} is not an origin: an origin has no path, query or user")
    host = parts.hostname.lower()
    if "*" in host and not (host.startswith("*.") and "*" not in host[2:]):
        raise BadRequest(f"{value!r}: a wildcard is only allowed as the first label ('*.example.com')")
    try:
        port = parts.port
    except ValueError as exc:
        raise BadRequest(f"{value!r} has an invalid port") from exc
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


def origin_allowed(origin: str, allowed: tuple[str, ...]) -> bool:
    """Whether a request's ``Origin`` matches one of the allowed entries (case-insensitive)."""
    origin = origin.strip().lower()
    for entry in allowed:
        entry = entry.lower()
        if entry == "*" or entry == origin:
            return True
        if "://*." in entry:
            scheme, _, suffix = entry.partition("://*")
            if (
                origin.startswith(scheme + "://")
                and origin.endswith(suffix)
                and len(origin) > len(scheme + "://" + suffix)
            ):
                return True
    return False


class BucketCache:
    """Bucket rows (or their absence) by name, each kept for ``ttl`` seconds."""

    def __init__(self, gateway: Gateway, ttl: float = CACHE_SECONDS) -> None:
        self.gateway = gateway
        self.ttl = ttl
        self._rows: dict[str, tuple[float, Bucket | None]] = {}

    async def get(self, name: str) -> Bucket | None:
        now = time.monotonic()
        hit = self._rows.get(name)
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        bucket = await self.gateway.find_bucket(name)
        if len(self._rows) > 10_000:  # unknown names are cached too: keep the dict bounded
            self._rows.clear()
        self._rows[name] = (now, bucket)
        return bucket

    async def conf(self, name: str) -> BucketConf:
        bucket = await self.get(name)
        return BucketConf.of(bucket.settings if bucket else None)


def update_settings(gateway: Gateway, name: str, changes: dict[str, Any]) -> Bucket:
    """Change some of a bucket's settings (blocking; the CLI's entry point)."""
    return Bucket.of(gateway.catalog.update_bucket_settings(name, changes))


async def update_settings_async(gateway: Gateway, name: str, changes: dict[str, Any]) -> Bucket:
    return await to_thread.run_sync(update_settings, gateway, name, changes)


def bucket_cache(state: Any, gateway: Gateway) -> BucketCache:
    """The app's one cache (kept on ``app.state``, created on first use)."""
    cache: BucketCache | None = getattr(state, "bucket_cache", None)
    if cache is None or cache.gateway is not gateway:
        cache = BucketCache(gateway)
        state.bucket_cache = cache
    return cache

"""Quotas and rate limits, once for every dialect: a bucket's storage bytes and object count, and
uploads begun per minute in the bucket, per API key and per upload token.

Where they are checked:

* **Admission**, once per upload at its first authorised point (:meth:`Quotas.admit`, called by
  the gateway when a single upload starts streaming, when a multi-part session starts, and at the
  commit of a file staged before its grant was known): the rate limits, and the storage quota
  against the size the client declared (``Content-Length`` of a raw body, a policy's exact
  length, a session's total size). A refusal here comes before any byte of the file is read. With
  no declared size the upload is refused only if the bucket is already full. A bucket without
  limits costs one cached lookup a second, nothing per upload.
* **Commit**, exactly (``Catalog._commit_object``): the usage counters change in the object's own
  transaction and an update that would pass a limit is refused there (QuotaExceeded), so a
  concurrent burst never overshoots the quota: uploads in flight are staged, not stored, and
  the one that would not fit is refused at its commit and leaves nothing. Nothing has to be
  reserved at the start and released on failure, and a crash leaks no reservation.

An upload whose key is known at admission (a REST PUT, a /v1 PUT, an upload token's key) and that
may replace an object is admitted as what it would be: the replaced object's bytes are freed and no
object is added, so a full bucket still takes a replacement that fits. An upload whose key is only
known from its bytes (a ``{filemd5}`` save-key) is admitted as new; the commit charges every
replacement its growth only, exactly.

Rate limits are fixed one-minute windows (at most twice the limit across a window boundary), keyed
by the bucket id or the key/token id: in Redis when ``MEDIAGATE_REDIS_URL`` is set (one Lua script
checks every window and counts the upload in all of them, atomically, so every node and worker
shares them), else in this process (each worker process then allows the limit by itself). Only
admitted uploads count; a refused attempt does not use up the window. Redis unreachable: the
dialect's 503 (nothing is admitted unchecked).
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from anyio import to_thread

from mediagate import logs, redisconn
from mediagate.catalog import Catalog
from mediagate.catalog.models import Quota
from mediagate.config import Settings
from mediagate.core.errors import BadRequest, QuotaExceeded, RedisUnavailable, TooManyRequests
from mediagate.core.grant import UploadGrant
from mediagate.core.numbers import parse_uint
from mediagate.core.values import Bucket

if TYPE_CHECKING:
    import redis

WINDOW = 60
"""Seconds of one rate-limit window."""
NO_LIMITS_TTL = 1.0
"""Seconds a bucket seen without limits is not looked up again (as ``Gateway.find_bucket``)."""

LIMITS = (
    "max_bytes",
    "max_objects",
    "uploads_per_minute",
    "key_uploads_per_minute",
    "token_uploads_per_minute",
)


def has_limits(quota: Quota | None) -> bool:
    return quota is not None and any(getattr(quota, name) is not None for name in LIMITS)


@dataclass(frozen=True)
class Window:
    """One rate limit an upload must pass: ``subject`` (``bucket:photos``, ``key:mk_…``) at most
    ``limit`` uploads per window."""

    subject: str
    limit: int
    what: str
    """How the refusal names it (``the bucket``, ``API key mk_…``)."""


class RateLimiter:
    """Fixed one-minute windows, in Redis or in this process (see the module docstring)."""

    _SCRIPT = """
for i, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') >= tonumber(ARGV[i]) then return i end
end
for _, key in ipairs(KEYS) do
  redis.call('INCR', key)
  redis.call('EXPIRE', key, ARGV[#ARGV])
end
return 0
"""

    def __init__(self, settings: Settings) -> None:
        self.redis_url = settings.redis_url
        self.prefix = f"{settings.task_queue_name}:ratelimit"
        self._redis: redis.Redis | None = None
        self._counts: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    async def hit(self, windows: Sequence[Window]) -> None:
        """Count one upload in every window, or none if one is full (TooManyRequests)."""
        if not windows:
            return
        now = time.time()
        index = int(now // WINDOW)
        if self.redis_url is None:
            full = self._hit_here(windows, index)
        else:
            full = await to_thread.run_sync(self._hit_redis, windows, index)
        if full is not None:
            retry_after = max(1, math.ceil((index + 1) * WINDOW - now))
            raise TooManyRequests(
                f"{full.what} allows {full.limit} uploads per minute; retry in {retry_after} s",
                retry_after=retry_after,
            )

    def _hit_here(self, windows: Sequence[Window], index: int) -> Window | None:
        with self._lock:
            for window in windows:
                if self._counts.get((window.subject, index), 0) >= window.limit:
                    return window
            for window in windows:
                key = (window.subject, index)
                self._counts[key] = self._counts.get(key, 0) + 1
            if len(self._counts) > 10_000:  # windows of past minutes
                self._counts = {k: n for k, n in self._counts.items() if k[1] >= index}
            return None

    def _hit_redis(self, windows: Sequence[Window], index: int) -> Window | None:
        import redis

        if self._redis is None:
            assert self.redis_url is not None
            self._redis = redisconn.connect(self.redis_url)
        keys = [f"{self.prefix}:{w.subject}:{index}" for w in windows]
        try:
            args = [*keys, *(str(w.limit) for w in windows), str(2 * WINDOW)]
            answer: Any = self._redis.eval(self._SCRIPT, len(keys), *args)
            full = int(answer)
        except redis.RedisError as exc:
            raise RedisUnavailable() from exc
        return windows[full - 1] if full else None

    def close(self) -> None:
        """Close the Redis client, if one was made (at shutdown: its connections end with the
        server, not whenever the process object is collected)."""
        client, self._redis = self._redis, None
        if client is not None:
            client.close()


class Quotas:
    """Admission of uploads against their bucket's quota and rate limits (module docstring)."""

    def __init__(
        self, settings: Settings, catalog: Catalog, find_bucket: Callable[[str], Awaitable[Bucket]]
    ) -> None:
        self.catalog = catalog
        self.find_bucket = find_bucket
        self.limiter = RateLimiter(settings)
        self._no_limits: dict[int, float] = {}

    def close(self) -> None:
        """Let go of the rate limiter's Redis connections (app shutdown)."""
        self.limiter.close()

    async def admit(
        self, bucket: str | Bucket, size: int | None = None, *, replacing: str | None = None
    ) -> None:
        """Admit one upload of ``size`` bytes (None: not declared) to ``bucket``, once per request
        (later calls in the same request are no-ops). QuotaExceeded or TooManyRequests.
        ``replacing``: the key the upload will replace if it exists (the module docstring)."""
        record = logs.current()
        if record is not None:
            if record.quota_admitted:
                return
            record.quota_admitted = True
        found = await self.find_bucket(bucket) if isinstance(bucket, str) else bucket
        if self._no_limits.get(found.id, 0.0) > time.monotonic():
            return
        quota = await to_thread.run_sync(self.catalog.get_quota, found.id)
        if quota is None or not has_limits(quota):
            if len(self._no_limits) > 10_000:
                self._no_limits.clear()
            self._no_limits[found.id] = time.monotonic() + NO_LIMITS_TTL
            return
        try:
            check_storage(quota, size)
        except QuotaExceeded:
            # only a refusal pays for the lookup of the object a replacement would free
            old = None
            if replacing is not None:
                old = await to_thread.run_sync(self.catalog.get_object, found.id, replacing)
            if old is None:
                raise
            check_storage(quota, size, replacing=old.size)
        await self.limiter.hit(windows(found.name, quota, record))

    async def admit_grant(
        self, grant: UploadGrant, *, size: int | None = None, bucket: Bucket | None = None
    ) -> None:
        """:meth:`admit` for a single upload: its size is ``size`` when known (a staged file), else
        the grant's exact length, else the ``Content-Length`` of a raw request body. A grant for a
        file staged before its policy is known is admitted at its commit (with ``size``), not
        before. A grant with a known key that may replace is admitted as the replacement."""
        if grant.prebuffered and size is None:
            return
        if size is None:
            record = logs.current()
            size = grant.exact_size if grant.exact_size is not None else record.body_size if record else None
        replacing = grant.key if not grant.insert_only else None
        await self.admit(bucket or grant.bucket, size, replacing=replacing)

    @staticmethod
    def admitted_before() -> None:
        """This request continues an upload admitted by an earlier one (a session's completion)."""
        record = logs.current()
        if record is not None:
            record.quota_admitted = True


def check_storage(quota: Quota, size: int | None, *, replacing: int | None = None) -> None:
    """Refuse an upload that cannot fit: ``size`` more bytes (or, not declared, any byte at all)
    or one more object. ``replacing``: the size of the object the upload replaces, whose bytes
    it frees (and it adds no object)."""
    if replacing is None and quota.max_objects is not None and quota.objects_used >= quota.max_objects:
        raise QuotaExceeded(
            f"the bucket holds {quota.objects_used} objects, its quota is {quota.max_objects}"
        )
    if quota.max_bytes is None:
        return
    used = quota.bytes_used - (replacing or 0)
    if size is not None and used + size > quota.max_bytes:
        raise QuotaExceeded(
            f"an upload of {size} bytes does not fit the bucket's quota of {quota.max_bytes} bytes "
            f"({quota.bytes_used} used)"
        )
    if used >= quota.max_bytes:
        raise QuotaExceeded(f"the bucket's quota of {quota.max_bytes} bytes is used up")


def windows(bucket: str, quota: Quota, record: logs.RequestRecord | None) -> list[Window]:
    """The rate limits an upload to ``bucket`` passes: the bucket's, and its caller's (the API key
    or upload token that authenticated the request, noted by core.apikeys/uploadtokens). Windows
    are named by the bucket's name and the key's or token's public id, which stay unique across
    installations sharing one Redis database more often than row ids do."""
    found: list[Window] = []
    if quota.uploads_per_minute is not None:
        found.append(Window(f"bucket:{bucket}", quota.uploads_per_minute, "the bucket"))
    callers = record.callers if record is not None else []
    for kind, caller_id in callers:
        limit = quota.key_uploads_per_minute if kind == "key" else quota.token_uploads_per_minute
        if limit is not None:
            name = "API key" if kind == "key" else "upload token"
            found.append(Window(f"{kind}:{caller_id}", limit, f"{name} {caller_id}"))
    return found


_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "P": 1024**5}
_SIZE = re.compile(r"([0-9]{1,18}(?:\.[0-9]{1,6})?)\s*([KMGTP]?)(?:I?B)?", re.IGNORECASE)
_OFF = frozenset({"none", "off", "unlimited"})


def parse_limit(text: str, *, sizes: bool = False) -> int | None:
    """A limit as an operator writes it: a whole number, with ``sizes`` also ``10G``, ``500M``,
    ``1.5T`` (binary units: K = 1024), or ``none`` for no limit. BadRequest otherwise."""
    clean = text.strip()
    if clean.lower() in _OFF:
        return None
    match = _SIZE.fullmatch(clean) if sizes else None
    if match is not None:
        return int(float(match.group(1)) * _UNITS[match.group(2).upper()])
    number = parse_uint(clean)
    if number is None:
        example = "a number of bytes, 10G, 500M or none" if sizes else "a whole number or none"
        raise BadRequest(f"{text!r} is not a limit: use {example}")
    return number

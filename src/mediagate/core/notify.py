"""Outgoing calls to the customer's servers: durable notifications, synchronous callbacks, and the
SSRF guard both go through.

* :func:`enqueue` records a notification in the catalog (``deliveries``) and wakes the loop; the
  upload answer never waits for the customer's server. Dialects sign the body and headers
  themselves; this module only carries them. A notification about a stored object is not
  enqueued afterwards but committed with the object (core.outbox, ``Gateway.commit(notify=…)``),
  so a crash cannot lose it; :func:`wake` then wakes the loop.
* :func:`delivery_loop` (started by the app's lifespan, one per process; several nodes may run it
  on one catalog: rows are leased) claims due deliveries and POSTs them. A 2xx is delivered; any
  other answer, a timeout or a refused address is retried with exponential backoff
  (``BACKOFF_SECONDS * BACKOFF_FACTOR**n``) up to ``settings.notify_retries`` retries, then failed.
  When idle it costs one indexed read per ``POLL_SECONDS``; an enqueue wakes it at once.
* :func:`post_now` is the synchronous call (``callback-url``): one attempt, no retry.
* :func:`check_url` is the SSRF guard: only http/https; the host is resolved and every address
  must be public (not loopback, private, link-local, multicast, reserved, unspecified, shared, nor
  such an IPv4 address embedded in IPv6) unless ``settings.allow_private_callbacks``. The request
  is then pinned to the checked address (the Host header keeps the name, or the caller's Host
  such as Wantu's callbackHost; TLS SNI and certificate verification use the URL's hostname),
  so DNS cannot change its answer between the check and the connection. Redirects are never followed and
  environment proxies are never used.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from anyio import to_thread

from mediagate import urlguard
from mediagate.core import webhooks
from mediagate.core.errors import BadRequest, Forbidden
from mediagate.core.gateway import Gateway
from mediagate.core.secrets import WrongSecretKey
from mediagate.logs import FailureStreak, Throttled
from mediagate.urlguard import Target as Target
from mediagate.urlguard import is_public_address as is_public_address

if TYPE_CHECKING:  # imported where a call is made: most servers never make one (~3 MB of RSS)
    import httpx

    from mediagate.catalog.models import Delivery

log = logging.getLogger("mediagate.notify")
failed_attempts = Throttled(log)
"""A notify-url is the uploader's choice: every upload may name one that fails, five times."""

POLL_SECONDS = 1.0
BACKOFF_SECONDS = 2.0
BACKOFF_FACTOR = 4.0
MAX_BACKOFF_SECONDS = 3600.0
CLAIM_BATCH = 20
MAX_REPLY_BYTES = 1024 * 1024
"""Largest callback answer relayed to an uploader; a larger one counts as a failed callback."""


class DeliveryFailed(Exception):
    """A call that did not get an answer (refused address, DNS, connect, timeout, too large)."""


@dataclass(frozen=True)
class Reply:
    """The customer server's answer to a synchronous call."""

    status: int
    content_type: str | None
    body: bytes


# -- per-event-loop state: one HTTP client and one wake-up event ----------------------------------------

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)
_wakers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Event] = weakref.WeakKeyDictionary()


def _client() -> httpx.AsyncClient:
    import httpx

    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        client = httpx.AsyncClient(follow_redirects=False, trust_env=False)
        _clients[loop] = client
    return client


def _waker() -> asyncio.Event:
    loop = asyncio.get_running_loop()
    event = _wakers.get(loop)
    if event is None:
        event = _wakers[loop] = asyncio.Event()
    return event


async def close() -> None:
    """Close this event loop's HTTP client (app shutdown)."""
    with contextlib.suppress(RuntimeError):
        client = _clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()


# -- the SSRF guard ---------------------------------------------------------------------------------------


async def check_url(url: str, *, allow_private: bool) -> Target:
    """Refuse a URL we must not call (see the module docstring and :mod:`mediagate.urlguard`);
    resolve and pin it otherwise.

    Raises BadRequest for a URL that is not http(s) or whose host does not resolve, and
    Forbidden for one that resolves to any non-public address.
    """
    try:
        return await urlguard.resolve(url, allow_private=allow_private)
    except urlguard.UrlRefused as exc:
        error = Forbidden if exc.forbidden else BadRequest
        raise error(str(exc), code=exc.code) from exc


def is_http_url(value: str) -> bool:
    """Whether ``value`` is an absolute http(s) URL with a host and a valid port: the shape a
    policy's return/notify/callback URL must have before anything is stored (where it points is
    :func:`check_url`'s business, at call time)."""
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises for a port that is not a number in range
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


# -- calling ----------------------------------------------------------------------------------------------


async def _send(
    url: str,
    *,
    method: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float,
    allow_private: bool,
) -> Reply:
    try:
        target = await check_url(url, allow_private=allow_private)
    except (BadRequest, Forbidden) as exc:
        raise DeliveryFailed(exc.message) from exc
    return await send_to(target, method=method, body=body, headers=headers, timeout=timeout)


async def send_to(
    target: Target, *, method: str, body: bytes, headers: dict[str, str], timeout: float
) -> Reply:
    """One request to a target :func:`check_url` has let through (pinned to its address when it
    resolved one). A ``Host`` in ``headers`` is kept, whatever its case (see
    :meth:`Target.request_args`). Raises DeliveryFailed when there is no answer."""
    import httpx

    host = next((v for k, v in headers.items() if k.lower() == "host"), None)
    rest = {k: v for k, v in headers.items() if k.lower() != "host"}
    connect_url, extra, extensions = target.request_args(host)
    request = _client().build_request(
        method,
        connect_url,
        content=body,
        headers={**rest, **extra},
        timeout=timeout,
        extensions=extensions,
    )
    try:
        async with asyncio.timeout(timeout):
            response = await _client().send(request, stream=True)
            try:
                data = bytearray()
                async for chunk in response.aiter_raw():
                    data += chunk
                    if len(data) > MAX_REPLY_BYTES:
                        raise DeliveryFailed(f"the answer is larger than {MAX_REPLY_BYTES} bytes")
            finally:
                await response.aclose()
    except TimeoutError as exc:
        raise DeliveryFailed(f"no answer within {timeout:g} s") from exc
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}"[:300]) from exc
    return Reply(response.status_code, response.headers.get("content-type"), bytes(data))


async def post_now(
    url: str,
    body: bytes | str,
    headers: dict[str, str],
    *,
    timeout: float,
    allow_private: bool,
) -> Reply:
    """One synchronous POST (no retry); raises DeliveryFailed when there is no answer."""
    data = body.encode() if isinstance(body, str) else body
    return await _send(
        url, method="POST", body=data, headers=headers, timeout=timeout, allow_private=allow_private
    )


async def enqueue(gw: Gateway, url: str, body: str, headers: dict[str, str], *, method: str = "POST") -> int:
    """Record a notification durably and wake the delivery loop; returns the delivery id."""
    delivery_id = await to_thread.run_sync(
        lambda: gw.catalog.enqueue_delivery(url, body, headers, method=method)
    )
    _waker().set()
    return delivery_id


def wake() -> None:
    """Have this event loop's delivery loop look for due deliveries now (after a commit queued
    some in the outbox, see core.outbox)."""
    _waker().set()


def backoff(attempts: int) -> timedelta:
    """Delay before the next try after ``attempts`` failed ones (1 -> 2 s, 2 -> 8 s, 3 -> 32 s …)."""
    return timedelta(seconds=min(MAX_BACKOFF_SECONDS, BACKOFF_SECONDS * BACKOFF_FACTOR ** (attempts - 1)))


async def _deliver(gw: Gateway, d: Delivery) -> None:
    settings = gw.settings
    delivery_id, url, attempts = d.id, d.url, d.attempts
    error: str | None = None
    status: int | None = None
    data = d.body.encode()
    headers = {str(k): str(v) for k, v in (d.headers or {}).items()}
    try:
        if d.signing == webhooks.SIGNING:  # signed now, so that the timestamp is this attempt's
            headers |= await to_thread.run_sync(
                lambda: webhooks.signed_headers(gw.catalog, gw.secrets, d.bucket_id, data, delivery_id)
            )
        reply = await _send(
            url,
            method=d.method,
            body=data,
            headers=headers,
            timeout=settings.notify_timeout_seconds,
            allow_private=settings.allow_private_callbacks,
        )
        status = reply.status
        if not 200 <= reply.status < 300:
            error = f"answered HTTP {reply.status}"
    except (DeliveryFailed, webhooks.NoSecret, WrongSecretKey) as exc:
        error = str(exc)
    done = attempts + 1
    retry_at = None
    if error is not None and done <= settings.notify_retries:
        retry_at = datetime.now(UTC) + backoff(done)
    if error is not None:
        failed_attempts.warning(
            "notification %s to %s: attempt %s failed: %s", delivery_id, _safe(url), done, error
        )
    await to_thread.run_sync(
        lambda: gw.catalog.finish_delivery(
            delivery_id, ok=error is None, error=error, retry_at=retry_at, status=status
        )
    )


async def deliver_due(gw: Gateway) -> int:
    """Send every delivery due now (at most one batch); returns how many were tried."""
    now = datetime.now(UTC)
    due = await to_thread.run_sync(gw.catalog.next_delivery_at)
    if due is None or due > now:
        return 0
    lease = timedelta(seconds=gw.settings.notify_timeout_seconds + 30)
    rows = await to_thread.run_sync(lambda: gw.catalog.claim_deliveries(now, lease=lease, limit=CLAIM_BATCH))
    await asyncio.gather(*(_deliver(gw, d) for d in rows))
    return len(rows)


async def delivery_loop(gw: Gateway) -> None:
    """Deliver notifications until cancelled; never raises (errors are logged and retried)."""
    wake = _waker()
    streak = FailureStreak(log, "notification delivery round")  # an outage: one line, not one a second
    while True:
        wake.clear()
        try:
            busy = await deliver_due(gw)
        except Exception as exc:
            streak.failed(exc)
            busy = 0
        else:
            streak.succeeded()
        if busy >= CLAIM_BATCH:
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), POLL_SECONDS)


def _safe(url: str) -> str:
    """A URL for the log: scheme, host and path only (queries may carry tokens)."""
    import httpx

    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        return "<invalid url>"
    return str(parsed.copy_with(query=None, fragment=None, username=None, password=None))


def redeliver(gw: Gateway, delivery_id: int) -> None:
    """Queue a delivered or failed notification again (operator's replay); the running server's
    delivery loop or ``mediagate worker`` sends it within ``POLL_SECONDS``. Raises NotFound or
    Conflict (still pending)."""
    gw.catalog.requeue_delivery(delivery_id)

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
import ipaddress
import logging
import socket
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from anyio import to_thread

from mediagate.core.errors import BadRequest, Forbidden
from mediagate.core.gateway import Gateway
from mediagate.logs import FailureStreak

if TYPE_CHECKING:  # imported where a call is made: most servers never make one (~3 MB of RSS)
    import httpx

log = logging.getLogger("mediagate.notify")

POLL_SECONDS = 1.0
BACKOFF_SECONDS = 2.0
BACKOFF_FACTOR = 4.0
MAX_BACKOFF_SECONDS = 3600.0
CLAIM_BATCH = 20
MAX_REPLY_BYTES = 1024 * 1024
"""Largest callback answer relayed to an uploader; a larger one counts as a failed callback."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


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


def is_public_address(ip: IPAddress) -> bool:
    """True only for globally routable unicast addresses (IPv4 embedded in IPv6 is checked too)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d is the IPv4 host itself
            return is_public_address(ip.ipv4_mapped)
        embedded: IPAddress | None = ip.sixtofour
        if embedded is None and ip.teredo is not None:
            embedded = ip.teredo[1]
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None and not is_public_address(embedded):
            return False
    return ip.is_global and not (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


@dataclass(frozen=True)
class Target:
    """A checked URL and, unless private targets are allowed, the address to connect to."""

    url: httpx.URL
    address: IPAddress | None = None

    def request_args(self, host: str | None = None) -> tuple[httpx.URL, dict[str, str], dict[str, Any]]:
        """(URL to connect to, headers to set, httpx extensions) for a request to this target.

        Pinned, the URL names the checked address; the ``Host`` header is the caller's ``host``
        when given (Wantu's ``callbackHost``), else the URL's host (and port), as an unpinned
        request would send. For https the certificate is verified for, and SNI names, the URL's
        hostname (not the pinned address); when the URL's host is itself an IP literal and a
        ``host`` is given, for that name instead (the usual reason to give one)."""
        extensions: dict[str, Any] = {}
        tls_name = self._tls_name(host)
        if self.url.scheme == "https" and (self.address is not None or tls_name != self.url.host):
            extensions["sni_hostname"] = tls_name
        if self.address is None:
            return self.url, ({"Host": host} if host is not None else {}), extensions
        pinned = self.url.copy_with(host=str(self.address))
        return pinned, {"Host": host if host is not None else self._host_header()}, extensions

    def _host_header(self) -> str:
        host, port = self.url.host, self.url.port
        default_port = {"http": 80, "https": 443}[self.url.scheme]
        if ":" in host:  # an IPv6 literal in the URL
            host = f"[{host}]"
        return host if port in (None, default_port) else f"{host}:{port}"

    def _tls_name(self, host: str | None) -> str:
        """The name the server's certificate must carry."""
        import httpx

        if host is None or not _is_ip_literal(self.url.host):
            return self.url.host
        try:
            name = httpx.URL(f"//{host.strip()}").host
        except (httpx.InvalidURL, TypeError, ValueError):
            name = ""
        return name or self.url.host


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


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


async def check_url(url: str, *, allow_private: bool) -> Target:
    """Refuse a URL we must not call (see the module docstring); resolve and pin it otherwise.

    Raises BadRequest for a URL that is not http(s) or whose host does not resolve, and
    Forbidden for one that resolves to any non-public address.
    """
    import httpx

    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise BadRequest(f"not a valid URL: {url[:200]!r}", code="invalid_url") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise BadRequest("only absolute http:// and https:// URLs can be called", code="invalid_url")
    if allow_private:
        return Target(parsed)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(parsed.host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise BadRequest(f"cannot resolve the host of {parsed.host!r}", code="invalid_url") from exc
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not addresses:
        raise BadRequest(f"cannot resolve the host of {parsed.host!r}", code="invalid_url")
    for address in addresses:
        if not is_public_address(address):
            raise Forbidden(
                f"{parsed.host} resolves to a private or reserved address; outgoing calls may only "
                "go to public addresses (the operator can allow private ones)",
                code="url_not_allowed",
            )
    return Target(parsed, addresses[0])


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


async def _deliver(
    gw: Gateway, delivery_id: int, url: str, method: str, body: str, headers: dict[str, Any], attempts: int
) -> None:
    settings = gw.settings
    error: str | None = None
    status: int | None = None
    try:
        reply = await _send(
            url,
            method=method,
            body=body.encode(),
            headers={str(k): str(v) for k, v in headers.items()},
            timeout=settings.notify_timeout_seconds,
            allow_private=settings.allow_private_callbacks,
        )
        status = reply.status
        if not 200 <= reply.status < 300:
            error = f"answered HTTP {reply.status}"
    except DeliveryFailed as exc:
        error = str(exc)
    done = attempts + 1
    retry_at = None
    if error is not None and done <= settings.notify_retries:
        retry_at = datetime.now(UTC) + backoff(done)
    if error is not None:
        log.warning("notification %s to %s: attempt %s failed: %s", delivery_id, _safe(url), done, error)
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
    await asyncio.gather(
        *(_deliver(gw, d.id, d.url, d.method, d.body, dict(d.headers or {}), d.attempts) for d in rows)
    )
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

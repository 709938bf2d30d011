"""The SSRF guard: which URLs an outgoing call may go to, shared by the server (notifications,
callbacks, fetches, see ``mediagate.core.notify``) and the Python SDK (``mediagate upload
<url>``), so that both refuse the same addresses. Pure: no server imports, its own error.

Only http/https; the host is resolved and every address must be public (not loopback, private,
link-local, multicast, reserved, unspecified, shared, nor such an IPv4 address embedded in IPv6)
unless private targets are allowed. The request is then pinned to the checked address
(:class:`Target`), so DNS cannot change its answer between the check and the connection.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where a call is made: most servers never make one (~3 MB of RSS)
    import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UrlRefused(ValueError):
    """A URL that must not be called: malformed or unresolvable (``forbidden`` False), or
    resolving to a non-public address (``forbidden`` True). ``code`` is the server's error code."""

    def __init__(self, message: str, *, code: str, forbidden: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.forbidden = forbidden


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


async def resolve(url: str, *, allow_private: bool) -> Target:
    """The checked, pinned target of ``url``; UrlRefused when it must not be called."""
    import httpx

    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise UrlRefused(f"not a valid URL: {url[:200]!r}", code="invalid_url") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise UrlRefused("only absolute http:// and https:// URLs can be called", code="invalid_url")
    if allow_private:
        return Target(parsed)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(parsed.host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UrlRefused(f"cannot resolve the host of {parsed.host!r}", code="invalid_url") from exc
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not addresses:
        raise UrlRefused(f"cannot resolve the host of {parsed.host!r}", code="invalid_url")
    for address in addresses:
        if not is_public_address(address):
            raise UrlRefused(
                f"{parsed.host} resolves to a private or reserved address; outgoing calls may only "
                "go to public addresses (the operator can allow private ones)",
                code="url_not_allowed",
                forbidden=True,
            )
    return Target(parsed, addresses[0])

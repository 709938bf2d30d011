"""core.notify: the SSRF guard, synchronous calls and the durable delivery loop, against real
HTTP receivers on loopback and a real catalog."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mediagate.core import notify
from mediagate.core.errors import BadRequest, Forbidden
from mediagate.core.gateway import Gateway
from mediagate.services import build_gateway
from tests.conftest import make_home
from tests.protocols.upyun.forms import Receiver


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[Gateway]:
    gateway = build_gateway(make_home(tmp_path / "home", notify_retries=2, allow_private_callbacks=True))
    yield gateway
    gateway.catalog.close()


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2001:4860:4860::8888", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.0.1", False),
        ("100.64.0.1", False),
        ("169.254.169.254", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("240.0.0.1", False),
        ("255.255.255.255", False),
        ("::1", False),
        ("::", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("ff02::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:8.8.8.8", True),
        ("2002:0a00:0001::1", False),  # 6to4 of 10.0.0.1
        ("64:ff9b::7f00:1", False),  # NAT64 of 127.0.0.1
    ],
)
def test_public_addresses(address: str, public: bool) -> None:
    assert notify.is_public_address(ipaddress.ip_address(address)) is public


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/x", "file:///etc/passwd", "gopher://x", "http://", "//example.com/x", "not a url"],
)
def test_only_http_urls(url: str) -> None:
    with pytest.raises(BadRequest):
        asyncio.run(notify.check_url(url, allow_private=True))


@pytest.mark.parametrize(
    "url", ["http://localhost:8080/x", "http://127.0.0.2/", "https://[::1]/", "http://[::ffff:10.0.0.1]/"]
)
def test_private_targets_refused_unless_allowed(url: str) -> None:
    with pytest.raises(Forbidden):
        asyncio.run(notify.check_url(url, allow_private=False))
    assert asyncio.run(notify.check_url(url, allow_private=True)).address is None


def test_public_target_is_pinned_to_the_checked_address() -> None:
    target = asyncio.run(notify.check_url("https://8.8.8.8:8443/hook?a=1", allow_private=False))
    assert target.address == ipaddress.ip_address("8.8.8.8")
    url, headers, extensions = target.request_args()
    assert str(url) == "https://8.8.8.8:8443/hook?a=1"
    assert headers == {"Host": "8.8.8.8:8443"}
    assert extensions == {"sni_hostname": "8.8.8.8"}
    plain = notify.Target(
        target.url.copy_with(scheme="http", host="hooks.example", port=None), target.address
    )
    url, headers, extensions = plain.request_args()
    assert (url.host, headers, extensions) == ("8.8.8.8", {"Host": "hooks.example"}, {})


def test_a_callers_host_survives_pinning_and_tls_keeps_the_url_name() -> None:
    """Wantu's callbackHost: the Host header is the caller's, the connection goes to the checked
    address, and an https certificate is verified for the URL's hostname, not the address."""
    address = ipaddress.ip_address("8.8.8.8")
    named = notify.Target(httpx.URL("https://hooks.example/cb"), address)
    url, headers, extensions = named.request_args("customer.example")
    assert (url.host, headers, extensions) == (
        "8.8.8.8",
        {"Host": "customer.example"},
        {"sni_hostname": "hooks.example"},
    )
    # a URL with an IP literal: the given Host is the only name the certificate can carry
    literal = notify.Target(httpx.URL("https://8.8.8.8/cb"), address)
    _, headers, extensions = literal.request_args("customer.example:8443")
    assert (headers, extensions) == ({"Host": "customer.example:8443"}, {"sni_hostname": "customer.example"})
    # private targets allowed (not pinned): the caller's Host is still what is sent
    unpinned = notify.Target(httpx.URL("http://127.0.0.1:9/cb"))
    assert unpinned.request_args("customer.example") == (unpinned.url, {"Host": "customer.example"}, {})
    assert unpinned.request_args() == (unpinned.url, {}, {})


@pytest.mark.parametrize("host", ["customer.example", None])
def test_a_pinned_request_reaches_the_checked_address_with_the_right_host(host: str | None) -> None:
    """A name that does not resolve, pinned to the receiver's loopback address (as check_url pins
    a public name): the call reaches the address, and the Host header is the caller's when given
    (any case of the header name), the URL's name and port otherwise."""
    with Receiver([200], body=b"ok", content_type="text/plain") as receiver:
        port = httpx.URL(receiver.url()).port
        target = notify.Target(
            httpx.URL(f"http://hooks.invalid:{port}/cb?a=1"), ipaddress.ip_address("127.0.0.1")
        )
        headers = {"X-Test": "yes"} | ({"host": host} if host else {})
        reply = asyncio.run(notify.send_to(target, method="POST", body=b"b=2", headers=headers, timeout=5))
        (path, got, body) = receiver.requests[0]
    assert (reply.status, reply.body) == (200, b"ok")
    assert (path, got["x-test"], body) == ("/cb?a=1", "yes", b"b=2")
    assert got["host"] == (host or f"hooks.invalid:{port}")


@pytest.mark.parametrize("allow_private", [True, False])
def test_post_now_sends_the_callers_host_or_refuses_a_private_target(allow_private: bool) -> None:
    with Receiver([200]) as receiver:
        call = notify.post_now(
            receiver.url("/cb"), "x", {"Host": "customer.example"}, timeout=5, allow_private=allow_private
        )
        if allow_private:
            assert asyncio.run(call).status == 200
            assert receiver.requests[0][1]["host"] == "customer.example"
        else:
            with pytest.raises(notify.DeliveryFailed, match="private"):
                asyncio.run(call)
            assert receiver.requests == []


def test_backoff_grows_exponentially_and_is_capped() -> None:
    delays = [notify.backoff(n).total_seconds() for n in (1, 2, 3, 20)]
    assert delays[0] == notify.BACKOFF_SECONDS
    assert delays[1] == delays[0] * notify.BACKOFF_FACTOR
    assert delays[2] == delays[1] * notify.BACKOFF_FACTOR
    assert delays[3] == notify.MAX_BACKOFF_SECONDS


# -- synchronous calls ----------------------------------------------------------------------------------


def test_post_now_returns_the_answer() -> None:
    with Receiver([201], body=b"made", content_type="text/plain") as receiver:
        reply = asyncio.run(
            notify.post_now(receiver.url("/cb?x=1"), "a=1", {"X-Test": "yes"}, timeout=5, allow_private=True)
        )
        path, headers, body = receiver.requests[0]
    assert (reply.status, reply.content_type, reply.body) == (201, "text/plain", b"made")
    assert (path, headers["x-test"], body) == ("/cb?x=1", "yes", b"a=1")


def test_post_now_does_not_follow_redirects() -> None:
    with Receiver([302]) as receiver:
        reply = asyncio.run(notify.post_now(receiver.url(), "", {}, timeout=5, allow_private=True))
        assert len(receiver.requests) == 1
    assert reply.status == 302


def test_post_now_times_out() -> None:
    with Receiver(delay=2.0) as receiver:
        started = time.monotonic()
        with pytest.raises(notify.DeliveryFailed, match=r"0\.5"):
            asyncio.run(notify.post_now(receiver.url(), "", {}, timeout=0.5, allow_private=True))
    assert time.monotonic() - started < 1.8


def test_post_now_refuses_a_huge_answer() -> None:
    with (
        Receiver(body=b"x" * (notify.MAX_REPLY_BYTES + 10)) as receiver,
        pytest.raises(notify.DeliveryFailed),
    ):
        asyncio.run(notify.post_now(receiver.url(), "", {}, timeout=5, allow_private=True))


def test_post_now_refuses_private_targets_without_calling_them() -> None:
    with Receiver() as receiver:
        with pytest.raises(notify.DeliveryFailed, match="private"):
            asyncio.run(notify.post_now(receiver.url(), "", {}, timeout=5, allow_private=False))
        assert receiver.requests == []


def test_post_now_connection_refused() -> None:
    with Receiver() as receiver:
        url = receiver.url()
    with pytest.raises(notify.DeliveryFailed):
        asyncio.run(notify.post_now(url, "", {}, timeout=2, allow_private=True))


# -- the durable delivery loop ----------------------------------------------------------------------------


async def _run_loop(gw: Gateway, seconds: float, *enqueue: tuple[str, str]) -> list[int]:
    loop = asyncio.create_task(notify.delivery_loop(gw))
    try:
        ids = [await notify.enqueue(gw, url, body, {"Content-Type": "text/plain"}) for url, body in enqueue]
        await asyncio.sleep(seconds)
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
        await notify.close()
    return ids


def test_delivery_is_retried_after_a_failure_then_delivered(gw: Gateway) -> None:
    with Receiver([500, 200]) as receiver:
        started = time.monotonic()
        [delivery_id] = asyncio.run(_run_loop(gw, notify.BACKOFF_SECONDS + 1.5, (receiver.url("/n"), "k=v")))
        assert [(p, h["content-type"], b) for p, h, b in receiver.requests] == [
            ("/n", "text/plain", b"k=v")
        ] * 2
    delivery = gw.catalog.get_delivery(delivery_id)
    assert delivery is not None
    assert (delivery.state, delivery.attempts, delivery.last_error) == ("delivered", 2, None)
    assert time.monotonic() - started >= notify.BACKOFF_SECONDS


def test_delivery_gives_up_after_the_configured_retries(gw: Gateway) -> None:
    gw.settings.notify_retries = 1
    with Receiver([503]) as receiver:
        [delivery_id] = asyncio.run(_run_loop(gw, notify.BACKOFF_SECONDS + 1.5, (receiver.url(), "x")))
        assert len(receiver.requests) == 2
    delivery = gw.catalog.get_delivery(delivery_id)
    assert delivery is not None
    assert (delivery.state, delivery.attempts) == ("failed", 2)
    assert delivery.last_error == "answered HTTP 503"


def test_enqueue_wakes_the_loop_at_once(gw: Gateway) -> None:
    with Receiver() as receiver:

        async def scenario() -> float:
            loop = asyncio.create_task(notify.delivery_loop(gw))
            await asyncio.sleep(0.3)  # the loop is idle and waiting
            started = time.monotonic()
            await notify.enqueue(gw, receiver.url(), "now", {})
            while not receiver.requests:
                await asyncio.sleep(0.01)
            elapsed = time.monotonic() - started
            loop.cancel()
            await asyncio.gather(loop, return_exceptions=True)
            await notify.close()
            return elapsed

        assert asyncio.run(scenario()) < notify.POLL_SECONDS / 2


def test_idle_loop_costs_next_to_nothing(gw: Gateway) -> None:
    cpu = time.process_time()
    asyncio.run(_run_loop(gw, 2.0))
    assert time.process_time() - cpu < 0.3
    assert gw.catalog.next_delivery_at() is None

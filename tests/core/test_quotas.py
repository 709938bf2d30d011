"""Quotas and upload rate limits (``mediagate.core.quotas``) against live servers, on every dialect.

Over the storage or object quota, and over an uploads-per-minute limit, each dialect answers in its
own error shape, and nothing is stored. Where the size is declared the refusal comes before a byte
of the body is read; a concurrent burst of uploads of undeclared size never overshoots the quota
(the commit is the exact check). Rate limits work without Redis (in the process) and, with Redis,
are shared by the nodes of a cluster.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from mediagate.core.buckets import BucketCredentials, create_bucket
from mediagate.core.gateway import Gateway
from mediagate.services import build_gateway
from tests.conftest import LiveServer, make_home, staging_files
from tests.protocols.imagex.conftest import signed as imagex_signed
from tests.protocols.native import api
from tests.protocols.upyun.rest_client import object_uri, sign, signed
from tests.support import uploads
from tests.support.proxy import TcpProxy
from tests.test_frontdoor import exchange, request_head

DATA = b"q" * 500


def new_bucket(admin: Gateway, **limits: int | None) -> BucketCredentials:
    creds = create_bucket(admin.catalog, admin.secrets, f"q{uuid.uuid4().hex[:12]}")
    bucket = admin.catalog.require_bucket(creds.bucket)
    admin.catalog.set_quota(bucket.id, limits)
    return creds


def usage(admin: Gateway, creds: BucketCredentials) -> tuple[int, int]:
    """(bytes, objects) by the counters, checked against the objects themselves."""
    bucket = admin.catalog.require_bucket(creds.bucket)
    quota = admin.catalog.get_quota(bucket.id)
    assert quota is not None
    assert quota.bytes_used == admin.catalog.usage(bucket.id)
    return quota.bytes_used, quota.objects_used


def imagex_apply_sized(server: LiveServer, creds: BucketCredentials, size: int) -> httpx.Response:
    params = {
        "Action": "ApplyImageUpload",
        "Version": "2018-08-01",
        "ServiceId": creds.bucket,
        "FileSize": str(size),
    }
    return imagex_signed(server, "GET", params, ak=creds.access_key_id, sk=creds.secret_access_key)


def fresh_window() -> None:
    """Wait out the end of a rate-limit minute, so that a test's uploads share one window."""
    into = time.time() % 60
    if into > 50:
        time.sleep(60 - into + 0.1)


@dataclass
class Dialect:
    name: str
    upload: Callable[[httpx.Client, BucketCredentials, bytes], httpx.Response]
    over_quota: Callable[[httpx.Response], Any]
    too_many: Callable[[httpx.Response], Any]


def dialects(server: LiveServer) -> list[Dialect]:
    return [
        Dialect(
            "upyun-rest",
            uploads.upyun_rest,
            lambda r: uploads.assert_upyun_rest_error(r, 413)["code"] == 41300002,
            lambda r: uploads.assert_upyun_rest_error(r, 429)["code"] == 42900001,
        ),
        Dialect(
            "upyun-form",
            uploads.upyun_form,
            lambda r: uploads.assert_upyun_form_error(r, 413)["error_code"] == 41300002,
            lambda r: uploads.assert_upyun_form_error(r, 429)["error_code"] == 42900001,
        ),
        Dialect(
            "wantu",
            uploads.wantu,
            lambda r: uploads.assert_wantu_error(r, 403, "QuotaExceeded"),
            lambda r: uploads.assert_wantu_error(r, 429, "Throttling"),
        ),
        Dialect(
            "imagex",
            uploads.imagex(server),
            lambda r: uploads.assert_imagex_action_error(r, 413, "QuotaExceeded"),
            lambda r: uploads.assert_imagex_action_error(r, 429, "FlowLimitExceeded"),
        ),
    ]


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


@pytest.mark.parametrize("dialect", ["upyun-rest", "upyun-form", "wantu", "imagex"])
def test_an_upload_over_the_storage_quota_is_refused_in_the_dialects_shape_and_nothing_is_stored(
    server: LiveServer, admin: Gateway, client: httpx.Client, dialect: str
) -> None:
    [case] = [d for d in dialects(server) if d.name == dialect]
    creds = new_bucket(admin, max_bytes=100)
    if dialect == "imagex":  # ApplyImageUpload declares FileSize: refused before any upload
        resp = imagex_apply_sized(server, creds, len(DATA))
    else:
        resp = case.upload(client, creds, DATA)
    assert case.over_quota(resp), resp.text
    assert "quota" in resp.text
    assert usage(admin, creds) == (0, 0)
    assert not staging_files(server.home)


@pytest.mark.parametrize("dialect", ["upyun-rest", "upyun-form", "wantu", "imagex"])
def test_a_full_object_quota_refuses_the_next_upload_in_the_dialects_shape(
    server: LiveServer, admin: Gateway, client: httpx.Client, dialect: str
) -> None:
    [case] = [d for d in dialects(server) if d.name == dialect]
    creds = new_bucket(admin, max_objects=1)
    assert (
        signed(client, creds, "PUT", object_uri(creds.bucket, "/first.bin"), content=b"first").status_code
        == 200
    )
    resp = case.upload(client, creds, DATA)
    assert case.over_quota(resp), resp.text
    assert usage(admin, creds) == (5, 1)


@pytest.mark.parametrize("dialect", ["upyun-rest", "upyun-form", "wantu", "imagex"])
def test_uploads_over_the_per_minute_limit_are_refused_in_the_dialects_shape_with_retry_after(
    server: LiveServer, admin: Gateway, client: httpx.Client, dialect: str
) -> None:
    [case] = [d for d in dialects(server) if d.name == dialect]
    creds = new_bucket(admin, uploads_per_minute=2)
    fresh_window()
    for _ in range(2):
        assert case.upload(client, creds, DATA).status_code == 200
    before = usage(admin, creds)
    refused = case.upload(client, creds, b"r" * 700)
    assert case.too_many(refused), refused.text
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert usage(admin, creds) == before


def test_a_declared_size_over_the_quota_is_refused_before_the_body_is_read(
    server: LiveServer, admin: Gateway
) -> None:
    """``Expect: 100-continue``: the answer comes instead of ``100 Continue``; no body is sent."""
    creds = new_bucket(admin, max_bytes=1000)
    uri = object_uri(creds.bucket, "/big.bin")
    head = request_head(
        "PUT", uri, {**sign(creds, "PUT", uri), "Content-Length": "5000", "Expect": "100-continue"}
    )
    reply = exchange(server.port, head)
    assert reply.status == 413, reply
    assert reply.json()["code"] == 41300002 and "5000" in reply.json()["msg"]
    assert reply.headers.get("connection") == "close"
    # within the quota the same request is asked for its body, and stored
    with httpx.Client(base_url=server.url) as client:
        assert signed(client, creds, "PUT", uri, content=b"s" * 900).status_code == 200
    assert usage(admin, creds) == (900, 1)


def test_a_full_bucket_takes_a_replacement_that_fits_at_the_early_check(
    server: LiveServer, admin: Gateway, client: httpx.Client
) -> None:
    """Defect: admission treated every upload as new, so a bucket at its byte (or object) quota
    refused even a same-size replacement before reading it, though the commit would have charged
    it nothing. With its key known and overwrite allowed, the early check frees the old bytes."""
    creds = new_bucket(admin, max_bytes=1000, max_objects=1)
    uri = object_uri(creds.bucket, "/full.bin")
    assert signed(client, creds, "PUT", uri, content=b"f" * 1000).status_code == 200
    for size in (1000, 400):  # declared by Content-Length: the early check decides
        replaced = signed(client, creds, "PUT", uri, content=b"r" * size)
        assert replaced.status_code == 200, replaced.text
        assert usage(admin, creds) == (size, 1)
    grown = signed(client, creds, "PUT", uri, content=b"g" * 1001)
    assert grown.status_code == 413 and grown.json()["code"] == 41300002, grown.text
    other = signed(client, creds, "PUT", object_uri(creds.bucket, "/other.bin"), content=b"o")
    assert other.status_code == 413, other.text
    assert usage(admin, creds) == (400, 1)
    # a multi-part upload declaring its length at the start is admitted the same way
    init = {"X-Upyun-Multi-Stage": "initiate", "X-Upyun-Multi-Part-Size": str(1024 * 1024)}
    started = client.put(uri, headers={**init, "X-Upyun-Multi-Length": "1000", **sign(creds, "PUT", uri)})
    assert started.status_code == 204, started.text
    other_uri = object_uri(creds.bucket, "/other.bin")
    refused = client.put(
        other_uri, headers={**init, "X-Upyun-Multi-Length": "1", **sign(creds, "PUT", other_uri)}
    )
    assert refused.status_code == 413, refused.text
    # /v1: a key may replace; a token without overwrite may not, and is refused early as new
    secret = api.new_key(admin, creds.bucket, "write")
    with api.client(server.url, secret) as c:
        assert c.put(f"/v1/buckets/{creds.bucket}/objects/full.bin", content=b"v" * 900).status_code == 201
        token = c.post(
            f"/v1/buckets/{creds.bucket}/upload-tokens", json={"key": "full.bin", "max_uses": 2}
        ).json()["token"]
    with api.client(server.url, token) as browser:
        refused = browser.put(f"/v1/buckets/{creds.bucket}/objects/full.bin", content=b"t" * 10)
        assert api.error_of(refused)[0] in (409, 413), refused.text
    assert usage(admin, creds) == (900, 1)


def burst(urls: list[str], creds: BucketCredentials, count: int) -> list[int]:
    """``count`` UPYUN REST PUTs of 1000 bytes at once, streamed without a Content-Length (so
    nothing is refused before the body), spread over ``urls``; their statuses."""

    def put(n: int) -> int:
        uri = object_uri(creds.bucket, f"/burst/{n}.bin")

        def body() -> Iterator[bytes]:
            yield b"b" * 1000

        with httpx.Client(base_url=urls[n % len(urls)], timeout=60) as c:
            return c.put(uri, content=body(), headers=sign(creds, "PUT", uri)).status_code

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(put, range(count)))


def test_a_burst_of_undeclared_uploads_never_overshoots_the_storage_quota(
    server: LiveServer, admin: Gateway
) -> None:
    """30 uploads at once into room for 10: the commit is the exact check, so exactly 10 are
    stored and the rest refused with nothing left behind."""
    creds = new_bucket(admin, max_bytes=10 * 1000)
    statuses = burst([server.url], creds, 30)
    assert sorted(statuses) == [200] * 10 + [413] * 20, statuses
    assert usage(admin, creds) == (10 * 1000, 10)
    assert not staging_files(server.home)


@pytest.mark.postgres
def test_a_burst_over_two_nodes_on_postgresql_never_overshoots_the_storage_quota(cluster: Any) -> None:
    creds = create_bucket(cluster.admin.catalog, cluster.admin.secrets, f"q{uuid.uuid4().hex[:12]}")
    bucket = cluster.admin.catalog.require_bucket(creds.bucket)
    cluster.admin.catalog.set_quota(bucket.id, {"max_bytes": 8 * 1000, "max_objects": 6})
    statuses = burst([node.url for node in cluster.nodes], creds, 24)
    assert sorted(statuses) == [200] * 6 + [413] * 18, statuses
    assert usage(cluster.admin, creds) == (6 * 1000, 6)


def test_deleting_frees_the_quota(server: LiveServer, admin: Gateway, client: httpx.Client) -> None:
    creds = new_bucket(admin, max_objects=1)
    uri = object_uri(creds.bucket, "/one.bin")
    assert signed(client, creds, "PUT", uri, content=DATA).status_code == 200
    uploads.assert_upyun_rest_error(uploads.upyun_rest(client, creds, DATA), 413)
    assert signed(client, creds, "DELETE", uri).status_code == 200
    assert usage(admin, creds) == (0, 0)
    assert uploads.upyun_rest(client, creds, DATA).status_code == 200


@pytest.mark.postgres
def test_two_nodes_on_redis_share_the_rate_limit(cluster: Any) -> None:
    """Round robin over both nodes: the bucket's 3 uploads a minute are 3 in all, not 3 each."""
    creds = create_bucket(cluster.admin.catalog, cluster.admin.secrets, f"q{uuid.uuid4().hex[:12]}")
    bucket = cluster.admin.catalog.require_bucket(creds.bucket)
    cluster.admin.catalog.set_quota(bucket.id, {"uploads_per_minute": 3})
    fresh_window()
    statuses = []
    for n in range(6):
        node = cluster.nodes[n % 2]
        with httpx.Client(base_url=node.url, timeout=30) as c:
            statuses.append(uploads.upyun_rest(c, creds, DATA).status_code)
    assert statuses == [200, 200, 200, 429, 429, 429], statuses


# -- /v1: the JSON error shape, per-key and per-token limits -------------------------------------------


def test_v1_over_quota_is_its_json_error_before_the_body_is_read(server: LiveServer, admin: Gateway) -> None:
    creds = new_bucket(admin, max_bytes=1000)
    secret = api.new_key(admin, creds.bucket, "write")
    target = f"/v1/buckets/{creds.bucket}/objects/big.bin"
    head = {"Authorization": f"Bearer {secret}", "Content-Length": "5000", "Expect": "100-continue"}
    reply = exchange(server.port, request_head("PUT", target, head))
    assert reply.status == 413, reply
    error = reply.json()["error"]
    assert error["code"] == "quota_exceeded" and "5000" in error["message"]
    with api.client(server.url, secret) as c:
        assert c.put(target, content=b"v" * 1000).status_code == 201
        refused = c.put(f"/v1/buckets/{creds.bucket}/objects/more.bin", content=b"v")
        assert api.error_of(refused) == (413, "quota_exceeded")
    assert usage(admin, creds) == (1000, 1)


def test_each_api_key_has_its_own_uploads_per_minute(server: LiveServer, admin: Gateway) -> None:
    creds = new_bucket(admin, key_uploads_per_minute=2)
    fresh_window()
    one, other = (api.new_key(admin, creds.bucket, "write") for _ in range(2))
    with api.client(server.url, one) as c, api.client(server.url, other) as d:
        for n in range(2):
            assert c.put(f"/v1/buckets/{creds.bucket}/objects/one{n}", content=DATA).status_code == 201
        refused = c.put(f"/v1/buckets/{creds.bucket}/objects/one2", content=DATA)
        assert api.error_of(refused) == (429, "rate_limited")
        assert "API key mk_" in refused.json()["error"]["message"]
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert d.put(f"/v1/buckets/{creds.bucket}/objects/other", content=DATA).status_code == 201
        # the dialects' credentials are not API keys: only the bucket's own limits apply to them
        with httpx.Client(base_url=server.url) as plain:
            assert uploads.upyun_rest(plain, creds, DATA).status_code == 200
    assert usage(admin, creds) == (4 * len(DATA), 4)


def test_an_upload_token_counts_for_itself_and_for_the_key_that_issued_it(
    server: LiveServer, admin: Gateway
) -> None:
    creds = new_bucket(admin, token_uploads_per_minute=1, key_uploads_per_minute=3)
    fresh_window()
    with api.client(server.url, api.new_key(admin, creds.bucket, "write")) as issuer:
        token = issuer.post(f"/v1/buckets/{creds.bucket}/upload-tokens", json={"max_uses": 5}).json()["token"]
        with api.client(server.url, token) as browser:
            assert browser.put(f"/v1/buckets/{creds.bucket}/objects/t1", content=DATA).status_code == 201
            refused = browser.put(f"/v1/buckets/{creds.bucket}/objects/t2", content=DATA)
            assert api.error_of(refused) == (429, "rate_limited")
            assert "upload token ut_" in refused.json()["error"]["message"]
        listed = issuer.get(f"/v1/buckets/{creds.bucket}/upload-tokens").json()["upload_tokens"]
        assert [t["uses"] for t in listed] == [1]  # the refused upload gave its use back
        for n in range(2):  # the token's upload was the key's first of three
            assert issuer.put(f"/v1/buckets/{creds.bucket}/objects/k{n}", content=DATA).status_code == 201
        assert api.error_of(issuer.put(f"/v1/buckets/{creds.bucket}/objects/k2", content=DATA))[0] == 429
    assert usage(admin, creds) == (3 * len(DATA), 3)


@pytest.fixture
def redis_node(tmp_path: Path) -> Iterator[tuple[LiveServer, TcpProxy, Gateway]]:
    """A node whose shared Redis (the real one) is reached through a proxy the test cuts."""
    proxy = TcpProxy(6379).start()
    home = make_home(tmp_path / "home")
    server = LiveServer(home.home, env={"MEDIAGATE_REDIS_URL": f"redis://127.0.0.1:{proxy.port}/0"}).start()
    gw = build_gateway(home, migrate=False)
    try:
        yield server, proxy, gw
    finally:
        gw.catalog.close()
        server.stop()
        proxy.cut()


def test_rate_limits_with_redis_down_are_the_dialects_503_and_admit_nothing(
    redis_node: tuple[LiveServer, TcpProxy, Gateway],
) -> None:
    server, proxy, admin = redis_node
    creds = new_bucket(admin, uploads_per_minute=100)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert uploads.upyun_rest(client, creds, DATA).status_code == 200
        proxy.cut()
        refused = uploads.upyun_rest(client, creds, b"d" * 700)
        uploads.assert_upyun_rest_error(refused, 503)
        assert "Redis" in refused.json()["msg"]
        proxy.restore()
        assert uploads.upyun_rest(client, creds, DATA).status_code == 200
    assert usage(admin, creds) == (len(DATA), 1)

"""CORS on bucket paths, per bucket, against a live server (and the real CLI to configure it)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest

from mediagate.core.buckets import BucketCredentials
from mediagate.core.gateway import Gateway
from tests.conftest import LiveServer
from tests.support.cli import run_mediagate
from tests.test_serving import put

APP = "https://app.example.com"


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def cli(server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    return run_mediagate(server.home, *args)


def preflight(client: httpx.Client, path: str, origin: str, method: str, headers: str = "") -> httpx.Response:
    h = {"Origin": origin, "Access-Control-Request-Method": method}
    if headers:
        h["Access-Control-Request-Headers"] = headers
    return client.options(path, headers=h)


def exposed(response: httpx.Response) -> set[str]:
    return {h.strip().lower() for h in response.headers.get("access-control-expose-headers", "").split(",")}


# -- defaults: every origin may read and upload -------------------------------------------------------


def test_default_allows_every_origin_on_reads(
    admin: Gateway, bucket: BucketCredentials, client: httpx.Client
) -> None:
    put(admin, bucket.bucket, "c.txt", b"cors")
    r = client.get(f"/{bucket.bucket}/c.txt", headers={"Origin": "https://anywhere.test"})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "*"
    for name in (
        "etag",
        "content-length",
        "content-range",
        "x-request-id",
        "location",
        "x-upyun-width",
        "x-upyun-multi-uuid",
        "x-upyun-next-part-id",
        "x-upyun-list-iter",
        "content-md5",
        "x-upyun-file-size",
    ):
        assert name in exposed(r), name
    # errors carry CORS headers too, so a page can read the 404
    missing = client.get(f"/{bucket.bucket}/none.txt", headers={"Origin": "https://anywhere.test"})
    assert missing.status_code == 404
    assert missing.headers["access-control-allow-origin"] == "*"


def test_no_origin_no_cors_headers(admin: Gateway, bucket: BucketCredentials, client: httpx.Client) -> None:
    put(admin, bucket.bucket, "c.txt", b"cors")
    r = client.get(f"/{bucket.bucket}/c.txt")
    assert "access-control-allow-origin" not in r.headers


def test_default_preflight_for_a_form_upload(bucket: BucketCredentials, client: httpx.Client) -> None:
    r = preflight(client, f"/{bucket.bucket}", "https://page.test", "POST", "content-type")
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == "*"
    methods = {m.strip() for m in r.headers["access-control-allow-methods"].split(",")}
    assert {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"} <= methods
    assert r.headers["access-control-allow-headers"].lower() == "content-type"
    assert r.headers["access-control-max-age"] == "600"
    assert (
        client.options(
            f"/{bucket.bucket}/",
            headers={"Origin": "https://page.test", "Access-Control-Request-Method": "POST"},
        ).status_code
        == 204
    )


def test_preflight_echoes_the_rest_headers(bucket: BucketCredentials, client: httpx.Client) -> None:
    asked = "authorization, content-md5, date, x-upyun-multi-stage, content-secret, x-date"
    r = preflight(client, f"/{bucket.bucket}/a/b.jpg", "https://page.test", "PUT", asked)
    assert r.status_code == 204
    assert r.headers["access-control-allow-headers"] == asked


def test_preflight_refuses_unknown_methods(bucket: BucketCredentials, client: httpx.Client) -> None:
    r = preflight(client, f"/{bucket.bucket}/a", "https://page.test", "PATCH")
    assert r.status_code == 403
    assert "access-control-allow-origin" not in r.headers


def test_plain_options_is_not_a_preflight(bucket: BucketCredentials, client: httpx.Client) -> None:
    r = client.options(f"/{bucket.bucket}/a")
    assert r.status_code == 204
    assert "POST" in r.headers["allow"]
    assert "access-control-allow-origin" not in r.headers


# -- a configured list ----------------------------------------------------------------------------------


def test_listed_origins(admin: Gateway, bucket: BucketCredentials, client: httpx.Client) -> None:
    admin.catalog.update_bucket_settings(
        bucket.bucket, {"cors_origins": [APP, "https://*.partner.test"], "cors_max_age": 42}
    )
    put(admin, bucket.bucket, "c.txt", b"cors")
    path = f"/{bucket.bucket}/c.txt"

    ok = client.get(path, headers={"Origin": APP})
    assert ok.headers["access-control-allow-origin"] == APP
    assert "origin" in ok.headers["vary"].lower()
    assert "etag" in exposed(ok)
    sub = client.get(path, headers={"Origin": "https://cdn.partner.test"})
    assert sub.headers["access-control-allow-origin"] == "https://cdn.partner.test"

    for stranger in (
        "https://evil.test",
        "http://app.example.com",
        "https://partner.test",
        "https://app.example.com.evil.test",
    ):
        r = client.get(path, headers={"Origin": stranger})
        assert r.status_code == 200  # the bytes are public; only the browser is kept out
        assert "access-control-allow-origin" not in r.headers, stranger
        assert "origin" in r.headers["vary"].lower()
        denied = preflight(client, path, stranger, "GET")
        assert denied.status_code == 403, stranger
        assert "access-control-allow-origin" not in denied.headers
        assert denied.json()["code"] == 403

    allowed = preflight(client, f"/{bucket.bucket}", APP, "POST", "content-type")
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == APP
    assert allowed.headers["access-control-max-age"] == "42"
    assert "origin" in allowed.headers["vary"].lower()


def test_empty_list_disables_cors(admin: Gateway, bucket: BucketCredentials, client: httpx.Client) -> None:
    admin.catalog.update_bucket_settings(bucket.bucket, {"cors_origins": []})
    assert preflight(client, f"/{bucket.bucket}", APP, "POST").status_code == 403


# -- the CLI ---------------------------------------------------------------------------------------------


def test_cors_set_via_cli_takes_effect_on_the_running_server(
    admin: Gateway, bucket: BucketCredentials, client: httpx.Client, server: LiveServer
) -> None:
    path = f"/{bucket.bucket}"
    assert preflight(client, path, "https://evil.test", "POST").status_code == 204  # default '*'

    done = cli(
        server,
        "bucket",
        "cors",
        "set",
        bucket.bucket,
        "--origin",
        "https://App.Example.com/",
        "--origin",
        "http://localhost:5173",
        "--max-age",
        "120",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["origins"] == [APP, "http://localhost:5173"]
    assert shown["max_age"] == 120

    start = time.monotonic()
    while preflight(client, path, "https://evil.test", "POST").status_code != 403:
        assert time.monotonic() - start < 5, "the CORS change did not reach the server within 5 s"
        time.sleep(0.2)
    r = preflight(client, path, "http://localhost:5173", "POST", "content-type")
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert r.headers["access-control-max-age"] == "120"

    show = cli(server, "bucket", "cors", "show", bucket.bucket, "--json")
    assert json.loads(show.stdout)["origins"] == [APP, "http://localhost:5173"]


@pytest.mark.parametrize("bad", ["ftp://x.test", "https://x.test/path", "not an origin", "https://a.*.test"])
def test_cli_refuses_what_is_not_an_origin(bucket: BucketCredentials, server: LiveServer, bad: str) -> None:
    done = cli(server, "bucket", "cors", "set", bucket.bucket, "--origin", bad)
    assert done.returncode == 1
    assert "origin" in done.stderr.lower() or "wildcard" in done.stderr.lower()


def test_cli_unknown_bucket(server: LiveServer) -> None:
    done = cli(server, "bucket", "cors", "show", "no-such-bucket")
    assert done.returncode == 1
    assert "does not exist" in done.stderr

"""``GET /metrics`` (mediagate.metrics): scraped from live servers after real uploads.

Every upload is counted once, with the dialect of the request that made it and its outcome; the
gauges read from the catalog match it; with ``serve --workers 2`` every scrape, whichever worker
answers it, reports the uploads of both workers.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mediagate.config import Settings
from mediagate.core.buckets import BucketCredentials, create_bucket
from mediagate.core.gateway import Gateway
from tests.conftest import LiveServer, free_port, make_home
from tests.protocols.imagex.conftest import png
from tests.protocols.imagex.test_sdk import sdk
from tests.protocols.native import api
from tests.protocols.upyun.rest_client import object_uri, signed
from tests.support import uploads

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str, **headers: str) -> Samples:
    resp = httpx.get(f"{url}/metrics", headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(resp.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def test_uploads_through_every_dialect_are_counted_once_with_their_dialect_and_bytes(
    server: LiveServer, bucket: BucketCredentials, admin: Gateway
) -> None:
    rest_data, form_data, wantu_data = b"r" * 1000, b"f" * 2000, b"w" * 3000
    image = png(9, 4)
    before = scrape(server.url)
    with httpx.Client(base_url=server.url) as client:
        assert uploads.upyun_rest(client, bucket, rest_data).status_code == 200
        assert uploads.upyun_form(client, bucket, form_data).status_code == 200
        assert uploads.wantu(client, bucket, wantu_data).status_code == 200
    svc = sdk(server, bucket.access_key_id, bucket.secret_access_key)
    [entry] = svc.upload_image_data({"ServiceId": bucket.bucket}, [image])["Results"]
    assert entry["UriStatus"] == 2000
    with api.client(server.url, api.new_key(admin, bucket.bucket, "write")) as v1:
        assert v1.put(f"/v1/buckets/{bucket.bucket}/objects/v1.bin", content=b"v" * 4000).status_code == 201
    after = scrape(server.url)

    uploads_total, bytes_total = "mediagate_uploads_total", "mediagate_upload_bytes_total"
    assert moved(before, after, uploads_total, dialect="upyun", outcome="stored") == 2
    assert moved(before, after, bytes_total, dialect="upyun", outcome="stored") == 3000
    assert moved(before, after, uploads_total, dialect="wantu", outcome="stored") == 1
    assert moved(before, after, bytes_total, dialect="wantu", outcome="stored") == 3000
    assert moved(before, after, uploads_total, dialect="imagex", outcome="stored") == 1
    assert moved(before, after, bytes_total, dialect="imagex", outcome="stored") == len(image)
    assert moved(before, after, uploads_total, dialect="v1", outcome="stored") == 1
    assert moved(before, after, bytes_total, dialect="v1", outcome="stored") == 4000
    for dialect in ("upyun", "wantu", "imagex", "v1"):
        for outcome in ("refused", "failed"):
            assert moved(before, after, uploads_total, dialect=dialect, outcome=outcome) == 0
    # each request observed once in its dialect's latency histogram (a form and a REST PUT: upyun)
    count = "mediagate_request_duration_seconds_count"
    assert moved(before, after, count, dialect="upyun", status="2xx") == 2
    assert moved(before, after, count, dialect="wantu", status="2xx") == 1
    assert moved(before, after, count, dialect="imagex", status="2xx") >= 3  # apply, PUT, commit


def test_a_refused_upload_is_counted_refused_and_its_error_by_code(
    server: LiveServer, bucket: BucketCredentials
) -> None:
    data = b"x" * 500
    wrong_md5 = hashlib.md5(b"something else").hexdigest()
    before = scrape(server.url)
    with httpx.Client(base_url=server.url) as client:
        resp = signed(
            client,
            bucket,
            "PUT",
            object_uri(bucket.bucket, "/bad.bin"),
            content=data,
            headers={"Content-MD5": wrong_md5},
        )
        uploads.assert_upyun_rest_error(resp, 400)
        unsigned = client.put(f"/{bucket.bucket}/anon.bin", content=data)
        assert unsigned.status_code == 401
    after = scrape(server.url)
    assert moved(before, after, "mediagate_uploads_total", dialect="upyun", outcome="refused") == 1
    assert moved(before, after, "mediagate_upload_bytes_total", dialect="upyun", outcome="refused") == 500
    assert moved(before, after, "mediagate_uploads_total", dialect="upyun", outcome="stored") == 0
    assert moved(before, after, "mediagate_errors_total", dialect="upyun", code="checksum_mismatch") == 1
    # refused before it reached the core: an error, not an upload
    assert moved(before, after, "mediagate_errors_total", dialect="upyun", code="bad_authorization") == 1


def test_every_error_answer_is_counted_once_by_its_dialect(
    server: LiveServer, bucket: BucketCredentials
) -> None:
    before = scrape(server.url)
    assert httpx.get(f"{server.url}/{bucket.bucket}/no-such-object").status_code == 404
    after = scrape(server.url)
    public = [k for k in after if k[0] == "mediagate_errors_total" and ("dialect", "public") in k[1]]
    assert sum(after[k] - before.get(k, 0.0) for k in public) == 1


def test_the_catalog_gauges_are_read_at_scrape_time(
    server: LiveServer, bucket: BucketCredentials, admin: Gateway
) -> None:
    before = scrape(server.url)
    assert value(before, "mediagate_catalog_scrape_ok") == 1
    applied = uploads.imagex_apply(server, bucket)  # opens an upload session, never committed
    assert applied.status_code == 200, applied.text
    after = scrape(server.url)
    assert moved(before, after, "mediagate_upload_sessions_open", dialect="imagex") == 1
    for task in admin.catalog.list_tasks():
        assert value(after, "mediagate_tasks", status=task.status, kind=task.kind) >= 1
    pending = len([d for d in admin.catalog.list_deliveries(limit=10_000) if d.state == "pending"])
    assert value(after, "mediagate_deliveries", state="pending") == pending


def test_metrics_token_guards_the_scrape(tmp_path_factory: pytest.TempPathFactory) -> None:
    home = make_home(tmp_path_factory.mktemp("guarded"))
    live = LiveServer(home.home, env={"MEDIAGATE_METRICS_TOKEN": "s3cret-scrape"}).start()
    try:
        refused = httpx.get(f"{live.url}/metrics")
        assert refused.status_code == 401 and "Bearer" in refused.json()["message"]
        assert httpx.get(f"{live.url}/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        samples = scrape(live.url, Authorization="Bearer s3cret-scrape")
        assert value(samples, "mediagate_catalog_scrape_ok") == 1
        assert httpx.post(f"{live.url}/metrics").status_code == 405
    finally:
        live.stop()
    assert "s3cret-scrape" not in live.log()


@contextlib.contextmanager
def serving(home: Settings, workers: int) -> Iterator[str]:
    """``mediagate serve --workers N`` on ``home``; yields its URL."""
    port = free_port()
    env = {**os.environ, "MEDIAGATE_HOME": str(home.home)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    command = [sys.executable, "-m", "mediagate", "serve", "--workers", str(workers), "--port", str(port)]
    command += ["--log-level", "warning"]
    log = open(home.home / "serve.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (home.home / "serve.log").read_text()
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (home.home / "serve.log").read_text()
            time.sleep(0.2)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Settings]]:
    home = make_home(tmp_path_factory.mktemp("workers"))
    (home.home / "metrics").mkdir()
    (home.home / "metrics" / "counter_999999.db").write_bytes(b"left by a previous run")
    with serving(home, workers=2) as url:
        yield url, home


def test_serve_with_one_process_counts_in_its_own_registry_without_shared_files(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    home = make_home(tmp_path_factory.mktemp("one-worker"))
    with serving(home, workers=1) as url:
        assert httpx.get(f"{url}/nowhere-bucket/x").status_code in (401, 404)
        samples = scrape(url)
        assert value(samples, "mediagate_catalog_scrape_ok") == 1
        assert any(name.startswith("mediagate_request_duration_seconds") for name, _ in samples)
    assert not (home.home / "metrics").exists()


def test_serve_with_two_workers_reports_both_workers_in_every_scrape(
    two_workers: tuple[str, Settings],
) -> None:
    url, home = two_workers
    from mediagate.services import build_gateway

    admin = build_gateway(home, migrate=False)
    try:
        creds = create_bucket(admin.catalog, admin.secrets, "workers")
    finally:
        admin.catalog.close()

    def worker_pids() -> set[str]:
        names = [p.name for p in (home.home / "metrics").iterdir()]
        assert "counter_999999.db" not in names  # emptied at start
        return {n.removesuffix(".db").rsplit("_", 1)[1] for n in names if n.startswith("counter_")}

    count = 0
    while count < 100 and (count < 8 or len(worker_pids()) < 2):
        # a new connection each: the kernel spreads them over the workers
        with httpx.Client(base_url=url) as client:
            resp = signed(
                client, creds, "PUT", object_uri("workers", f"/w{count}.bin"), content=b"z" * (count + 1)
            )
            assert resp.status_code == 200, resp.text
        count += 1
    assert len(worker_pids()) == 2  # both workers stored uploads
    for _ in range(6):
        samples = scrape(url)
        assert value(samples, "mediagate_uploads_total", dialect="upyun", outcome="stored") == count
        assert value(samples, "mediagate_upload_bytes_total", dialect="upyun", outcome="stored") == sum(
            range(1, count + 1)
        )

"""The server log (``mediagate.logs``): one access line per request, read from a live server's log.

Each line carries the request id (the client's ``X-Request-Id``), the dialect, the bucket, the
status and the duration; a refusal adds the reason the client was refused. No secret reaches it:
no Authorization value, no signature, no token from a query string.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mediagate import logs
from mediagate.config import Settings
from mediagate.core.buckets import BucketCredentials, create_bucket
from mediagate.services import build_gateway
from tests.conftest import LiveServer, free_port, make_home
from tests.protocols.upyun.rest_client import object_uri, sign, signed
from tests.support import uploads
from tests.support.serverlog import access_record, mark


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_home(tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def json_server(home: Settings) -> Iterator[LiveServer]:
    live = LiveServer(home.home, env={"MEDIAGATE_LOG_FORMAT": "json"}).start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def creds(home: Settings) -> BucketCredentials:
    gw = build_gateway(home, migrate=False)
    try:
        return create_bucket(gw.catalog, gw.secrets, f"b{uuid.uuid4().hex[:12]}")
    finally:
        gw.catalog.close()


def test_a_request_is_one_access_line(json_server: LiveServer, creds: BucketCredentials) -> None:
    offset = mark(json_server)
    with httpx.Client(base_url=json_server.url) as client:
        resp = uploads.upyun_rest(client, creds, b"hello")
    assert resp.status_code == 200
    line = access_record(json_server, offset, resp.headers["x-request-id"])
    assert line["level"] == "info" and line["dialect"] == "upyun-rest" and line["bucket"] == creds.bucket
    assert (line["method"], line["path"], line["status"]) == (
        "PUT",
        "/" + creds.bucket + "/outage/rest.bin",
        200,
    )
    assert isinstance(line["ms"], float | int) and line["ms"] >= 0
    assert "reason" not in line


def test_a_refusal_says_why_and_no_secret(json_server: LiveServer, creds: BucketCredentials) -> None:
    uri = object_uri(creds.bucket, "x.bin")
    bad = sign(creds, "PUT", uri, password="not-the-password")
    offset = mark(json_server)
    resp = httpx.put(json_server.url + uri, content=b"x", headers=bad)
    assert resp.status_code == 401
    line = access_record(json_server, offset, resp.headers["x-request-id"])
    assert line["status"] == 401 and line["reason"].startswith("signature_mismatch: "), line
    signature = bad["Authorization"].split(":", 1)[1]
    assert signature not in json_server.log() and creds.password not in json_server.log()


def test_query_strings_are_left_out(json_server: LiveServer, creds: BucketCredentials) -> None:
    with httpx.Client(base_url=json_server.url) as client:
        assert (
            signed(client, creds, "PUT", object_uri(creds.bucket, "q.txt"), content=b"q").status_code == 200
        )
        offset = mark(json_server)
        resp = client.get(f"/{creds.bucket}/q.txt", params={"_upt": "tokenvalue-should-stay-private"})
    line = access_record(json_server, offset, resp.headers["x-request-id"])
    assert line["dialect"] == "public" and line["path"] == f"/{creds.bucket}/q.txt"
    assert "tokenvalue-should-stay-private" not in json_server.log()


def test_wantu_and_imagex_lines_name_the_bucket_of_the_key(
    json_server: LiveServer, creds: BucketCredentials
) -> None:
    with httpx.Client(base_url=json_server.url) as client:
        offset = mark(json_server)
        wantu = uploads.wantu(client, creds, b"w")
        imagex = uploads.imagex_apply(json_server, creds)
        store = uploads.imagex(json_server)(client, creds, b"i")
    assert wantu.status_code == 200 and imagex.status_code == 200 and store.status_code == 200
    for resp, dialect in ((wantu, "wantu"), (imagex, "imagex"), (store, "imagex")):
        line = access_record(json_server, offset, resp.headers["x-request-id"])
        assert (line["dialect"], line["bucket"]) == (dialect, creds.bucket), line
    assert creds.secret_access_key not in json_server.log()


def test_text_lines_carry_the_same_fields(home: Settings, creds: BucketCredentials) -> None:
    live = LiveServer(home.home).start()
    try:
        uri = object_uri(creds.bucket, "x.bin")
        resp = httpx.put(live.url + uri, content=b"x", headers=sign(creds, "PUT", uri, password="wrong"))
        rid = resp.headers["x-request-id"]
        deadline = time.monotonic() + 5
        while rid not in live.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        [line] = [x for x in live.log().splitlines() if rid in x]
    finally:
        live.stop()
    assert " WARNING " not in line and " INFO mediagate.access access " in line
    assert (
        f"rid={rid} dialect=upyun-rest bucket={creds.bucket} method=PUT path=/{creds.bucket}/x.bin status=401"
        in line
    )
    assert 'reason="signature_mismatch: ' in line


def test_serve_writes_json_lines_instead_of_uvicorns_access_log(home: Settings, tmp_path: Path) -> None:
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAGATE_")}
    out = tmp_path / "serve.log"
    with open(out, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mediagate",
                "--home",
                str(home.home),
                "serve",
                "--port",
                str(port),
                "--log-format",
                "json",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=clean,
        )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/livez", timeout=1)
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline, out.read_text()
                time.sleep(0.1)
        resp = httpx.get(f"http://127.0.0.1:{port}/nobucket/nothing.png")
        assert resp.status_code == 404
        rid = resp.headers["x-request-id"]
        deadline = time.monotonic() + 5
        while rid not in out.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    text = out.read_text()
    [line] = [x for x in text.splitlines() if rid in x]
    assert line.startswith("{") and '"path": "/nobucket/nothing.png"' in line and '"status": 404' in line
    assert "GET /nobucket/nothing.png HTTP/1.1" not in text, "uvicorn's own access line is still written"
    assert '"path": "/livez"' not in text, "a successful health check is logged only at DEBUG"
    records = [json.loads(x) for x in text.splitlines()]  # uvicorn's own lines are JSON too
    assert any(r["logger"] == "uvicorn.error" and "running on" in r["msg"].lower() for r in records)


def test_throttled_lines_say_how_many_were_left_out(caplog: pytest.LogCaptureFixture) -> None:
    """At most ``limit`` lines per window; the first line of the next window counts the rest."""
    throttled = logs.Throttled(logging.getLogger("mediagate.test-throttle"), limit=3, window=0.3)
    with caplog.at_level(logging.INFO, logger="mediagate.test-throttle"):
        for n in range(10):
            throttled.warning("bad thing %s", n)
        time.sleep(0.35)
        throttled.info("bad thing %s", 10)
    assert [r.getMessage() for r in caplog.records] == [
        "bad thing 0",
        "bad thing 1",
        "bad thing 2",
        "bad thing 10 (and 7 more like it in the 0.3 s before, not logged)",
    ]

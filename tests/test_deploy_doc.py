"""docs/deploy.md is true: every setting of config.py is in it with its real default, and its
nginx configuration, run as written in front of two nodes (PostgreSQL, S3, Redis), streams an
upload through to a node while the client is still sending it, keeps every signature valid (UPYUN
signs the path, ImageX's HMAC-SHA256 the Host) and round-robins a multi-part upload's parts.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import time
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import upyun

from mediagate.config import Settings
from mediagate.core.buckets import BucketCredentials, create_bucket
from mediagate.signing import sigv4
from tests.conftest import free_port, staging_files
from tests.protocols.upyun.rest_client import sign
from tests.support.cluster import Cluster

DOC = Path(__file__).parents[1] / "docs" / "deploy.md"
MIB = 1024 * 1024


def documented() -> dict[str, str]:
    """``MEDIAGATE_X`` -> its default cell, from the tables of docs/deploy.md."""
    rows = re.findall(r"^\| `(MEDIAGATE_[A-Z0-9_]+)` \| ([^|]*) \|", DOC.read_text(), re.MULTILINE)
    return {name: default.strip() for name, default in rows}


def test_every_setting_is_documented_and_nothing_else() -> None:
    names = {f"MEDIAGATE_{field.upper()}" for field in Settings.model_fields}
    table = documented()
    assert not names - set(table), f"settings missing from docs/deploy.md: {sorted(names - set(table))}"
    assert not set(table) - names, (
        f"docs/deploy.md documents settings that do not exist: {sorted(set(table) - names)}"
    )
    mentioned = set(re.findall(r"MEDIAGATE_[A-Z0-9_]+", DOC.read_text()))
    assert mentioned <= names, f"docs/deploy.md mentions unknown variables: {sorted(mentioned - names)}"


def test_documented_defaults_are_the_real_ones() -> None:
    """A default cell that starts with a literal (`...`) must be the field's default."""
    checked = 0
    for name, cell in documented().items():
        literal = re.match(r"`([^`]*)`", cell)
        field = Settings.model_fields[name.removeprefix("MEDIAGATE_").lower()]
        if literal is None or field.default is None or field.default_factory is not None:
            continue
        default = field.default
        shown = str(default).lower() if isinstance(default, bool) else str(default)
        assert literal.group(1) == shown, (
            f"{name}: docs/deploy.md says {literal.group(1)!r}, config.py {shown!r}"
        )
        checked += 1
    assert checked >= 30


# -- the reference nginx configuration -----------------------------------------------------------------


def nginx_conf(root: Path, listen: int, upstreams: list[int]) -> str:
    """The doc's nginx block as written, on loopback: its ``upstream`` servers become the two
    nodes, ``listen 443 ssl`` and the certificate lines a plain loopback port; all else is kept."""
    block = re.search(r"```nginx\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert block is not None, "docs/deploy.md has no nginx block"
    conf = block.group(1)
    servers = re.findall(r"^\s*server \d+\.\d+\.\d+\.\d+:\d+ [^;]*;$", conf, re.MULTILINE)
    assert len(servers) == len(upstreams) == 2
    for line, port in zip(servers, upstreams, strict=True):
        conf = conf.replace(line, re.sub(r"\d+\.\d+\.\d+\.\d+:\d+", f"127.0.0.1:{port}", line))
    conf = re.sub(r"listen 443 ssl;", f"listen 127.0.0.1:{listen};", conf)
    conf = re.sub(r"^\s*ssl_certificate(_key)? .*$\n", "", conf, flags=re.MULTILINE)
    assert "ssl" not in conf
    temp = "\n".join(
        f"    {kind}_temp_path {root}/{kind}_temp;"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    user = "user root;" if os.geteuid() == 0 else ""
    return (
        f"{user}\nworker_processes 1;\ndaemon off;\npid {root}/nginx.pid;\nerror_log {root}/error.log warn;\n"
        f"events {{ worker_connections 256; }}\n"
        f"http {{\n    access_log {root}/access.log;\n{temp}\n{conf}}}\n"
    )


@pytest.fixture(scope="module")
def nginx(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(binary):
        pytest.fail("nginx is not installed (.ci/run installs it: apt-get install -y nginx)")
    root = tmp_path_factory.mktemp("nginx")
    port = free_port()
    (root / "nginx.conf").write_text(nginx_conf(root, port, [cluster.a.port, cluster.b.port]))
    check = subprocess.run(
        [binary, "-t", "-p", str(root), "-c", str(root / "nginx.conf")], capture_output=True
    )
    assert check.returncode == 0, check.stderr.decode()
    process = subprocess.Popen([binary, "-p", str(root), "-c", str(root / "nginx.conf")])
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{url}/livez", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and process.poll() is None, (root / "error.log").read_text()
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def creds(cluster: Cluster) -> BucketCredentials:
    return create_bucket(cluster.admin.catalog, cluster.admin.secrets, f"lb{uuid.uuid4().hex[:12]}")


@pytest.mark.postgres  # the two nodes share a PostgreSQL catalog
def test_health_checks_through_the_balancer(nginx: str) -> None:
    health = httpx.get(f"{nginx}/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "catalog": "ok", "storage": "ok", "disk": "ok", "redis": "ok"}
    assert httpx.get(f"{nginx}/livez").json() == {"status": "ok"}


@pytest.mark.postgres  # the two nodes share a PostgreSQL catalog
def test_an_upload_streams_through_to_a_node_while_it_is_sent(
    nginx: str, cluster: Cluster, creds: BucketCredentials
) -> None:
    """Half the body sent, the node is already staging it: nginx does not spool the body first
    (``proxy_request_buffering off``); the whole upload then lands intact, under its raw path."""
    data = os.urandom(16 * MIB)
    key = "stream/raw%20name%2B%281%29.bin"  # reaches mediagate encoded as sent: the signature covers it
    uri = f"/{creds.bucket}/{key}"
    seen_mid_upload: list[Path] = []

    def body() -> Iterator[bytes]:
        yield data[: 8 * MIB]
        deadline = time.monotonic() + 20
        while not seen_mid_upload and time.monotonic() < deadline:
            seen_mid_upload.extend(f for node in cluster.nodes for f in staging_files(node.home))
            time.sleep(0.05)
        yield data[8 * MIB :]

    md5 = hashlib.md5(data).hexdigest()
    headers = {
        "Content-Length": str(len(data)),
        "Content-MD5": md5,
        **sign(creds, "PUT", uri, content_md5=md5),
    }
    resp = httpx.put(f"{nginx}{uri}", content=body(), headers=headers, timeout=60)
    assert resp.status_code == 200, resp.text
    assert seen_mid_upload, "no node was staging the upload while half of it was still on its way"
    got = httpx.get(f"{nginx}{uri}", timeout=60)
    assert got.status_code == 200 and hashlib.md5(got.content).hexdigest() == md5
    obj = cluster.admin.catalog.get_object(
        cluster.admin.catalog.require_bucket(creds.bucket).id, "stream/raw name+(1).bin"
    )
    assert obj is not None and obj.size == len(data)


@pytest.mark.postgres  # the two nodes share a PostgreSQL catalog
def test_a_multipart_upload_through_the_balancer(nginx: str, creds: BucketCredentials) -> None:
    data = os.urandom(3 * MIB + 17)
    endpoint = nginx.removeprefix("http://")
    up = upyun.UpYun(creds.bucket, creds.operator, creds.password, endpoint=endpoint)
    uploader = up.init_multi_uploader("/multi/part.bin", part_size=MIB, file_size=len(data))
    for n in range(4):  # each part a new connection through the balancer: round robin, no stickiness
        uploader.upload(n, data[n * MIB : (n + 1) * MIB])
    uploader.complete(multi_md5=hashlib.md5(data).hexdigest())
    sink = io.BytesIO()
    up.get("/multi/part.bin", sink)
    assert sink.getvalue() == data


def _imagex(
    nginx: str, method: str, params: dict[str, str], creds: BucketCredentials, body: bytes = b""
) -> Any:
    query: list[tuple[str, str | int | float | bool | None]] = list(params.items())
    headers = sigv4.sign(
        sigv4.VOLC,
        access_key_id=creds.access_key_id,
        secret=creds.secret_access_key,
        method=method,
        host=nginx.removeprefix("http://"),  # the Host the client sends and signs, port included
        query=list(params.items()),
        body=body,
        content_type="application/json" if body else None,
    )
    resp = httpx.request(method, f"{nginx}/", params=query, headers=headers, content=body, timeout=30)
    assert resp.status_code == 200, resp.text
    return resp.json()["Result"]


@pytest.mark.postgres  # the two nodes share a PostgreSQL catalog
def test_imagex_signed_host_survives_the_balancer(
    nginx: str, cluster: Cluster, creds: BucketCredentials
) -> None:
    version = {"Version": "2018-08-01", "ServiceId": creds.bucket}
    address = _imagex(nginx, "GET", {"Action": "ApplyImageUpload", **version}, creds)["UploadAddress"]
    assert address["UploadHosts"] == [nginx.removeprefix("http://")]  # the Host nginx passed on
    info = address["StoreInfos"][0]
    data = b"imagex through nginx " * 100
    headers = {"Authorization": info["Auth"], "Content-CRC32": f"{zlib.crc32(data):08x}"}
    assert httpx.put(f"{nginx}/{info['StoreUri']}", content=data, headers=headers).status_code == 200
    body = json.dumps({"SessionKey": address["SessionKey"]}).encode()
    result = _imagex(nginx, "POST", {"Action": "CommitImageUpload", **version}, creds, body)
    assert result["Results"][0]["UriStatus"] == 2000

"""``mediagate serve --ssl-certfile/--ssl-keyfile``: the clients that hard-code ``https://`` run as
shipped, following the README's "TLS and a content origin" recipe.

The certificate is made by running the README's own openssl block. The client process is then
given what the README has users do: trust ``ca.pem`` through ``REQUESTS_CA_BUNDLE``, and resolve the
vendor host names to mediagate. That last step is ``/etc/hosts`` (plus port 443) for a user; here it
is a resolver override for this test process only (``getaddrinfo`` answers the mediagate port for
those names), so the run needs neither root nor a shared file. Host names, TLS verification (SNI,
subjectAltName) and every request are the clients' own.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from volcengine.imagex.ImageXService import ImageXService

from mediagate.core.buckets import BucketCredentials, create_bucket
from mediagate.services import build_gateway
from tests.conftest import free_port, make_home
from tests.protocols.imagex.conftest import SEED_SERVICE_ID, png, web_session
from tests.protocols.imagex.test_seed import SEED
from tests.support.cli import run_mediagate

README = Path(__file__).parents[3] / "README.md"
VENDOR_HOSTS = ("imagex.volcengineapi.com", "imagex.bytedanceapi.com", "jimeng.jianying.com")


def readme_recipe() -> str:
    """The first ``sh`` block of the README's TLS section."""
    text = README.read_text()
    section = text[text.index("## TLS and a content origin") :]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "the README's TLS section has no sh block"
    return match.group(1)


@dataclass
class TlsServer:
    home: Path
    port: int
    ca: Path
    cert: Path
    key: Path
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"https://localhost:{self.port}"

    def trust(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("repo")
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", readme_recipe()], cwd=where, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return where / "tls"


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory, certs: Path) -> Iterator[TlsServer]:
    home = make_home(tmp_path_factory.mktemp("tlshome"))
    port = free_port()
    log = home.home / "serve.log"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAGATE_")}
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "mediagate", "--home", str(home.home), "serve",
                "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
                "--ssl-certfile", str(certs / "server.pem"), "--ssl-keyfile", str(certs / "server.key"),
            ],
            env=clean,
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    live = TlsServer(
        home.home, port, certs / "ca.pem", certs / "server.pem", certs / "server.key", process, log
    )
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(f"{live.url}/healthz", verify=live.trust(), timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    yield live
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    assert "Traceback" not in log.read_text(), log.read_text()[-5000:]


@pytest.fixture
def as_published(tls_server: TlsServer, monkeypatch: pytest.MonkeyPatch) -> TlsServer:
    """The README's client setup: trust ca.pem; the vendor names (port 443) reach mediagate."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_server.ca))
    real = socket.getaddrinfo

    def resolve(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in VENDOR_HOSTS and str(port) in ("443", "https"):
            return real("127.0.0.1", tls_server.port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    return tls_server


@pytest.fixture(scope="module")
def keys(tls_server: TlsServer) -> dict[str, BucketCredentials]:
    gw = build_gateway(make_home(tls_server.home), migrate=False)
    try:
        return {name: create_bucket(gw.catalog, gw.secrets, name) for name in (SEED_SERVICE_ID, "photos")}
    finally:
        gw.catalog.close()


def read(server: TlsServer, uri: str) -> bytes:
    sid, name = uri.removeprefix("tos-cn-i-").split("/", 1)
    got = httpx.get(f"{server.url}/{sid}/{name}", verify=server.trust())
    assert got.status_code == 200
    return got.content


def test_the_certificate_is_strictly_valid_for_the_vendor_names(tls_server: TlsServer) -> None:
    context = ssl.create_default_context(cafile=str(tls_server.ca))
    context.verify_flags |= ssl.VERIFY_X509_STRICT  # what Python 3.13 turns on by default
    for name in (*VENDOR_HOSTS, "localhost"):
        with (
            socket.create_connection(("127.0.0.1", tls_server.port)) as raw,
            context.wrap_socket(raw, server_hostname=name) as tls,
        ):
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
    with (
        socket.create_connection(("127.0.0.1", tls_server.port)) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        context.wrap_socket(raw, server_hostname="elsewhere.example")


def test_the_seed_script_runs_unchanged(
    as_published: TlsServer, keys: dict[str, BucketCredentials], tmp_path: Path
) -> None:
    namespace: dict[str, Any] = {"__name__": "dreamina_seed"}
    exec(compile(SEED.read_text(), str(SEED), "exec"), namespace)  # not a byte rewritten
    gw = build_gateway(make_home(as_published.home), migrate=False)
    try:
        sessionid = web_session(gw, SEED_SERVICE_ID)
    finally:
        gw.catalog.close()
    data = png(8, 3)
    path = tmp_path / "cat.png"
    path.write_bytes(data)
    uri = namespace["upload_image"](sessionid, str(path))
    assert uri.startswith(f"tos-cn-i-{SEED_SERVICE_ID}/")
    assert read(as_published, uri) == data


def test_the_sdk_runs_with_its_shipped_host_and_scheme(
    as_published: TlsServer, keys: dict[str, BucketCredentials]
) -> None:
    svc = ImageXService()
    # other test modules point the SDK's module-level service info at loopback: restore what it ships
    svc.set_host("imagex.volcengineapi.com")
    svc.set_scheme("https")
    svc.set_ak(keys["photos"].access_key_id)
    svc.set_sk(keys["photos"].secret_access_key)
    svc.set_session_token("")
    data = png(4, 9)
    result = svc.upload_image_data({"ServiceId": "photos"}, [data])
    [entry] = result["Results"]
    assert entry["UriStatus"] == 2000
    assert read(as_published, entry["Uri"]) == data


def test_the_session_cookie_is_secure_over_tls(
    tls_server: TlsServer, keys: dict[str, BucketCredentials]
) -> None:
    gw = build_gateway(make_home(tls_server.home), migrate=False)
    try:
        sessionid = web_session(gw, "photos")
    finally:
        gw.catalog.close()
    got = httpx.post(
        f"{tls_server.url}/mweb/v1/get_upload_token",
        headers={"Cookie": f"sessionid={sessionid}"},
        verify=tls_server.trust(),
    )
    assert got.status_code == 200
    attrs = [a.strip().lower() for a in got.headers["set-cookie"].split(";")]
    assert {"secure", "httponly", "samesite=strict"} <= set(attrs)


def test_serve_refuses_half_or_broken_tls_settings(tls_server: TlsServer, tmp_path: Path) -> None:
    home = make_home(tmp_path / "home").home
    port = str(free_port())
    only_cert = run_mediagate(home, "serve", "--port", port, "--ssl-certfile", str(tls_server.cert))
    assert only_cert.returncode == 1
    assert "--ssl-certfile and --ssl-keyfile go together" in only_cert.stderr
    missing = run_mediagate(
        home,
        "serve",
        "--port",
        port,
        "--ssl-certfile",
        str(tmp_path / "nope.pem"),
        "--ssl-keyfile",
        str(tls_server.key),
    )
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    mismatched = run_mediagate(
        home,
        "serve",
        "--port",
        port,
        "--ssl-certfile",
        str(tls_server.ca),
        "--ssl-keyfile",
        str(tls_server.key),
    )
    assert mismatched.returncode == 1 and "cannot use" in mismatched.stderr
    assert "Traceback" not in only_cert.stderr + missing.stderr + mismatched.stderr


def test_mediagate_upload_over_tls(
    tls_server: TlsServer, keys: dict[str, BucketCredentials], tmp_path: Path
) -> None:
    """Our own CLI trusts the local CA through SSL_CERT_FILE, as the README says for httpx."""
    path = tmp_path / "p.png"
    path.write_bytes(png(3, 3))
    args = ("upload", str(path), "--bucket", "photos", "--endpoint", tls_server.url, "--json")
    untrusted = run_mediagate(tls_server.home, *args)
    assert untrusted.returncode != 0
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.stdout + untrusted.stderr
    done = run_mediagate(tls_server.home, *args, env={"SSL_CERT_FILE": str(tls_server.ca)})
    assert done.returncode == 0, done.stderr
    uri = json.loads(done.stdout.splitlines()[-1])["uri"]
    assert read(tls_server, uri) == path.read_bytes()

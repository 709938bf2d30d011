"""`mediagate upload` against a live server: each source kind (path, URL, data: URI) in each
dialect, keys from options or minted from the home, and URL sources guarded against SSRF."""

from __future__ import annotations

import base64
import functools
import http.server
import json
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mediagate.config import Settings
from mediagate.core.buckets import BucketCredentials, create_bucket
from mediagate.services import build_gateway
from tests.conftest import LiveServer, free_port, make_home
from tests.protocols.imagex.conftest import png
from tests.support.cli import run_mediagate

PROTOCOLS = ["upyun", "wantu", "imagex"]


def run_cli(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_mediagate(home, *args, env=env, timeout=120)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A loopback HTTP server with a picture to fetch (base URL, its directory)."""
    root = tmp_path_factory.mktemp("www")
    (root / "pic.png").write_bytes(png(6, 6, (1, 2, 3)))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()


def upload(server_home: Settings, server: LiveServer, *args: str, env: dict[str, str] | None = None) -> Any:
    proc = run_cli(server_home.home, "upload", "--endpoint", server.url, "--json", *args, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def fetch(result: dict[str, Any]) -> bytes:
    got = httpx.get(result["url"])
    assert got.status_code == 200, (result, got.text)
    return got.content


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_each_source_kind_with_keys_from_the_home(
    protocol: str,
    server: LiveServer,
    server_home: Settings,
    bucket: BucketCredentials,
    files: tuple[str, Path],
    tmp_path: Path,
) -> None:
    local = tmp_path / "local.png"
    local.write_bytes(png(4, 3))
    data = png(2, 5, (9, 9, 9))
    data_uri = "data:image/png;base64," + base64.b64encode(data).decode()
    url = f"{files[0]}/pic.png"
    results = upload(
        server_home,
        server,
        str(local),
        url,
        data_uri,
        "--bucket",
        bucket.bucket,
        "--protocol",
        protocol,
        "--allow-private",
    )
    assert [r["protocol"] for r in results] == [protocol] * 3
    assert fetch(results[0]) == local.read_bytes()
    assert fetch(results[1]) == (files[1] / "pic.png").read_bytes()
    assert fetch(results[2]) == data
    if protocol == "imagex":
        assert all(r["uri"].startswith(f"tos-cn-i-{bucket.bucket}/") for r in results)


def test_keys_from_options_and_env(
    server: LiveServer, server_home: Settings, bucket: BucketCredentials, tmp_path: Path
) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"hello from options")
    nowhere = tmp_path / "not-a-home"  # keys must come from the options, not a home
    proc = run_cli(
        nowhere,
        "upload",
        str(path),
        "--bucket",
        bucket.bucket,
        "--protocol",
        "imagex",
        "--endpoint",
        server.url,
        "--access-key-id",
        bucket.access_key_id,
        "--secret",
        bucket.secret_access_key,
        "--key",
        "docs/a.txt",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["uri"] == f"tos-cn-i-{bucket.bucket}/docs/a.txt"
    assert httpx.get(f"{server.url}/{bucket.bucket}/docs/a.txt").content == b"hello from options"
    env = {
        "MEDIAGATE_UPLOAD_OPERATOR": bucket.operator,
        "MEDIAGATE_UPLOAD_PASSWORD": bucket.password,
        "MEDIAGATE_UPLOAD_ENDPOINT": server.url,
    }
    proc = run_cli(
        nowhere,
        "upload",
        str(path),
        "--bucket",
        bucket.bucket,
        "--protocol",
        "upyun",
        "--key",
        "env/a.txt",
        "--json",
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert httpx.get(f"{server.url}/{bucket.bucket}/env/a.txt").content == b"hello from options"
    bad = run_cli(
        nowhere,
        "upload",
        str(path),
        "--bucket",
        bucket.bucket,
        "--protocol",
        "imagex",
        "--endpoint",
        server.url,
        "--access-key-id",
        bucket.access_key_id,
        "--secret",
        "wrong",
    )
    assert bad.returncode == 1 and "SignatureDoesNotMatch" in bad.stderr


def test_url_sources_are_guarded(
    server: LiveServer, server_home: Settings, bucket: BucketCredentials, files: tuple[str, Path]
) -> None:
    for url in (
        f"{files[0]}/pic.png",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:1/x",
        "file:///etc/passwd",
    ):
        proc = run_cli(
            server_home.home, "upload", url, "--bucket", bucket.bucket, "--endpoint", server.url, "--json"
        )
        assert proc.returncode == 1, proc.stdout
        assert "error" in json.loads(proc.stdout)
    too_big = run_cli(
        server_home.home,
        "upload",
        f"{files[0]}/pic.png",
        "--bucket",
        bucket.bucket,
        "--endpoint",
        server.url,
        "--allow-private",
        "--max-fetch",
        "10",
        "--json",
    )
    assert too_big.returncode == 1 and "limit" in json.loads(too_big.stdout)["error"]
    bad_data = run_cli(
        server_home.home,
        "upload",
        "data:image/png;base64,@@@",
        "--bucket",
        bucket.bucket,
        "--endpoint",
        server.url,
        "--json",
    )
    assert bad_data.returncode == 1


def test_sts_and_token_commands(server: LiveServer, server_home: Settings, bucket: BucketCredentials) -> None:
    proc = run_cli(server_home.home, "sts", "create", "--bucket", bucket.bucket, "--ttl", "600", "--json")
    assert proc.returncode == 0, proc.stderr
    creds = json.loads(proc.stdout)
    assert creds["access_key_id"].startswith("AKTP") and creds["session_token"].startswith("STS2")
    proc = run_cli(server_home.home, "token", "create", "--bucket", bucket.bucket, "--json")
    sessionid = json.loads(proc.stdout)["sessionid"]
    url = f"{server.url}/mweb/v1/get_upload_token"
    assert (
        httpx.post(url, headers={"Cookie": f"sessionid={sessionid}"}, json={"scene": 2}).json()["ret"] == "0"
    )
    assert run_cli(server_home.home, "token", "revoke", sessionid).returncode == 0
    assert httpx.post(url, headers={"Cookie": f"sessionid={sessionid}"}, json={}).status_code == 401
    assert run_cli(server_home.home, "sts", "create", "--bucket", "nosuchbucket").returncode == 1


def test_policy_explain_knows_imagex_tokens(server_home: Settings, bucket: BucketCredentials) -> None:
    proc = run_cli(
        server_home.home, "sts", "create", "--bucket", bucket.bucket, "--key-prefix", "u/1/", "--json"
    )
    token = json.loads(proc.stdout)["session_token"]
    got = run_cli(server_home.home, "policy", "explain", token, "--bucket", bucket.bucket, "--json")
    verdict = json.loads(got.stdout)
    assert verdict["dialect"] == "ImageX STS2 session token" and verdict["accepted"], verdict
    assert any("u/1/*" in a for a in verdict["allows"])
    assert bucket.secret_access_key not in got.stdout
    proc = run_cli(server_home.home, "token", "create", "--bucket", bucket.bucket, "--json")
    sessionid = json.loads(proc.stdout)["sessionid"]
    run_cli(server_home.home, "token", "revoke", sessionid)
    got = run_cli(server_home.home, "policy", "explain", sessionid, "--bucket", bucket.bucket, "--json")
    verdict = json.loads(got.stdout)
    assert verdict["dialect"] == "ImageX web sessionid" and not verdict["accepted"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_an_existing_key_is_kept_unless_overwrite_is_given(
    protocol: str, server: LiveServer, server_home: Settings, bucket: BucketCredentials, tmp_path: Path
) -> None:
    """No dialect replaces an object by default; the refusal names the flag that would."""
    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    first.write_bytes(b"the first upload")
    second.write_bytes(b"the second upload")
    args = ("--bucket", bucket.bucket, "--protocol", protocol, "--key", "same/name.txt")
    upload(server_home, server, str(first), *args)
    refused = run_cli(server_home.home, "upload", str(second), *args, "--endpoint", server.url)
    assert refused.returncode == 1, refused.stdout
    said = " ".join(refused.stderr.split())
    assert "already exists" in said and "pass --overwrite" in said, said
    assert httpx.get(f"{server.url}/{bucket.bucket}/same/name.txt").content == b"the first upload"
    replaced = upload(server_home, server, str(second), *args, "--overwrite")
    assert replaced["key"] == "same/name.txt"
    assert httpx.get(f"{server.url}/{bucket.bucket}/same/name.txt").content == b"the second upload"


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, BucketCredentials, str]]:
    """A server with a 1000-byte limit whose public_url names a port nobody listens on."""
    home = tmp_path_factory.mktemp("strict")
    dead = f"http://127.0.0.1:{free_port()}"
    make_home(home)
    (home / "mediagate.toml").write_text(f'max_upload_size = 1000\npublic_url = "{dead}"\n')
    gw = build_gateway(Settings(home=home), migrate=False)
    try:
        creds = create_bucket(gw.catalog, gw.secrets, "strict")
    finally:
        gw.catalog.close()
    live = LiveServer(home).start()
    yield live, creds, dead
    live.stop()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_file_over_the_limit_is_refused_before_sending(
    protocol: str, strict: tuple[LiveServer, BucketCredentials, str], tmp_path: Path
) -> None:
    live, _, _ = strict
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 1001)
    proc = run_cli(
        live.home, "upload", str(big), "-b", "strict", "-p", protocol, "--key", "big.bin",
        "--endpoint", live.url,
    )  # fmt: skip
    said = " ".join(proc.stderr.split())
    assert proc.returncode == 1
    assert "1001 bytes, over the server's limit of 1000 bytes" in said and "not sent" in said, said
    assert "max_upload_size" in said
    assert httpx.get(f"{live.url}/strict/big.bin").status_code == 404


def test_imagex_declares_the_size_when_it_applies(
    strict: tuple[LiveServer, BucketCredentials, str], tmp_path: Path
) -> None:
    """Away from the home the CLI cannot read the limit: Apply carries FileSize, so the server
    refuses before a byte of the file is sent."""
    live, creds, _ = strict
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 1001)
    proc = run_cli(
        tmp_path / "not-a-home", "upload", str(big), "-b", "strict", "--endpoint", live.url,
        "--access-key-id", creds.access_key_id, "--secret", creds.secret_access_key,
    )  # fmt: skip
    said = " ".join(proc.stderr.split())
    assert proc.returncode == 1
    assert "ApplyImageUpload" in said and "InvalidFileSize" in said and "1000 bytes" in said, said


def test_an_unreachable_public_url_is_named(
    strict: tuple[LiveServer, BucketCredentials, str], tmp_path: Path
) -> None:
    live, _, dead = strict
    small = tmp_path / "small.txt"
    small.write_bytes(b"small")
    # no --endpoint: the CLI takes the home's public_url, which nobody answers
    proc = run_cli(live.home, "upload", str(small), "-b", "strict", "-p", "upyun")
    said = " ".join(proc.stderr.split())
    assert proc.returncode == 1
    assert f"could not reach {dead}/strict/" in said and "public_url of the home" in said, said
    # ImageX: Apply answers, but the upload host it names (from public_url) is dead
    proc = run_cli(live.home, "upload", str(small), "-b", "strict", "--endpoint", live.url)
    said = " ".join(proc.stderr.split())
    assert proc.returncode == 1
    assert f"could not reach {dead}/tos-cn-i-strict/" in said, said
    assert "the upload host the server named" in said, said
    # a public_url without a scheme is named too, before any request
    (live.home / "mediagate.toml").write_text('max_upload_size = 1000\npublic_url = "media.example"\n')
    try:
        proc = run_cli(live.home, "upload", str(small), "-b", "strict")
    finally:
        (live.home / "mediagate.toml").write_text(f'max_upload_size = 1000\npublic_url = "{dead}"\n')
    said = " ".join(proc.stderr.split())
    assert proc.returncode == 1 and "'media.example' (public_url of the home" in said, said


def test_progress_bars_on_a_terminal_only(
    server: LiveServer, server_home: Settings, bucket: BucketCredentials, tmp_path: Path
) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * (3 * 1024 * 1024))
    args = ("upload", str(big), "-b", bucket.bucket, "--endpoint", server.url, "-p", "upyun")
    watched = run_cli(server_home.home, *args, "--key", "tty.bin", env={"TTY_COMPATIBLE": "1"})
    assert watched.returncode == 0, watched.stderr
    assert "━" in watched.stderr and "MB" in watched.stderr  # a bar with bytes sent
    piped = run_cli(server_home.home, *args, "--key", "pipe.bin")
    assert piped.returncode == 0 and "━" not in piped.stderr
    assert piped.stderr.startswith("✓ big.bin →") or "✓" in piped.stderr


def test_another_homes_limit_does_not_apply_to_explicit_keys(
    server: LiveServer,
    bucket: BucketCredentials,
    strict: tuple[LiveServer, BucketCredentials, str],
    tmp_path: Path,
) -> None:
    """Keys and endpoint given: the target is not the home's server, so the home's limit is not its."""
    strict_server, _, _ = strict
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 1001)
    proc = run_cli(
        strict_server.home, "upload", str(big), "-b", bucket.bucket, "-p", "upyun", "--key", "big.bin",
        "--endpoint", server.url, "--operator", bucket.operator, "--password", bucket.password,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert httpx.get(f"{server.url}/{bucket.bucket}/big.bin").content == big.read_bytes()

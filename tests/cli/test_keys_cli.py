"""`mediagate bucket key list|rotate|revoke` and `mediagate --version`, as real CLI processes;
a live server shows that a rotated or revoked credential stops working at once, and a new one works."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from mediagate.config import Settings
from mediagate.core.buckets import BucketCredentials
from tests.conftest import LiveServer
from tests.support.cli import run_mediagate


def cli(home: Path, *args: str) -> Any:
    done = run_mediagate(home, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout) if "--json" in args else done.stdout


def imagex_upload(server: LiveServer, tmp_path: Path, bucket: str, ak: str, sk: str) -> int:
    """`mediagate upload` with explicit keys, away from the home: exit code."""
    path = tmp_path / "x.txt"
    path.write_bytes(b"x")
    return run_mediagate(
        tmp_path / "nowhere", "upload", str(path), "-b", bucket, "--endpoint", server.url,
        "--access-key-id", ak, "--secret", sk,
    ).returncode  # fmt: skip


def upyun_put(server: LiveServer, bucket: str, operator: str, password: str) -> int:
    from mediagate.client import UpyunClient

    up = UpyunClient(server.url, bucket, operator, password)
    uri, date = f"/{bucket}/k.txt", time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())
    headers = {"Date": date, "Authorization": up.sign("PUT", uri, date)}
    return httpx.put(f"{server.url}{uri}", content=b"k", headers=headers).status_code


def form_post(server: LiveServer, bucket: str, secret: str) -> int:
    doc = {"bucket": bucket, "save-key": "/f.txt", "expiration": int(time.time()) + 600}
    policy = base64.b64encode(json.dumps(doc).encode()).decode()
    signature = hashlib.md5(f"{policy}&{secret}".encode()).hexdigest()
    fields = {"policy": policy, "signature": signature}
    return httpx.post(f"{server.url}/{bucket}", data=fields, files={"file": ("f.txt", b"f")}).status_code


def test_version(tmp_path: Path) -> None:
    done = run_mediagate(tmp_path, "--version")
    assert done.returncode == 0
    from importlib.metadata import version

    assert done.stdout.strip() == f"mediagate {version('mediagate')}"


def test_list_shows_every_kind_and_no_secret(server_home: Settings, bucket: BucketCredentials) -> None:
    rows = cli(server_home.home, "bucket", "key", "list", bucket.bucket, "--json")
    assert [(r["kind"], r["key_id"], r["revoked"]) for r in rows] == [
        ("upyun", bucket.operator, None),
        ("form", "", None),
        ("aksk", bucket.access_key_id, None),
    ]
    table = cli(server_home.home, "bucket", "key", "list", bucket.bucket)
    for secret in (bucket.password, bucket.form_api_secret, bucket.secret_access_key):
        assert secret not in table
    assert "active" in table


def test_rotate_all_revokes_the_old_and_the_new_work(
    server: LiveServer, server_home: Settings, bucket: BucketCredentials, tmp_path: Path
) -> None:
    b = bucket.bucket
    new = cli(server_home.home, "bucket", "key", "rotate", b, "--json")
    assert set(new) == {
        "bucket",
        "operator",
        "password",
        "form_api_secret",
        "access_key_id",
        "secret_access_key",
    }
    assert new["operator"] == bucket.operator and new["password"] != bucket.password
    # the old ones are refused at once …
    assert imagex_upload(server, tmp_path, b, bucket.access_key_id, bucket.secret_access_key) == 1
    assert upyun_put(server, b, bucket.operator, bucket.password) == 401
    assert form_post(server, b, bucket.form_api_secret) == 401
    # … and the new ones work
    assert imagex_upload(server, tmp_path, b, new["access_key_id"], new["secret_access_key"]) == 0
    assert upyun_put(server, b, new["operator"], new["password"]) == 200
    assert form_post(server, b, new["form_api_secret"]) == 200
    # the secrets were shown once: the table says so, the home keeps no plain copy
    shown = cli(server_home.home, "bucket", "key", "rotate", b, "--kind", "form")
    assert "shown once" in shown
    rows = cli(server_home.home, "bucket", "key", "list", b, "--json")
    assert sum(1 for r in rows if r["revoked"] is None) == 3 and len(rows) == 7


def test_keep_old_overlaps_until_revoked(
    server: LiveServer, server_home: Settings, bucket: BucketCredentials, tmp_path: Path
) -> None:
    b = bucket.bucket
    new = cli(server_home.home, "bucket", "key", "rotate", b, "--kind", "aksk", "--keep-old", "--json")
    assert set(new) == {"bucket", "access_key_id", "secret_access_key"}
    assert imagex_upload(server, tmp_path, b, bucket.access_key_id, bucket.secret_access_key) == 0
    assert imagex_upload(server, tmp_path, b, new["access_key_id"], new["secret_access_key"]) == 0
    rows = cli(server_home.home, "bucket", "key", "list", b, "--json")
    [old_id] = [r["id"] for r in rows if r["key_id"] == bucket.access_key_id]
    said = cli(server_home.home, "bucket", "key", "revoke", b, str(old_id))
    assert f"revoked #{old_id}" in said and bucket.access_key_id in said
    assert imagex_upload(server, tmp_path, b, bucket.access_key_id, bucket.secret_access_key) == 1
    assert imagex_upload(server, tmp_path, b, new["access_key_id"], new["secret_access_key"]) == 0


def test_upyun_overlap_needs_a_new_operator(
    server: LiveServer, server_home: Settings, bucket: BucketCredentials
) -> None:
    b = bucket.bucket
    refused = run_mediagate(server_home.home, "bucket", "key", "rotate", b, "--kind", "upyun", "--keep-old")
    assert refused.returncode == 1 and "--operator" in refused.stderr
    new = cli(
        server_home.home, "bucket", "key", "rotate", b, "--kind", "upyun", "--keep-old",
        "--operator", "second-op", "--json",
    )  # fmt: skip
    assert new["operator"] == "second-op"
    assert upyun_put(server, b, bucket.operator, bucket.password) == 200
    assert upyun_put(server, b, "second-op", new["password"]) == 200


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("rotate", "nosuchbucket"), "does not exist"),
        (("rotate", "{b}", "--kind", "nope"), "unknown credential kind"),
        (("revoke", "{b}", "999999"), "no credential #999999"),
        (("revoke", "nosuchbucket", "1"), "does not exist"),
    ],
)
def test_refusals_say_why(
    server_home: Settings, bucket: BucketCredentials, args: tuple[str, ...], words: str
) -> None:
    done = run_mediagate(server_home.home, "bucket", "key", *(a.format(b=bucket.bucket) for a in args))
    assert done.returncode == 1
    assert words in " ".join(done.stderr.split()), done.stderr


def test_revoking_the_last_key_of_a_kind_warns(server_home: Settings, bucket: BucketCredentials) -> None:
    rows = cli(server_home.home, "bucket", "key", "list", bucket.bucket, "--json")
    [form_id] = [r["id"] for r in rows if r["kind"] == "form"]
    done = run_mediagate(server_home.home, "bucket", "key", "revoke", bucket.bucket, str(form_id))
    assert done.returncode == 0
    assert "no active upyun form secret" in " ".join(done.stderr.split())
    again = run_mediagate(server_home.home, "bucket", "key", "revoke", bucket.bucket, str(form_id))
    assert again.returncode == 1 and "already revoked" in again.stderr

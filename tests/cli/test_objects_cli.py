"""`mediagate ls` and `mediagate rm`, as real CLI processes on the home of a live server: what a
dialect uploaded is listed by key, and what `rm` deletes is gone for every dialect."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from mediagate.client import UpyunClient
from mediagate.config import Settings
from mediagate.core.buckets import BucketCredentials
from tests.conftest import LiveServer
from tests.support.cli import run_mediagate

KEYS = ["B.txt", "a.txt", "a/b.txt", "img/1.png", "img/2.png", "img2/x.png", "100%_sure.txt", "ä.txt"]


def put(server: LiveServer, bucket: BucketCredentials, key: str, body: bytes) -> None:
    """An UPYUN REST PUT, signed as the SDK signs it."""
    up = UpyunClient(server.url, bucket.bucket, bucket.operator, bucket.password)
    uri = httpx.URL(f"/{bucket.bucket}/{key}").raw_path.decode()
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())
    headers = {"Date": date, "Authorization": up.sign("PUT", uri, date)}
    assert httpx.put(f"{server.url}{uri}", content=body, headers=headers).status_code == 200


@pytest.fixture
def filled(server: LiveServer, bucket: BucketCredentials) -> BucketCredentials:
    for n, key in enumerate(KEYS):
        put(server, bucket, key, b"x" * (n + 1))
    return bucket


def ls(home: Path, *args: str) -> Any:
    done = run_mediagate(home, "ls", *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_ls_lists_by_key_bytewise(server_home: Settings, filled: BucketCredentials) -> None:
    rows = ls(server_home.home, filled.bucket)
    assert [r["key"] for r in rows] == sorted(KEYS, key=lambda k: k.encode())
    by_key = {r["key"]: r for r in rows}
    assert by_key["a.txt"]["size"] == 2 and by_key["a.txt"]["mime"] == "text/plain"
    assert len(by_key["ä.txt"]["md5"]) == 32


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("img/", ["img/1.png", "img/2.png"]),
        ("/img/", ["img/1.png", "img/2.png"]),
        ("img", ["img/1.png", "img/2.png", "img2/x.png"]),
        ("a", ["a.txt", "a/b.txt"]),
        ("100%", ["100%_sure.txt"]),  # no LIKE wildcards
        ("b", []),  # bytewise: 'B.txt' does not start with 'b'
        ("zzz", []),
    ],
)
def test_ls_prefix(
    server_home: Settings, filled: BucketCredentials, prefix: str, expected: list[str]
) -> None:
    assert [r["key"] for r in ls(server_home.home, filled.bucket, prefix)] == expected


def test_ls_table_limit_and_help(server_home: Settings, filled: BucketCredentials) -> None:
    done = run_mediagate(server_home.home, "ls", filled.bucket, "img/")
    assert done.returncode == 0
    assert "img/1.png" in done.stdout and "2 objects, 9 bytes" in done.stdout
    limited = run_mediagate(server_home.home, "ls", filled.bucket, "--limit", "3")
    assert "3 objects" in limited.stdout and "--limit 0 lists all" in limited.stdout
    assert len(ls(server_home.home, filled.bucket, "--limit", "3")) == 3
    assert "starts with PREFIX" in run_mediagate(server_home.home, "ls", "--help").stdout
    missing = run_mediagate(server_home.home, "ls", "nosuchbucket")
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def test_ls_pages_past_one_page(server: LiveServer, server_home: Settings, bucket: BucketCredentials) -> None:
    from mediagate.cli import objects

    count = objects.PAGE + 5
    signer = UpyunClient(server.url, bucket.bucket, bucket.operator, bucket.password)
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())
    with httpx.Client(base_url=server.url) as http:
        for n in range(count):
            uri = f"/{bucket.bucket}/p/{n:05d}"
            headers = {"Date": date, "Authorization": signer.sign("PUT", uri, date)}
            assert http.put(uri, content=b"", headers=headers).status_code == 200
    rows = ls(server_home.home, bucket.bucket, "p/", "--limit", "0")
    assert [r["key"] for r in rows] == [f"p/{n:05d}" for n in range(count)]


def test_rm_deletes_for_every_dialect(
    server: LiveServer, server_home: Settings, filled: BucketCredentials
) -> None:
    b = filled.bucket
    assert httpx.get(f"{server.url}/{b}/a.txt").status_code == 200
    done = run_mediagate(server_home.home, "rm", b, "a.txt", "/img/1.png")
    assert done.returncode == 0, done.stderr
    assert f"deleted {b}/a.txt" in done.stdout and f"deleted {b}/img/1.png" in done.stdout
    assert httpx.get(f"{server.url}/{b}/a.txt").status_code == 404
    assert httpx.get(f"{server.url}/{b}/img/1.png").status_code == 404
    assert [r["key"] for r in ls(server_home.home, b, "img/")] == ["img/2.png"]
    # a key that is not there: the others are still deleted, the exit code says something was wrong
    partly = run_mediagate(server_home.home, "rm", b, "never.txt", "B.txt")
    assert partly.returncode == 1
    assert f"{b}/never.txt: no such object" in " ".join(partly.stderr.split())
    assert httpx.get(f"{server.url}/{b}/B.txt").status_code == 404
    bad = run_mediagate(server_home.home, "rm", b, "../x")
    assert bad.returncode == 1 and "'..'" in bad.stderr


def test_rm_recursive(server: LiveServer, server_home: Settings, bucket: BucketCredentials) -> None:
    b = bucket.bucket
    for n in range(25):  # enough for the progress bar
        put(server, bucket, f"old/{n}.txt", b"o")
    put(server, bucket, "older.txt", b"kept")
    refused = run_mediagate(server_home.home, "rm", b, "old/", "-r", input="n\n")
    assert refused.returncode != 0 and "Delete 25 objects" in refused.stdout
    assert len(ls(server_home.home, b, "old/")) == 25
    done = run_mediagate(server_home.home, "rm", b, "old/", "-r", "--yes", env={"TTY_COMPATIBLE": "1"})
    assert done.returncode == 0, done.stderr
    assert "deleting" in done.stderr and "━" in done.stderr  # a progress bar, on a terminal
    assert f"deleted 25 objects from {b}" in done.stdout
    assert [r["key"] for r in ls(server_home.home, b)] == ["older.txt"]
    nothing = run_mediagate(server_home.home, "rm", b, "old/", "-r", "--yes")
    assert nothing.returncode == 1 and "no objects" in nothing.stderr

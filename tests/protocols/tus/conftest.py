"""tus tests: upload tokens issued the way an app backend does (an API key of the bucket, then
``POST /v1/buckets/{b}/upload-tokens``'s core function), and small helpers for raw tus requests."""

from __future__ import annotations

import base64
import os
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from mediagate.core import apikeys, uploadtokens
from mediagate.core.buckets import BucketCredentials
from mediagate.core.gateway import Gateway

TUS = {"Tus-Resumable": "1.0.0"}
PATCH_TYPE = {"Content-Type": "application/offset+octet-stream"}

Issue = Callable[..., str]


def issue_token(gw: Gateway, bucket: str, **limits: Any) -> str:
    """A fresh upload token for ``bucket`` (``limits``: ttl, max_uses, prefix, key, max_size,
    content_types), issued by a new write key of that bucket."""
    key, _ = apikeys.create_key(gw.catalog, bucket=bucket, scopes=["write"])
    _, secret = uploadtokens.issue_upload_token(gw.catalog, key, bucket, **limits)
    return secret


@pytest.fixture
def issue(admin: Gateway, bucket: BucketCredentials) -> Issue:
    def make(**limits: Any) -> str:
        return issue_token(admin, bucket.bucket, **limits)

    return make


def auth(token: str) -> dict[str, str]:
    return {**TUS, "Authorization": f"Bearer {token}"}


def meta(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def create(base: str, bucket: str, token: str, size: int | None, **extra: str) -> httpx.Response:
    headers = {**auth(token), **extra}
    if size is not None:
        headers["Upload-Length"] = str(size)
    return httpx.post(f"{base}/v1/tus/{bucket}/", headers=headers)


def patch(url: str, token: str, offset: int, body: bytes, **extra: str) -> httpx.Response:
    headers = {**auth(token), **PATCH_TYPE, "Upload-Offset": str(offset), **extra}
    return httpx.patch(url, headers=headers, content=body)


def head(url: str, token: str) -> httpx.Response:
    return httpx.head(url, headers=auth(token))


def random_bytes(size: int) -> bytes:
    return os.urandom(size)


def interrupt_patch(url: str, token: str, offset: int, body: bytes, sent: int) -> None:
    """A PATCH announcing ``len(body)`` bytes that sends ``sent`` of them and drops the connection."""
    parts = urlsplit(url)
    head_lines = (
        f"PATCH {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nTus-Resumable: 1.0.0\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/offset+octet-stream\r\n"
        f"Upload-Offset: {offset}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 80)) as sock:
        sock.sendall(head_lines.encode() + body[:sent])
        time.sleep(0.3)


def offset_settles(url: str, token: str, want: int, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if head(url, token).headers.get("Upload-Offset") == str(want):
            return
        time.sleep(0.1)
    raise AssertionError(f"offset never reached {want}: {head(url, token).headers}")

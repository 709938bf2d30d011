"""Shared setup for the ImageX tests: the seed's ServiceId as a bucket, web sessions, signed calls."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from mediagate.core.buckets import BucketCredentials, create_bucket
from mediagate.core.gateway import Gateway
from mediagate.protocols.imagex import sts
from mediagate.signing import sigv4
from tests.conftest import LiveServer

SEED_SERVICE_ID = "tb4s082cfz"
"""The ServiceId the seed script hard-codes."""


@pytest.fixture(scope="module")
def seed_bucket(admin: Gateway) -> BucketCredentials:
    return create_bucket(admin.catalog, admin.secrets, SEED_SERVICE_ID)


def web_session(admin: Gateway, bucket: str, ttl: int = 3600) -> str:
    """What `mediagate token create` does, in-process on the server's home."""

    async def make() -> str:
        return await sts.create_web_session(admin, await admin.bucket(bucket), ttl=ttl)

    return asyncio.run(make())


def png(width: int = 3, height: int = 2, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


def signed(
    server: LiveServer,
    method: str,
    params: dict[str, Any],
    *,
    ak: str,
    sk: str,
    token: str | None = None,
    body: bytes = b"",
    algorithm: str = sigv4.VOLC,
    **kw: Any,
) -> httpx.Response:
    """One OpenAPI call signed by our own signer (the SDK and the seed are tested separately)."""
    query = [(k, str(v)) for k, v in params.items()]
    headers = sigv4.sign(
        algorithm,
        access_key_id=ak,
        secret=sk,
        method=method,
        host=server.endpoint,
        query=query,
        body=body,
        session_token=token,
        content_type="application/json" if body else None,
        **kw,
    )
    if body:
        headers["Content-Type"] = "application/json"
    return httpx.request(method, f"{server.url}/", params=query, headers=headers, content=body)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path

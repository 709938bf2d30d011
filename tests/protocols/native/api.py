"""Helpers for the /v1 tests: a key made in the catalog, and an httpx client that sends it."""

from __future__ import annotations

from typing import Any

import httpx

from mediagate.core.apikeys import create_key
from mediagate.core.gateway import Gateway


def new_key(admin: Gateway, bucket: str | None, scopes: str = "read,write,admin") -> str:
    """A fresh API key's secret (what `mediagate key create` prints)."""
    return create_key(admin.catalog, bucket=bucket, scopes=[scopes])[1]


def client(base_url: str, secret: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    return httpx.Client(base_url=base_url, headers=headers, timeout=30)


def error_of(response: httpx.Response) -> tuple[int, str]:
    """(status, code) of a /v1 error, after checking it has the one error shape."""
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert {"code", "message", "request_id"} <= set(error), error
    assert error["request_id"] == response.headers["x-request-id"]
    assert error["message"]
    return response.status_code, str(error["code"])

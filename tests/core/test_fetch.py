"""core.fetch: a client-named URL downloaded into staging through the SSRF guard, bounded in size
and time, against a real loopback server; the staging file never outlives the block."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from mediagate.core import fetch
from mediagate.core.gateway import Gateway
from mediagate.services import build_gateway
from tests.conftest import make_home
from tests.support.fileserver import Route, file_server

BODY = bytes(range(256)) * 1024  # 256 KB


@pytest.fixture(params=[True, False], ids=["private-allowed", "public-only"])
def gateway(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Gateway]:
    gw = build_gateway(make_home(tmp_path / "home", allow_private_callbacks=request.param))
    yield gw
    gw.catalog.close()


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    routes = {
        "/ok.bin": Route(BODY),
        "/chunked.bin": Route(BODY, chunked=True),
        "/slow.bin": Route(BODY, pause=0.5),
        "/teapot": Route(b"no", status=418),
    }
    with file_server(routes) as url:
        yield url


def run(gw: Gateway, url: str, *, max_bytes: int = len(BODY), timeout: float = 10) -> tuple[bytes, Path]:
    async def go() -> tuple[bytes, Path]:
        async with fetch.fetched(gw, url, max_bytes=max_bytes, timeout=timeout) as path:
            return path.read_bytes(), path

    return asyncio.run(go())


def test_downloads_within_bounds_and_cleans_up(gateway: Gateway, base: str) -> None:
    if not gateway.settings.allow_private_callbacks:
        with pytest.raises(fetch.FetchFailed, match="private or reserved address"):
            run(gateway, f"{base}/ok.bin")
        return
    for name in ("ok.bin", "chunked.bin"):
        data, path = run(gateway, f"{base}/{name}")
        assert data == BODY and path.parent == gateway.staging_dir and not path.exists()


@pytest.mark.parametrize(
    ("path", "kwargs", "error", "message"),
    [
        ("/ok.bin", {"max_bytes": len(BODY) - 1}, fetch.FetchTooLarge, "limit is"),  # by Content-Length
        ("/chunked.bin", {"max_bytes": 1000}, fetch.FetchTooLarge, "larger than 1000"),  # by what arrived
        ("/slow.bin", {"timeout": 1.0}, fetch.FetchTimeout, "longer than 1 s"),
        ("/teapot", {}, fetch.FetchFailed, "HTTP 418"),
    ],
)
def test_bounds_and_failures_are_told_apart(
    tmp_path: Path, base: str, path: str, kwargs: dict[str, float], error: type[Exception], message: str
) -> None:
    gw = build_gateway(make_home(tmp_path / "home", allow_private_callbacks=True))
    try:
        with pytest.raises(error, match=message):
            run(gw, base + path, **kwargs)  # type: ignore[arg-type]
        assert not [p for p in gw.staging_dir.iterdir() if p.is_file()]
    finally:
        gw.catalog.close()


def test_only_http_urls(tmp_path: Path) -> None:
    gw = build_gateway(make_home(tmp_path / "home", allow_private_callbacks=True))
    try:
        for url in ("ftp://x/y", "file:///etc/passwd", "/etc/passwd", "http://"):
            with pytest.raises(fetch.BadUrl):
                run(gw, url)
    finally:
        gw.catalog.close()

"""``/healthz`` with a shared Redis (``MEDIAGATE_REDIS_URL``): checked like the catalog and the
storage, 503 naming it when it is down, and back to 200 when it returns. Without the setting the
embedded default has no Redis to check (tests/test_outages.py shows its exact answer). ``serve``
refuses to start, in one line, when the configured Redis cannot be reached.

The Redis is the real one at 127.0.0.1:6379, reached through a TCP proxy the test cuts.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli.test_startup_cli import one_error_line
from tests.conftest import LiveServer, free_port, make_home
from tests.support.cli import run_mediagate
from tests.support.proxy import TcpProxy

REDIS_PORT = 6379


@pytest.fixture
def redis_node(tmp_path: Path) -> Iterator[tuple[LiveServer, TcpProxy]]:
    proxy = TcpProxy(REDIS_PORT).start()
    home = make_home(tmp_path / "home")
    url = f"redis://127.0.0.1:{proxy.port}/0"
    server = LiveServer(home.home, env={"MEDIAGATE_REDIS_URL": url}).start()
    try:
        yield server, proxy
    finally:
        server.stop()
        proxy.cut()


def test_healthz_reports_redis_and_names_it_when_down(redis_node: tuple[LiveServer, TcpProxy]) -> None:
    server, proxy = redis_node
    ok = {"status": "ok", "catalog": "ok", "storage": "ok", "disk": "ok", "redis": "ok"}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert client.get("/healthz").json() == ok
        proxy.cut()
        health = client.get("/healthz")
        assert health.status_code == 503, health.text
        assert health.json() == {
            **ok,
            "status": "unavailable",
            "redis": "unavailable: the shared Redis is unavailable; retry later",
        }
        assert client.get("/livez").status_code == 200  # liveness touches no dependency
        proxy.restore()
        assert client.get("/healthz").json() == ok
    log = server.log()
    assert "redis: the shared Redis is unavailable" in log  # the access line names it
    assert "Traceback" not in log


def test_serve_with_redis_out_of_reach_is_one_line(tmp_path: Path) -> None:
    assert run_mediagate(tmp_path, "init").returncode == 0
    url = f"redis://:redis-secret-value@127.0.0.1:{free_port()}/0"
    done = run_mediagate(tmp_path, "serve", "--port", "0", env={"MEDIAGATE_REDIS_URL": url, "COLUMNS": "80"})
    assert done.returncode == 1
    line = one_error_line(done.stderr)
    assert line.startswith("error: cannot use Redis at redis://:***@127.0.0.1:"), line
    assert "redis-secret-value" not in done.stderr

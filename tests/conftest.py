"""Shared fixtures: a real mediagate under uvicorn on loopback, homes, buckets.

Tests talk to real servers; nothing of our own is mocked. ``server`` is one uvicorn process per
test module (starting one costs about a second); ``bucket`` makes a fresh bucket per test, so
tests sharing a server never see each other's objects.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from mediagate.config import Settings
from mediagate.core.buckets import BucketCredentials, create_bucket
from mediagate.core.gateway import Gateway
from mediagate.services import build_gateway, init_home

POSTGRES_URL = os.environ.get(
    "MEDIAGATE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_home(path: Path, **settings: object) -> Settings:
    config = Settings(home=path, **settings)  # type: ignore[arg-type]
    init_home(config)
    return config


@dataclass
class LiveServer:
    """A mediagate process under uvicorn; ``kill()`` is SIGKILL, ``restart()`` reuses the home."""

    home: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def endpoint(self) -> str:
        """host:port, as the upyun SDK wants it."""
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> LiveServer:
        env = {**os.environ, "MEDIAGATE_HOME": str(self.home), **self.env}
        self.log_path = self.home / f"server-{self.port}.log"
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "mediagate.app:app_from_env",
                "--factory",
                "--http",
                "mediagate.httpserver:HTTPProtocol",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not start: {self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def restart(self) -> LiveServer:
        self.stop()
        return self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""


@pytest.fixture(scope="module")
def server_home(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return make_home(tmp_path_factory.mktemp("home"))


@pytest.fixture(scope="module")
def server(server_home: Settings) -> Iterator[LiveServer]:
    """A live server allowed to call loopback callbacks (the tests' own receivers)."""
    live = LiveServer(server_home.home, env={"MEDIAGATE_ALLOW_PRIVATE_CALLBACKS": "1"}).start()
    yield live
    live.stop()
    assert "Traceback" not in live.log(), live.log()[-5000:]


@pytest.fixture(scope="module")
def admin(server_home: Settings) -> Iterator[Gateway]:
    """An in-process gateway on the server's home, for setup and for checking the catalog."""
    gw = build_gateway(server_home, migrate=False)
    yield gw
    gw.catalog.close()


@pytest.fixture
def bucket(admin: Gateway) -> BucketCredentials:
    name = f"b{uuid.uuid4().hex[:12]}"
    return create_bucket(admin.catalog, admin.secrets, name)


def staging_files(home: Path) -> list[Path]:
    """Files staged under the home, in every process's own staging directory (core.staging)."""
    root = home / "staging"
    return [p for p in root.rglob("*") if not p.is_dir()] if root.exists() else []


def dump(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A moto S3 server (a subprocess on a free loopback port) shared by the whole run; tests keep
    apart by using a fresh S3 bucket each (see ``tests.support.moto.MotoServer``)."""
    from tests.support.moto import MotoServer

    moto = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log").start()
    yield moto
    moto.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, s3_server: object) -> Iterator[object]:
    """Two nodes on one PostgreSQL catalog, one S3 bucket (moto), one sealing key and Redis, each
    with its own home and port (see ``tests.support.cluster``)."""
    from tests.support.cluster import two_nodes
    from tests.support.moto import MotoServer

    assert isinstance(s3_server, MotoServer)
    with two_nodes(tmp_path_factory.mktemp("cluster"), s3_server) as nodes:
        yield nodes

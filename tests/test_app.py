"""The app's lifespan gives back what it took: at shutdown every Redis connection the node opened
(the health check's shared client, the upload rate limiter's, the task queue's) is closed by the
server, not left to the garbage collector or the process's end; and ``mediagate serve`` on Redis
stops on SIGTERM without a warning or a traceback.

Against the real Redis at 127.0.0.1:6379: the node's connections carry a client name of this test's
own (``?client_name=`` in ``MEDIAGATE_REDIS_URL``), so ``CLIENT LIST`` shows which are still open;
each test has a task queue of its own, so its workers never take another test's tasks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, cast

import anyio
import httpx
import redis

from mediagate.app import create_app
from mediagate.config import Settings
from mediagate.core.buckets import BucketCredentials, create_bucket
from mediagate.services import build_gateway
from tests.conftest import free_port, make_home
from tests.protocols.upyun.rest_client import object_uri, sign

REDIS = os.environ.get("MEDIAGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def connections_named(name: str, *, at_least: int = 0, timeout: float = 5.0) -> int:
    """How many connections Redis has from clients called ``name``, once there are ``at_least``
    (0: once there are none; Redis sees a closed connection a moment after it is closed)."""
    admin = redis.Redis.from_url(REDIS)
    try:
        deadline = time.monotonic() + timeout
        while True:
            clients = cast(list[dict[str, Any]], admin.client_list())
            found = len([c for c in clients if c.get("name") == name])
            done = found >= at_least if at_least else found == 0
            if done or time.monotonic() > deadline:
                return found
            time.sleep(0.05)
    finally:
        admin.close()


def test_shutdown_closes_every_redis_connection_of_the_node(tmp_path: Path) -> None:
    name = f"mgtest-{uuid.uuid4().hex[:12]}"
    settings = make_home(
        tmp_path / "home",
        redis_url=f"{REDIS}?client_name={name}",
        task_queue_name=f"mediagate-test-{uuid.uuid4().hex[:12]}",
        task_workers=2,
    )
    gw = build_gateway(settings, migrate=False)
    creds = create_bucket(gw.catalog, gw.secrets, f"b{uuid.uuid4().hex[:12]}")
    gw.catalog.set_quota(gw.catalog.require_bucket(creds.bucket).id, {"uploads_per_minute": 100})
    gw.catalog.close()
    anyio.run(serve_a_while, settings, creds, name)
    assert connections_named(name) == 0


async def serve_a_while(settings: Settings, creds: BucketCredentials, name: str) -> None:
    """Start the app (its lifespan: task workers on Redis), use each Redis client once, stop it."""
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    client = httpx.AsyncClient(transport=transport, base_url="http://node")
    async with app.router.lifespan_context(app), client:
        assert (await client.get("/healthz")).json()["redis"] == "ok"  # the shared client
        uri = object_uri(creds.bucket, "/counted.bin")
        stored = await client.put(uri, content=b"counted", headers=sign(creds, "PUT", uri))
        assert stored.status_code == 200, stored.text  # counted by the rate limiter, in Redis
        assert await anyio.to_thread.run_sync(lambda: connections_named(name, at_least=3)) >= 3


def test_serve_on_redis_stops_on_sigterm_without_a_warning(tmp_path: Path) -> None:
    home = tmp_path / "home"
    make_home(home)
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAGATE_")}
    env = {
        **clean,
        "MEDIAGATE_REDIS_URL": REDIS,
        "MEDIAGATE_TASK_QUEUE_NAME": f"mediagate-test-{uuid.uuid4().hex[:12]}",
        "PYTHONWARNINGS": "always",  # ResourceWarning (an unclosed socket …) is silent by default
    }
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        cmd = [sys.executable, "-m", "mediagate", "--home", str(home), "serve", "--port", str(port)]
        cmd += ["--log-level", "warning"]
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        assert health.json()["redis"] == "ok"
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(20)
    text = log.read_text()
    assert code in (0, -signal.SIGTERM), text  # uvicorn re-raises the signal once it has stopped
    assert "Warning" not in text and "Traceback" not in text and "unclosed" not in text, text

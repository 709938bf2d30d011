"""A mediagate with task workers, on each engine the queue runs on.

``site`` is parametrised: ``embedded`` is ``mediagate serve``'s default (huey in-process, the
server's own workers, nothing else started); ``redis`` is the scale-out setup: the server runs no
workers (``MEDIAGATE_RUN_WORKERS=0``, what ``serve --no-worker`` sets) and two standalone
``mediagate worker`` processes share one Redis queue (127.0.0.1:6379, a queue name of its own per
test, removed afterwards).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mediagate.catalog.models import Task
from mediagate.core.buckets import BucketCredentials, create_bucket
from mediagate.core.gateway import Gateway
from mediagate.services import build_gateway
from tests.conftest import LiveServer, make_home

REDIS_URL = os.environ.get("MEDIAGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
ENGINES = ("embedded", "redis")
FAST = {
    "MEDIAGATE_ALLOW_PRIVATE_CALLBACKS": "1",
    "MEDIAGATE_TASK_LEASE_SECONDS": "2",
    "MEDIAGATE_TASK_BACKOFF_SECONDS": "0.3",
}
"""A killed worker's task runs again within ~2 s; retries wait 0.3 s, 1.2 s …"""


@dataclass
class TaskSite:
    engine: str
    home: Path
    env: dict[str, str]
    admin: Gateway
    server: LiveServer
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    def bucket(self) -> BucketCredentials:
        return create_bucket(self.admin.catalog, self.admin.secrets, f"t{uuid.uuid4().hex[:12]}")

    def start_worker(self) -> subprocess.Popen[bytes]:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAGATE_")}
        log = open(self.home / f"worker-{len(self.workers)}.log", "ab")  # noqa: SIM115 - owned by the child
        proc = subprocess.Popen(
            [sys.executable, "-m", "mediagate", "--home", str(self.home), "worker"],
            env={**clean, **self.env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.workers.append(proc)
        return proc

    def kill_workers(self) -> None:
        """SIGKILL whatever runs tasks: the worker processes, or the server that runs them."""
        if self.engine == "embedded":
            self.server.kill()
        for proc in self.workers:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def restart_workers(self) -> None:
        if self.engine == "embedded":
            self.server.start()
        else:
            self.workers = [w for w in self.workers if w.poll() is None]
            for _ in range(2 - len(self.workers)):
                self.start_worker()

    def pause_workers(self) -> None:
        """No task runs until :meth:`resume_workers` (tasks queue up in the catalog)."""
        if self.engine == "embedded":
            self.server.env["MEDIAGATE_RUN_WORKERS"] = "0"
            self.server.restart()
        else:
            self.kill_workers()

    def resume_workers(self) -> None:
        """Standalone ``mediagate worker`` processes pick the queued tasks up (embedded: one, with
        its own in-process queue; redis: two sharing the queue)."""
        if self.engine == "embedded":
            self.start_worker()
        else:
            self.restart_workers()

    def task(self, task_id: str) -> Task:
        found = self.admin.catalog.get_task(task_id)
        assert found is not None, f"no task {task_id}"
        return found

    def wait_task(self, task_id: str, *statuses: str, timeout: float = 30.0) -> Task:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.admin.catalog.get_task(task_id)
            if found is not None and found.status in statuses:
                return found
            time.sleep(0.05)
        raise AssertionError(
            f"task {task_id} not {statuses} after {timeout} s: {self.task(task_id).__dict__}"
        )

    def logs(self) -> str:
        text = self.server.log()
        for path in sorted(self.home.glob("worker-*.log")):
            text += path.read_text(errors="replace")
        return text


@pytest.fixture(params=ENGINES)
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TaskSite]:
    engine = str(request.param)
    env = dict(FAST)
    queue = f"mediagate-test-{uuid.uuid4().hex[:12]}"
    if engine == "redis":
        env |= {
            "MEDIAGATE_REDIS_URL": REDIS_URL,
            "MEDIAGATE_TASK_QUEUE_NAME": queue,
            "MEDIAGATE_RUN_WORKERS": "0",
        }
    settings = make_home(tmp_path / "home")
    admin = build_gateway(settings, migrate=False)
    server = LiveServer(settings.home, env=env).start()
    live = TaskSite(engine, settings.home, env, admin, server)
    try:
        if engine == "redis":
            live.start_worker()
            live.start_worker()
        yield live
    finally:
        server.stop()
        for proc in live.workers:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        admin.catalog.close()
        if engine == "redis":
            import redis

            client = redis.Redis.from_url(REDIS_URL)
            for key in client.scan_iter(f"*{queue}*"):
                client.delete(key)
            client.close()
    assert "Traceback" not in live.logs(), live.logs()[-5000:]


def verify_upyun_signature(creds: BucketCredentials, path: str, headers: dict[str, str], body: bytes) -> None:
    """A task callback's ``Authorization: UPYUN op:sig`` over ``POST&path&Date&Content-MD5``
    with md5(password), and Content-MD5 = md5 hex of the body (spec upyun-apps §3.1)."""
    assert headers["content-md5"] == hashlib.md5(body).hexdigest()
    message = f"POST&{path}&{headers['date']}&{headers['content-md5']}"
    key = hashlib.md5(creds.password.encode()).hexdigest().encode()
    expected = base64.b64encode(hmac.new(key, message.encode(), hashlib.sha1).digest()).decode()
    assert headers["authorization"] == f"UPYUN {creds.operator}:{expected}"


def by_task(requests: list[tuple[str, dict[str, str], bytes]]) -> dict[str, Any]:
    """The JSON task callbacks a Receiver got, by task id (each must come once)."""
    import json

    found: dict[str, Any] = {}
    for _, headers, body in requests:
        if headers.get("content-type") == "application/json":
            doc = json.loads(body)
            assert doc["task_id"] not in found, f"two callbacks for {doc['task_id']}"
            found[doc["task_id"]] = doc
    return found

"""Dependencies of tasks go away and come back. Redis, the scale-out engine: uploads with ``apps``
still succeed, their tasks wait in the catalog, and run once Redis is back. A full disk (or a blob
store out of reach) while a task writes its output: the task waits too, however many tries that
takes, instead of using up its attempts and failing for good. The logs say so in a line, no
traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mediagate.core.buckets import create_bucket
from mediagate.services import build_gateway
from tests.conftest import LiveServer, free_port, make_home
from tests.protocols.upyun.forms import policy_of, post, signature
from tests.support.fulldisk import SmallTmpfs
from tests.tasks.conftest import FAST
from tests.tasks.test_engine import jpeg


class PrivateRedis:
    """A redis-server of this test's own on a free port (so stopping it disturbs nobody)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        import redis

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis.from_url(self.url).ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def test_tasks_wait_out_a_redis_outage(tmp_path: Path, private_redis: PrivateRedis) -> None:
    settings = make_home(tmp_path / "home")
    admin = build_gateway(settings, migrate=False)
    creds = create_bucket(admin.catalog, admin.secrets, "media")
    env = FAST | {"MEDIAGATE_REDIS_URL": private_redis.url, "MEDIAGATE_TASK_QUEUE_NAME": uuid.uuid4().hex}
    server = LiveServer(settings.home, env=env).start()  # runs workers in-process, on Redis
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAGATE_")}
    worker_log = settings.home / "worker.log"
    with open(worker_log, "ab") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "mediagate", "--home", str(settings.home), "worker"],
            env=clean | env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        private_redis.stop()
        p = policy_of(creds, "/a.jpg", apps=[{"name": "thumb", "x-gmkerl-thumb": "/fw/10"}])
        with httpx.Client(base_url=server.url) as client:
            answer = post(
                client,
                "media",
                [("policy", p), ("signature", signature(creds, p)), ("file", ("a.jpg", jpeg()))],
            )
        assert answer.status_code == 200, answer.text
        (task_id,) = answer.json()["task_ids"]
        time.sleep(1.5)
        task = admin.catalog.get_task(task_id)
        assert task is not None and task.status == "pending"

        private_redis.start()
        deadline = time.monotonic() + 20
        while (task := admin.catalog.get_task(task_id)) is not None and task.status != "done":
            assert time.monotonic() < deadline, task.__dict__
            time.sleep(0.1)
        assert task is not None and task.attempts == 1
    finally:
        server.stop()
        worker.terminate()
        worker.wait(15)
        admin.catalog.close()
    logs = server.log() + worker_log.read_text()
    assert "task queue unavailable" in logs and "task queue works again" in logs
    assert "Traceback" not in logs, logs[-4000:]


def test_a_task_waits_out_a_full_disk(tmp_path: Path) -> None:
    """Before, each try on the full disk was a counted attempt: after three (two seconds here) the
    thumbnail failed for good, with "internal error (OSError: [Errno 28] …)" as its reason."""
    disk = SmallTmpfs(tmp_path)
    home = tmp_path / "home"
    worker: subprocess.Popen[bytes] | None = None
    try:
        disk.prepare(home)
        settings = make_home(home)
        admin = build_gateway(settings, migrate=False)
        creds = create_bucket(admin.catalog, admin.secrets, "media")
        env = FAST | {"MEDIAGATE_TASK_BACKOFF_SECONDS": "0.05", "MEDIAGATE_LOG_FORMAT": "json"}
        server = LiveServer(home, env=env | {"MEDIAGATE_RUN_WORKERS": "0"}).start()
        p = policy_of(creds, "/a.jpg", apps=[{"name": "thumb", "x-gmkerl-thumb": "/fw/10"}])
        with httpx.Client(base_url=server.url) as client:
            answer = post(
                client,
                "media",
                [("policy", p), ("signature", signature(creds, p)), ("file", ("a.jpg", jpeg()))],
            )
        server.stop()
        assert answer.status_code == 200, answer.text
        (task_id,) = answer.json()["task_ids"]

        disk.fill()
        clean = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAGATE_")}
        worker_log = tmp_path / "worker.log"
        with open(worker_log, "ab") as log:
            worker = subprocess.Popen(
                [sys.executable, "-m", "mediagate", "--home", str(home), "worker"],
                env=clean | env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while worker_log.read_text().count(f"task {task_id} (thumb) attempt") < 5:
            assert time.monotonic() < deadline, worker_log.read_text()
            time.sleep(0.1)
        task = admin.catalog.get_task(task_id)
        assert task is not None and task.status in ("pending", "running"), task.__dict__
        assert task.attempts <= 1 and "no space" in (task.reason or ""), task.__dict__

        disk.free()
        deadline = time.monotonic() + 60
        while (task := admin.catalog.get_task(task_id)) is not None and task.status != "done":
            assert time.monotonic() < deadline, task.__dict__
            time.sleep(0.1)
        assert task is not None and task.attempts == 1
        admin.catalog.close()
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(15)
        disk.close()
    logs = worker_log.read_text()
    assert "Traceback" not in logs, logs[-4000:]
    warnings = [line for line in logs.splitlines() if '"warning"' in line]
    assert len(warnings) == 2, warnings  # the outage, then its end
    assert "insufficient_storage" in warnings[0] and "works again" in warnings[1], warnings

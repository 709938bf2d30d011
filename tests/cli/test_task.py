"""`mediagate task`: what an operator gets for ids, buckets and statuses that do not exist, and the
JSON shape on an empty home (the full life of a task is in tests/tasks/test_engine.py)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import make_home
from tests.support.cli import run_mediagate


def test_task_commands_on_unknown_names_say_so(tmp_path: Path) -> None:
    home = make_home(tmp_path / "home").home
    listed = run_mediagate(home, "task", "list", "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []

    for args, fragment in [
        (("task", "show", "f" * 32, "--json"), "does not exist"),
        (("task", "retry", "f" * 32), "does not exist"),
        (("task", "list", "--bucket", "nosuch"), "bucket 'nosuch' does not exist"),
        (("task", "list", "--status", "lost"), "unknown status 'lost'"),
    ]:
        done = run_mediagate(home, *args)
        assert done.returncode == 1, args
        assert fragment in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr


def test_serve_no_worker_leaves_tasks_to_a_standalone_worker(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys
    import time

    import httpx

    from mediagate.core.buckets import create_bucket
    from mediagate.services import build_gateway
    from tests.conftest import free_port
    from tests.protocols.upyun.forms import policy_of, post, signature
    from tests.tasks.test_engine import jpeg

    settings = make_home(tmp_path / "home")
    admin = build_gateway(settings, migrate=False)
    creds = create_bucket(admin.catalog, admin.secrets, "media")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAGATE_")}
    port = free_port()
    command = [sys.executable, "-m", "mediagate", "--home", str(settings.home)]
    serve = subprocess.Popen(
        [*command, "serve", "--no-worker", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker: subprocess.Popen[bytes] | None = None
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.1)
        p = policy_of(creds, "/a.jpg", apps=[{"name": "thumb", "x-gmkerl-thumb": "/fw/10"}])
        with httpx.Client(base_url=url) as client:
            answer = post(
                client,
                "media",
                [("policy", p), ("signature", signature(creds, p)), ("file", ("a.jpg", jpeg()))],
            )
        (task_id,) = answer.json()["task_ids"]
        time.sleep(1.5)
        shown = json.loads(run_mediagate(settings.home, "task", "show", task_id, "--json").stdout)
        assert shown["status"] == "pending" and shown["attempts"] == 0  # nobody runs tasks yet

        worker = subprocess.Popen(
            [*command, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 20
        while (task := admin.catalog.get_task(task_id)) is not None and task.status != "done":
            assert time.monotonic() < deadline, task.__dict__
            time.sleep(0.1)
    finally:
        for proc in (serve, worker):
            if proc is not None:
                proc.terminate()
                proc.wait(15)
        admin.catalog.close()
    assert worker is not None and worker.returncode == 0  # SIGTERM: a clean stop

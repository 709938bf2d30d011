"""Staging directories are owned per process: a starting process removes what no live process
owns (a crashed one's leftovers) and never another's upload in flight (see core.staging)."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from mediagate.core.buckets import create_bucket
from mediagate.core.staging import StagingArea, claim, sweep
from mediagate.services import build_gateway
from tests.conftest import free_port, make_home, staging_files
from tests.protocols.upyun.rest_client import object_uri, sign

MIB = 1024 * 1024
SERVE_ARGS = ("--workers", "2", "--log-level", "info", "--port")

HOLDER = """
import sys, time
from pathlib import Path
from mediagate.core.staging import StagingArea
area = StagingArea(Path(sys.argv[1]))
(area.path / "upload.part").write_bytes(b"in flight")
print(area.path, flush=True)
time.sleep(60)
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """Another process that owns a staging directory holding one file."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path / "staging")], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    owned = Path(proc.stdout.readline().strip())
    yield proc, owned
    proc.kill()
    proc.wait()


def test_a_sweep_leaves_a_live_process_directory_and_removes_it_once_that_process_died(
    tmp_path: Path, holder: tuple[subprocess.Popen[str], Path]
) -> None:
    proc, owned = holder
    mine = StagingArea(tmp_path / "staging")
    assert mine.path != owned and mine.path.parent == owned.parent

    assert sweep(tmp_path / "staging", keep=mine.path) == 0
    assert (owned / "upload.part").read_bytes() == b"in flight"

    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert sweep(tmp_path / "staging", keep=mine.path) == 1
    assert not owned.exists()
    assert mine.path.is_dir()


def test_a_process_never_sweeps_its_own_directory(tmp_path: Path) -> None:
    area = StagingArea(tmp_path / "staging")
    (area.path / "x.part").write_bytes(b"x")
    assert sweep(tmp_path / "staging") == 0  # locked by this very process's descriptor
    assert (area.path / "x.part").exists()


def test_loose_files_of_older_versions_go_only_once_old(tmp_path: Path) -> None:
    root = tmp_path / "staging"
    root.mkdir()
    fresh, old = root / "fresh.part", root / "old.part"
    fresh.write_bytes(b"a")
    old.write_bytes(b"b")
    os.utime(old, (time.time() - 7 * 3600, time.time() - 7 * 3600))
    assert sweep(root) == 1
    assert fresh.exists() and not old.exists()


def test_claim_does_not_keep_a_directory_swept_before_it_was_locked(tmp_path: Path) -> None:
    """Many claims and sweeps racing: every claimed directory is still there and locked."""
    root = tmp_path / "staging"
    root.mkdir()
    claimed: list[tuple[Path, int]] = []
    stop = threading.Event()

    def sweeper() -> None:
        while not stop.is_set():
            sweep(root)

    t = threading.Thread(target=sweeper)
    t.start()
    try:
        for _ in range(200):
            claimed.append(claim(root))
    finally:
        stop.set()
        t.join()
    for path, fd in claimed:
        assert os.path.samestat(os.fstat(fd), os.stat(path))
        os.close(fd)


# -- a real multi-worker server -------------------------------------------------------------------


def worker_pids(server: psutil.Process) -> set[int]:
    """The live uvicorn workers (spawned children, not multiprocessing's resource tracker)."""
    pids = set()
    for child in server.children(recursive=True):
        try:
            cmdline = " ".join(child.cmdline())
        except psutil.Error:  # gone, or a zombie not yet reaped
            continue
        if "spawn_main" in cmdline and "resource_tracker" not in cmdline:
            pids.add(child.pid)
    return pids


def wait(predicate: object, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def holder_of(files: list[Path], pids: set[int]) -> int | None:
    for pid in pids:
        try:
            open_paths = {f.path for f in psutil.Process(pid).open_files()}
        except psutil.NoSuchProcess:
            continue
        if any(str(f) in open_paths for f in files):
            return pid
    return None


@pytest.mark.slow
def test_a_replacement_worker_does_not_destroy_uploads_in_flight_on_the_others(tmp_path: Path) -> None:
    """``serve --workers 2``: an upload is half sent to one worker, the other is killed and the
    server starts a replacement (whose start-up cleans staging); the upload still completes."""
    settings = make_home(tmp_path / "home")
    admin = build_gateway(settings, migrate=False)
    creds = create_bucket(admin.catalog, admin.secrets, "multi")
    admin.catalog.close()
    port = free_port()
    log_path = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAGATE_")}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mediagate",
                "--home",
                str(settings.home),
                "serve",
                *SERVE_ARGS,
                str(port),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    body = os.urandom(6 * MIB)
    go_on = threading.Event()
    result: dict[str, httpx.Response | Exception] = {}

    def chunks() -> Iterator[bytes]:
        yield body[: 4 * MIB]
        go_on.wait(60)
        yield body[4 * MIB :]

    def upload() -> None:
        uri = object_uri(creds.bucket, "slow/big.bin")
        headers = {**sign(creds, "PUT", uri), "Content-Length": str(len(body))}
        try:
            result["r"] = httpx.put(f"{url}{uri}", content=chunks(), headers=headers, timeout=60)
        except Exception as exc:
            result["r"] = exc

    try:
        wait(lambda: log_path.read_text().count("Application startup complete") == 2)
        server = psutil.Process(proc.pid)
        workers = worker_pids(server)
        assert len(workers) == 2, workers
        sender = threading.Thread(target=upload)
        sender.start()
        wait(lambda: holder_of(staging_files(settings.home), workers) is not None)
        busy = holder_of(staging_files(settings.home), workers)
        (other,) = workers - {busy}

        os.kill(other, signal.SIGKILL)
        wait(lambda: len(worker_pids(server) - workers) == 1)  # the replacement is running
        wait(lambda: log_path.read_text().count("Application startup complete") == 3)

        go_on.set()
        sender.join(60)
        response = result["r"]
        assert isinstance(response, httpx.Response), response
        assert response.status_code == 200, response.text
        read = httpx.get(f"{url}/{creds.bucket}/slow/big.bin", timeout=30)
        assert read.status_code == 200
        assert hashlib.sha256(read.content).digest() == hashlib.sha256(body).digest()
    finally:
        go_on.set()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    text = log_path.read_text()
    assert "Traceback" not in text, text[-5000:]
    assert re.search(r"Started server process", text)

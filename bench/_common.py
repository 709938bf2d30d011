"""Shared bench helpers: start servers (mediagate, nginx), sign UPYUN requests, sample RSS.

The UPYUN clients here are written from the wire spec (shared/specs/upyun.md §2, §5) with httpx,
not with mediagate's own signing module, so a bench also checks that a foreign client gets in.
Servers run as separate processes with the same uvicorn flags as ``mediagate serve`` (the bench
starts them through that very command).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Self
from urllib.parse import quote

import httpx
import psutil

CHUNK = 1024 * 1024
MiB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def parse_size(text: str) -> int:
    """``1G``, ``100M``, ``64K`` or plain bytes (binary units)."""
    units = {"K": 1024, "M": 1024**2, "G": 1024**3}
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def wait_http(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    """Poll ``url`` until it answers (any status), or fail with the server's log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError(f"server did not start:\n{log.read_text(errors='replace')[-3000:]}")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- UPYUN clients from the spec --------------------------------------------------------------


@dataclass(frozen=True)
class Creds:
    bucket: str
    operator: str
    password: str
    form_api_secret: str

    @property
    def password_md5(self) -> str:
        return hashlib.md5(self.password.encode()).hexdigest()


def object_uri(bucket: str, key: str) -> str:
    return quote(f"/{bucket}/{key}", safe="~/")


def rest_headers(creds: Creds, method: str, uri: str, date: str | None = None) -> dict[str, str]:
    """``Authorization: UPYUN op:b64(hmac-sha1(md5hex(password), METHOD&URI&DATE))`` + ``Date``."""
    date = date or formatdate(usegmt=True)
    mac = hmac.new(creds.password_md5.encode(), f"{method}&{uri}&{date}".encode(), hashlib.sha1).digest()
    return {"Authorization": f"UPYUN {creds.operator}:{base64.b64encode(mac).decode()}", "Date": date}


def form_fields(creds: Creds, key: str, **extra: object) -> dict[str, str]:
    """``policy`` (base64 JSON) and the old ``signature = md5hex(policy&form_api_secret)``."""
    policy = base64.b64encode(
        json.dumps(
            {"bucket": creds.bucket, "save-key": f"/{key}", "expiration": int(time.time()) + 3600, **extra}
        ).encode()
    ).decode()
    return {
        "policy": policy,
        "signature": hashlib.md5(f"{policy}&{creds.form_api_secret}".encode()).hexdigest(),
    }


def file_chunks(path: Path, chunk: int = CHUNK) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while data := f.read(chunk):
            yield data


def streamed_multipart(
    fields: dict[str, str], filename: str, path: Path
) -> tuple[dict[str, str], int, Iterator[bytes]]:
    """(headers, length, body) of a multipart form whose file part (last) streams from disk."""
    boundary = uuid.uuid4().hex
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    )
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    length = len(head) + path.stat().st_size + len(tail)

    def body() -> Iterator[bytes]:
        yield head
        yield from file_chunks(path)
        yield tail

    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}", "Content-Length": str(length)}
    return headers, length, body()


# -- servers --------------------------------------------------------------------------------------


class ServeProcess:
    """``python -m mediagate serve`` on ``self.home`` at ``self.port``: start (ready once
    ``ready_path`` answers), pid, stop, tracebacks in its log. Subclasses set the home, port, url and
    log, and add their own flags and environment."""

    home: Path
    port: int
    url: str
    log: Path
    process: subprocess.Popen[bytes] | None = None
    ready_path = "/healthz"

    def serve_args(self) -> list[str]:
        return []

    def serve_env(self) -> dict[str, str]:
        return dict(os.environ)

    def start(self) -> Self:
        cmd = [sys.executable, "-m", "mediagate", "--home", str(self.home), "serve"]
        cmd += ["--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"]
        cmd += self.serve_args()
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.serve_env())
        wait_http(f"{self.url}{self.ready_path}", self.process, self.log)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)

    def tracebacks(self) -> bool:
        return "Traceback" in self.log.read_text(errors="replace")


class Mediagate(ServeProcess):
    """A fresh home with one bucket, served by ``python -m mediagate serve`` (uvicorn, 1 worker)."""

    def __init__(self, root: Path, *, database_url: str | None = None, workers: int = 1) -> None:
        from mediagate.config import Settings
        from mediagate.core.buckets import create_bucket
        from mediagate.services import build_gateway, init_home

        self.home = root / "mediagate-home"
        self.database_url = database_url
        self.workers = workers
        settings = Settings(home=self.home, database_url=database_url)
        init_home(settings)
        gw = build_gateway(settings, migrate=False)
        try:
            made = create_bucket(gw.catalog, gw.secrets, "bench")
        finally:
            gw.catalog.close()
        self.creds = Creds(made.bucket, made.operator, made.password, made.form_api_secret)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / "mediagate.log"

    def serve_args(self) -> list[str]:
        return ["--workers", str(self.workers)]

    def serve_env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.database_url:
            env["MEDIAGATE_DATABASE_URL"] = self.database_url
        return env


NGINX_CONF = """\
{user}
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {root}/client_body_temp;
    proxy_temp_path {root}/proxy_temp;
    fastcgi_temp_path {root}/fastcgi_temp;
    uwsgi_temp_path {root}/uwsgi_temp;
    scgi_temp_path {root}/scgi_temp;
    server {{
        listen 127.0.0.1:{port};
        root {root}/www;
        location / {{
            dav_methods PUT DELETE;
            create_full_put_path on;
            client_max_body_size 0;
        }}
    }}
}}
"""


def ensure_nginx() -> str:
    """The nginx binary; installs the Debian package if it is missing (as .ci/run does)."""
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.path.exists(p)), None
    )
    if found:
        return found
    print("nginx not found; installing the Debian package (apt-get install -y nginx) ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, check=False)
    subprocess.run(["apt-get", "install", "-y", "-qq", "nginx"], env=env, check=True)
    return shutil.which("nginx") or "/usr/sbin/nginx"


class Nginx:
    """A private nginx with WebDAV PUT on a free loopback port, all its files under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root / "nginx"
        (self.root / "www").mkdir(parents=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        user = "user root;" if os.geteuid() == 0 else ""
        self.conf = self.root / "nginx.conf"
        self.conf.write_text(NGINX_CONF.format(user=user, root=self.root, port=self.port))
        self.log = self.root / "error.log"
        self.log.touch()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Nginx:
        binary = ensure_nginx()
        with open(self.root / "stdout.log", "ab") as out:
            self.process = subprocess.Popen(
                [binary, "-p", str(self.root), "-c", str(self.conf), "-e", str(self.log)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_http(self.url + "/", self.process, self.log)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)


# -- measurement ----------------------------------------------------------------------------------


@dataclass
class RssSampler:
    """Peak resident memory of a process tree (process + children), sampled every ``interval``."""

    pid: int
    interval: float = 0.05
    peak: int = 0
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _rss(self) -> int:
        try:
            proc = psutil.Process(self.pid)
            total = proc.memory_info().rss
            for child in proc.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    total += child.memory_info().rss
            return int(total)
        except psutil.Error:
            return 0

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self._rss())
            self.samples += 1

    def __enter__(self) -> RssSampler:
        self.peak = self._rss()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak = max(self.peak, self._rss())


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its children (uvicorn's worker processes)."""
    proc = psutil.Process(pid)
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += sum(p.cpu_times()[:2])
    return total


def thread_names(pid: int) -> dict[int, str]:
    """OS thread id -> Python thread name (number dropped) of a process, from ``py-spy dump``:
    Python does not give its threads OS names."""
    import re

    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    out = subprocess.run([spy, "dump", "--pid", str(pid)], capture_output=True, text=True).stdout
    found = re.findall(r'^Thread (?:0x[0-9a-fA-F]+ )?\(?(\d+)\)?[^"]*"([^"]*)"', out, re.M)
    return {int(tid): name.rstrip("0123456789") for tid, name in found}


def thread_cpu_seconds(pid: int, names: dict[int, str]) -> dict[str, tuple[float, float]]:
    """(user, system) CPU seconds of a process's threads, summed by ``names`` (others: "other")."""
    by_name: dict[str, tuple[float, float]] = {}
    ticks = os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            name = names.get(int(task.name), "other")
            user, system = by_name.get(name, (0.0, 0.0))
            by_name[name] = (user + int(fields[11]) / ticks, system + int(fields[12]) / ticks)
    return by_name


@contextlib.contextmanager
def postgres_database(url: str) -> Iterator[str]:
    """A fresh PostgreSQL database (dropped afterwards) on the server of ``url``, a SQLAlchemy
    URL such as ``postgresql+psycopg://postgres@127.0.0.1:5432/test``; yields its URL."""
    import psycopg
    from sqlalchemy.engine import make_url

    base = make_url(url)
    name = f"mediagate_bench_{uuid.uuid4().hex[:12]}"
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def busy_processes(exclude: set[int], limit: int = 5) -> list[str]:
    """The other processes using CPU right now (the machine is shared), measured over 0.5 s."""
    procs = []
    for p in psutil.process_iter(["pid", "name", "cmdline"]):
        if p.pid in exclude:
            continue
        with contextlib.suppress(psutil.Error):
            p.cpu_percent(None)
            procs.append(p)
    time.sleep(0.5)
    usage = []
    for p in procs:
        with contextlib.suppress(psutil.Error):
            cpu = p.cpu_percent(None)
            if cpu >= 5:
                cmd = " ".join(p.info["cmdline"] or [p.info["name"] or "?"])[:80]
                usage.append((cpu, f"{cpu:5.0f}%  {cmd}"))
    return [line for _, line in sorted(usage, reverse=True)[:limit]]


def median(values: list[float]) -> float:
    return statistics.median(values)


@contextlib.contextmanager
def workdir(base: str | None = None) -> Iterator[Path]:
    """A temporary directory on disk (not tmpfs), removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="mediagate-bench-", dir=base))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)

"""Small uploads: 10 KiB authorised UPYUN REST PUTs (each a new key) for a fixed time at a fixed
concurrency, against mediagate and, in the same run, a bare Starlette handler (below) that streams
the body to a new file, fsyncs it and renames it into place: the fair baseline, same uvicorn flags,
same durability promise (an acknowledged upload is on disk), one process.

Targets (issue 12): the embedded default (SQLite, local files, one process) >= 0.6x the bare
handler's req/s with <= 1.3 ms of server CPU per upload; ``--catalog postgresql --workers 2`` (two
mediagate processes on one PostgreSQL catalog, a fresh database made and dropped by the script)
>= 1.0x the one-process bare handler. Server CPU counts every process of the server.

The load comes from wrk (C, one thread, a Lua script cycling through requests signed in advance:
each has its own key and a fresh Date) when it is installed, else from an asyncio + httpx client
in a separate process. Prints req/s, p50/p99 latency, server CPU per request and the ratio.

    .venv/bin/python bench/small.py [--duration 10] [--concurrency 32] [--size 10K]
                                    [--catalog sqlite|postgresql] [--workers N]
                                    [--client auto|wrk|python] [--py-spy out.svg] [--py-spy-gil]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path

from _common import (
    Creds,
    Mediagate,
    busy_processes,
    free_port,
    load_average,
    object_uri,
    parse_size,
    postgres_database,
    rest_headers,
    stop_process,
    thread_cpu_seconds,
    thread_names,
    tree_cpu_seconds,
    wait_http,
    workdir,
)

CPU_TARGET_MS = 1.3
"""Server CPU per upload the embedded default should stay under (issue 12)."""

# -- the bare baseline -------------------------------------------------------------------------


def bare_app(root: Path, fsync: bool) -> object:
    """PUT /<path>: stream the body into a new file, (fsync,) rename into ``root/store``; 201."""
    from anyio import to_thread
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    staging, store = root / "staging", root / "store"
    staging.mkdir(parents=True, exist_ok=True)
    store.mkdir(parents=True, exist_ok=True)

    def publish(f: object, tmp: Path, dest: Path) -> None:
        import io

        assert isinstance(f, io.BufferedWriter)
        with f:
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, dest)
        if fsync:
            fd = os.open(store, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    async def put(request: Request) -> Response:
        tmp = staging / uuid.uuid4().hex
        f = open(tmp, "xb")  # noqa: SIM115 - closed in publish
        async for chunk in request.stream():
            f.write(chunk)
        name = request.path_params["path"].replace("/", "_")
        await to_thread.run_sync(publish, f, tmp, store / name)
        return PlainTextResponse("ok")

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/healthz", healthz), Route("/{path:path}", put, methods=["PUT"])])


def serve_bare(root: Path, port: int, fsync: bool) -> None:
    """Serve the baseline with the same uvicorn flags as ``mediagate serve``."""
    import uvicorn

    uvicorn.run(
        bare_app(root, fsync),  # type: ignore[arg-type]
        host="127.0.0.1",
        port=port,
        workers=1,
        log_level="warning",
        proxy_headers=False,
        server_header=False,
    )


class Bare:
    def __init__(self, root: Path, fsync: bool) -> None:
        self.root = root / "bare"
        self.root.mkdir()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = self.root / "server.log"
        cmd = [sys.executable, __file__, "--serve-bare", str(self.root), "--port", str(self.port)]
        if not fsync:
            cmd.append("--no-fsync")
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        wait_http(f"{self.url}/healthz", self.process, self.log)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        stop_process(self.process)


# -- requests signed in advance ----------------------------------------------------------------


def signed_requests(creds: Creds, prefix: str, count: int) -> list[tuple[str, str, str]]:
    """(uri, Authorization, Date) for ``count`` new keys; the Date stays valid for 30 min."""
    date = formatdate(usegmt=True)
    out = []
    for i in range(count):
        uri = object_uri(creds.bucket, f"small/{prefix}-{i}.bin")
        headers = rest_headers(creds, "PUT", uri, date)
        out.append((uri, headers["Authorization"], date))
    return out


WRK_SCRIPT = """\
local lines = {}
for line in io.lines("%(requests)s") do
  local uri, auth, date = line:match("([^\\t]+)\\t([^\\t]+)\\t([^\\t]+)")
  lines[#lines + 1] = {uri, auth, date}
end
local body = io.open("%(body)s", "rb"):read("*a")
local i = 0
local exhausted = false

request = function()
  i = i + 1
  if i > #lines then
    exhausted = true
    i = 1
  end
  local r = lines[i]
  return wrk.format("PUT", r[1], {["Authorization"] = r[2], ["Date"] = r[3],
                                  ["Content-Type"] = "application/octet-stream"}, body)
end

done = function(summary, latency, requests)
  io.write(string.format(
    '{"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, "status_errors": %%d,'
    .. ' "connect": %%d, "read": %%d, "write": %%d, "timeout": %%d, "signed": %%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.status, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout, #lines))
end
"""


@dataclass
class Outcome:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_seconds: float
    note: str = ""

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def run_wrk(
    url: str, reqs: list[tuple[str, str, str]], body_path: Path, work: Path, args: argparse.Namespace
) -> dict[str, float]:
    requests_path = work / f"requests-{uuid.uuid4().hex}.tsv"
    requests_path.write_text("".join(f"{u}\t{a}\t{d}\n" for u, a, d in reqs))
    script = work / f"put-{uuid.uuid4().hex}.lua"
    script.write_text(WRK_SCRIPT % {"requests": requests_path, "body": body_path})
    cmd = [
        "wrk",
        "-t1",
        f"-c{args.concurrency}",
        f"-d{max(1, round(args.duration))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed: {done.stderr or done.stdout}")
    last = [line for line in done.stdout.splitlines() if line.startswith("{")][-1]
    stats: dict[str, float] = json.loads(last)
    if stats["requests"] > stats["signed"]:
        raise RuntimeError("wrk ran out of pre-signed requests: raise --signed")
    return stats


async def _python_load(
    url: str, reqs: list[tuple[str, str, str]], body: bytes, duration: float, concurrency: int
) -> dict[str, float]:
    import httpx

    latencies: list[float] = []
    errors = 0
    queue = iter(reqs)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10) as client:
        stop_at = time.perf_counter() + duration

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < stop_at:
                uri, auth, date = next(queue)
                started = time.perf_counter()
                try:
                    r = await client.put(uri, content=body, headers={"Authorization": auth, "Date": date})
                    ok = r.is_success
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - started)
                errors += not ok

        started, cpu_started = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        client_cpu = time.process_time() - cpu_started
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1e6  # noqa: E731
    return {
        "requests": len(latencies),
        "duration_us": elapsed * 1e6,
        "p50_us": pick(0.5),
        "p99_us": pick(0.99),
        "status_errors": errors,
        "client_busy": client_cpu / elapsed,
    }


def python_client(spec_path: Path) -> None:
    """Entry of the client process: read the job, run it, print the stats as JSON."""
    job = json.loads(spec_path.read_text())
    if job["cpu"] is not None:
        os.sched_setaffinity(0, {job["cpu"]})
    stats = asyncio.run(
        _python_load(
            job["url"],
            [tuple(r) for r in job["reqs"]],
            Path(job["body"]).read_bytes(),
            job["duration"],
            job["concurrency"],
        )
    )
    print(json.dumps(stats))


def run_python(
    url: str, reqs: list[tuple[str, str, str]], body_path: Path, work: Path, args: argparse.Namespace
) -> dict[str, float]:
    spec = work / f"job-{uuid.uuid4().hex}.json"
    cpu = args.client_cpu
    spec.write_text(
        json.dumps(
            {
                "url": url,
                "reqs": reqs,
                "body": str(body_path),
                "duration": args.duration,
                "concurrency": args.concurrency,
                "cpu": cpu,
            }
        )
    )
    done = subprocess.run(
        [sys.executable, __file__, "--client-job", str(spec)], capture_output=True, text=True, check=True
    )
    stats: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return stats


def print_syscalls(summary: Path, requests: int) -> None:
    """strace -c's table as calls per upload: where the kernel time of a request goes."""
    print(f"system calls per upload ({requests} uploads, strace -f -c):")
    for line in summary.read_text().splitlines():
        cols = line.split()
        if len(cols) >= 5 and cols[3].isdigit() and cols[-1] != "total":
            print(f"  {cols[-1]:18s} {int(cols[3]) / max(requests, 1):8.2f}")


def print_thread_cpu(
    name: str, before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]], requests: int
) -> None:
    """Server CPU per upload by kind of thread (the event loop, worker threads, the committer),
    user and system apart: where the interpreter's time goes and where the kernel's does."""
    print(f"{name}: CPU ms per upload by thread ({requests} uploads)   user  system")
    per = 1000 / max(requests, 1)
    rows = []
    for thread, (user, system) in after.items():
        user0, system0 = before.get(thread, (0.0, 0.0))
        rows.append((thread, (user - user0) * per, (system - system0) * per))
    for thread, user, system in sorted(rows, key=lambda r: -(r[1] + r[2])):
        if user + system > 0:
            print(f"  {thread:28s} {user:6.3f}  {system:6.3f}")


def measure(
    name: str,
    url: str,
    pid: int,
    reqs: list[tuple[str, str, str]],
    body_path: Path,
    work: Path,
    args: argparse.Namespace,
) -> Outcome:
    cpu_before = tree_cpu_seconds(pid)
    names = thread_names(pid) if args.threads and name != "warm-up" else {}
    threads_before = thread_cpu_seconds(pid, names)
    spy = None
    if args.py_spy and name == "mediagate":
        fmt = {".txt": "raw", ".json": "speedscope"}.get(Path(args.py_spy).suffix, "flamegraph")
        spy_bin = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        # --nonblocking: pausing the server 200 times a second would triple its CPU per upload
        cmd = [spy_bin, "record", "-p", str(pid), "-d", str(round(args.duration)), "-r", "200"]
        cmd += ["--subprocesses", "--nonblocking"]  # --subprocesses: uvicorn's worker processes
        if args.py_spy_gil:  # only the thread holding the GIL
            cmd += ["--gil"]
        spy = subprocess.Popen(
            [*cmd, "--threads", "-f", fmt, "-o", args.py_spy],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    tracer = None
    if args.syscalls and name == "mediagate":  # counts, not times: strace slows the server down
        tracer = subprocess.Popen(
            ["strace", "-f", "-c", "-o", str(work / "syscalls.txt"), "-p", str(pid)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)
    runner = run_wrk if args.client == "wrk" else run_python
    stats = runner(url, reqs, body_path, work, args)
    if spy is not None:
        spy.wait(60)
    if tracer is not None:
        tracer.send_signal(signal.SIGINT)
        tracer.wait(30)
        print_syscalls(work / "syscalls.txt", int(stats["requests"]))
    cpu = tree_cpu_seconds(pid) - cpu_before
    if args.threads and name != "warm-up":
        print_thread_cpu(name, threads_before, thread_cpu_seconds(pid, names), int(stats["requests"]))
    errors = int(stats["status_errors"]) + int(
        sum(stats.get(k, 0) for k in ("connect", "read", "write", "timeout"))
    )
    return Outcome(
        int(stats["requests"]),
        stats["duration_us"] / 1e6,
        stats["p50_us"] / 1e3,
        stats["p99_us"] / 1e3,
        errors,
        cpu,
        note="client saturated: a lower bound" if stats.get("client_busy", 0) > 0.9 else "",
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per target (default 10)")
    parser.add_argument("--concurrency", type=int, default=32, help="connections in flight (default 32)")
    parser.add_argument("--size", default="10K", help="body size (default 10K)")
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument(
        "--catalog", choices=["sqlite", "postgresql"], default="sqlite", help="mediagate's catalog"
    )
    parser.add_argument("--workers", type=int, default=1, help="mediagate server processes (default 1)")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "MEDIAGATE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
        help="a PostgreSQL server to make the bench database on (with --catalog postgresql)",
    )
    parser.add_argument("--client-cpu", type=int, default=None, help="pin the python client to this CPU")
    parser.add_argument("--no-fsync", action="store_true", help="the baseline skips fsync (weaker promise)")
    parser.add_argument("--signed", type=int, default=0, help="requests signed in advance (default: enough)")
    parser.add_argument("--py-spy", default=None, help="record a py-spy profile of mediagate to this file")
    parser.add_argument(
        "--py-spy-gil", action="store_true", help="with --py-spy: sample only the thread holding the GIL"
    )
    parser.add_argument("--threads", action="store_true", help="server CPU per upload by kind of thread")
    parser.add_argument(
        "--syscalls", action="store_true", help="count mediagate's system calls per upload (strace -c)"
    )
    parser.add_argument("--dir", default=None, help="where to put the temp dir (default: the system temp)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    parser.add_argument("--serve-bare", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--client-job", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(Path(args.serve_bare), args.port, not args.no_fsync)
        return 0
    if args.client_job:
        python_client(Path(args.client_job))
        return 0
    if args.client == "auto":
        args.client = "wrk" if shutil.which("wrk") else "python"
    size = parse_size(args.size)
    signed = args.signed or int(args.duration * 20000) + 10000

    with contextlib.ExitStack() as stack:
        root = stack.enter_context(workdir(args.dir))
        database_url = None
        if args.catalog == "postgresql":
            database_url = stack.enter_context(postgres_database(args.postgres_url))
        body_path = root / "body.bin"
        body_path.write_bytes(os.urandom(size))
        mediagate = Mediagate(root, database_url=database_url, workers=args.workers).start()
        bare = Bare(root, fsync=not args.no_fsync)
        try:
            print(
                f"{size} B authorised REST PUTs, {args.concurrency} in flight, "
                f"{args.duration:g} s per target, client {args.client}; mediagate: {args.catalog} catalog, "
                f"{args.workers} process{'es' if args.workers > 1 else ''}"
            )
            print(load_average())
            for line in busy_processes({os.getpid(), mediagate.pid, bare.pid}):
                print("  busy:", line)
            short = argparse.Namespace(**{**vars(args), "duration": 2.0})
            for url, pid in ((mediagate.url, mediagate.pid), (bare.url, bare.pid)):
                warm = signed_requests(mediagate.creds, f"warm-{pid}", 50000)
                measure("warm-up", url, pid, warm, body_path, root, short)
            outcomes = {}
            for name, url, pid in (("bare", bare.url, bare.pid), ("mediagate", mediagate.url, mediagate.pid)):
                reqs = signed_requests(mediagate.creds, name, signed)
                outcomes[name] = measure(name, url, pid, reqs, body_path, root, args)
            print(load_average())
        finally:
            mediagate.stop()
            bare.stop()
        traceback = mediagate.tracebacks()
    print()
    print(
        f"{'server':10s} {'requests':>9s} {'req/s':>8s} {'p50 ms':>8s} {'p99 ms':>8s} {'errors':>7s}"
        f" {'CPU ms/req':>11s}"
    )
    for name, o in outcomes.items():
        per = o.cpu_seconds / max(o.requests, 1) * 1000
        print(
            f"{name:10s} {o.requests:9d} {o.rps:8.0f} {o.p50_ms:8.1f} {o.p99_ms:8.1f} {o.errors:7d}"
            f" {per:11.2f}  {o.note}"
        )
    ratio = outcomes["mediagate"].rps / outcomes["bare"].rps
    broken = any(o.errors for o in outcomes.values()) or traceback
    embedded = args.catalog == "sqlite" and args.workers == 1
    target = 0.6 if embedded else 1.0
    cpu_ms = outcomes["mediagate"].cpu_seconds / max(outcomes["mediagate"].requests, 1) * 1000
    met = ratio >= target and (not embedded or cpu_ms <= CPU_TARGET_MS)
    print()
    print(
        f"{'PASS' if ratio >= target else 'FAIL'}: mediagate does {ratio:.2f}x "
        f"the bare handler's req/s (target >= {target:g}x)"
    )
    if embedded:
        print(
            f"{'PASS' if cpu_ms <= CPU_TARGET_MS else 'FAIL'}: {cpu_ms:.2f} ms of server CPU per upload "
            f"(target <= {CPU_TARGET_MS:g} ms)"
        )
    if any(o.errors for o in outcomes.values()):
        print("FAIL: some requests failed")
    if traceback:
        print("FAIL: the mediagate log has a traceback")
    return 1 if broken or (args.strict and not met) else 0


if __name__ == "__main__":
    sys.exit(main())

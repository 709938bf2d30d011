"""Thumbnail benchmark: a 4000x3000 JPEG to a 256-px thumbnail, in-process and over HTTP, in one run.

In-process (median ms per image): mediagate's ``process_file``, pyvips ``thumbnail``, Pillow
``draft()+thumbnail()`` and the ``vipsthumbnail`` CLI (Debian libvips-tools; installed when missing).

Over HTTP, each server in its own process on loopback, all of them up at once, ``wrk`` with 8
connections (``-c``) for a fixed time (``--duration``) split into ``--rounds`` slices in which the
targets take turns (the machine is shared: a burst of other load then hits every target alike),
the server's peak RSS sampled and its CPU time per request measured with psutil:

* mediagate on-the-fly cold: ``GET /<bucket>/<key>!/fw/256/quality/<q>``, every request a spec
  (and source) not seen before, so every request decodes and encodes;
* mediagate cached: the same ``!/fw/256`` URL again and again (a disk-cache hit);
* a bare Starlette ``FileResponse`` of the same thumbnail bytes (the cached baseline);
* thumbor from PyPI (its own venv under /tmp, a file loader on the image dir): cold (a new
  ``quality`` filter per request, default single-threaded engine) and with file result storage.

Targets (issue 6): in-process <= 1.1x the faster of Pillow-draft and pyvips; cold on-the-fly
>= 2x thumbor's default req/s with server RSS < 150 MB; cached >= 50 % of the bare FileResponse.

    .venv/bin/python bench/thumbs.py [--duration 12] [--rounds 3] [--concurrency 8] [--no-thumbor] [--strict]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pyvips
from _common import (
    Mediagate,
    RssSampler,
    busy_processes,
    form_fields,
    free_port,
    load_average,
    stop_process,
    wait_http,
    workdir,
)
from PIL import Image

from mediagate.media.limits import ImageLimits
from mediagate.media.process import process_file
from mediagate.media.spec import parse_thumb

RUNS = 25
SOURCES = 24
"""Distinct source files (same picture, a different trailer after EOI): 24 x 100 qualities of
cold URLs, more than a 10 s run on this machine can use up (8 x 100 ran out at ~110 req/s)."""
MiB = 1024 * 1024
THUMBOR_VENV = Path(tempfile.gettempdir()) / "mediagate-bench-thumbor-venv"
THUMBOR_INSTALL_SECONDS = 600


def timed(candidates: dict[str, Callable[[], object]]) -> dict[str, float]:
    """Median wall ms of each candidate over ``RUNS`` rounds, the candidates interleaved within a
    round: the machine is shared, and a burst of someone else's load then hits every candidate
    alike instead of whichever happened to be running (the ratios are what the targets compare)."""
    for fn in candidates.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in candidates}
    names = list(candidates)
    for r in range(RUNS):
        for name in names[r % len(names) :] + names[: r % len(names)]:  # no one always goes first
            start = time.perf_counter()
            candidates[name]()
            times[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


# -- in-process ----------------------------------------------------------------------------------


def ensure_vipsthumbnail() -> tuple[str | None, str]:
    """The ``vipsthumbnail`` binary, installing Debian's libvips-tools if missing; else why not."""
    found = shutil.which("vipsthumbnail")
    if found:
        return found, ""
    print(
        "vipsthumbnail not found; installing libvips-tools (apt-get install -y libvips-tools) ...", flush=True
    )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        subprocess.run(["apt-get", "install", "-y", "-qq", "libvips-tools"], env=env, check=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"not installed and apt-get failed ({exc})"
    found = shutil.which("vipsthumbnail")
    return found, "" if found else "libvips-tools installed no vipsthumbnail"


def in_process(src: Path, work: Path) -> dict[str, float]:
    out = work / "out.jpg"
    spec = parse_thumb("/max/256/quality/85")
    limits = ImageLimits()

    def pillow() -> None:
        with Image.open(src) as im:
            im.draft("RGB", (256, 256))
            im.thumbnail((256, 256))
            im.save(out, quality=85)

    candidates: dict[str, Callable[[], object]] = {
        "mediagate process_file": lambda: process_file(src, spec, out, limits=limits),
        "pyvips thumbnail": lambda: pyvips.Image.thumbnail(str(src), 256).jpegsave(str(out), Q=85),
        "Pillow draft+thumbnail": pillow,
    }
    cli, why = ensure_vipsthumbnail()
    if cli:
        candidates["vipsthumbnail CLI"] = lambda: subprocess.run(
            [cli, str(src), "-s", "256", "-o", str(out)], check=True
        )
    else:
        print(f"vipsthumbnail: skipped: {why}")
    return timed(candidates)


# -- load ----------------------------------------------------------------------------------------

WRK_SCRIPT = """\
local paths = {}
for line in io.lines("%(paths)s") do paths[#paths + 1] = line end
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i - 1) %% #paths + 1])
end
done = function(summary, latency, requests)
  io.write(string.format('{"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d,'
    .. ' "errors": %%d, "paths": %%d}\\n', summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, #paths))
end
"""


@dataclass
class Load:
    name: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    rss_mb: float
    cpu_seconds: float
    """Server CPU (user + system, all its threads) over the run."""
    note: str = ""

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_ms(self) -> float:
        """CPU per request: steadier than req/s on a shared machine, where req/s also measures
        how much of the two cores the others left us."""
        return self.cpu_seconds * 1000 / max(1, self.requests)


def run_load(name: str, url: str, paths: list[str], pid: int, work: Path, seconds: int, conns: int) -> Load:
    """``wrk`` cycling through ``paths`` for ``seconds``, the server's peak RSS sampled."""
    listing = work / f"paths-{uuid.uuid4().hex}.txt"
    listing.write_text("".join(p + "\n" for p in paths))
    script = work / f"get-{uuid.uuid4().hex}.lua"
    script.write_text(WRK_SCRIPT % {"paths": listing})
    cmd = ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--timeout", "30s"]
    server = psutil.Process(pid)
    before = server.cpu_times()
    with RssSampler(pid) as rss:
        done = subprocess.run([*cmd, "-s", str(script), url], capture_output=True, text=True, check=False)
    after = server.cpu_times()
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed: {done.stderr or done.stdout}")
    stats = json.loads([line for line in done.stdout.splitlines() if line.startswith("{")][-1])
    note = ""
    if len(paths) > 1 and stats["requests"] > stats["paths"]:
        note = f"ran out of distinct URLs after {stats['paths']} (later requests were cache hits)"
    return Load(
        name,
        int(stats["requests"]),
        stats["duration_us"] / 1e6,
        stats["p50_us"] / 1e3,
        stats["p99_us"] / 1e3,
        int(stats["errors"]),
        rss.peak / MiB,
        (after.user - before.user) + (after.system - before.system),
        note,
    )


@dataclass
class Target:
    """A server and what to ask it: one URL again and again, or cold URLs never asked before."""

    name: str
    url: str
    pid: int
    paths: list[str]


def run_rounds(targets: list[Target], work: Path, args: argparse.Namespace) -> list[Load]:
    """Each target for ``args.duration`` s in all, in ``args.rounds`` slices, the targets taking
    turns within a round: on a shared machine a burst of someone else's load then falls on every
    target alike, not on whichever happened to be running (the targets compare ratios). Cold URL
    lists are dealt out between the rounds, so no URL is asked twice."""
    seconds = max(1, round(args.duration / args.rounds))
    slices: dict[str, list[Load]] = {t.name: [] for t in targets}
    for r in range(args.rounds):
        for t in targets:
            paths = t.paths[r :: args.rounds] if len(t.paths) > 1 else t.paths
            slices[t.name].append(run_load(t.name, t.url, paths, t.pid, work, seconds, args.concurrency))
    return [merge(t.name, slices[t.name]) for t in targets]


def merge(name: str, parts: list[Load]) -> Load:
    return Load(
        name,
        sum(p.requests for p in parts),
        sum(p.seconds for p in parts),
        statistics.median(p.p50_ms for p in parts),
        max(p.p99_ms for p in parts),
        sum(p.errors for p in parts),
        max(p.rss_mb for p in parts),
        sum(p.cpu_seconds for p in parts),
        "; ".join(sorted({p.note for p in parts if p.note})),
    )


# -- the bare FileResponse baseline ----------------------------------------------------------------


def serve_bare(path: Path, port: int) -> None:
    """``GET /thumb.jpg``: Starlette's FileResponse of one file, same uvicorn flags as mediagate."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import FileResponse, PlainTextResponse, Response
    from starlette.routing import Route

    async def thumb(request: Request) -> Response:
        return FileResponse(path, media_type="image/jpeg")

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/healthz", healthz), Route("/thumb.jpg", thumb)])
    uvicorn.run(
        app, host="127.0.0.1", port=port, log_level="warning", proxy_headers=False, server_header=False
    )


class Server:
    """A child process on a free loopback port, its output in ``log``."""

    def __init__(self, cmd: list[str], port: int, log: Path, health: str, env: dict[str, str] | None = None):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
            )
        wait_http(self.url + health, self.process, log, timeout=60)

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        stop_process(self.process)


# -- thumbor -------------------------------------------------------------------------------------

THUMBOR_CONF = """\
LOADER = 'thumbor.loaders.file_loader'
FILE_LOADER_ROOT_PATH = {images!r}
FILE_STORAGE_ROOT_PATH = {storage!r}
ALLOW_UNSAFE_URL = True
QUALITY = 85
{result}
"""


def ensure_thumbor() -> tuple[Path | None, str]:
    """thumbor from PyPI in its own venv (so the project's stays clean); else why not."""
    binary = THUMBOR_VENV / "bin" / "thumbor"
    if binary.exists():
        return binary, ""
    print(f"installing thumbor from PyPI into {THUMBOR_VENV} ...", flush=True)
    try:
        subprocess.run(["python3", "-m", "venv", str(THUMBOR_VENV)], check=True, timeout=120)
        subprocess.run(
            [str(THUMBOR_VENV / "bin" / "pip"), "install", "-q", "thumbor"],
            check=True,
            timeout=THUMBOR_INSTALL_SECONDS,
            capture_output=True,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        shutil.rmtree(THUMBOR_VENV, ignore_errors=True)
        return None, f"pip install thumbor failed: {exc}"
    return (binary, "") if binary.exists() else (None, "pip installed thumbor without its command")


def start_thumbor(binary: Path, images: Path, work: Path, result_storage: bool) -> Server:
    root = work / f"thumbor-{'cached' if result_storage else 'cold'}"
    root.mkdir()
    result = (
        f"RESULT_STORAGE = 'thumbor.result_storages.file_storage'\n"
        f"RESULT_STORAGE_STORES_UNSAFE = True\n"
        f"RESULT_STORAGE_FILE_STORAGE_ROOT_PATH = {str(root / 'result')!r}\n"
        if result_storage
        else ""
    )
    conf = root / "thumbor.conf"
    conf.write_text(THUMBOR_CONF.format(images=str(images), storage=str(root / "storage"), result=result))
    port = free_port()
    cmd = [str(binary), "-i", "127.0.0.1", "-p", str(port), "-c", str(conf), "-l", "warning"]
    return Server(cmd, port, root / "thumbor.log", "/healthcheck")


# -- main ----------------------------------------------------------------------------------------


def make_sources(images: Path) -> list[Path]:
    first = images / "big0.jpg"
    Image.effect_mandelbrot((4000, 3000), (-2.0, -1.2, 1.0, 1.2), 80).convert("RGB").save(first, quality=90)
    data = first.read_bytes()
    out = [first]
    for i in range(1, SOURCES):
        path = images / f"big{i}.jpg"
        path.write_bytes(data + bytes([i]) * i)  # after EOI: the same picture, another MD5
        out.append(path)
    return out


def upload_all(mg: Mediagate, sources: list[Path]) -> None:
    with httpx.Client(base_url=mg.url, timeout=120) as client:
        for src in sources:
            with open(src, "rb") as f:
                r = client.post(
                    f"/{mg.creds.bucket}", data=form_fields(mg.creds, src.name), files={"file": (src.name, f)}
                )
            if r.status_code != 200:
                raise RuntimeError(f"upload of {src.name} refused: {r.status_code} {r.text}")


def cold_paths(make: Callable[[int, int], str]) -> list[str]:
    return [make(k, q) for q in range(100, 0, -1) for k in range(SOURCES)]


def http_part(sources: list[Path], work: Path, args: argparse.Namespace) -> list[Load]:
    """Every server up at once (idle ones cost nothing), then :func:`run_rounds`."""
    with contextlib.ExitStack() as stack:
        mg = Mediagate(work).start()
        stack.callback(mg.stop)
        upload_all(mg, sources)
        bucket = mg.creds.bucket
        cached = f"/{bucket}/big0.jpg!/fw/256"
        thumb = httpx.get(mg.url + cached, timeout=60)
        thumb.raise_for_status()
        thumb_path = work / "thumb.jpg"
        thumb_path.write_bytes(thumb.content)
        port = free_port()
        bare = Server(
            [sys.executable, __file__, "--serve-bare", str(thumb_path), "--port", str(port)],
            port,
            work / "bare.log",
            "/healthz",
        )
        stack.callback(bare.stop)
        targets = [
            Target(
                "mediagate on-the-fly cold",
                mg.url,
                mg.pid,
                cold_paths(lambda k, q: f"/{bucket}/big{k}.jpg!/fw/256/quality/{q}"),
            ),
            Target("mediagate on-the-fly cached", mg.url, mg.pid, [cached]),
            Target("bare Starlette FileResponse", bare.url, bare.pid, ["/thumb.jpg"]),
        ]
        targets += thumbor_targets(stack, sources[0].parent, work, args)
        loads = run_rounds(targets, work, args)
        if mg.tracebacks():
            raise RuntimeError(f"mediagate logged a traceback; see {mg.log}")
    return loads


def thumbor_targets(
    stack: contextlib.ExitStack, images: Path, work: Path, args: argparse.Namespace
) -> list[Target]:
    """thumbor cold (default engine) and with file result storage, warmed up; none if skipped."""
    if args.no_thumbor:
        print("thumbor: skipped: --no-thumbor")
        return []
    binary, why = ensure_thumbor()
    if binary is None:
        print(f"thumbor: skipped: {why}")
        return []
    try:
        cold = start_thumbor(binary, images, work, result_storage=False)
        stack.callback(cold.stop)
        stored = start_thumbor(binary, images, work, result_storage=True)
        stack.callback(stored.stop)
    except RuntimeError as exc:
        print(f"thumbor: skipped: it did not start: {str(exc)[-500:]}")
        return []
    paths = cold_paths(lambda k, q: f"/unsafe/256x0/filters:quality({q})/big{k}.jpg")
    httpx.get(cold.url + paths[-1], timeout=60).raise_for_status()
    path = "/unsafe/256x0/big0.jpg"
    httpx.get(stored.url + path, timeout=60).raise_for_status()
    return [
        Target("thumbor cold (default)", cold.url, cold.pid, paths[:-1]),
        Target("thumbor result storage", stored.url, stored.pid, [path]),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--duration", type=float, default=12.0, help="seconds per HTTP target, all rounds (default 12)"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="the targets take turns this many times (default 3)"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="connections in flight (default 8)")
    parser.add_argument("--no-thumbor", action="store_true", help="skip thumbor")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--serve-bare", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        serve_bare(Path(args.serve_bare), args.port)
        return 0
    if not shutil.which("wrk"):
        print("wrk is needed for the HTTP part: apt-get install -y wrk")
        return 1
    print(load_average())
    for line in busy_processes({os.getpid()}):
        print("  busy:", line)
    with workdir() as work:
        images = work / "images"
        images.mkdir()
        sources = make_sources(images)
        results = in_process(sources[0], work)
        best = min(results["pyvips thumbnail"], results["Pillow draft+thumbnail"])
        print(f"\n{'in-process, 4000x3000 JPEG -> 256 px':40s} {'ms':>8s}")
        for name, ms in results.items():
            print(f"{name:40s} {ms:8.1f}   {ms / best:5.2f}x the faster of pyvips/Pillow")
        loads = http_part(sources, work, args)
    print(
        f"\n{'HTTP, ' + str(args.concurrency) + ' connections':40s} {'req/s':>8s} {'p50 ms':>8s} "
        f"{'p99 ms':>8s} {'errors':>6s} {'peak RSS MB':>11s} {'CPU ms/req':>10s}"
    )
    for load in loads:
        print(
            f"{load.name:40s} {load.rps:8.1f} {load.p50_ms:8.1f} {load.p99_ms:8.1f} {load.errors:6d} "
            f"{load.rss_mb:11.0f} {load.cpu_ms:10.2f}" + (f"   ({load.note})" if load.note else "")
        )
    by = {load.name: load for load in loads}
    verdicts: list[bool] = []

    def verdict(ok: bool, text: str) -> None:
        verdicts.append(ok)
        print(f"{'PASS' if ok else 'FAIL'}: {text}")

    print()
    ratio = results["mediagate process_file"] / best
    verdict(ratio <= 1.1, f"in-process <= 1.1x the faster of Pillow-draft and pyvips ({ratio:.2f}x)")
    cold = by["mediagate on-the-fly cold"]
    thumbor = by.get("thumbor cold (default)")
    if thumbor is not None:
        verdict(
            cold.rps >= 2 * thumbor.rps,
            f"cold on-the-fly >= 2x thumbor default req/s ({cold.rps / thumbor.rps:.2f}x)",
        )
    else:
        print("SKIP: cold on-the-fly vs thumbor (thumbor did not run)")
    verdict(
        cold.rss_mb < 150, f"server RSS < 150 MB at {args.concurrency} concurrent cold ({cold.rss_mb:.0f} MB)"
    )
    cached, bare = by["mediagate on-the-fly cached"], by["bare Starlette FileResponse"]
    verdict(
        cached.rps >= 0.5 * bare.rps,
        f"cached >= 50 % of a bare FileResponse ({100 * cached.rps / bare.rps:.0f} %)",
    )
    broke = any(load.errors for load in loads)
    if broke:
        print("some requests failed (see the errors column)")
    return 1 if broke or (args.strict and not all(verdicts)) else 0


if __name__ == "__main__":
    sys.exit(main())

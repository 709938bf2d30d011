"""Large-file ingest: mediagate's FORM and REST PUT paths against nginx WebDAV PUT, same machine.

One random file (default 1 GiB) is generated once on disk and streamed from disk by httpx (never
whole in client memory) to (a) mediagate FORM ``POST /<bucket>``, (b) mediagate REST
``PUT /<bucket>/<key>`` and (c) a private nginx with ``dav_methods PUT``; each ``--runs`` times,
interleaved so that background load hits all three alike. The server's peak RSS is sampled with
psutil every 50 ms. Targets: median time <= 1.3x nginx, mediagate peak RSS < 100 MB, and flat
(a 100 MiB and a 1 GiB upload peak about the same).

    .venv/bin/python bench/ingest.py [--size 1G] [--runs 3] [--dir /var/tmp]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from _common import (
    CHUNK,
    Mediagate,
    MiB,
    Nginx,
    RssSampler,
    busy_processes,
    file_chunks,
    form_fields,
    human,
    load_average,
    median,
    object_uri,
    parse_size,
    rest_headers,
    streamed_multipart,
    workdir,
)

RATIO_TARGET = 1.3
RSS_TARGET = 100 * 1000 * 1000  # 100 MB


@dataclass
class Result:
    seconds: float
    peak_rss: int


def make_file(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(16 * MiB, left)
            f.write(os.urandom(n))
            left -= n
    return path


def timed(pid: int, send: Callable[[], httpx.Response]) -> Result:
    with RssSampler(pid) as rss:
        started = time.perf_counter()
        response = send()
        seconds = time.perf_counter() - started
    if not response.is_success:
        raise RuntimeError(f"upload refused: {response.status_code} {response.text[:500]}")
    return Result(seconds, rss.peak)


class Targets:
    """The three upload paths; each call uploads ``path`` once and checks it landed whole."""

    def __init__(self, client: httpx.Client, mediagate: Mediagate, nginx: Nginx) -> None:
        self.client = client
        self.mg = mediagate
        self.nginx = nginx
        self.n = 0

    def _key(self, prefix: str) -> str:
        self.n += 1
        return f"bench/{prefix}-{self.n}.bin"

    def _check_and_delete(self, key: str, size: int) -> None:
        uri = object_uri(self.mg.creds.bucket, key)
        head = self.client.head(f"{self.mg.url}{uri}")
        if head.status_code != 200 or int(head.headers.get("content-length", -1)) != size:
            raise RuntimeError(f"{key} did not land whole: {head.status_code} {dict(head.headers)}")
        # keep the disk small: the collector removes the blob after its grace period
        self.client.delete(f"{self.mg.url}{uri}", headers=rest_headers(self.mg.creds, "DELETE", uri))

    def form(self, path: Path) -> Result:
        key = self._key("form")
        size = path.stat().st_size
        headers, _, body = streamed_multipart(form_fields(self.mg.creds, key), path.name, path)
        url = f"{self.mg.url}/{self.mg.creds.bucket}"
        result = timed(self.mg.pid, lambda: self.client.post(url, content=body, headers=headers))
        self._check_and_delete(key, size)
        return result

    def rest(self, path: Path) -> Result:
        key = self._key("rest")
        size = path.stat().st_size
        uri = object_uri(self.mg.creds.bucket, key)
        headers = {**rest_headers(self.mg.creds, "PUT", uri), "Content-Length": str(size)}
        result = timed(
            self.mg.pid,
            lambda: self.client.put(f"{self.mg.url}{uri}", content=file_chunks(path), headers=headers),
        )
        self._check_and_delete(key, size)
        return result

    def nginx_put(self, path: Path) -> Result:
        name = f"{self._key('nginx').replace('/', '-')}"
        size = path.stat().st_size
        headers = {"Content-Length": str(size)}
        result = timed(
            self.nginx.pid,
            lambda: self.client.put(f"{self.nginx.url}/{name}", content=file_chunks(path), headers=headers),
        )
        stored = self.nginx.root / "www" / name
        if stored.stat().st_size != size:
            raise RuntimeError("nginx stored a file of the wrong size")
        stored.unlink()
        return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", default="1G", help="upload size (binary units: 1G, 100M); default 1G")
    parser.add_argument("--runs", type=int, default=3, help="repetitions per target; default 3")
    parser.add_argument("--dir", default=None, help="where to put the temp dir (default: the system temp)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    size = parse_size(args.size)
    small_size = min(100 * MiB, size)

    with workdir(args.dir) as root:
        print(f"generating a {human(size)} random file in {root} ...", flush=True)
        big = make_file(root / "upload.bin", size)
        small = make_file(root / "upload-small.bin", small_size)
        tiny = make_file(root / "upload-tiny.bin", min(4 * MiB, size))
        mediagate = Mediagate(root).start()
        nginx = Nginx(root).start()
        idle_rss = RssSampler(mediagate.pid)._rss()
        try:
            print(load_average())
            for line in busy_processes({os.getpid(), mediagate.pid, nginx.pid}):
                print("  busy:", line)
            with httpx.Client(timeout=httpx.Timeout(600, connect=10)) as client:
                targets = Targets(client, mediagate, nginx)
                paths: dict[str, Callable[[Path], Result]] = {
                    "nginx WebDAV PUT": targets.nginx_put,
                    "mediagate FORM POST": targets.form,
                    "mediagate REST PUT": targets.rest,
                }
                for send in paths.values():  # warm-up: imports, connections, first allocations
                    send(tiny)
                mediagate_paths = ("mediagate FORM POST", "mediagate REST PUT")
                small_rss = {name: paths[name](small).peak_rss for name in mediagate_paths}
                results: dict[str, list[Result]] = {name: [] for name in paths}
                for run in range(args.runs):
                    for name, send in paths.items():
                        results[name].append(send(big))
                        print(f"  run {run + 1} {name:22s} {results[name][-1].seconds:7.2f} s", flush=True)
                flat = {
                    name: (small_rss[name], max(r.peak_rss for r in results[name]))
                    for name in mediagate_paths
                }
            print(load_average())
        finally:
            mediagate.stop()
            nginx.stop()
        met = report(size, small_size, results, flat, idle_rss)
        if mediagate.tracebacks():
            print("FAIL: the mediagate log has a traceback:\n" + mediagate.log.read_text()[-3000:])
            return 1
    return 0 if met or not args.strict else 1


def report(
    size: int,
    small_size: int,
    results: dict[str, list[Result]],
    flat: dict[str, tuple[int, int]],
    idle_rss: int,
) -> bool:
    """Print the tables and verdicts; True if every target is met."""
    base = median([r.seconds for r in results["nginx WebDAV PUT"]])
    print()
    runs_n = len(results["nginx WebDAV PUT"])
    print(f"{human(size)} upload streamed from disk in {human(CHUNK)} chunks, median of {runs_n} runs")
    print(f"{'path':22s} {'seconds':>8s} {'MB/s':>8s} {'x nginx':>8s} {'peak RSS':>11s}  every run (s)")
    ok = True
    for name, runs in results.items():
        seconds = median([r.seconds for r in runs])
        rss = max(r.peak_rss for r in runs)
        ratio = seconds / base
        every = " ".join(f"{r.seconds:.2f}" for r in runs)
        mbps = size / seconds / 1e6
        print(f"{name:22s} {seconds:8.2f} {mbps:8.0f} {ratio:8.2f} {rss / 1e6:8.1f} MB  {every}")
    print()
    print("mediagate peak RSS by upload size (flat: it does not grow with the file)")
    print(f"  {'idle, after start-up':22s} {idle_rss / 1e6:6.1f} MB")
    for name, (small_rss, big_rss) in flat.items():
        print(
            f"  {name:22s} {human(small_size):>9s}: {small_rss / 1e6:6.1f} MB"
            f"   {human(size):>9s}: {big_rss / 1e6:6.1f} MB"
        )
    print()
    for name in ("mediagate FORM POST", "mediagate REST PUT"):
        ratio = median([r.seconds for r in results[name]]) / base
        verdict = "PASS" if ratio <= RATIO_TARGET else "FAIL"
        ok &= verdict == "PASS"
        print(f"{verdict}: {name} takes {ratio:.2f}x nginx (target <= {RATIO_TARGET}x)")
        small_rss, big_rss = flat[name]
        verdict = "PASS" if big_rss < RSS_TARGET else "FAIL"
        ok &= verdict == "PASS"
        print(f"{verdict}: {name} peak RSS {big_rss / 1e6:.1f} MB (target < {RSS_TARGET / 1e6:.0f} MB)")
        grew = big_rss - small_rss
        verdict = "PASS" if grew < 20 * 1000 * 1000 else "FAIL"
        ok &= verdict == "PASS"
        print(
            f"{verdict}: {name} RSS {grew / 1e6:+.1f} MB from {human(small_size)} to {human(size)} (< 20 MB)"
        )
    return ok


if __name__ == "__main__":
    sys.exit(main())

"""tus uploads against the REST PUT baseline, same server, same run.

One random file (default 256 MiB) is uploaded, each ``--runs`` times and interleaved, by (a) UPYUN
REST ``PUT /<bucket>/<key>`` (one request: the baseline), (b) tus with one PATCH of the whole file
(Uppy's default ``chunkSize: Infinity``) and (c) tus in ``--chunk`` PATCHes (default 16 MiB; each
is a part in the store, assembled at completion). Bodies stream from disk. Prints median seconds,
MB/s, the ratio to REST PUT and the server's peak RSS (psutil, every 50 ms).

    .venv/bin/python bench/tus.py [--size 256M] [--chunk 16M] [--runs 3] [--dir /var/tmp]
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
from _common import (
    CHUNK,
    Mediagate,
    MiB,
    RssSampler,
    human,
    load_average,
    median,
    object_uri,
    parse_size,
    rest_headers,
    workdir,
)

TUS = {"Tus-Resumable": "1.0.0"}


def make_file(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(16 * MiB, left)
            f.write(os.urandom(n))
            left -= n
    return path


def byte_range(path: Path, start: int, length: int) -> Iterator[bytes]:
    with open(path, "rb") as f:
        f.seek(start)
        while length > 0 and (data := f.read(min(CHUNK, length))):
            length -= len(data)
            yield data


def issue_token(mg: Mediagate) -> str:
    """An upload token with many uses, issued in-process on the home before the server starts."""
    from mediagate.config import Settings
    from mediagate.core import apikeys, uploadtokens
    from mediagate.services import build_gateway

    gw = build_gateway(Settings(home=mg.home), migrate=False)
    try:
        key, _ = apikeys.create_key(gw.catalog, bucket=mg.creds.bucket, scopes=["write"])
        _, secret = uploadtokens.issue_upload_token(
            gw.catalog, key, mg.creds.bucket, ttl=86_400, max_uses=10_000, prefix="tus/"
        )
        return secret
    finally:
        gw.catalog.close()


class Paths:
    def __init__(self, client: httpx.Client, mg: Mediagate, token: str, chunk: int) -> None:
        self.client, self.mg, self.chunk, self.n = client, mg, chunk, 0
        self.auth = {**TUS, "Authorization": f"Bearer {token}"}

    def _name(self, kind: str) -> str:
        self.n += 1
        return f"{kind}-{self.n}.bin"

    def _landed(self, key: str, size: int) -> None:
        uri = object_uri(self.mg.creds.bucket, key)
        head = self.client.head(f"{self.mg.url}{uri}")
        if head.status_code != 200 or int(head.headers.get("content-length", -1)) != size:
            raise RuntimeError(f"{key} did not land whole: {head.status_code}")
        self.client.delete(f"{self.mg.url}{uri}", headers=rest_headers(self.mg.creds, "DELETE", uri))

    def rest(self, path: Path) -> None:
        key = f"tus/{self._name('rest')}"
        size = path.stat().st_size
        uri = object_uri(self.mg.creds.bucket, key)
        headers = {**rest_headers(self.mg.creds, "PUT", uri), "Content-Length": str(size)}
        r = self.client.put(f"{self.mg.url}{uri}", content=byte_range(path, 0, size), headers=headers)
        r.raise_for_status()
        self._landed(key, size)

    def tus(self, path: Path, chunk: int | None) -> None:
        name = self._name("tus")
        size = path.stat().st_size
        meta = f"filename {base64.b64encode(name.encode()).decode()}"
        created = self.client.post(
            f"{self.mg.url}/v1/tus/{self.mg.creds.bucket}/",
            headers={**self.auth, "Upload-Length": str(size), "Upload-Metadata": meta},
        )
        created.raise_for_status()
        url = created.headers["Location"]
        offset, step = 0, chunk or size
        while offset < size:
            n = min(step, size - offset)
            r = self.client.patch(
                url,
                headers={
                    **self.auth,
                    "Content-Type": "application/offset+octet-stream",
                    "Upload-Offset": str(offset),
                    "Content-Length": str(n),
                },
                content=byte_range(path, offset, n),
            )
            r.raise_for_status()
            offset = int(r.headers["Upload-Offset"])
        self._landed(f"tus/{name}", size)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", default="256M", help="upload size (binary units); default 256M")
    parser.add_argument("--chunk", default="16M", help="PATCH size of the chunked tus path; default 16M")
    parser.add_argument("--runs", type=int, default=3, help="repetitions per path; default 3")
    parser.add_argument("--dir", default=None, help="where to put the temp dir (default: the system temp)")
    args = parser.parse_args()
    size, chunk = parse_size(args.size), parse_size(args.chunk)

    with workdir(args.dir) as root:
        print(f"generating a {human(size)} random file in {root} ...", flush=True)
        big = make_file(root / "upload.bin", size)
        tiny = make_file(root / "tiny.bin", min(size, 4 * MiB))
        mg = Mediagate(root)
        token = issue_token(mg)
        mg.start()
        seconds: dict[str, list[float]] = {}
        peaks: dict[str, int] = {}
        try:
            print(load_average())
            with httpx.Client(timeout=httpx.Timeout(600, connect=10)) as client:
                p = Paths(client, mg, token, chunk)
                paths: dict[str, Callable[[Path], None]] = {
                    "REST PUT (baseline)": p.rest,
                    "tus, one PATCH": lambda f: p.tus(f, None),
                    f"tus, {human(chunk)} PATCHes": lambda f: p.tus(f, chunk),
                }
                for send in paths.values():
                    send(tiny)  # warm-up
                for run in range(args.runs):
                    for name, send in paths.items():
                        with RssSampler(mg.pid) as rss:
                            started = time.perf_counter()
                            send(big)
                            took = time.perf_counter() - started
                        seconds.setdefault(name, []).append(took)
                        peaks[name] = max(peaks.get(name, 0), rss.peak)
                        print(f"  run {run + 1} {name:24s} {took:7.2f} s", flush=True)
            print(load_average())
        finally:
            mg.stop()
        if mg.tracebacks():
            print("FAIL: the mediagate log has a traceback:\n" + mg.log.read_text()[-3000:])
            return 1
    base = median(seconds["REST PUT (baseline)"])
    print(f"\n{human(size)} streamed from disk, median of {args.runs} runs")
    print(f"{'path':24s} {'seconds':>8s} {'MB/s':>8s} {'x REST':>7s} {'peak RSS':>10s}")
    for name, runs in seconds.items():
        s = median(runs)
        print(f"{name:24s} {s:8.2f} {size / s / 1e6:8.1f} {s / base:7.2f} {human(peaks[name]):>10s}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

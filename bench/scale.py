"""Scale-out: one and two mediagate nodes on PostgreSQL + S3 (moto) + Redis, and 1 GiB through S3.

Everything runs on this machine, started by the script in a temp dir: a moto S3 server, a fresh
schema on the PostgreSQL server (``--postgres``), Redis (``--redis``), and mediagate nodes (each
``python -m mediagate serve`` with its own home, all sharing the catalog, the S3 bucket, one
sealing key and Redis, as in docs/deploy.md).

1. Throughput: ``--count`` authorised UPYUN REST PUTs of ``--small`` and of ``--large`` bytes (each
   to a new key) at ``--concurrency``, against one node, then two (requests alternate between
   them, as a round-robin balancer would send them). Prints objects/s, MB/s, and the CPU seconds
   each upload cost the nodes and moto (psutil): with 2 cores, CPU is what bounds it.
2. 1 GiB (``--size``) through mediagate's REST PUT, which streams it to S3 as a multipart upload
   while it arrives, against boto3's own ``upload_file`` of the same file to the same moto server
   (its default TransferConfig: 8 MiB parts, 10 threads); runs interleaved, median of ``--runs``.
   The node's peak RSS is sampled every 50 ms. Targets: <= 1.3x boto3, peak RSS < 150 MB.

    .venv/bin/python bench/scale.py [--size 1G] [--runs 2] [--count 300] [--strict]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import boto3
import httpx
import psutil
from _common import (
    Creds,
    MiB,
    RssSampler,
    ServeProcess,
    busy_processes,
    file_chunks,
    free_port,
    human,
    load_average,
    median,
    object_uri,
    parse_size,
    rest_headers,
    stop_process,
    wait_http,
    workdir,
)
from botocore.config import Config
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text

RATIO_TARGET = 1.3
RSS_TARGET = 150 * 1000 * 1000  # 150 MB
S3_KEY, S3_SECRET, S3_REGION = "bench-access-key", "bench-secret-key", "us-east-1"


# -- the servers ---------------------------------------------------------------------------------------


class Moto:
    """moto's S3 server in its own process on a free loopback port."""

    def __init__(self, root: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / "moto.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Moto:
        with open(self.log, "ab") as log:
            cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
            self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        wait_http(f"{self.url}/moto-api/", self.process, self.log)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def client(self) -> object:
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=S3_REGION,
            aws_access_key_id=S3_KEY,
            aws_secret_access_key=S3_SECRET,
            config=Config(
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)


@contextlib.contextmanager
def fresh_schema(url: str) -> Iterator[str]:
    """A catalog URL whose tables live in a new schema on the shared server, dropped afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in url else "?"
        yield f"{url}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


class Node(ServeProcess):
    """One ``mediagate serve`` process with its own home and the cluster's shared settings."""

    ready_path = "/livez"

    def __init__(self, root: Path, name: str, env: dict[str, str]) -> None:
        from mediagate.config import Settings
        from mediagate.services import init_home

        self.home = root / name
        self.env = env
        fields = {k.removeprefix("MEDIAGATE_").lower(): v for k, v in env.items()}
        self.settings = Settings(home=self.home, **fields)  # type: ignore[arg-type]
        init_home(self.settings)  # the first migrates the catalog, the second finds it done
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / f"{name}.log"

    def serve_env(self) -> dict[str, str]:
        return {**os.environ, **self.env}


def make_bucket(node: Node) -> Creds:
    from mediagate.core.buckets import create_bucket
    from mediagate.services import build_gateway

    gw = build_gateway(node.settings, migrate=False)
    try:
        made = create_bucket(gw.catalog, gw.secrets, f"bench{uuid.uuid4().hex[:8]}")
    finally:
        gw.catalog.close()
    return Creds(made.bucket, made.operator, made.password, made.form_api_secret)


# -- measuring ---------------------------------------------------------------------------------------


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of the processes and their children so far."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            for p in [proc, *proc.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    times = p.cpu_times()
                    total += times.user + times.system
    return total


@dataclass
class Throughput:
    nodes: int
    size: int
    count: int
    seconds: float
    node_cpu: float
    moto_cpu: float

    def row(self) -> str:
        per = self.count / self.seconds
        return (
            f"{self.nodes:5d} {human(self.size):>9s} {self.count:6d} {per:9.1f} "
            f"{per * self.size / 1e6:8.1f} {self.node_cpu / self.count * 1000:12.1f} "
            f"{self.moto_cpu / self.count * 1000:11.1f}"
        )


def put_many(
    nodes: list[Node], creds: Creds, moto: Moto, size: int, count: int, concurrency: int
) -> Throughput:
    """``count`` REST PUTs of ``size`` random bytes, alternating between ``nodes``."""
    body = os.urandom(size)
    turn = itertools.count()
    lock = threading.Lock()
    local = threading.local()

    def one(i: int) -> None:
        client: httpx.Client | None = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(timeout=120)
        with lock:
            node = nodes[next(turn) % len(nodes)]
        uri = object_uri(creds.bucket, f"scale/{size}/{uuid.uuid4().hex}.bin")
        r = client.put(f"{node.url}{uri}", content=body, headers=rest_headers(creds, "PUT", uri))
        if r.status_code != 200:
            raise RuntimeError(f"upload refused by {node.url}: {r.status_code} {r.text[:300]}")

    pids = [n.pid for n in nodes]
    node_before, moto_before = cpu_seconds(pids), cpu_seconds([moto.pid])
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for future in [pool.submit(one, i) for i in range(count)]:
            future.result()
    seconds = time.perf_counter() - started
    return Throughput(
        len(nodes),
        size,
        count,
        seconds,
        cpu_seconds(pids) - node_before,
        cpu_seconds([moto.pid]) - moto_before,
    )


@dataclass
class Big:
    seconds: float
    peak_rss: int = 0
    cpu: float = 0.0
    """CPU seconds of the sender: the mediagate node, or this process running boto3."""
    moto_cpu: float = 0.0


def via_mediagate(node: Node, creds: Creds, client: httpx.Client, path: Path, moto: Moto) -> Big:
    size = path.stat().st_size
    uri = object_uri(creds.bucket, f"big/{uuid.uuid4().hex}.bin")
    headers = {**rest_headers(creds, "PUT", uri), "Content-Length": str(size)}
    cpu_before, moto_before = cpu_seconds([node.pid]), cpu_seconds([moto.pid])
    with RssSampler(node.pid) as rss:
        started = time.perf_counter()
        r = client.put(f"{node.url}{uri}", content=file_chunks(path), headers=headers)
        seconds = time.perf_counter() - started
    if r.status_code != 200:
        raise RuntimeError(f"1 GiB upload refused: {r.status_code} {r.text[:300]}")
    head = client.head(f"{node.url}{uri}")
    if int(head.headers.get("content-length", -1)) != size:
        raise RuntimeError("the 1 GiB object did not land whole")
    client.delete(f"{node.url}{uri}", headers=rest_headers(creds, "DELETE", uri))  # the collector frees moto
    cpu, moto_cpu = cpu_seconds([node.pid]) - cpu_before, cpu_seconds([moto.pid]) - moto_before
    return Big(seconds, rss.peak, cpu, moto_cpu)


def via_boto3(moto: Moto, bucket: str, path: Path) -> Big:
    s3 = moto.client()
    key = f"boto3/{uuid.uuid4().hex}.bin"
    cpu_before, moto_before = time.process_time(), cpu_seconds([moto.pid])
    started = time.perf_counter()
    s3.upload_file(str(path), bucket, key)  # type: ignore[attr-defined]
    seconds = time.perf_counter() - started
    cpu, moto_cpu = time.process_time() - cpu_before, cpu_seconds([moto.pid]) - moto_before
    if s3.head_object(Bucket=bucket, Key=key)["ContentLength"] != path.stat().st_size:  # type: ignore[attr-defined]
        raise RuntimeError("boto3's upload did not land whole")
    s3.delete_object(Bucket=bucket, Key=key)  # type: ignore[attr-defined]
    return Big(seconds, cpu=cpu, moto_cpu=moto_cpu)


def make_file(path: Path, size: int) -> Path:
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(16 * MiB, left)
            f.write(os.urandom(n))
            left -= n
    return path


# -- the run -----------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", default="1G", help="the big upload (binary units); default 1G")
    parser.add_argument("--runs", type=int, default=3, help="big-upload runs per path; default 3")
    parser.add_argument("--small", default="64K", help="small object size; default 64K")
    parser.add_argument("--large", default="16M", help="large object size (S3 multipart); default 16M")
    parser.add_argument("--count", type=int, default=300, help="small uploads per run (large: count/10)")
    parser.add_argument("--concurrency", type=int, default=8, help="uploads in flight; default 8")
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "MEDIAGATE_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
        help="PostgreSQL server for the catalog (a fresh schema is made and dropped)",
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="Redis URL")
    parser.add_argument("--dir", default=None, help="where to put the temp dir (default: the system temp)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()
    size = parse_size(args.size)
    small, large = parse_size(args.small), parse_size(args.large)

    with workdir(args.dir) as root, fresh_schema(args.postgres) as catalog_url:
        print(f"generating a {human(size)} random file in {root} ...", flush=True)
        big_file = make_file(root / "big.bin", size)
        moto = Moto(root).start()
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        env = {
            "MEDIAGATE_DATABASE_URL": catalog_url,
            "MEDIAGATE_STORAGE": "s3",
            "MEDIAGATE_S3_ENDPOINT_URL": moto.url,
            "MEDIAGATE_S3_BUCKET": bucket,
            "MEDIAGATE_S3_REGION": S3_REGION,
            "MEDIAGATE_S3_ACCESS_KEY_ID": S3_KEY,
            "MEDIAGATE_S3_SECRET_ACCESS_KEY": S3_SECRET,
            "MEDIAGATE_SECRET_KEY": Fernet.generate_key().decode(),
            "MEDIAGATE_REDIS_URL": args.redis,
            "MEDIAGATE_GARBAGE_GRACE_SECONDS": "2",  # free moto's memory soon after each big run
        }
        nodes = [Node(root, "node-a", env), Node(root, "node-b", env)]
        results: list[Throughput] = []
        ours: list[Big] = []
        theirs: list[Big] = []
        try:
            for node in nodes:
                node.start()
            creds = make_bucket(nodes[0])
            moto.client().create_bucket(Bucket=bucket + "-boto3")  # type: ignore[attr-defined]
            print(load_average())
            for line in busy_processes({os.getpid(), moto.pid, *(n.pid for n in nodes)}):
                print("  busy:", line)
            put_many(nodes, creds, moto, small, 20, 4)  # warm-up: imports, pools, first allocations
            for obj_size, count in ((small, args.count), (large, max(4, args.count // 10))):
                for n in (1, 2):
                    results.append(put_many(nodes[:n], creds, moto, obj_size, count, args.concurrency))
                    print(f"  {n} node(s) {human(obj_size):>9s}: {results[-1].seconds:6.2f} s", flush=True)
            idle_rss = RssSampler(nodes[0].pid)._rss()
            with httpx.Client(timeout=httpx.Timeout(900, connect=10)) as client:
                warm = make_file(root / "warm.bin", 32 * MiB)
                via_mediagate(nodes[0], creds, client, warm, moto)  # warm-up: the multipart path
                via_boto3(moto, bucket + "-boto3", warm)
                for run in range(args.runs):
                    ours.append(via_mediagate(nodes[0], creds, client, big_file, moto))
                    theirs.append(via_boto3(moto, bucket + "-boto3", big_file))
                    print(
                        f"  run {run + 1}: mediagate {ours[-1].seconds:6.2f} s,"
                        f" boto3 {theirs[-1].seconds:6.2f} s",
                        flush=True,
                    )
                    time.sleep(4)  # the collector deletes the blob (grace 2 s) before the next run
            print(load_average())
        finally:
            for node in nodes:
                node.stop()
            moto.stop()
        ok = report(results, size, ours, theirs, idle_rss)
        broken = [n for n in nodes if n.tracebacks()]
        for node in broken:
            print(f"FAIL: {node.log.name} has a traceback:\n" + node.log.read_text()[-3000:])
        if broken:
            return 1
    return 0 if ok or not args.strict else 1


def report(results: list[Throughput], size: int, ours: list[Big], theirs: list[Big], idle_rss: int) -> bool:
    print()
    print("REST PUTs, PostgreSQL catalog, S3 (moto) blobs, Redis; CPU seconds per upload in ms")
    print(
        f"{'nodes':>5s} {'size':>9s} {'count':>6s} {'objects/s':>9s} {'MB/s':>8s}"
        f" {'node CPU/up':>12s} {'moto CPU/up':>11s}"
    )
    for r in results:
        print(r.row())
    ratio = median([a.seconds / b.seconds for a, b in zip(ours, theirs, strict=True)])
    peak = max(b.peak_rss for b in ours)
    print()
    print(f"{human(size)} to the same moto server, median of {len(ours)} runs (interleaved)")
    print(
        f"{'path':34s} {'seconds':>8s} {'MB/s':>8s} {'x boto3':>8s} {'peak RSS':>10s}"
        f" {'CPU s':>6s} {'moto CPU s':>10s}  every run (s)"
    )
    for name, runs, x in (
        ("mediagate REST PUT -> S3 multipart", ours, ratio),
        ("boto3 upload_file", theirs, 1.0),
    ):
        seconds = median([b.seconds for b in runs])
        rss = f"{peak / 1e6:7.1f} MB" if runs is ours else ""
        every = " ".join(f"{b.seconds:.2f}" for b in runs)
        print(
            f"{name:34s} {seconds:8.2f} {size / seconds / 1e6:8.1f} {x:8.2f} {rss:>10s}"
            f" {median([b.cpu for b in runs]):6.1f} {median([b.moto_cpu for b in runs]):10.1f}  {every}"
        )
    print("(x boto3: the median of each run's ratio to the boto3 upload that followed it;")
    print(" CPU s: the mediagate node's, or boto3's in this process; both send to the same moto)")
    print(f"mediagate node: {idle_rss / 1e6:.1f} MB RSS idle")
    print()
    ok = True
    verdict = "PASS" if ratio <= RATIO_TARGET else "FAIL"
    ok &= verdict == "PASS"
    print(
        f"{verdict}: {human(size)} through mediagate takes {ratio:.2f}x boto3 upload_file"
        f" (target <= {RATIO_TARGET}x)"
    )
    verdict = "PASS" if peak < RSS_TARGET else "FAIL"
    ok &= verdict == "PASS"
    print(
        f"{verdict}: mediagate peak RSS {peak / 1e6:.1f} MB during the {human(size)} upload"
        f" (target < {RSS_TARGET / 1e6:.0f} MB)"
    )
    return ok


if __name__ == "__main__":
    sys.exit(main())

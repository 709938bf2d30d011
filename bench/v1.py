"""Small uploads through mediagate's own /v1 API against the UPYUN REST API, in the same run on
the same server: 10 KiB PUTs (each a new key) for a fixed time at a fixed concurrency, authorised
three ways: UPYUN's signed REST PUT (the baseline), ``PUT /v1/buckets/B/objects/K`` with an API key,
and the same with an upload token (its use is spent by a conditional UPDATE per upload). Prints
req/s and p50/p99 latency of each and its ratio to the baseline. Target: /v1 >= 0.8 x UPYUN.

    .venv/bin/python bench/v1.py [--duration 5] [--concurrency 16] [--size 10K]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Callable

import httpx
from _common import Mediagate, object_uri, parse_size, rest_headers, workdir

Headers = Callable[[str], tuple[str, dict[str, str]]]
"""A fresh key -> (path, headers) of one upload."""


async def _load(url: str, make: Headers, body: bytes, duration: float, concurrency: int) -> list[float]:
    latencies: list[float] = []
    deadline = time.monotonic() + duration
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        async def worker() -> None:
            while time.monotonic() < deadline:
                path, headers = make(uuid.uuid4().hex)
                start = time.perf_counter()
                r = await client.put(path, content=body, headers=headers)
                if r.status_code not in (200, 201):
                    raise SystemExit(f"{path}: {r.status_code} {r.text[:200]}")
                latencies.append(time.perf_counter() - start)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def _report(name: str, latencies: list[float], duration: float, baseline: float | None) -> float:
    rate = len(latencies) / duration
    cuts = statistics.quantiles(latencies, n=100)
    ratio = f"{rate / baseline:5.2f} x UPYUN" if baseline else "baseline"
    p50, p99 = cuts[49] * 1000, cuts[98] * 1000
    print(f"{name:<28} {rate:8.0f} req/s   p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   {ratio}")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--size", default="10K")
    args = parser.parse_args()
    body = bytes(range(256)) * (parse_size(args.size) // 256 + 1)
    body = body[: parse_size(args.size)]

    with workdir() as root:
        server = Mediagate(root)
        from mediagate.config import Settings
        from mediagate.core.apikeys import authenticate_key, create_key
        from mediagate.core.uploadtokens import issue_upload_token
        from mediagate.services import build_gateway

        gw = build_gateway(Settings(home=server.home), migrate=False)
        try:
            _, secret = create_key(gw.catalog, bucket=server.creds.bucket, scopes=["write"])
            key = authenticate_key(gw.catalog, secret)
            _, token = issue_upload_token(gw.catalog, key, server.creds.bucket, ttl=3600, max_uses=10_000)
        finally:
            gw.catalog.close()
        bucket = server.creds.bucket
        modes: list[tuple[str, Headers]] = [
            (
                "UPYUN REST PUT",
                lambda k: (object_uri(bucket, k), rest_headers(server.creds, "PUT", object_uri(bucket, k))),
            ),
            (
                "/v1 PUT, API key",
                lambda k: (f"/v1/buckets/{bucket}/objects/{k}", {"Authorization": f"Bearer {secret}"}),
            ),
            (
                "/v1 PUT, upload token",
                lambda k: (f"/v1/buckets/{bucket}/objects/{k}", {"Authorization": f"Bearer {token}"}),
            ),
        ]
        server.start()
        try:
            print(
                f"{args.size} PUTs, concurrency {args.concurrency}, {args.duration:.0f} s each (same server)"
            )
            asyncio.run(_load(server.url, modes[0][1], body, 1.0, args.concurrency))  # warm up
            baseline: float | None = None
            for name, make in modes:
                latencies = asyncio.run(_load(server.url, make, body, args.duration, args.concurrency))
                rate = _report(name, latencies, args.duration, baseline)
                baseline = baseline or rate
        finally:
            server.stop()
        if server.tracebacks():
            raise SystemExit("the server logged a traceback")


if __name__ == "__main__":
    main()

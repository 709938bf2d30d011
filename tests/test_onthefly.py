"""On-the-fly processing on read: ``GET /<bucket>/<key>!/fw/300`` and ``!<version>``, live server.

Variants are made once and cached (``X-Mediagate-Cache: MISS`` then ``HIT``), validated by an ETag
known before any work, negotiated by ``Accept`` when the bucket asks, bounded on disk (LRU), and
every bad source is a clear 4xx JSON answer.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from PIL import Image

from mediagate.core.buckets import BucketCredentials
from tests.conftest import LiveServer, make_home
from tests.core.test_preprocess import bomb_png
from tests.protocols.upyun.forms import upload
from tests.protocols.upyun.rest_client import object_uri, signed
from tests.support.cli import run_mediagate


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


def png(width: int, height: int, seed: int = 0) -> bytes:
    im = Image.new("RGB", (width, height), (200, 10 + seed, 10))
    im.paste((10, 10, 200), (0, 0, width // 3, height // 3))
    out = io.BytesIO()
    im.save(out, format="PNG")
    return out.getvalue()


def put(client: httpx.Client, creds: BucketCredentials, key: str, data: bytes, **policy: object) -> None:
    r = upload(client, creds, data, key="/" + key, filename=key, **policy)
    assert r.status_code == 200, r.text


def size_of(data: bytes) -> tuple[str | None, tuple[int, int]]:
    with Image.open(io.BytesIO(data)) as im:
        return im.format, im.size


def eventually(fetch: object, predicate: object, timeout: float = 5.0) -> httpx.Response:
    """Bucket settings reach a running server within a few seconds (bucketconf.CACHE_SECONDS)."""
    deadline = time.monotonic() + timeout
    while True:
        r = fetch()  # type: ignore[operator]
        if predicate(r) or time.monotonic() > deadline:  # type: ignore[operator]
            return r  # type: ignore[no-any-return]
        time.sleep(0.2)


def test_processed_read_then_cached_and_conditional(client: httpx.Client, bucket: BucketCredentials) -> None:
    put(client, bucket, "a.png", png(400, 300))
    url = f"/{bucket.bucket}/a.png!/fw/100/format/webp"
    first = client.get(url)
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "image/webp"
    assert first.headers["x-mediagate-cache"] == "MISS"
    assert size_of(first.content) == ("WEBP", (100, 75))
    started = time.monotonic()
    second = client.get(url)
    assert time.monotonic() - started < 1.0
    assert second.headers["x-mediagate-cache"] == "HIT"
    assert second.content == first.content
    etag = first.headers["etag"]
    assert second.headers["etag"] == etag and etag != client.get(f"/{bucket.bucket}/a.png").headers["etag"]
    not_modified = client.get(url, headers={"If-None-Match": etag})
    assert not_modified.status_code == 304 and not_modified.content == b""
    # the same work spelled differently shares the variant; other work does not
    assert client.get(f"/{bucket.bucket}/a.png!/format/webp/fw/100").headers["etag"] == etag
    other = client.get(f"/{bucket.bucket}/a.png!/fw/50")
    assert other.headers["etag"] != etag and size_of(other.content) == ("PNG", (50, 38))
    head = client.head(url)
    assert head.status_code == 200 and head.headers["content-length"] == str(len(first.content))
    # the original is still served as stored
    assert client.get(f"/{bucket.bucket}/a.png").content == png(400, 300)


def test_replacing_the_source_changes_the_etag(client: httpx.Client, bucket: BucketCredentials) -> None:
    put(client, bucket, "r.png", png(400, 300))
    url = f"/{bucket.bucket}/r.png!/fw/40"
    before = client.get(url)
    put(client, bucket, "r.png", png(200, 400, seed=5))
    after = client.get(url)
    assert after.headers["etag"] != before.headers["etag"]
    assert size_of(after.content)[1] == (40, 80)


def test_versions_via_the_cli(client: httpx.Client, server: LiveServer, bucket: BucketCredentials) -> None:
    put(client, bucket, "v.png", png(400, 300))
    done = run_mediagate(server.home, "bucket", "version", "set", bucket.bucket, "small", "/sq/50/format/png")
    assert done.returncode == 0, done.stderr
    listed = run_mediagate(server.home, "bucket", "version", "list", bucket.bucket, "--json")
    assert json.loads(listed.stdout)["versions"] == {"small": "/sq/50/format/png"}
    url = f"/{bucket.bucket}/v.png!small"
    r = eventually(lambda: client.get(url), lambda r: r.status_code == 200)
    assert r.status_code == 200, r.text
    assert size_of(r.content) == ("PNG", (50, 50))
    assert client.get(f"/{bucket.bucket}/v.png!large").status_code == 404
    bad = run_mediagate(server.home, "bucket", "version", "set", bucket.bucket, "bad", "/fw/nope")
    assert bad.returncode != 0 and "fw" in bad.stderr
    assert run_mediagate(server.home, "bucket", "version", "delete", bucket.bucket, "small").returncode == 0
    gone = eventually(lambda: client.get(url), lambda r: r.status_code == 404)
    assert gone.status_code == 404


def test_secret_objects_serve_variants_only_behind_the_secret(
    client: httpx.Client, server: LiveServer, bucket: BucketCredentials
) -> None:
    put(client, bucket, "s.png", png(400, 300), content_secret="hush")
    assert (
        run_mediagate(server.home, "bucket", "version", "set", bucket.bucket, "thumb", "/fw/20").returncode
        == 0
    )
    time.sleep(2.2)  # let the server's bucket cache see the version
    assert client.get(f"/{bucket.bucket}/s.png!/fw/50").status_code == 404
    assert client.get(f"/{bucket.bucket}/s.png!thumb").status_code == 404
    assert client.get(f"/{bucket.bucket}/s.png!hush").content == png(400, 300)
    r = client.get(f"/{bucket.bucket}/s.png!hush/fw/50")
    assert r.status_code == 200 and size_of(r.content)[1] == (50, 38)
    assert client.get(f"/{bucket.bucket}/s.png!wrong/fw/50").status_code == 404


def test_autoformat_by_accept(client: httpx.Client, server: LiveServer, bucket: BucketCredentials) -> None:
    put(client, bucket, "f.png", png(400, 300))
    assert run_mediagate(server.home, "bucket", "autoformat", bucket.bucket, "--on").returncode == 0
    url = f"/{bucket.bucket}/f.png!/fw/60"
    webp = eventually(
        lambda: client.get(url, headers={"Accept": "image/avif,image/webp,*/*"}),
        lambda r: r.headers.get("content-type") == "image/webp",
    )
    assert webp.headers["content-type"] == "image/webp" and webp.headers["vary"] == "Accept"
    assert size_of(webp.content) == ("WEBP", (60, 45))
    plain = client.get(url, headers={"Accept": "image/png,*/*"})
    assert plain.headers["content-type"] == "image/png" and plain.headers["vary"] == "Accept"
    assert plain.headers["etag"] != webp.headers["etag"]
    explicit = client.get(f"/{bucket.bucket}/f.png!/fw/60/format/jpg", headers={"Accept": "image/webp"})
    assert explicit.headers["content-type"] == "image/jpeg" and "vary" not in explicit.headers


def test_a_hot_variant_stops_with_its_source(client: httpx.Client, bucket: BucketCredentials) -> None:
    """Hits on a variant held in memory still check the object on every request: a deleted source
    is 404 at once, and conditional requests still answer 304."""
    put(client, bucket, "h.png", png(400, 300))
    url = f"/{bucket.bucket}/h.png!/fw/64"
    made = client.get(url)
    hits = [client.get(url) for _ in range(3)]  # the file, then memory
    assert made.headers["x-mediagate-cache"] == "MISS"
    assert [r.headers["x-mediagate-cache"] for r in hits] == ["HIT"] * 3
    assert {r.content for r in hits} == {made.content}
    assert {r.headers["etag"] for r in hits} == {made.headers["etag"]}
    assert all(r.headers["content-length"] == str(len(made.content)) for r in hits)
    assert client.get(url, headers={"If-None-Match": made.headers["etag"]}).status_code == 304
    head = client.head(url)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(made.content))
    gone = signed(client, bucket, "DELETE", object_uri(bucket.bucket, "h.png"))
    assert gone.status_code == 200, gone.text
    assert client.get(url).status_code == 404
    assert client.get(url, headers={"If-None-Match": made.headers["etag"]}).status_code == 404


def test_concurrent_identical_requests_are_processed_once(
    client: httpx.Client, server: LiveServer, bucket: BucketCredentials
) -> None:
    put(client, bucket, "c.png", png(1600, 1200))
    url = f"{server.url}/{bucket.bucket}/c.png!/fw/300/format/webp/quality/70"

    def fetch(_: int) -> tuple[int, str, bytes]:
        r = httpx.get(url, timeout=60)
        return r.status_code, r.headers.get("x-mediagate-cache", ""), r.content

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(fetch, range(8)))
    assert [status for status, _, _ in results] == [200] * 8
    assert sorted(cache for _, cache, _ in results) == ["HIT"] * 7 + ["MISS"]
    assert len({body for _, _, body in results}) == 1


@pytest.mark.parametrize(
    ("data", "suffix", "status"),
    [
        (b"just some text\n" * 10, "/fw/10", 415),
        (png(300, 300)[:300], "/fw/10", 415),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 200, "/fw/10", 415),
        (bomb_png(50000, 50000), "/fw/10", 413),
        (png(30, 30), "/fw/banana", 400),
        (png(30, 30), "/fw/99999999", 400),
        (png(30, 30), "/rocket/1", 400),
    ],
    ids=["text", "truncated", "garbage-png", "bomb", "bad-value", "absurd", "unknown"],
)
def test_bad_sources_and_specs_are_clear_4xx(
    client: httpx.Client, bucket: BucketCredentials, data: bytes, suffix: str, status: int
) -> None:
    put(client, bucket, "x.jpg", data)
    started = time.monotonic()
    r = client.get(f"/{bucket.bucket}/x.jpg!{suffix}")
    assert time.monotonic() - started < 5
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == status and body["message"]


def test_cache_is_bounded_and_evicts_least_recently_used(tmp_path: Path) -> None:
    settings = make_home(tmp_path / "home")
    from mediagate.core.buckets import create_bucket
    from mediagate.services import build_gateway

    gw = build_gateway(settings, migrate=False)
    try:
        creds = create_bucket(gw.catalog, gw.secrets, "evict")
    finally:
        gw.catalog.close()
    bound = 20000
    live = LiveServer(settings.home, env={"MEDIAGATE_MEDIA_CACHE_MAX_BYTES": str(bound)}).start()
    try:
        with httpx.Client(base_url=live.url, timeout=60) as c:
            noise = Image.frombytes("RGB", (400, 300), os.urandom(400 * 300 * 3))
            out = io.BytesIO()
            noise.save(out, format="PNG")
            put(c, creds, "e.png", out.getvalue())
            urls = [f"/evict/e.png!/fw/{w}/format/webp/quality/90" for w in (100, 101, 102, 103, 104, 105)]
            sizes = []
            for url in urls:
                r = c.get(url)
                assert r.headers["x-mediagate-cache"] == "MISS"
                sizes.append(len(r.content))
            assert max(sizes) < bound < sum(sizes)  # several fit, not all six
            cached = [p for p in (settings.home / "cache").rglob("*") if p.is_file()]
            assert 0 < sum(p.stat().st_size for p in cached) <= bound
            assert c.get(urls[-1]).headers["x-mediagate-cache"] == "HIT"  # most recent stays
            assert c.get(urls[0]).headers["x-mediagate-cache"] == "MISS"  # oldest went first
    finally:
        live.stop()
    assert "Traceback" not in live.log()


def test_queued_variants_on_s3_do_not_each_hold_a_copy_of_the_source(
    tmp_path: Path, s3_server: object
) -> None:
    """On S3 a variant is made from a staging copy of the source. Anonymous requests for many
    variants at once used to each download their copy and then queue for a decode slot holding
    it (the staging disk filled with copies); now a request queues before it copies, so at most
    two copies per decode slot exist at once."""
    import threading

    from mediagate.core.buckets import create_bucket
    from mediagate.services import build_gateway
    from tests.conftest import staging_files
    from tests.support.moto import MotoServer, new_bucket_name

    assert isinstance(s3_server, MotoServer)
    env = s3_server.env(new_bucket_name()) | {"MEDIAGATE_MEDIA_MAX_CONCURRENT": "1"}
    os.environ.update(env)
    try:
        home = make_home(tmp_path / "home")
        gw = build_gateway(home, migrate=False)
        creds = create_bucket(gw.catalog, gw.secrets, "s3variants")
        gw.catalog.close()
    finally:
        for name in env:
            os.environ.pop(name, None)
    server = LiveServer(home.home, env=env).start()
    try:
        noise = io.BytesIO()
        Image.effect_noise((1500, 1500), 90).convert("RGB").save(noise, "PNG")
        with httpx.Client(base_url=server.url, timeout=120) as client:
            uri = object_uri(creds.bucket, "noise.png")
            assert signed(client, creds, "PUT", uri, content=noise.getvalue()).status_code == 200
        most = 0
        done = threading.Event()

        def watch() -> None:
            nonlocal most
            while not done.is_set():
                most = max(most, len(staging_files(server.home)))
                time.sleep(0.005)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            with ThreadPoolExecutor(10) as pool:
                answers = list(
                    pool.map(
                        lambda w: httpx.get(
                            f"{server.url}/{creds.bucket}/noise.png!/fw/{w}/format/webp", timeout=120
                        ),
                        range(1000, 1010),
                    )
                )
        finally:
            done.set()
            watcher.join()
        assert [a.status_code for a in answers] == [200] * 10
        assert most <= 2, f"{most} staging copies of the source at once"
        assert staging_files(server.home) == []
    finally:
        server.stop()
    assert "Traceback" not in server.log()

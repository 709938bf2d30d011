"""Crash safety: SIGKILL the server under upload load, restart it on the same home, and check the
promise "an acknowledged upload is durable and whole; a cut one leaves no partial trace".

16 client threads upload objects of random sizes (1 KiB to 16 MiB, log-uniform) through the UPYUN
REST PUT and FORM POST paths. The clients are written from the wire spec (shared/specs/upyun.md
§2-3, §5) with httpx, not with our own signing module, so a signing bug cannot hide itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import os
import random
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from mediagate.core.buckets import BucketCredentials, create_bucket
from mediagate.services import build_gateway
from tests.conftest import LiveServer, make_home, staging_files

pytestmark = pytest.mark.slow

CLIENTS = 16
CYCLES = 3
MIN_SIZE, MAX_SIZE = 1024, 16 * 1024 * 1024
LOAD_SECONDS = 1.5
MIN_ACKS_PER_PATH = 4

# -- a client written from the spec --------------------------------------------------------------


def rest_headers(creds: BucketCredentials, method: str, uri: str) -> dict[str, str]:
    """``Authorization: UPYUN op:b64(hmac-sha1(md5hex(password), METHOD&URI&DATE))`` (spec §2)."""
    date = formatdate(usegmt=True)
    key = hashlib.md5(creds.password.encode()).hexdigest().encode()
    mac = hmac.new(key, f"{method}&{uri}&{date}".encode(), hashlib.sha1).digest()
    return {"Authorization": f"UPYUN {creds.operator}:{base64.b64encode(mac).decode()}", "Date": date}


def object_uri(bucket: str, key: str) -> str:
    return quote(f"/{bucket}/{key}", safe="~/")


def rest_put(client: httpx.Client, creds: BucketCredentials, key: str, body: bytes) -> httpx.Response:
    uri = object_uri(creds.bucket, key)
    return client.put(uri, content=body, headers=rest_headers(creds, "PUT", uri))


def form_post(client: httpx.Client, creds: BucketCredentials, key: str, body: bytes) -> httpx.Response:
    """FORM API with the old md5 ``signature`` (spec §5b.2); the file part comes last."""
    policy = base64.b64encode(
        json.dumps(
            {"bucket": creds.bucket, "save-key": f"/{key}", "expiration": int(time.time()) + 1800}
        ).encode()
    ).decode()
    signature = hashlib.md5(f"{policy}&{creds.form_api_secret}".encode()).hexdigest()
    return client.post(
        f"/{creds.bucket}",
        data={"policy": policy, "signature": signature},
        files={"file": (key.rsplit("/", 1)[-1], body, "application/octet-stream")},
    )


# -- the load -------------------------------------------------------------------------------------


@dataclass
class Upload:
    key: str
    size: int
    sha256: str
    path: str  # "rest" or "form"
    state: str = "sending"  # sending -> acked | refused | error (before the kill) | cut (by the kill)
    detail: str = ""


class Load:
    """CLIENTS threads uploading until ``stop`` is set; every attempt is recorded before it is sent."""

    def __init__(self, server: LiveServer, creds: BucketCredentials, prefix: str, pool: bytes) -> None:
        self.server = server
        self.creds = creds
        self.prefix = prefix
        self.pool = pool
        self.uploads: list[Upload] = []
        self.stop = threading.Event()
        self.killing = threading.Event()
        self.lock = threading.Lock()
        self.acked = {"rest": 0, "form": 0}
        self.threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(CLIENTS)]

    def _body(self, rng: random.Random) -> bytes:
        size = int(math.exp(rng.uniform(math.log(MIN_SIZE), math.log(MAX_SIZE))))
        head = uuid.uuid4().bytes  # every object distinct even when the pool slices overlap
        start = rng.randrange(0, len(self.pool) - size + 1)
        return head + self.pool[start : start + size - len(head)]

    def _run(self, n: int) -> None:
        rng = random.Random(os.urandom(16))
        with httpx.Client(base_url=self.server.url, timeout=30) as client:
            i = 0
            while not self.stop.is_set():
                body = self._body(rng)
                path = "rest" if (n + i) % 2 else "form"
                up = Upload(f"{self.prefix}/c{n}-{i}.bin", len(body), hashlib.sha256(body).hexdigest(), path)
                with self.lock:
                    self.uploads.append(up)
                try:
                    send = rest_put if path == "rest" else form_post
                    r = send(client, self.creds, up.key, body)
                except httpx.HTTPError as exc:
                    up.state, up.detail = ("cut" if self.killing.is_set() else "error"), repr(exc)
                    return
                if r.is_success:
                    up.state = "acked"
                    with self.lock:
                        self.acked[path] += 1
                else:
                    up.state, up.detail = "refused", f"{r.status_code} {r.text[:300]}"
                i += 1

    def run_then_kill(self) -> None:
        for t in self.threads:
            t.start()
        started = time.monotonic()
        deadline = started + 30
        while time.monotonic() < deadline:
            with self.lock:
                acked = min(self.acked.values())
            if acked >= MIN_ACKS_PER_PATH and time.monotonic() - started >= LOAD_SECONDS:
                break
            time.sleep(0.02)
        self.killing.set()
        self.server.kill()
        self.stop.set()
        for t in self.threads:
            t.join(60)
            assert not t.is_alive(), "a client thread hung after the server was killed"


# -- checks ---------------------------------------------------------------------------------------


def read_back(client: httpx.Client, creds: BucketCredentials, key: str) -> httpx.Response:
    """Public GET (the bucket is public by default)."""
    return client.get(object_uri(creds.bucket, key))


def sha256_of(response: httpx.Response) -> str:
    return hashlib.sha256(response.content).hexdigest()


def listing(client: httpx.Client, creds: BucketCredentials, folder: str) -> dict[str, tuple[str, int]]:
    """REST listing of ``folder``: name -> (type, size), following ``x-upyun-list-iter`` pages."""
    uri = object_uri(creds.bucket, folder) + "/"
    entries: dict[str, tuple[str, int]] = {}
    token: str | None = None
    for _ in range(1000):
        headers = {**rest_headers(creds, "GET", uri), "X-List-Limit": "1000"}
        if token:
            headers["X-List-Iter"] = token
        r = client.get(uri, headers=headers)
        assert r.status_code == 200, r.text
        for line in filter(None, r.text.split("\n")):
            name, kind, size, mtime = line.split("\t")
            assert name not in entries, f"{name} listed twice"
            assert int(mtime) > 0
            entries[name] = (kind, int(size))
        token = r.headers.get("x-upyun-list-iter")
        if not token or token == "g2gCZAAEbmV4dGQAA2VvZg" or not r.text:
            return entries
    raise AssertionError("listing never ended")


def check_home(server: LiveServer, creds: BucketCredentials, uploads: list[Upload]) -> None:
    """Every acknowledged upload whole; nothing partial visible, read or listed."""
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for up in uploads:
            r = read_back(client, creds, up.key)
            if up.state == "acked":
                assert r.status_code == 200, f"acknowledged {up.path} upload {up.key} lost: {r.status_code}"
            else:
                assert r.status_code in (200, 404), f"{up.key}: {r.status_code} {r.text[:200]}"
            if r.status_code == 200:
                assert len(r.content) == up.size, f"{up.key} ({up.state}) visible with a wrong size"
                assert sha256_of(r) == up.sha256, f"{up.key} ({up.state}) visible with wrong bytes"
                up.detail = "visible"
            else:
                up.detail = "absent"
        by_folder: dict[str, dict[str, Upload]] = {}
        for up in uploads:
            folder, name = up.key.rsplit("/", 1)
            by_folder.setdefault(folder, {})[name] = up
        for folder, expected in by_folder.items():
            listed = listing(client, creds, folder)
            for name, (kind, size) in listed.items():
                assert name in expected, f"{folder}/{name} listed but never uploaded"
                up = expected[name]
                assert up.detail == "visible", f"{up.key} listed but not readable"
                assert (kind, size) == ("N", up.size), f"{up.key} listed as {kind} {size}, sent {up.size}"
            for name, up in expected.items():
                if up.detail == "visible":
                    assert name in listed, f"{up.key} readable but not listed"


@pytest.fixture
def pool() -> bytes:
    return os.urandom(MAX_SIZE + 1024 * 1024)


def human_bytes(uploads: list[Upload]) -> str:
    return f"{sum(u.size for u in uploads) / 2**20:.0f} MiB"


def blob_files(home: Path) -> set[str]:
    return {p.name for p in (home / "blobs").rglob("*") if p.is_file()}


def test_sigkill_under_upload_load_loses_nothing_acknowledged_and_shows_nothing_partial(
    tmp_path: Path, pool: bytes
) -> None:
    settings = make_home(tmp_path / "home")
    admin = build_gateway(settings, migrate=False)
    creds = create_bucket(admin.catalog, admin.secrets, "crash")
    all_uploads: list[Upload] = []
    servers: list[LiveServer] = []
    try:
        server = LiveServer(settings.home).start()
        servers.append(server)
        for cycle in range(CYCLES):
            load = Load(server, creds, f"cycle{cycle}", pool)
            load.run_then_kill()
            assert "Traceback" not in server.log(), server.log()[-5000:]
            failed = [u for u in load.uploads if u.state in ("refused", "error")]
            assert not failed, f"uploads failed before the kill: {[(u.key, u.detail) for u in failed[:5]]}"
            acked = [u for u in load.uploads if u.state == "acked"]
            cut = [u for u in load.uploads if u.state != "acked"]
            for path in ("rest", "form"):
                assert sum(u.path == path for u in acked) >= MIN_ACKS_PER_PATH, f"too few {path} uploads"
            assert cut, "the kill cut no upload in flight; the test proved nothing"
            all_uploads += load.uploads

            server = LiveServer(settings.home).start()
            servers.append(server)
            assert staging_files(settings.home) == [], "start-up left staging files behind"
            check_home(server, creds, all_uploads)
            print(
                f"cycle {cycle}: {len(acked)} acknowledged ({human_bytes(acked)}),"
                f" {len(cut)} cut by the kill of which {sum(u.detail == 'visible' for u in cut)} committed"
            )

        # Everything on disk is either a visible object's blob or recorded garbage: after a
        # collection with no grace, exactly the visible objects' blobs remain.
        bucket = admin.catalog.require_bucket("crash")
        visible = [u for u in all_uploads if u.detail == "visible"]
        referenced = set()
        for up in visible:
            obj = admin.catalog.get_object(bucket.id, up.key)
            assert obj is not None and obj.size == up.size and obj.sha256 == up.sha256
            referenced.add(obj.blob_id)
        # no upload is in flight any more: judge the cut uploads' reservations as if their
        # leases were over
        admin.collect_garbage(grace=timedelta(0), as_of=datetime.now(UTC) + admin.upload_lease)
        assert blob_files(settings.home) == referenced
        check_home(server, creds, all_uploads)
    finally:
        for s in servers:
            s.stop()
        admin.catalog.close()
    assert "Traceback" not in servers[-1].log(), servers[-1].log()[-5000:]

"""Crash safety: SIGKILL the server under upload load, restart it on the same home, and check the
promise "an acknowledged upload is durable and whole; a cut one leaves no partial trace".

16 client threads upload objects of random sizes (1 KiB to 16 MiB, log-uniform) through the UPYUN
REST PUT and FORM POST paths. The clients are written from the wire spec (shared/specs/upyun.md
§2-3, §5) with httpx, not with our own signing module, so a signing bug cannot hide itself.

Multi-part sessions (UPYUN multi-part, Wantu blocks, ImageX chunked uploads) are cut the same way
while their parts are in flight: after the restart each session resumes (the parts not
acknowledged are sent again) and completes with the right bytes, or is refused cleanly (a 4xx in
the dialect's format, nothing visible); never a 5xx, never a wrong object.

Every test runs on SQLite + local files and on PostgreSQL + S3 (a moto server).
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
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from mediagate.config import Settings
from mediagate.core.buckets import BucketCredentials, create_bucket
from mediagate.services import build_gateway
from tests.conftest import LiveServer, make_home, staging_files
from tests.protocols.imagex.conftest import signed as imagex_signed
from tests.protocols.wantu.client import WantuClient
from tests.support.moto import MotoServer, new_bucket_name, s3_client
from tests.support.pg import fresh_schema

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


# -- backends: SQLite + local files, PostgreSQL + S3 ------------------------------------------------


@dataclass
class Backend:
    settings: Settings
    env: dict[str, str]
    """What a server process needs in its environment to use this backend."""
    moto: MotoServer | None = None

    def blobs(self) -> set[str]:
        """Every blob in storage, whoever refers to it."""
        if self.moto is None:
            return blob_files(self.settings.home)
        client = s3_client(self.moto)
        prefix = self.settings.s3_prefix.rstrip("/") + "/"
        found: set[str] = set()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.settings.s3_bucket):
            found |= {item["Key"].removeprefix(prefix) for item in page.get("Contents", [])}
        return found


@pytest.fixture(params=["sqlite-local", pytest.param("postgres-s3", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite-local":
        yield Backend(make_home(tmp_path / "home"), {})
        return
    moto: MotoServer = request.getfixturevalue("s3_server")
    env = moto.env(new_bucket_name(), prefix="blobs")
    with fresh_schema() as url:
        env["MEDIAGATE_DATABASE_URL"] = url
        fields = {k.removeprefix("MEDIAGATE_").lower(): v for k, v in env.items()}
        yield Backend(make_home(tmp_path / "home", **fields), env, moto)


def test_sigkill_under_upload_load_loses_nothing_acknowledged_and_shows_nothing_partial(
    backend: Backend, pool: bytes
) -> None:
    settings = backend.settings
    admin = build_gateway(settings, migrate=False)
    creds = create_bucket(admin.catalog, admin.secrets, "crash")
    all_uploads: list[Upload] = []
    servers: list[LiveServer] = []
    try:
        server = LiveServer(settings.home, env=backend.env).start()
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

            server = LiveServer(settings.home, env=backend.env).start()
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
        assert backend.blobs() == referenced
        check_home(server, creds, all_uploads)
    finally:
        for s in servers:
            s.stop()
        admin.catalog.close()
    assert "Traceback" not in servers[-1].log(), servers[-1].log()[-5000:]


# -- multi-part sessions cut by the kill -----------------------------------------------------------

PART = 1024 * 1024
PARTS = 4
SESSIONS_PER_DIALECT = 4


@dataclass
class Session:
    """One multi-part upload: its file, its parts, which parts the server acknowledged."""

    dialect: str
    key: str
    data: bytes
    state: dict[str, str]
    acked: set[int]

    @property
    def parts(self) -> list[bytes]:
        return [self.data[i : i + PART] for i in range(0, len(self.data), PART)]


class UpyunMulti:
    """UPYUN multi-part, disorder flavour (spec §4), from the wire spec."""

    name = "upyun"

    def __init__(self, creds: BucketCredentials) -> None:
        self.creds = creds

    def _put(
        self, client: httpx.Client, key: str, headers: dict[str, str], body: bytes = b""
    ) -> httpx.Response:
        uri = object_uri(self.creds.bucket, key)
        return client.put(uri, content=body, headers={**headers, **rest_headers(self.creds, "PUT", uri)})

    def start(self, client: httpx.Client, s: Session) -> None:
        r = self._put(
            client,
            s.key,
            {
                "X-Upyun-Multi-Stage": "initiate",
                "X-Upyun-Multi-Disorder": "true",
                "X-Upyun-Multi-Length": str(len(s.data)),
                "X-Upyun-Multi-Part-Size": str(PART),
            },
        )
        assert r.is_success, r.text
        s.state["uuid"] = r.headers["x-upyun-multi-uuid"]

    def part(self, client: httpx.Client, s: Session, n: int) -> httpx.Response:
        headers = {"X-Upyun-Multi-Stage": "upload", "X-Upyun-Multi-Uuid": s.state["uuid"]}
        return self._put(client, s.key, {**headers, "X-Upyun-Part-Id": str(n)}, s.parts[n])

    def complete(self, client: httpx.Client, s: Session) -> httpx.Response:
        headers = {"X-Upyun-Multi-Stage": "complete", "X-Upyun-Multi-Uuid": s.state["uuid"]}
        return self._put(client, s.key, {**headers, "X-Upyun-Multi-MD5": hashlib.md5(s.data).hexdigest()})

    def url(self, s: Session) -> str:
        return object_uri(self.creds.bucket, s.key)


class WantuBlocks:
    """Wantu blockInit (part 1) / blockUpload / blockComplete, with the spec-written test client."""

    name = "wantu"

    def __init__(self, creds: BucketCredentials) -> None:
        self.creds = creds

    def _client(self, client: httpx.Client) -> WantuClient:
        wantu = WantuClient(str(client.base_url), self.creds.access_key_id, self.creds.secret_access_key, "")
        wantu.http.close()
        wantu.http = client
        wantu.namespace = self.creds.bucket
        return wantu

    def start(self, client: httpx.Client, s: Session) -> None:
        wantu = self._client(client)
        s.state["auth"] = wantu.authorization(wantu.policy())
        folder, name = s.key.rsplit("/", 1)
        r = wantu.block_init(s.parts[0], s.state["auth"], {"dir": f"/{folder}", "name": name})
        assert r.status_code == 200, r.text
        s.state["uploadId"], s.state["id"] = r.json()["uploadId"], r.json()["id"]
        s.acked.add(0)

    def part(self, client: httpx.Client, s: Session, n: int) -> httpx.Response:
        if n == 0:  # blockInit's block: sent again as part 1 of the same session
            return self._client(client).block_upload(
                s.parts[0], s.state["auth"], s.state["uploadId"], s.state["id"], 1
            )
        return self._client(client).block_upload(
            s.parts[n], s.state["auth"], s.state["uploadId"], s.state["id"], n + 1
        )

    def complete(self, client: httpx.Client, s: Session) -> httpx.Response:
        parts = [(n + 1, hashlib.md5(p).hexdigest().upper()) for n, p in enumerate(s.parts)]
        return self._client(client).block_complete(
            s.state["auth"], s.state["uploadId"], s.state["id"], parts, hashlib.md5(s.data).hexdigest()
        )

    def url(self, s: Session) -> str:
        return object_uri(self.creds.bucket, s.key)


class ImagexChunks:
    """ImageX: ApplyImageUpload, ``PUT ?uploads``, parts, merge, CommitImageUpload."""

    name = "imagex"

    def __init__(self, creds: BucketCredentials, server: list[LiveServer]) -> None:
        self.creds = creds
        self.server = server  # the current one (a list: the restart replaces it)

    def _openapi(self, method: str, action: str, body: bytes = b"") -> httpx.Response:
        params = {"Action": action, "Version": "2018-08-01", "ServiceId": self.creds.bucket}
        ak, sk = self.creds.access_key_id, self.creds.secret_access_key
        return imagex_signed(self.server[-1], method, params, ak=ak, sk=sk, body=body)

    def start(self, client: httpx.Client, s: Session) -> None:
        r = self._openapi("GET", "ApplyImageUpload")
        assert r.status_code == 200, r.text
        address = r.json()["Result"]["UploadAddress"]
        info = address["StoreInfos"][0]
        s.state |= {"uri": info["StoreUri"], "auth": info["Auth"], "session_key": address["SessionKey"]}
        r = client.put(f"/{info['StoreUri']}?uploads", headers={"Authorization": info["Auth"]})
        assert r.status_code == 200, r.text
        s.state["upload_id"] = r.json()["payload"]["uploadID"]
        service_id, name = info["StoreUri"].removeprefix("tos-cn-i-").split("/", 1)
        assert service_id == self.creds.bucket
        s.key = name  # the object's key in its bucket (the StoreUri's name)

    def part(self, client: httpx.Client, s: Session, n: int) -> httpx.Response:
        part = s.parts[n]
        return client.put(
            f"/{s.state['uri']}?partNumber={n}&uploadID={s.state['upload_id']}",
            content=part,
            headers={"Authorization": s.state["auth"], "Content-CRC32": f"{zlib.crc32(part):08x}"},
        )

    def complete(self, client: httpx.Client, s: Session) -> httpx.Response:
        merge = ",".join(f"{n}:{zlib.crc32(p):08x}" for n, p in enumerate(s.parts)).encode()
        r = client.put(
            f"/{s.state['uri']}?uploadID={s.state['upload_id']}",
            content=merge,
            headers={"Authorization": s.state["auth"]},
        )
        if not part_ok("imagex", r):
            return r
        body = json.dumps({"SessionKey": s.state["session_key"]}).encode()
        return self._openapi("POST", "CommitImageUpload", body)

    def url(self, s: Session) -> str:
        return object_uri(self.creds.bucket, s.key)


def part_ok(dialect: str, r: httpx.Response) -> bool:
    if dialect == "imagex":
        return r.status_code == 200 and r.json().get("success") == 0
    return r.is_success


def send_parts(
    server: LiveServer, dialects: dict[str, Any], sessions: list[Session], stop: threading.Event
) -> None:
    """Send every session's missing parts, in a shuffled order, until told to stop or cut."""
    rng = random.Random(os.urandom(8))
    with httpx.Client(base_url=server.url, timeout=30) as client:
        todo = [(s, n) for s in sessions for n in range(PARTS) if n not in s.acked]
        rng.shuffle(todo)
        for s, n in todo:
            if stop.is_set():
                return
            try:
                r = dialects[s.dialect].part(client, s, n)
            except httpx.HTTPError:
                return  # cut by the kill
            assert part_ok(s.dialect, r), f"{s.dialect} part {n} refused before the kill: {r.text[:300]}"
            s.acked.add(n)


def complete_all(server: LiveServer, dialects: dict[str, Any], sessions: list[Session]) -> None:
    """Complete each session (all its parts are in); stop quietly when the kill cuts a call."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for s in sessions:
            try:
                r = dialects[s.dialect].complete(client, s)
            except httpx.HTTPError:
                return
            assert r.is_success, f"{s.dialect} completion refused before the kill: {r.text[:300]}"
            s.state["completed_before_kill"] = "yes"


def test_sigkill_cuts_multi_part_sessions_which_then_resume_or_are_refused_cleanly(
    backend: Backend, pool: bytes
) -> None:
    """Per dialect, half the sessions are cut while their parts are in flight, the other half
    while their completions are. After the restart every one is finished again: it completes with
    the right bytes, or it is refused with a 4xx, and then its object is absent or (completed
    before the kill) whole. Never a 5xx, never wrong bytes."""
    settings = backend.settings
    admin = build_gateway(settings, migrate=False)
    creds = create_bucket(admin.catalog, admin.secrets, "sessions")
    servers = [LiveServer(settings.home, env=backend.env).start()]
    dialects: dict[str, Any] = {
        "upyun": UpyunMulti(creds),
        "wantu": WantuBlocks(creds),
        "imagex": ImagexChunks(creds, servers),
    }
    sending: list[Session] = []  # cut while parts are in flight
    completing: list[Session] = []  # cut while completions are in flight
    try:
        rng = random.Random(os.urandom(8))
        with httpx.Client(base_url=servers[-1].url, timeout=30) as client:
            for dialect, handler in dialects.items():
                for i in range(SESSIONS_PER_DIALECT):
                    size = PART * (PARTS - 1) + rng.randrange(1, PART)
                    start = rng.randrange(0, len(pool) - size)
                    data = uuid.uuid4().bytes + pool[start : start + size - 16]
                    s = Session(dialect, f"cut/{dialect}-{i}.bin", data, {}, set())
                    handler.start(client, s)
                    (sending if i % 2 else completing).append(s)
            for s in completing:
                for n in range(PARTS):
                    if n not in s.acked:
                        assert part_ok(s.dialect, dialects[s.dialect].part(client, s, n))
                        s.acked.add(n)

        # parts in flight from 4 threads, completions from 2, then the kill
        stop = threading.Event()
        threads = [
            threading.Thread(
                target=send_parts, args=(servers[-1], dialects, sending[i::4], stop), daemon=True
            )
            for i in range(4)
        ] + [
            threading.Thread(target=complete_all, args=(servers[-1], dialects, completing[i::2]), daemon=True)
            for i in range(2)
        ]
        for t in threads:
            t.start()
        total = len(sending) * PARTS
        deadline = time.monotonic() + 30
        while sum(len(s.acked) for s in sending) < total * 3 // 4 and time.monotonic() < deadline:
            time.sleep(0.005)
        servers[-1].kill()
        stop.set()
        for t in threads:
            t.join(60)
            assert not t.is_alive()
        assert "Traceback" not in servers[-1].log(), servers[-1].log()[-5000:]
        acked = sum(len(s.acked) for s in sending)
        assert 0 < acked < total, "the kill cut no part in flight; the test proved nothing"
        finished_before = sum(bool(s.state.get("completed_before_kill")) for s in completing)

        servers.append(LiveServer(settings.home, env=backend.env).start())
        assert staging_files(settings.home) == [], "start-up left staging files behind"
        outcomes = {"completed": 0, "completed before the kill": 0, "refused": 0}
        refusals: list[str] = []
        with httpx.Client(base_url=servers[-1].url, timeout=60) as client:
            for s in sending + completing:
                handler = dialects[s.dialect]
                for n in range(PARTS):  # resume: send again what was not acknowledged
                    if n not in s.acked:
                        r = handler.part(client, s, n)
                        assert r.status_code < 500, f"{s.dialect} part {n} after restart: {r.text[:300]}"
                        if not part_ok(s.dialect, r):
                            break
                        s.acked.add(n)
                done = handler.complete(client, s) if len(s.acked) == PARTS else None
                if done is not None:
                    assert done.status_code < 500, f"{s.key}: {done.status_code} {done.text[:300]}"
                read = client.get(handler.url(s))
                if read.status_code == 200:  # whatever was answered, a visible object is whole
                    assert hashlib.sha256(read.content).digest() == hashlib.sha256(s.data).digest(), s.key
                else:
                    assert read.status_code == 404, f"{s.key}: {read.status_code}"
                if done is not None and done.is_success:
                    assert read.status_code == 200, f"{s.key} completed but not readable"
                    outcomes["completed"] += 1
                elif read.status_code == 200:
                    assert s in completing, f"{s.key} visible, though its parts were cut"
                    outcomes["completed before the kill"] += 1
                else:
                    # allowed only for a completion the kill cut (the brief's "cleanly refused")
                    assert s in completing, f"{s.key}: parts resent, yet refused: {done and done.text[:300]}"
                    outcomes["refused"] += 1
                    refusals.append(f"{s.dialect}: {done.status_code} {done.text[:200]}" if done else s.key)
        print(
            f"sessions after the kill: {outcomes}; {acked}/{total} parts and"
            f" {finished_before}/{len(completing)} completions had been acknowledged; refused: {refusals}"
        )

        # storage holds exactly the visible objects' blobs once the parts are collected
        bucket = admin.catalog.require_bucket("sessions")
        referenced = set()
        for s in sending + completing:
            obj = admin.catalog.get_object(bucket.id, s.key)
            if obj is not None:
                assert obj.sha256 == hashlib.sha256(s.data).hexdigest()
                referenced.add(obj.blob_id)
        admin.collect_garbage(grace=timedelta(0), as_of=datetime.now(UTC) + admin.upload_lease)
        for session_id in admin.catalog.stale_sessions(datetime.now(UTC) + timedelta(days=1), limit=1000):
            referenced |= {p.blob_id for p in admin.catalog.parts(session_id)}  # a refused one's parts
        assert backend.blobs() == referenced
    finally:
        for server in servers:
            server.stop()
        admin.catalog.close()
    assert "Traceback" not in servers[-1].log(), servers[-1].log()[-5000:]

"""Soak: sustained mixed load for many minutes, watching what grows.

One mediagate (embedded default: SQLite + local files; ``--catalog postgresql`` makes and drops a
fresh database, ``--redis`` runs the tasks and rate limits on Redis) is driven for ``--duration``
minutes by ``--concurrency`` client threads, each picking scenarios at random:

* UPYUN REST PUT / GET / HEAD / DELETE, FORM POST, multi-part sessions (some abandoned half-way);
* Wantu single uploads and block uploads (some abandoned);
* ImageX ApplyImageUpload → upload → CommitImageUpload (some never uploaded, some never committed);
* ``/v1`` PUT and list, tus uploads (some abandoned);
* image variant GETs (thumbnails of random widths: the variant cache churns);
* misbehaving clients: a body cut off half-way (the socket closed), a slow client trickling its
  body, bad signatures in every dialect.

Every ``--sample`` seconds it prints the server's RSS, open fds, threads and TCP connections, the
files in staging and in the variant cache, the log size, the rows of the sessions, parts, outbox
(deliveries), tasks, garbage and signature-use tables, and the catalog's connections. The server
runs with a short session TTL (``--session-ttl``, default 40 s) and collector interval so that the
collector's work shows within the run. At the end it waits one TTL for the collector, then checks:

* nothing grew without bound: the mean of the last third of the samples is compared with the
  first third (after a warm-up), per metric with a tolerance (the slope report);
* no abandoned session outlived its TTL by more than a collector round, no staging file is left;
* every acknowledged object reads back with the right MD5 (deleted ones are gone);
* no 5xx, no unexpected status, no traceback in the server log.

    .venv/bin/python bench/soak.py [--duration 5] [--concurrency 6] [--sample 10]
                                   [--catalog sqlite|postgresql] [--redis] [--seed N]

Exit status 1 when a check fails (the report says which).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import io
import json
import os
import random
import socket
import sqlite3
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import httpx
import psutil
from _common import (
    Creds,
    Mediagate,
    form_fields,
    load_average,
    object_uri,
    postgres_database,
    rest_headers,
    tree_cpu_seconds,
    workdir,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the seed-only Wantu client of the tests
from tests.protocols.wantu.client import WantuClient, md5

POSTGRES_URL = os.environ.get(
    "MEDIAGATE_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("MEDIAGATE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
TABLES = ("upload_sessions", "upload_parts", "deliveries", "tasks", "garbage_blobs", "signature_uses")


# -- the server ------------------------------------------------------------------------------------


class SoakServer(Mediagate):
    """The bench's Mediagate with a short session TTL and collector interval (and Redis if asked)."""

    def __init__(self, root: Path, *, database_url: str | None, redis: bool, session_ttl: int) -> None:
        super().__init__(root, database_url=database_url)
        self.redis = redis
        self.session_ttl = session_ttl
        self.queue = f"soak-{uuid.uuid4().hex[:8]}"

    def serve_env(self) -> dict[str, str]:
        env = super().serve_env()
        env["MEDIAGATE_SESSION_MAX_AGE_SECONDS"] = str(self.session_ttl)
        env["MEDIAGATE_GARBAGE_GRACE_SECONDS"] = "5"  # a collector round every 5 s
        if self.redis:
            env["MEDIAGATE_REDIS_URL"] = REDIS_URL
            env["MEDIAGATE_TASK_QUEUE_NAME"] = self.queue
        return env


@dataclass(frozen=True)
class Keys:
    """Everything the clients sign with, made in-process on the home before the server starts."""

    bucket: str
    creds: Creds
    access_key_id: str
    secret_access_key: str
    api_key: str
    upload_token: str


def make_keys(server: Mediagate) -> Keys:
    from mediagate.config import Settings
    from mediagate.core.apikeys import authenticate_key, create_key
    from mediagate.core.buckets import create_bucket
    from mediagate.core.uploadtokens import issue_upload_token
    from mediagate.services import build_gateway

    gw = build_gateway(Settings(home=server.home, database_url=server.database_url), migrate=False)
    try:
        made = create_bucket(gw.catalog, gw.secrets, "soak")
        _, secret = create_key(gw.catalog, bucket=made.bucket, scopes=["read", "write"])
        key = authenticate_key(gw.catalog, secret)
        _, token = issue_upload_token(gw.catalog, key, made.bucket, ttl=86_400, max_uses=10_000)
    finally:
        gw.catalog.close()
    creds = Creds(made.bucket, made.operator, made.password, made.form_api_secret)
    return Keys(made.bucket, creds, made.access_key_id, made.secret_access_key, secret, token)


# -- what the clients did ----------------------------------------------------------------------------


@dataclass
class Ledger:
    """Acknowledged objects (key -> MD5), deleted keys, outcomes per scenario, unexpected answers."""

    acked: dict[str, str] = field(default_factory=dict)
    deleted: set[str] = field(default_factory=set)
    deleting: set[str] = field(default_factory=set)
    outcomes: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    abandoned_sessions: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ack(self, key: str, digest: str) -> None:
        with self.lock:
            self.acked[key] = digest

    def count(self, what: str) -> None:
        with self.lock:
            self.outcomes[what] += 1

    def abandoned(self) -> None:
        with self.lock:
            self.abandoned_sessions.append(time.monotonic())

    def wrong(self, what: str, resp: httpx.Response | str) -> None:
        text = resp if isinstance(resp, str) else f"HTTP {resp.status_code} {resp.text[:200]!r}"
        with self.lock:
            self.outcomes[f"{what}: UNEXPECTED"] += 1
            if len(self.unexpected) < 50:
                self.unexpected.append(f"{what}: {text}")

    def some_acked(self, rng: random.Random) -> str | None:
        with self.lock:
            if not self.acked:
                return None
            # a recent one: dict order is insertion order
            keys = list(self.acked)[-200:]
        return rng.choice(keys)


class Driver:
    """One client thread's scenarios (each a method; ``SCENARIOS`` weighs them)."""

    def __init__(self, server: SoakServer, keys: Keys, ledger: Ledger, images: list[str], seed: int) -> None:
        self.server, self.keys, self.ledger, self.images = server, keys, ledger, images
        self.rng = random.Random(seed)
        self.http = httpx.Client(base_url=server.url, timeout=60)
        self.wantu = WantuClient(server.url, keys.access_key_id, keys.secret_access_key, keys.bucket)

    def close(self) -> None:
        self.http.close()
        self.wantu.close()

    def body(self) -> bytes:
        size = self.rng.choice((1, 100, 4096, 30_000, 200_000, 1_200_000))
        return os.urandom(size)

    def key(self, kind: str) -> str:
        return f"{kind}/{uuid.uuid4().hex}.bin"

    def expect(self, what: str, resp: httpx.Response, *ok: int) -> bool:
        if resp.status_code in ok:
            return True
        self.ledger.wrong(what, resp)
        return False

    # -- UPYUN ---------------------------------------------------------------------------------

    def rest_put(self) -> None:
        data, key = self.body(), self.key("rest")
        uri = object_uri(self.keys.bucket, key)
        r = self.http.put(uri, content=data, headers=rest_headers(self.keys.creds, "PUT", uri))
        if self.expect("rest put", r, 200):
            self.ledger.ack(key, md5(data))
            self.ledger.count("rest put")

    def rest_read(self) -> None:
        key = self.ledger.some_acked(self.rng)
        if key is None:
            return
        uri = object_uri(self.keys.bucket, key)
        method = self.rng.choice(("GET", "HEAD"))
        with self.ledger.lock:  # judged by what was acknowledged before the request went out
            gone, deleting = key in self.ledger.deleted, key in self.ledger.deleting
        r = self.http.request(method, uri, headers=rest_headers(self.keys.creds, method, uri))
        if gone:
            self.expect(f"rest {method} deleted", r, 404)
        elif deleting:
            self.expect(f"rest {method} being deleted", r, 200, 404)
        elif (
            self.expect(f"rest {method}", r, 200)
            and method == "GET"
            and md5(r.content) != self.ledger.acked[key]
        ):
            self.ledger.wrong("rest GET", f"{key}: wrong MD5")
        self.ledger.count(f"rest {method}")

    def rest_delete(self) -> None:
        key = self.ledger.some_acked(self.rng)
        if key is None:
            return
        with self.ledger.lock:
            if key in self.ledger.deleted or key in self.ledger.deleting:
                return
            self.ledger.deleting.add(key)
        uri = object_uri(self.keys.bucket, key)
        r = self.http.delete(uri, headers=rest_headers(self.keys.creds, "DELETE", uri))
        self.expect("rest delete", r, 200)
        with self.ledger.lock:
            self.ledger.deleting.discard(key)
            self.ledger.deleted.add(key)
        self.ledger.count("rest delete")

    def form_post(self) -> None:
        data, key = self.body(), self.key("form")
        fields = form_fields(self.keys.creds, key)
        r = self.http.post(f"/{self.keys.bucket}", data=fields, files={"file": ("f.bin", data)})
        if self.expect("form post", r, 200):
            self.ledger.ack(key, md5(data))
            self.ledger.count("form post")

    def multipart(self) -> None:
        """UPYUN multi-part (disorder): initiate, 3 parts, complete; a third are abandoned."""
        key = self.key("multi")
        uri = object_uri(self.keys.bucket, key)
        parts = [os.urandom(self.rng.choice((1000, 300_000))) for _ in range(3)]

        def put(headers: dict[str, str], content: bytes = b"") -> httpx.Response:
            return self.http.put(
                uri, content=content, headers={**headers, **rest_headers(self.keys.creds, "PUT", uri)}
            )

        r = put({"X-Upyun-Multi-Stage": "initiate", "X-Upyun-Multi-Disorder": "true"})
        if not self.expect("multipart initiate", r, 204):
            return
        upload = r.headers["x-upyun-multi-uuid"]
        abandon = self.rng.random() < 0.33
        for n, part in enumerate(parts):
            h = {"X-Upyun-Multi-Stage": "upload", "X-Upyun-Multi-Uuid": upload, "X-Upyun-Part-Id": str(n)}
            if not self.expect("multipart part", put(h, part), 204):
                return
            if abandon:
                self.ledger.abandoned()
                self.ledger.count("multipart abandoned")
                return
        r = put({"X-Upyun-Multi-Stage": "complete", "X-Upyun-Multi-Uuid": upload})
        if self.expect("multipart complete", r, 204, 201):
            self.ledger.ack(key, md5(b"".join(parts)))
            self.ledger.count("multipart")

    # -- Wantu ---------------------------------------------------------------------------------

    def wantu_single(self) -> None:
        data, key = self.body(), self.key("wantu")
        folder, _, name = key.rpartition("/")
        r = self.wantu.upload(data, fields={"dir": f"/{folder}", "name": name, "md5": md5(data)})
        if self.expect("wantu upload", r, 200):
            self.ledger.ack(key, md5(data))
            self.ledger.count("wantu upload")

    def wantu_blocks(self) -> None:
        key = self.key("wblock")
        folder, _, name = key.rpartition("/")
        blocks = [os.urandom(self.rng.choice((2000, 200_000))) for _ in range(3)]
        auth = self.wantu.authorization(self.wantu.policy())
        r = self.wantu.block_init(blocks[0], auth, {"dir": f"/{folder}", "name": name})
        if not self.expect("wantu blockInit", r, 200):
            return
        upload_id, id_ = r.json()["uploadId"], r.json()["id"]
        if self.rng.random() < 0.33:
            self.ledger.abandoned()
            self.ledger.count("wantu blocks abandoned")
            return
        for n, block in enumerate(blocks[1:], 2):
            if not self.expect(
                "wantu blockUpload", self.wantu.block_upload(block, auth, upload_id, id_, n), 200
            ):
                return
        parts = [(n, md5(b).upper()) for n, b in enumerate(blocks, 1)]
        whole = md5(b"".join(blocks))
        r = self.wantu.block_complete(auth, upload_id, id_, parts, whole)
        if self.expect("wantu blockComplete", r, 200):
            self.ledger.ack(key, whole)
            self.ledger.count("wantu blocks")

    # -- ImageX --------------------------------------------------------------------------------

    def imagex(self) -> None:
        from mediagate.client.imagex import ImageXClient

        client = ImageXClient(
            self.server.url,
            self.keys.bucket,
            self.keys.access_key_id,
            self.keys.secret_access_key,
            client=self.http,
        )
        data = self.body()
        name = f"imagex/{uuid.uuid4().hex}.bin"
        try:
            address = client.apply(key=name, size=len(data))
        except Exception as exc:
            self.ledger.wrong("imagex apply", str(exc))
            return
        [info] = address["StoreInfos"]
        fate = self.rng.random()
        if fate < 0.2:
            self.ledger.abandoned()
            self.ledger.count("imagex never uploaded")
            return
        url = f"http://{address['UploadHosts'][0]}/{info['StoreUri']}"
        crc = f"{__import__('zlib').crc32(data) & 0xFFFFFFFF:08x}"
        r = self.http.put(url, content=data, headers={"Authorization": info["Auth"], "Content-CRC32": crc})
        if not self.expect("imagex upload", r, 200):
            return
        if fate < 0.4:
            self.ledger.abandoned()
            self.ledger.count("imagex never committed")
            return
        try:
            client.commit(address["SessionKey"], [info["StoreUri"]])
        except Exception as exc:
            self.ledger.wrong("imagex commit", str(exc))
            return
        self.ledger.ack(info["StoreUri"].split("/", 1)[1], md5(data))
        self.ledger.count("imagex")

    # -- /v1 and tus ---------------------------------------------------------------------------

    def v1_put(self) -> None:
        data, key = self.body(), self.key("v1")
        auth = {"Authorization": f"Bearer {self.keys.api_key}"}
        r = self.http.put(f"/v1/buckets/{self.keys.bucket}/objects/{key}", content=data, headers=auth)
        if self.expect("v1 put", r, 200, 201):
            self.ledger.ack(key, md5(data))
            self.ledger.count("v1 put")
        r = self.http.get(
            f"/v1/buckets/{self.keys.bucket}/objects", params={"prefix": "v1/", "limit": "20"}, headers=auth
        )
        self.expect("v1 list", r, 200)
        self.ledger.count("v1 list")

    def tus(self) -> None:
        data, name = self.body(), f"{uuid.uuid4().hex}.bin"
        auth = {"Tus-Resumable": "1.0.0", "Authorization": f"Bearer {self.keys.upload_token}"}
        meta = f"filename {base64.b64encode(name.encode()).decode()}"
        r = self.http.post(
            f"/v1/tus/{self.keys.bucket}/",
            headers={**auth, "Upload-Length": str(len(data)), "Upload-Metadata": meta},
        )
        if not self.expect("tus create", r, 201):
            return
        url = r.headers["Location"]
        abandon = self.rng.random() < 0.33 and len(data) > 1
        half = len(data) // 2 if abandon else len(data)
        chunks = (
            [(0, data[:half])]
            if abandon
            else [(0, data[: half // 2 or 1]), (half // 2 or 1, data[half // 2 or 1 :])]
        )
        for offset, chunk in chunks:
            if not chunk:
                continue
            h = {**auth, "Content-Type": "application/offset+octet-stream", "Upload-Offset": str(offset)}
            if not self.expect("tus patch", self.http.patch(url, content=chunk, headers=h), 204):
                return
        if abandon:
            self.ledger.abandoned()
            self.ledger.count("tus abandoned")
            return
        r = self.http.head(url, headers=auth)
        if self.expect("tus head", r, 200) and r.headers.get("upload-offset") == str(len(data)):
            key = self.tus_key(name)
            if key is not None:
                self.ledger.ack(key, md5(data))
            self.ledger.count("tus")

    def tus_key(self, name: str) -> str | None:
        """Where the tus upload landed: the /v1 listing of the ``tus/`` prefix finds it by name."""
        auth = {"Authorization": f"Bearer {self.keys.api_key}"}
        r = self.http.get(f"/v1/buckets/{self.keys.bucket}/objects", params={"prefix": name}, headers=auth)
        items = r.json().get("objects", []) if r.status_code == 200 else []
        if not items:
            self.ledger.wrong("tus landed", f"no object {name}: {r.status_code} {r.text[:200]}")
            return None
        return str(items[0]["key"])

    # -- images ----------------------------------------------------------------------------------

    def thumbnail(self) -> None:
        key = self.rng.choice(self.images)
        width = self.rng.randrange(16, 400)
        r = self.http.get(f"{object_uri(self.keys.bucket, key)}!/fw/{width}")
        if self.expect("thumbnail", r, 200):
            self.ledger.count("thumbnail")

    # -- misbehaving clients ---------------------------------------------------------------------

    def raw(self, head: str, body: Iterator[bytes], *, read: bool = True) -> int | None:
        """Send ``head`` and ``body`` on a fresh socket; the status line's code (None if not read)."""
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=30) as sock:
            sock.sendall(head.encode())
            try:
                for piece in body:
                    sock.sendall(piece)
            except OSError:
                return None
            if not read:
                return None
            answer = b""
            with contextlib.suppress(OSError):
                while b"\r\n" not in answer and (got := sock.recv(4096)):
                    answer += got
            parts = answer.split(b" ", 2)
            return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None

    def cut_off(self) -> None:
        """A body announced at 2 MiB, 300 KB sent, then the connection closed: REST PUT, FORM,
        /v1 PUT, tus PATCH, an UPYUN multi-part part, a Wantu block, an ImageX upload."""
        kind = self.rng.choice(("rest", "form", "v1", "tus", "part", "block", "imagex"))
        length = 2 * 1024 * 1024
        sent = [os.urandom(100_000) for _ in range(3)]
        head = self.cut_head(kind, length, sent)
        if head is None:
            return
        self.raw(head + f"Content-Length: {length}\r\n\r\n", iter(sent), read=False)
        self.ledger.count(f"cut off {kind}")

    def cut_head(self, kind: str, length: int, sent: list[bytes]) -> str | None:
        """The request head (without Content-Length) of a ``cut_off`` body; starts the session it
        needs first. None: that start failed (counted as unexpected)."""
        key = self.key("cut")
        uri = object_uri(self.keys.bucket, key)
        if kind in ("rest", "part"):
            extra = ""
            if kind == "part":
                initiate = {"X-Upyun-Multi-Stage": "initiate", "X-Upyun-Multi-Disorder": "true"}
                r = self.http.put(uri, headers={**initiate, **rest_headers(self.keys.creds, "PUT", uri)})
                if not self.expect("multipart initiate", r, 204):
                    return None
                self.ledger.abandoned()
                extra = (
                    "X-Upyun-Multi-Stage: upload\r\nX-Upyun-Part-Id: 0\r\n"
                    f"X-Upyun-Multi-Uuid: {r.headers['x-upyun-multi-uuid']}\r\n"
                )
            h = rest_headers(self.keys.creds, "PUT", uri)
            auth = f"Authorization: {h['Authorization']}\r\nDate: {h['Date']}\r\n"
            return f"PUT {uri} HTTP/1.1\r\nHost: x\r\n{auth}{extra}"
        if kind in ("form", "block"):
            boundary = uuid.uuid4().hex
            if kind == "form":
                fields, target, auth = form_fields(self.keys.creds, key), f"/{self.keys.bucket}", ""
                part = "file"
            else:
                auth_value = self.wantu.authorization(self.wantu.policy())
                r = self.wantu.block_init(
                    b"first", auth_value, {"dir": "/cut", "name": f"{uuid.uuid4().hex}.bin"}
                )
                if not self.expect("wantu blockInit", r, 200):
                    return None
                self.ledger.abandoned()
                fields = {"id": r.json()["id"], "uploadId": r.json()["uploadId"], "partNumber": "2"}
                target, auth, part = "/api/proxy/blockUpload", f"Authorization: {auth_value}\r\n", "content"
            pre = "".join(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{n}"\r\n\r\n{v}\r\n'
                for n, v in fields.items()
            )
            pre += f'--{boundary}\r\nContent-Disposition: form-data; name="{part}"; filename="f.bin"\r\n\r\n'
            sent.insert(0, pre.encode())
            return (
                f"{'POST' if kind == 'form' else 'PUT'} {target} HTTP/1.1\r\nHost: x\r\n{auth}"
                f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
            )
        if kind == "v1":
            return (
                f"PUT /v1/buckets/{self.keys.bucket}/objects/{key} HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Bearer {self.keys.api_key}\r\n"
            )
        if kind == "imagex":
            from mediagate.client.imagex import ImageXClient

            client = ImageXClient(
                self.server.url,
                self.keys.bucket,
                self.keys.access_key_id,
                self.keys.secret_access_key,
                client=self.http,
            )
            [info] = client.apply(key=f"imagex/{uuid.uuid4().hex}.bin", size=length)["StoreInfos"]
            self.ledger.abandoned()
            return f"PUT /{info['StoreUri']} HTTP/1.1\r\nHost: x\r\nAuthorization: {info['Auth']}\r\n"
        tus_auth = {"Tus-Resumable": "1.0.0", "Authorization": f"Bearer {self.keys.upload_token}"}
        r = self.http.post(
            f"/v1/tus/{self.keys.bucket}/",
            headers={**tus_auth, "Upload-Length": str(length), "Upload-Metadata": "filename Y3V0LmJpbg=="},
        )
        if not self.expect("tus create", r, 201):
            return None
        self.ledger.abandoned()
        path = httpx.URL(r.headers["Location"]).raw_path.decode()
        return (
            f"PATCH {path} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\n"
            f"Authorization: Bearer {self.keys.upload_token}\r\n"
            "Content-Type: application/offset+octet-stream\r\nUpload-Offset: 0\r\n"
        )

    def cut_download(self) -> None:
        """A GET of an object or a thumbnail whose reader reads 16 KB of the answer and hangs up."""
        key = self.ledger.some_acked(self.rng)
        if key is None or self.rng.random() < 0.3:
            image = object_uri(self.keys.bucket, self.rng.choice(self.images))
            path = f"{image}!/fw/{self.rng.randrange(16, 400)}"
        else:
            path = object_uri(self.keys.bucket, key)
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=30) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            with contextlib.suppress(OSError):
                sock.recv(16384)
        self.ledger.count("cut download")

    def idle_connection(self) -> None:
        """A connection that sends half a request head and then nothing for 3 s (slowloris-ish)."""
        with socket.create_connection(("127.0.0.1", self.server.port), timeout=30) as sock:
            sock.sendall(f"GET /{self.keys.bucket}/x HTTP/1.1\r\nHost: x\r\n".encode())
            time.sleep(3)
        self.ledger.count("idle connection")

    def slow(self) -> None:
        """A REST PUT of 48 KB trickled in 4 KB pieces over about 2.5 s; acknowledged."""
        key, data = self.key("slow"), os.urandom(48 * 1024)
        uri = object_uri(self.keys.bucket, key)
        h = rest_headers(self.keys.creds, "PUT", uri)
        head = (
            f"PUT {uri} HTTP/1.1\r\nHost: x\r\nAuthorization: {h['Authorization']}\r\nDate: {h['Date']}\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
        )

        def trickle() -> Iterator[bytes]:
            for i in range(0, len(data), 4096):
                time.sleep(0.2)
                yield data[i : i + 4096]

        status = self.raw(head, trickle())
        if status == 200:
            self.ledger.ack(key, md5(data))
            self.ledger.count("slow put")
        else:
            self.ledger.wrong("slow put", f"status {status}")

    def bad_signature(self) -> None:
        kind = self.rng.choice(("rest", "form", "wantu", "imagex", "v1", "tus"))
        data, key = b"bad", self.key("bad")
        if kind == "rest":
            uri = object_uri(self.keys.bucket, key)
            wrong = Creds(self.keys.bucket, self.keys.creds.operator, "not-the-password", "")
            r = self.http.put(uri, content=data, headers=rest_headers(wrong, "PUT", uri))
        elif kind == "form":
            fields = form_fields(self.keys.creds, key) | {"signature": "0" * 32}
            r = self.http.post(f"/{self.keys.bucket}", data=fields, files={"file": ("f.bin", data)})
        elif kind == "wantu":
            other = WantuClient(self.server.url, self.keys.access_key_id, "wrong-secret", self.keys.bucket)
            try:
                r = other.upload(data, fields={"dir": "/bad", "name": "x.bin"})
            finally:
                other.close()
        elif kind == "imagex":
            from mediagate.client.imagex import ImageXClient

            client = ImageXClient(
                self.server.url, self.keys.bucket, self.keys.access_key_id, "wrong", client=self.http
            )
            try:
                client.apply(key=key, size=3)
                self.ledger.wrong("bad signature imagex", "accepted")
            except Exception as exc:
                status = getattr(exc, "status", None)
                if status not in (401, 403):
                    self.ledger.wrong("bad signature imagex", str(exc))
            self.ledger.count("bad signature imagex")
            return
        elif kind == "v1":
            r = self.http.put(
                f"/v1/buckets/{self.keys.bucket}/objects/{key}",
                content=data,
                headers={"Authorization": "Bearer mg_wrong"},
            )
        else:
            r = self.http.post(
                f"/v1/tus/{self.keys.bucket}/",
                headers={"Tus-Resumable": "1.0.0", "Authorization": "Bearer wrong", "Upload-Length": "3"},
            )
        self.expect(f"bad signature {kind}", r, 401, 403)
        self.ledger.count(f"bad signature {kind}")


SCENARIOS: list[tuple[str, int]] = [
    ("rest_put", 10),
    ("rest_read", 10),
    ("rest_delete", 2),
    ("form_post", 6),
    ("multipart", 4),
    ("wantu_single", 4),
    ("wantu_blocks", 3),
    ("imagex", 4),
    ("v1_put", 4),
    ("tus", 4),
    ("thumbnail", 8),
    ("cut_off", 4),
    ("cut_download", 2),
    ("idle_connection", 1),
    ("slow", 1),
    ("bad_signature", 3),
]


def drive(driver: Driver, deadline: float, stop: threading.Event) -> None:
    names = [n for n, _ in SCENARIOS]
    weights = [w for _, w in SCENARIOS]
    while time.monotonic() < deadline and not stop.is_set():
        name = driver.rng.choices(names, weights)[0]
        try:
            getattr(driver, name)()
        except (httpx.HTTPError, OSError) as exc:
            driver.ledger.wrong(name, f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # a bug in the bench or an answer it cannot parse: keep going
            driver.ledger.wrong(name, f"{type(exc).__name__}: {exc}")


# -- sampling ------------------------------------------------------------------------------------------


class Catalog:
    """Row counts and connections of the server's catalog (SQLite file or PostgreSQL database)."""

    def __init__(self, server: SoakServer) -> None:
        self.server = server
        self.url = server.database_url

    def rows(self) -> dict[str, int]:
        query = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM {t}" for t in TABLES)
        if self.url is None:
            path = self.server.home / "catalog.sqlite3"
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)) as db:
                return {name: int(n) for name, n in db.execute(query)}
        import psycopg
        from sqlalchemy.engine import make_url

        dsn = make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(dsn) as conn:
            return {str(name): int(n) for name, n in conn.execute(query)}

    def connections(self, procs: list[psutil.Process]) -> int:
        if self.url is None:
            found = 0
            for p in procs:
                with contextlib.suppress(psutil.Error):
                    found += sum(1 for f in p.open_files() if "catalog.sqlite3" in f.path)
            return found
        import psycopg
        from sqlalchemy.engine import make_url

        url = make_url(self.url)
        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(dsn) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (url.database,),
            ).fetchone()
        return int(row[0]) if row else 0


COLUMNS = (
    ("t", "{:>5.0f}"),
    ("rss_mb", "{:>7.1f}"),
    ("fds", "{:>5d}"),
    ("threads", "{:>7d}"),
    ("tcp", "{:>4d}"),
    ("staging", "{:>7d}"),
    ("cache", "{:>6d}"),
    ("log_kb", "{:>7.1f}"),
    ("db_conn", "{:>7d}"),
    ("upload_sessions", "{:>8d}"),
    ("upload_parts", "{:>6d}"),
    ("deliveries", "{:>6d}"),
    ("tasks", "{:>6d}"),
    ("garbage_blobs", "{:>7d}"),
    ("signature_uses", "{:>6d}"),
    ("ops", "{:>6d}"),
    ("load1", "{:>5.2f}"),
)
SHORT = {
    "upload_sessions": "sessions",
    "upload_parts": "parts",
    "deliveries": "outbox",
    "garbage_blobs": "garbage",
    "signature_uses": "sigs",
}


def count_files(path: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(path)) if path.exists() else 0


def sample(server: SoakServer, catalog: Catalog, started: float, ledger: Ledger) -> dict[str, float]:
    root = psutil.Process(server.pid)
    procs = [root, *root.children(recursive=True)]
    rss = fds = threads = tcp = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            rss += p.memory_info().rss
            fds += p.num_fds()
            threads += p.num_threads()
            tcp += len(p.net_connections(kind="tcp"))
    with ledger.lock:
        ops = sum(ledger.outcomes.values())
    row: dict[str, float] = {
        "t": time.monotonic() - started,
        "rss_mb": rss / 2**20,
        "fds": fds,
        "threads": threads,
        "tcp": tcp,
        "staging": count_files(server.home / "staging"),
        "cache": count_files(server.home / "cache"),
        "log_kb": server.log.stat().st_size / 1024,
        "db_conn": catalog.connections(procs),
        "ops": ops,
        "load1": os.getloadavg()[0],
    }
    row.update(catalog.rows())
    return row


def header() -> str:
    names = [SHORT.get(n, n) for n, _ in COLUMNS]
    widths = [len(fmt.format(0 if "d" in fmt else 0.0)) for _, fmt in COLUMNS]
    return " ".join(f"{n:>{max(w, len(n))}}" for n, w in zip(names, widths, strict=True))


def line(row: dict[str, float]) -> str:
    names = [SHORT.get(n, n) for n, _ in COLUMNS]
    cells = []
    for (name, fmt), short in zip(COLUMNS, names, strict=True):
        value = row.get(name, 0)
        text = fmt.format(int(value) if "d" in fmt else float(value))
        cells.append(f"{text:>{max(len(text), len(short))}}")
    return " ".join(cells)


# -- the verdict ---------------------------------------------------------------------------------------

TOLERANCE: dict[str, tuple[float, float]] = {
    "rss_mb": (0.1, 10.0),
    "fds": (0.2, 10.0),
    "threads": (0.2, 4.0),
    "tcp": (0.5, 10.0),
    "staging": (0.5, 10.0),
    "db_conn": (0.5, 3.0),
    "upload_sessions": (0.5, 20.0),
    "upload_parts": (0.5, 20.0),
    "garbage_blobs": (0.5, 20.0),
}
"""Metric -> (relative, absolute) growth allowed between the first and the last third."""
PER_RATE = frozenset({"upload_sessions", "upload_parts", "garbage_blobs"})
"""Rows judged per operation/s (the seconds of load they stand for; tolerance in seconds)."""


def slope(xs: list[float], ys: list[float]) -> float:
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    den = sum((x - mx) ** 2 for x in xs) or 1.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den


def slope_report(rows: list[dict[str, float]], warmup: float) -> list[str]:
    """One line per watched metric; failures start with ``GREW``."""
    steady = [r for r in rows if r["t"] >= warmup]
    if len(steady) < 6:
        return ["too few samples after the warm-up for a slope report (run longer)"]
    third = len(steady) // 3
    rates = [0.0] + [max(0.1, (b["ops"] - a["ops"]) / max(0.1, b["t"] - a["t"])) for a, b in pairwise(rows)]
    rate_of = {id(r): rate for r, rate in zip(rows, rates, strict=True)}
    first_rate = sum(rate_of[id(r)] for r in steady[:third]) / third
    last_rate = sum(rate_of[id(r)] for r in steady[-third:]) / third
    out = [f"     operations/s       first third {first_rate:9.1f}  last third {last_rate:9.1f}"]
    for name, (rel, absolute) in TOLERANCE.items():
        first = sum(r[name] for r in steady[:third]) / third
        last = sum(r[name] for r in steady[-third:]) / third
        if name in PER_RATE:
            # rows in flight scale with the load (the machine is shared: it varies); what must not
            # grow is how many seconds of operations they stand for
            first, last = first / first_rate, last / last_rate
        per_min = slope([r["t"] for r in steady], [r[name] for r in steady]) * 60
        grew = last > first * (1 + rel) + absolute
        verdict = "GREW" if grew else "ok  "
        out.append(
            f"{verdict} {name:<16} first third {first:9.1f}  last third {last:9.1f}"
            f"  slope {per_min:+9.2f}/min"
        )
    log_rate = (rows[-1]["log_kb"] - rows[0]["log_kb"]) / max(1.0, rows[-1]["t"] - rows[0]["t"]) * 60
    flood = log_rate > 100
    out.append(f"{'GREW' if flood else 'ok  '} {'log':<16} {log_rate:.1f} KiB/min (limit 100)")
    return out


def read_back(server: SoakServer, keys: Keys, ledger: Ledger, concurrency: int) -> list[str]:
    """Every acknowledged object answers with its MD5; every deleted one is gone."""
    problems: list[str] = []
    items = list(ledger.acked.items())
    lock = threading.Lock()

    def check(chunk: list[tuple[str, str]]) -> None:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            for key, digest in chunk:
                uri = object_uri(keys.bucket, key)
                r = http.get(uri, headers=rest_headers(keys.creds, "GET", uri))
                if key in ledger.deleted:
                    ok = r.status_code == 404
                else:
                    ok = r.status_code == 200 and hashlib.md5(r.content).hexdigest() == digest
                if not ok:
                    with lock:
                        problems.append(f"{key}: HTTP {r.status_code}, deleted={key in ledger.deleted}")

    threads = [threading.Thread(target=check, args=(items[i::concurrency],)) for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return problems


def make_images(server: SoakServer, keys: Keys, count: int = 4) -> list[str]:
    from PIL import Image

    found = []
    with httpx.Client(base_url=server.url, timeout=60) as http:
        for n in range(count):
            buf = io.BytesIO()
            Image.effect_noise((1200, 900), 40 + n).convert("RGB").save(buf, "JPEG", quality=85)
            key = f"img/source-{n}.jpg"
            uri = object_uri(keys.bucket, key)
            r = http.put(uri, content=buf.getvalue(), headers=rest_headers(keys.creds, "PUT", uri))
            r.raise_for_status()
            found.append(key)
    return found


def run(args: argparse.Namespace, root: Path, database_url: str | None) -> int:
    server = SoakServer(root, database_url=database_url, redis=args.redis, session_ttl=args.session_ttl)
    keys = make_keys(server)
    server.start()
    ledger = Ledger()
    catalog = Catalog(server)
    rows: list[dict[str, float]] = []
    failures: list[str] = []
    try:
        images = make_images(server, keys)
        started = time.monotonic()
        cpu_before = tree_cpu_seconds(server.pid)
        deadline = started + args.duration * 60
        stop = threading.Event()
        drivers = [Driver(server, keys, ledger, images, args.seed + i) for i in range(args.concurrency)]
        threads = [threading.Thread(target=drive, args=(d, deadline, stop), daemon=True) for d in drivers]
        print(
            f"soak: {args.duration:g} min, {args.concurrency} clients, catalog "
            f"{'postgresql' if database_url else 'sqlite'}{', redis' if args.redis else ''}, "
            f"session TTL {args.session_ttl} s; {load_average()}",
            flush=True,
        )
        print(header(), flush=True)
        for t in threads:
            t.start()
        try:
            tick = started
            while any(t.is_alive() for t in threads):
                tick += args.sample
                while time.monotonic() < tick and any(t.is_alive() for t in threads):
                    time.sleep(0.2)
                rows.append(sample(server, catalog, started, ledger))
                print(line(rows[-1]), flush=True)
        except KeyboardInterrupt:
            stop.set()
        for t in threads:
            t.join()
        for d in drivers:
            d.close()
        loaded_until = time.monotonic()
        cpu = tree_cpu_seconds(server.pid) - cpu_before
        with ledger.lock:
            ops = sum(ledger.outcomes.values())
        # the collector's turn: one session TTL and two collector rounds
        while time.monotonic() < loaded_until + args.session_ttl + 12:
            time.sleep(min(args.sample, loaded_until + args.session_ttl + 12 - time.monotonic()))
            rows.append(sample(server, catalog, started, ledger))
            print(line(rows[-1]) + "  (idle)", flush=True)
        final = rows[-1]
        print(f"\n{load_average()} at the end")
        print(
            f"server CPU {cpu:.1f} s for {ops} operations in {loaded_until - started:.0f} s: "
            f"{cpu / max(1, ops) * 1000:.2f} ms per operation"
        )
        print("\noutcomes:")
        for name, n in sorted(ledger.outcomes.items()):
            print(f"  {n:7d}  {name}")
        print("\nslope report (steady state, after the warm-up):")
        # sessions reach their plateau one TTL (and a collector round) after the load starts
        warmup = max(args.warmup, args.session_ttl + 10)
        report = slope_report([r for r in rows if r["t"] <= loaded_until - started + 0.5], warmup)
        for text in report:
            print(f"  {text}")
        failures += [t for t in report if t.startswith("GREW")]
        if final["upload_sessions"] > 0:
            failures.append(f"{final['upload_sessions']:.0f} sessions left one TTL after the load stopped")
        if final["upload_parts"] > 0:
            failures.append(f"{final['upload_parts']:.0f} parts left one TTL after the load stopped")
        if final["staging"] > 0:
            failures.append(f"{final['staging']:.0f} files left in staging after the load stopped")
        problems = read_back(server, keys, ledger, args.concurrency)
        print(
            f"\nread back {len(ledger.acked)} acknowledged objects ({len(ledger.deleted)} deleted): "
            f"{len(problems)} problems"
        )
        failures += problems[:20]
        failures += ledger.unexpected[:30]
    finally:
        server.stop()
    log = server.log.read_text(errors="replace")
    if "Traceback" in log:
        failures.append("the server logged a traceback:\n" + log[log.index("Traceback") :][:3000])
    levels = Counter(w for w in ("WARNING", "ERROR") for _ in range(log.count(w)))
    print(f"server log: {len(log.splitlines())} lines, {dict(levels)}")
    json_out = args.json
    if json_out:
        Path(json_out).write_text(json.dumps({"rows": rows, "outcomes": ledger.outcomes}, indent=1))
    if failures:
        print("\nFAILED:")
        for text in failures:
            print(f"  {text}")
        return 1
    print("\nOK: nothing grew without bound; every acknowledged object read back with its MD5")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=5.0, help="minutes of load")
    parser.add_argument("--concurrency", type=int, default=6)
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--warmup", type=float, default=30.0, help="seconds left out of the slope report")
    parser.add_argument("--session-ttl", type=int, default=40)
    parser.add_argument("--catalog", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--redis", action="store_true", help=f"tasks and rate limits on {REDIS_URL}")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="write the samples and outcomes to this file")
    parser.add_argument("--dir", help="where the server's home goes (default: the temp dir)")
    args = parser.parse_args()
    with workdir(args.dir) as root:
        if args.catalog == "postgresql":
            with postgres_database(POSTGRES_URL) as url:
                status = run(args, root, url)
        else:
            status = run(args, root, None)
    raise SystemExit(status)


if __name__ == "__main__":
    main()

"""Fixtures for the Wantu tests: a seed-only client bound to a fresh namespace, images, and a
loopback receiver for callbackUrl."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from mediagate.core.buckets import BucketCredentials
from tests.conftest import LiveServer
from tests.protocols.wantu.client import WantuClient


@pytest.fixture
def wantu(server: LiveServer, bucket: BucketCredentials) -> Iterator[WantuClient]:
    client = WantuClient(server.url, bucket.access_key_id, bucket.secret_access_key, bucket.bucket)
    yield client
    client.close()


def png(width: int = 40, height: int = 30) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


def jpeg_with_exif(width: int = 40, height: int = 30, make: str = "Canon", model: str = "EOS 5D") -> bytes:
    exif = Image.Exif()
    exif[0x010F] = make
    exif[0x0110] = model
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 240)).save(buf, "JPEG", exif=exif.tobytes())
    return buf.getvalue()


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An HTTP server on loopback that records what it is sent and answers ``reply``."""

    url: str
    calls: list[Received] = field(default_factory=list)
    reply: bytes = b'{"ok":true,"from":"receiver"}'
    status: int = 200


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            rec = state["r"]
            rec.calls.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(rec.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(rec.reply)))
            self.end_headers()
            self.wfile.write(rec.reply)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["r"] = Receiver(f"http://127.0.0.1:{httpd.server_address[1]}/cb")
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state["r"]
    httpd.shutdown()
    httpd.server_close()

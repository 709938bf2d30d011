"""Helpers for FORM API tests: policies signed the seed's way and multipart bodies built by hand
(so that field order, file-part-ness of text fields and malformations are under the test's control).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path
from typing import Any

import httpx

from mediagate.core.buckets import BucketCredentials
from mediagate.core.gateway import Gateway
from tests.conftest import staging_files

FilePart = tuple[str, bytes]  # (filename, content)
Field = tuple[str, str | bytes | FilePart]


def policy_of(creds: BucketCredentials, key: str = "/f.bin", **extra: Any) -> str:
    """A base64 policy for ``creds.bucket`` valid for 30 minutes; ``extra`` keys use '_' for '-'."""
    doc: dict[str, Any] = {
        "bucket": creds.bucket,
        "expiration": int(time.time()) + 1800,
        "save-key": key,
    }
    doc.update({k.replace("_", "-"): v for k, v in extra.items()})
    return base64.b64encode(json.dumps(doc).encode()).decode()


def raw_policy(doc: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(doc).encode()).decode()


def signature(creds: BucketCredentials, policy: str) -> str:
    """The old FORM signature: md5(policy & form_api_secret)."""
    return hashlib.md5(f"{policy}&{creds.form_api_secret}".encode()).hexdigest()


def authorization(
    creds: BucketCredentials, policy: str, *, uri: str | None = None, date: str = "", content_md5: str = ""
) -> str:
    """``UPYUN op:base64(hmac-sha1(md5(password), POST&uri&date&policy[&content-md5]))``."""
    key = hashlib.md5(creds.password.encode()).hexdigest().encode()
    parts = ["POST", uri or f"/{creds.bucket}", date, policy, content_md5]
    message = "&".join(p for p in parts if p)
    digest = hmac.new(key, message.encode(), hashlib.sha1).digest()
    return f"UPYUN {creds.operator}:{base64.b64encode(digest).decode()}"


def http_date(offset: float = 0) -> str:
    return formatdate(time.time() + offset, usegmt=True)


def multipart(fields: list[Field], boundary: str | None = None) -> tuple[bytes, str]:
    """(body, content-type) with the parts exactly in the given order."""
    boundary = boundary or uuid.uuid4().hex
    out = bytearray()
    for name, value in fields:
        out += f"--{boundary}\r\n".encode()
        if isinstance(value, tuple):
            filename, content = value
            out += f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'.encode()
            out += b"Content-Type: application/octet-stream\r\n\r\n"
            out += content
        else:
            out += f'Content-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            out += value.encode() if isinstance(value, str) else value
        out += b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def post(
    client: httpx.Client, bucket: str, fields: list[Field], *, path: str | None = None
) -> httpx.Response:
    body, content_type = multipart(fields)
    return client.post(path or f"/{bucket}", content=body, headers={"Content-Type": content_type})


def upload(
    client: httpx.Client,
    creds: BucketCredentials,
    content: bytes,
    *,
    filename: str = "f.bin",
    key: str = "/f.bin",
    **policy: Any,
) -> httpx.Response:
    """The seed's layout: policy, signature, file last."""
    p = policy_of(creds, key, **policy)
    return post(
        client,
        creds.bucket,
        [("policy", p), ("signature", signature(creds, p)), ("file", (filename, content))],
    )


def keys_in(admin: Gateway, bucket: str, folder: str = "") -> list[str]:
    """Every object key under ``folder`` (recursive), from the catalog."""
    b = admin.catalog.get_bucket(bucket)
    assert b is not None
    found: list[str] = []

    def walk(path: str) -> Iterator[str]:
        for entry in admin.catalog.list_dir(b.id, path, limit=10000):
            full = f"{path}/{entry.name}" if path else entry.name
            if entry.is_folder:
                yield from walk(full)
            else:
                yield full

    found.extend(walk(folder))
    return found


def wait_until(predicate: Any, timeout: float = 5.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def staging_is_empty(home: Path) -> bool:
    return not staging_files(home)


class Receiver:
    """A customer server on loopback (threading HTTPServer): records every request and answers
    with the next of ``statuses`` (the last one repeats), after ``delay`` seconds."""

    def __init__(
        self,
        statuses: list[int] | None = None,
        *,
        body: bytes = b'{"ok":true}',
        content_type: str = "application/json",
        delay: float = 0.0,
    ) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.statuses = list(statuses or [200])
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.body, self.content_type, self.delay = body, content_type, delay
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                with outer.lock:
                    outer.requests.append((self.path, headers, data))
                    status = outer.statuses.pop(0) if len(outer.statuses) > 1 else outer.statuses[0]
                time.sleep(outer.delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", outer.content_type)
                    self.send_header("Content-Length", str(len(outer.body)))
                    self.end_headers()
                    self.wfile.write(outer.body)
                except OSError:
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> Receiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

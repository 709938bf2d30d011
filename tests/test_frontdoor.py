"""The front door (``mediagate.frontdoor``): what every request meets before and after its dialect.

* A body beyond the upload limit is refused from its declared ``Content-Length``, on every
  dialect's upload path and in that dialect's format; with ``Expect: 100-continue`` the answer comes
  without ``100 Continue``, so the client never sends the body.
* An answer sent before the request body was read to its end says ``Connection: close``.
* An exception no dialect caught (a bug) is a dialect-shaped 500 carrying the request id, and one
  log line; its traceback only at DEBUG.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from mediagate.core.buckets import BucketCredentials, create_bucket
from mediagate.frontdoor import FrontDoor
from mediagate.services import build_gateway
from tests.conftest import LiveServer, make_home
from tests.protocols.upyun.rest_client import object_uri, sign
from tests.support import uploads

LIMIT = 1000
"""The servers here take uploads of at most this many bytes (``max_upload_size``)."""
TIMEOUT = 10.0


@dataclass
class Reply:
    status_line: str
    headers: dict[str, str]
    body: bytes

    @property
    def status(self) -> int:
        return int(self.status_line.split(" ")[1])

    def json(self) -> Any:
        return json.loads(self.body)


def exchange(port: int, head: bytes, body: bytes = b"") -> Reply:
    """Send a request head (and ``body``, possibly less than it declares), then read what comes
    back until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # answered before the end
            sock.sendall(head + body)
        raw = bytearray()
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            raw += chunk
    block, sep, rest = bytes(raw).partition(b"\r\n\r\n")
    assert sep, f"no answer, or the connection was not closed after it: {bytes(raw[:300])!r}"
    lines = block.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return Reply(lines[0], headers, rest)


def request_head(method: str, target: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.fixture(scope="module")
def small_limit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, BucketCredentials]]:
    settings = make_home(tmp_path_factory.mktemp("home"))
    gw = build_gateway(settings, migrate=False)
    creds = create_bucket(gw.catalog, gw.secrets, "limited")
    gw.catalog.close()
    env = {"MEDIAGATE_MAX_UPLOAD_SIZE": str(LIMIT), "MEDIAGATE_LOG_FORMAT": "json"}
    live = LiveServer(settings.home, env=env).start()
    yield live, creds
    live.stop()
    assert "Traceback" not in live.log()


def upload_paths(creds: BucketCredentials) -> list[tuple[str, str, dict[str, str], int, Any]]:
    """(name, target, headers, expected status, shape check) of every dialect's upload path."""
    uri = object_uri(creds.bucket, "big.bin")
    multipart = {"Content-Type": "multipart/form-data; boundary=xyz"}
    wantu = {**multipart, "Authorization": "UPLOAD_AK_TOP x"}
    return [
        ("upyun rest", uri, sign(creds, "PUT", uri), 413, lambda r: _upyun_rest(r)),
        (
            "upyun multipart part",
            uri,
            {**sign(creds, "PUT", uri), "X-Upyun-Multi-Stage": "upload", "X-Upyun-Multi-Uuid": "u"},
            413,
            lambda r: _upyun_rest(r),
        ),
        ("upyun form", f"/{creds.bucket}", multipart, 413, lambda r: _form(r)),
        (
            "upyun pretreatment",
            "/pretreatment/",
            {"Content-Type": "application/x-www-form-urlencoded"},
            413,
            lambda r: _upyun_rest(r),
        ),
        ("wantu upload", "/api/proxy/upload", wantu, 400, lambda r: _wantu(r)),
        ("wantu block", "/api/proxy/blockUpload", wantu, 400, lambda r: _wantu(r)),
        (
            "imagex seed upload",
            "/upload/v1/tos-cn-i-x/a.png",
            {"Authorization": "x"},
            413,
            lambda r: _imagex(r),
        ),
        ("imagex store", "/tos-cn-i-x/a.png", {"Authorization": "x"}, 413, lambda r: _imagex(r)),
        (
            "v1 upload",
            f"/v1/buckets/{creds.bucket}/objects/a.bin",
            {"Authorization": "Bearer x"},
            413,
            lambda r: _v1(r),
        ),
        (
            "tus creation-with-upload",
            f"/v1/tus/{creds.bucket}/",
            {"Tus-Resumable": "1.0.0", "Content-Type": "application/offset+octet-stream"},
            413,
            lambda r: _tus(r),
        ),
    ]


def _upyun_rest(r: Reply) -> None:
    body = r.json()
    assert set(body) == {"msg", "code", "id"} and body["code"] // 100000 == 413, body
    assert body["id"] == r.headers["x-request-id"] and str(LIMIT) in body["msg"]


def _form(r: Reply) -> None:
    body = r.json()
    assert body["code"] == 413 and str(LIMIT) in body["message"] and "time" in body, body


def _wantu(r: Reply) -> None:
    body = r.json()
    assert body["code"] == "InvalidArgument" and str(LIMIT) in body["message"], body
    assert body["requestId"] == r.headers["x-request-id"]


def _v1(r: Reply) -> None:
    error = r.json()["error"]
    assert error["code"] == "payload_too_large" and str(LIMIT) in error["message"], error
    assert error["request_id"] == r.headers["x-request-id"]


def _tus(r: Reply) -> None:
    error = r.json()["error"]
    assert error["code"] == "payload_too_large" and str(LIMIT) in error["message"], error
    assert r.headers["tus-resumable"] == "1.0.0"


def _imagex(r: Reply) -> None:
    body = r.json()
    assert body["ResponseMetadata"]["Error"]["Code"] == "InvalidFileSize", body
    assert str(LIMIT) in body["ResponseMetadata"]["Error"]["Message"]


def test_an_oversize_declared_body_is_refused_without_100_continue(
    small_limit: tuple[LiveServer, BucketCredentials],
) -> None:
    server, creds = small_limit
    for name, target, headers, status, check in upload_paths(creds):
        method = (
            "POST"
            if target.startswith(("/api", "/upload", "/v1/tus")) or "form" in name or "pretreatment" in name
            else "PUT"
        )
        head = request_head(
            method, target, {**headers, "Content-Length": str(10 * 1024 * 1024), "Expect": "100-continue"}
        )
        reply = exchange(server.port, head)  # the body is never sent: the client waits for 100
        assert reply.status == status, (name, reply)
        assert reply.headers.get("connection") == "close", (name, reply.headers)
        check(reply)


def test_an_oversize_body_already_on_its_way_is_answered_and_the_connection_closed(
    small_limit: tuple[LiveServer, BucketCredentials],
) -> None:
    """No ``Expect``: the client sends; the answer still comes (after a bounded read), then the
    connection closes rather than reading the rest as the next request."""
    server, creds = small_limit
    uri = object_uri(creds.bucket, "big.bin")
    head = request_head("PUT", uri, {**sign(creds, "PUT", uri), "Content-Length": str(10 * 1024 * 1024)})
    reply = exchange(server.port, head, b"x" * (1100 * 1024))
    assert reply.status == 413 and reply.headers.get("connection") == "close"
    _upyun_rest(reply)


def test_a_small_oversize_body_is_read_and_the_connection_kept(
    small_limit: tuple[LiveServer, BucketCredentials],
) -> None:
    server, creds = small_limit
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        for upload in (uploads.upyun_rest, uploads.upyun_form, uploads.wantu):
            refused = upload(client, creds, b"y" * (20 * LIMIT))
            assert refused.status_code in (400, 413), refused.text
            assert str(LIMIT) in refused.text
        assert client.get("/livez").status_code == 200


def test_an_early_refusal_does_not_ask_for_the_body(
    small_limit: tuple[LiveServer, BucketCredentials],
) -> None:
    """A client that sent ``Expect: 100-continue`` and is refused before its body is needed (here
    its credentials) gets the answer at once, never ``100 Continue``, and sends no body."""
    server, creds = small_limit
    uri = object_uri(creds.bucket, "small.bin")
    wrong = sign(creds, "PUT", uri, password="wrong")
    wantu = {"Content-Type": "multipart/form-data; boundary=xyz", "Authorization": "UPLOAD_AK_TOP bm9uZQ"}
    for method, target, headers, status in (
        ("PUT", uri, wrong, 401),
        ("PUT", "/api/proxy/upload", wantu, 401),
    ):
        head = {**headers, "Content-Length": str(LIMIT // 2), "Expect": "100-continue"}
        reply = exchange(server.port, request_head(method, target, head))
        assert reply.status == status, (target, reply)
        assert reply.headers.get("connection") == "close", (target, reply.headers)


# -- exceptions no dialect caught ------------------------------------------------------------------------


async def _bug(scope: Scope, receive: Receive, send: Send) -> None:
    """An app with a bug: what an endpoint that raises something unexpected looks like to the
    front door."""
    raise RuntimeError("boom: an unexpected failure")


def call(*requests: tuple[str, str, dict[str, str]]) -> list[httpx.Response]:
    """Send ``requests`` in process to the buggy app behind the front door."""
    app = FrontDoor(_bug)

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mediagate") as client:
            return [await client.request(m, url, headers=h) for m, url, h in requests]

    return asyncio.run(run())


def test_an_unexpected_exception_is_the_dialects_500_with_the_request_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="mediagate.access"):
        rest, wantu, imagex, public, v1 = call(
            ("PUT", "/photos/a.jpg", {"Authorization": "UPYUN op:sig"}),
            ("PUT", "/api/proxy/upload", {}),
            ("POST", "/?Action=ApplyImageUpload&Version=2018-08-01", {}),
            ("GET", "/photos/a.jpg", {}),
            ("GET", "/v1/buckets/photos/objects", {}),
        )
    assert rest.status_code == 500 and set(rest.json()) == {"msg", "code", "id"}
    assert rest.json()["id"] == rest.headers["x-request-id"]
    assert rest.headers["x-request-id"] in rest.json()["msg"]
    assert wantu.status_code == 500 and wantu.json()["code"] == "InternalError"
    assert wantu.json()["requestId"] == wantu.headers["x-request-id"]
    assert imagex.status_code == 500
    assert imagex.json()["ResponseMetadata"]["Error"]["Code"] == "InternalError"
    assert public.status_code == 500 and public.json()["code"] == 500
    assert v1.status_code == 500 and v1.json()["error"]["code"] == "internal_error"
    assert v1.json()["error"]["request_id"] == v1.headers["x-request-id"]

    lines = [r for r in caplog.records if r.name == "mediagate.access"]
    assert len(lines) == 5, [r.getMessage() for r in caplog.records]
    fields = lines[0].fields  # type: ignore[attr-defined]
    assert lines[0].levelno == logging.ERROR and fields["rid"] == rest.headers["x-request-id"]
    assert fields["reason"].startswith("internal_error")
    assert fields["cause"] == "RuntimeError: boom: an unexpected failure"
    assert all(r.exc_info is None for r in lines), "a traceback at INFO"


def test_the_traceback_of_an_unexpected_exception_is_logged_at_debug(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG, logger="mediagate.access"):
        call(("PUT", "/photos/a.jpg", {"Authorization": "UPYUN op:sig"}))
    [line] = [r for r in caplog.records if r.name == "mediagate.access"]
    assert line.exc_info is not None and isinstance(line.exc_info[1], RuntimeError)

"""The HTTP layer (mediagate.httpserver) spoken to over raw sockets: what PHP's curl sends is served,
request-smuggling shapes are refused, oversize heads are refused before they are read whole."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

import httpx
import pytest

from mediagate.core.buckets import BucketCredentials
from tests.conftest import LiveServer, free_port, make_home
from tests.protocols.wantu.client import b64, hmac_sha1, resource_id, upload_token
from tests.support.cli import run_mediagate


def connect(server: LiveServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return sock


def read_all(sock: socket.socket, timeout: float = 10) -> bytes:
    """Everything until the server closes the connection (fails the test on a hang)."""
    sock.settimeout(timeout)
    out = bytearray()
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        out += chunk
    return bytes(out)


def read_one(sock: socket.socket) -> bytes:
    """One whole response (head and ``Content-Length`` body) from a kept-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    while len(body) < int(head_of(data).get("content-length", "0")):
        chunk = sock.recv(65536)
        assert chunk, data
        body += chunk
    return head + b"\r\n\r\n" + body


def exchange(server: LiveServer, raw: bytes) -> bytes:
    with connect(server) as sock:
        sock.sendall(raw)
        return read_all(sock)


def status_of(response: bytes) -> int:
    assert response.startswith(b"HTTP/1.1 "), response[:200]
    return int(response.split(b" ", 2)[1])


def head_of(response: bytes) -> dict[str, str]:
    head = response.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
    return {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in head)}


def manage_headers(bucket: BucketCredentials, target: str) -> bytes:
    date = formatdate(usegmt=True)
    sign = hmac_sha1(bucket.secret_access_key, f"{target}\n\n{date}")
    token = b64(f"{bucket.access_key_id}:{sign}")
    return f"Authorization: ACL_TOP {token}\r\nDate: {date}\r\n".encode()


def test_chunked_with_content_length_zero_is_served_then_the_connection_closes(
    server: LiveServer, bucket: BucketCredentials
) -> None:
    """PHP curl's createDir: ``Transfer-Encoding: chunked`` + ``Content-Length: 0``. A request
    pipelined after it is not read (RFC 9112 §6.3: close after answering)."""
    target = "/3.0/folders/" + resource_id(bucket.bucket, "/from-curl")
    raw = (
        f"POST {target} HTTP/1.1\r\nHost: x\r\n".encode()
        + manage_headers(bucket, target)
        + b"Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n0\r\n\r\n"
        + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    response = exchange(server, raw)
    assert status_of(response) == 200, response
    assert head_of(response)["connection"] == "close"
    assert response.count(b"HTTP/1.1 ") == 1

    exists = "/3.0/folders/" + resource_id(bucket.bucket, "/from-curl") + "/exist"
    check = exchange(
        server,
        f"GET {exists} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n".encode()
        + manage_headers(bucket, exists)
        + b"\r\n",
    )
    assert status_of(check) == 200


def test_chunked_body_wins_over_content_length(server: LiveServer) -> None:
    """The chunks frame the body, whatever Content-Length says; the connection closes after."""
    raw = (
        b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n0\r\n\r\n"
    )
    response = exchange(server, raw)
    assert status_of(response) not in (400, 500), response
    assert head_of(response)["connection"] == "close"
    assert response.count(b"HTTP/1.1 ") == 1


SMUGGLING = {
    "two different Content-Length": b"Content-Length: 3\r\nContent-Length: 40\r\n\r\nabc",
    "two equal Content-Length": b"Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
    "a Content-Length list": b"Content-Length: 3, 3\r\n\r\nabc",
    "a signed Content-Length": b"Content-Length: +3\r\n\r\nabc",
    "TE not ending in chunked": b"Transfer-Encoding: chunked, identity\r\nContent-Length: 3\r\n\r\nabc",
    "TE gzip with Content-Length": b"Transfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc",
    "TE xchunked": b"Transfer-Encoding: xchunked\r\nContent-Length: 3\r\n\r\nabc",
    "TE chunked twice": b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "TE with a space before the colon": b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    "TE hidden by obs-fold": b"X-A: b\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "TE with a vertical tab": b"Transfer-Encoding: \x0bchunked\r\nContent-Length: 3\r\n\r\nabc",
    "bare LF line ends": b"Transfer-Encoding: chunked\nContent-Length: 0\n\n0\r\n\r\n",
}


@pytest.mark.parametrize("shape", list(SMUGGLING))
def test_smuggling_shapes_are_refused_with_400_and_nothing_after_them_runs(
    server: LiveServer, shape: str
) -> None:
    smuggled = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    raw = b"POST /healthz HTTP/1.1\r\nHost: x\r\n" + SMUGGLING[shape] + smuggled
    response = exchange(server, raw)
    assert status_of(response) == 400, response
    assert head_of(response)["connection"] == "close"
    assert response.count(b"HTTP/1.1 ") == 1


def test_transfer_encoding_on_http_1_0_is_refused(server: LiveServer) -> None:
    response = exchange(server, b"POST /healthz HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    assert status_of(response) == 400


def test_a_coding_we_do_not_decode_is_501(server: LiveServer) -> None:
    response = exchange(
        server, b"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
    )
    assert status_of(response) == 501


def test_a_one_mebibyte_header_line_is_refused_with_431_without_waiting_for_its_end(
    server: LiveServer,
) -> None:
    """The head never ends, yet the 431 comes: the server did not wait for (or buffer) the line."""
    with connect(server) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1024 * 1024))
        answered = read_all(sock)
    assert status_of(answered) == 431, answered[:300]
    assert head_of(answered)["connection"] == "close"
    assert b"larger than" in answered


def test_a_header_line_over_the_line_limit_is_431(server: LiveServer) -> None:
    """32 KiB (2 x max_header_size) per line even when the head as a whole would fit (64 KiB)."""
    response = exchange(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n")
    assert status_of(response) == 431
    assert b"header line" in response


def test_a_request_target_over_the_line_limit_is_414(server: LiveServer) -> None:
    response = exchange(server, b"GET /healthz?" + b"a" * 40000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(response) == 414


def test_many_headers_over_the_head_limit_are_431(server: LiveServer) -> None:
    lines = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 1000) for i in range(80))
    response = exchange(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + lines + b"\r\n")
    assert status_of(response) == 431


def test_headers_within_the_limits_are_served_on_a_kept_alive_connection(server: LiveServer) -> None:
    lines = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 1000) for i in range(20))
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 10000 + b"\r\n" + lines + b"\r\n"
    last = request.replace(b"Host: x\r\n", b"Host: x\r\nConnection: close\r\n")
    response = exchange(server, request + last)
    assert response.count(b"HTTP/1.1 200") == 2


def test_mediagate_serve_uses_the_same_http_layer(tmp_path: Path) -> None:
    """``mediagate serve`` (not only the tests' uvicorn command line) serves PHP curl's framing and
    refuses an endless header."""
    assert run_mediagate(tmp_path, "init").returncode == 0
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAGATE_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "mediagate", "--home", str(tmp_path), "serve", "--port", str(port)],
        env=clean,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        live = LiveServer(tmp_path, port=port)
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{live.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and process.poll() is None, "serve did not start"
                time.sleep(0.1)
        framed = exchange(
            live,
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n"
            b"0\r\n\r\n",
        )
        assert status_of(framed) == 200 and head_of(framed)["connection"] == "close"
        big = exchange(live, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 200_000)
        assert status_of(big) == 431
    finally:
        process.terminate()
        process.wait(10)


def test_a_malformed_chunk_in_a_body_the_app_is_reading_is_a_prompt_400(
    server: LiveServer, bucket: BucketCredentials
) -> None:
    """The app is reading the body (a Wantu upload with a valid token) when a bad chunk arrives:
    it is told the client is gone (no hang, no traceback), the client gets the 400, and nothing
    is stored."""
    policy = {"namespace": bucket.bucket, "expiration": -1, "dir": "/", "name": "cut.bin"}
    token = upload_token(bucket.access_key_id, bucket.secret_access_key, policy)
    head = (
        b"POST /api/proxy/upload HTTP/1.1\r\nHost: x\r\n"
        + f"Authorization: UPLOAD_AK_TOP {token}\r\n".encode()
        + b"Content-Type: multipart/form-data; boundary=BB\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    part = b'--BB\r\nContent-Disposition: form-data; name="content"; filename="f"\r\n\r\nhello'
    with connect(server) as sock:
        sock.sendall(head + b"%x\r\n" % len(part) + part + b"\r\n")
        time.sleep(0.5)
        started = time.monotonic()
        sock.sendall(b"zz\r\nmore\r\n")
        response = read_all(sock)
    assert time.monotonic() - started < 5
    assert status_of(response) == 400, response
    assert response.count(b"HTTP/1.1 ") == 1
    assert httpx.get(f"{server.url}/{bucket.bucket}/cut.bin").status_code == 404
    assert "Traceback" not in server.log()


CHUNKED_PUT = (
    b"PUT /nobucket/t.bin HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"
)


@pytest.mark.parametrize(
    "trailers",
    [
        pytest.param(b"".join(b"X-T%d: %s\r\n" % (i, b"t" * 1000) for i in range(1024)), id="many-lines"),
        pytest.param(b"X-T: " + b"t" * (1024 * 1024), id="one-endless-line"),
    ],
)
def test_endless_trailers_are_431_not_kept_in_memory(server: LiveServer, trailers: bytes) -> None:
    """The trailer section after the last chunk is bounded like a head: a client that keeps
    sending trailers gets the 431 (before, it was read for ever, every line kept in memory, and
    the app waited for the end of the body)."""
    with connect(server) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(CHUNKED_PUT + trailers)
        answered = read_all(sock)
    assert status_of(answered) == 431, answered[:300]
    assert b"trailers are larger than" in answered
    assert head_of(answered)["connection"] == "close"
    assert "Traceback" not in server.log()


def test_small_trailers_are_read_and_dropped(server: LiveServer, bucket: BucketCredentials) -> None:
    """A few trailers (allowed by RFC 9112 §7.1.2) do not disturb the request, and are not read
    as request headers: an ``Authorization`` trailer does not authenticate anything."""
    from tests.protocols.upyun.rest_client import sign

    uri = f"/{bucket.bucket}/trailer.bin"
    auth = sign(bucket, "PUT", uri)
    trailer = f"Authorization: {auth['Authorization']}\r\nDate: {auth['Date']}\r\n\r\n".encode()
    response = exchange(server, CHUNKED_PUT.replace(b"/nobucket/t.bin", uri.encode()) + trailer)
    assert status_of(response) == 401, response
    assert httpx.get(f"{server.url}{uri}").status_code == 404
    signed_head = f"Authorization: {auth['Authorization']}\r\nDate: {auth['Date']}\r\n".encode()
    request = CHUNKED_PUT.replace(b"/nobucket/t.bin", uri.encode()).replace(
        b"Host: x\r\n", b"Host: x\r\n" + signed_head
    )
    response = exchange(
        server,
        request + b"X-Checksum: abc\r\n\r\n" + b"GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    assert response.count(b"HTTP/1.1 200") == 2, response
    assert httpx.get(f"{server.url}{uri}").content == b"hello"


UPGRADE = (
    b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"
)
"""What ``curl --http2`` adds to a request over http://."""


@pytest.mark.parametrize(
    "framing",
    [b"Content-Length: 5\r\n\r\nhello", b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"],
)
def test_an_upload_asking_for_an_upgrade_is_refused_not_stored_empty(
    server: LiveServer, bucket: BucketCredentials, framing: bytes
) -> None:
    """The parser ends an upgrade request at its head: before, the signed PUT was answered 200 with
    an empty file stored (the body was never read) and the connection hung."""
    from tests.protocols.upyun.rest_client import sign

    uri = f"/{bucket.bucket}/upgraded.txt"
    auth = sign(bucket, "PUT", uri)
    head = (
        f"PUT {uri} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth['Authorization']}\r\nDate: {auth['Date']}\r\n"
    )
    response = exchange(server, head.encode() + UPGRADE + framing)
    assert status_of(response) == 400, response
    assert b"Upgrade" in response and head_of(response)["connection"] == "close"
    assert httpx.get(f"{server.url}{uri}").status_code == 404


def test_an_upgrade_without_a_body_is_ignored_and_the_connection_goes_on(server: LiveServer) -> None:
    """RFC 9110 §7.8: the server may ignore Upgrade. A request pipelined after it is answered
    (before, everything after the upgrade request's head was dropped and the client hung)."""
    first = b"GET /livez HTTP/1.1\r\nHost: x\r\n" + UPGRADE + b"\r\n"
    then = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    response = exchange(server, first + then)
    assert response.count(b"HTTP/1.1 200") == 2, response


@pytest.fixture(scope="module")
def impatient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server whose request heads must arrive within one second."""
    from tests.conftest import make_home

    home = make_home(tmp_path_factory.mktemp("impatient"))
    live = LiveServer(home.home, env={"MEDIAGATE_HEADER_TIMEOUT_SECONDS": "1"}).start()
    yield live
    live.stop()
    assert "Traceback" not in live.log()


def test_a_head_that_never_ends_is_408_after_the_header_timeout(impatient: LiveServer) -> None:
    """Slowloris: a header byte now and then. Before, uvicorn waited for the head for ever."""
    with connect(impatient) as sock:
        sock.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for _ in range(8):
                time.sleep(0.3)
                sock.sendall(b"X-Slow: 1\r\n")
        answered = read_all(sock)
    assert status_of(answered) == 408, answered
    assert 0.9 < time.monotonic() - started < 5
    assert head_of(answered)["connection"] == "close"


def test_a_connection_that_sends_nothing_is_closed(impatient: LiveServer) -> None:
    with connect(impatient) as sock:
        started = time.monotonic()
        assert read_all(sock) == b""
    assert time.monotonic() - started < 5


def test_the_header_timeout_spares_slow_bodies_and_kept_alive_connections(
    impatient: LiveServer,
) -> None:
    """Only the head has a deadline: a body may take longer (a slow uplink), and a kept-alive
    connection's next request gets its own deadline from its first byte."""
    request = b"PUT /nobucket/slow.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n"
    with connect(impatient) as sock:
        sock.sendall(request)
        for piece in (b"ab", b"cd", b"ef"):
            time.sleep(0.6)
            sock.sendall(piece)
        sock.settimeout(10)
        first = read_one(sock)
        assert status_of(first) == 401, first  # REST without credentials: its answer, not a 408
        time.sleep(0.5)
        sock.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert status_of(read_all(sock)) == 200


@pytest.fixture(scope="module")
def small_heads(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server with 1 KiB headers: its head (and trailer) budget is 4 KiB."""
    from tests.conftest import make_home

    home = make_home(tmp_path_factory.mktemp("small-heads"))
    live = LiveServer(home.home, env={"MEDIAGATE_MAX_HEADER_SIZE": "1024"}).start()
    yield live
    live.stop()
    assert "Traceback" not in live.log()


def test_pieces_ending_with_a_chunk_size_line_are_not_counted_as_trailers(small_heads: LiveServer) -> None:
    """Chunks of 4089 bytes: each 4096-byte piece the server reads (its trailer budget) holds a
    chunk's data and ends with the next chunk's size line. Before, such a piece was counted as
    trailer bytes and the next one refused with 431; the upload is served whole."""
    from mediagate.core.buckets import create_bucket
    from mediagate.services import build_gateway
    from tests.conftest import make_home
    from tests.protocols.upyun.rest_client import sign

    gw = build_gateway(make_home(small_heads.home), migrate=False)
    creds = create_bucket(gw.catalog, gw.secrets, "smallheads")
    gw.catalog.close()
    uri = f"/{creds.bucket}/chunks.bin"
    auth = sign(creds, "PUT", uri)
    head = (
        f"PUT {uri} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth['Authorization']}\r\n"
        f"Date: {auth['Date']}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    data = b"a" * 0xFF9
    with connect(small_heads) as sock:
        sock.sendall(head.encode() + b"ff9\r\n")  # read alone: the next read starts with data
        time.sleep(0.3)
        sock.sendall((data + b"\r\nff9\r\n") * 3 + data + b"\r\n0\r\n\r\n")
        response = read_all(sock)
    assert status_of(response) == 200, response[:300]
    assert httpx.get(f"{small_heads.url}{uri}").content == data * 4


BIG_LINE = b"X-Big: " + b"a" * 40000 + b"\r\n"


def body_of(response: bytes) -> dict[str, object]:
    import json

    doc: dict[str, object] = json.loads(response.split(b"\r\n\r\n", 1)[1])
    return doc


def test_refusals_of_the_http_layer_speak_the_requests_dialect(server: LiveServer) -> None:
    """An oversize header is refused before the app, yet in the error shape of the dialect the
    target belongs to (before, every dialect got ``{"code", "message"}``)."""
    upyun = exchange(
        server, b"PUT /b/k HTTP/1.1\r\nHost: x\r\nAuthorization: UPYUN op:sig\r\n" + BIG_LINE + b"\r\n"
    )
    assert status_of(upyun) == 431 and set(body_of(upyun)) == {"msg", "code", "id"}, upyun
    assert int(str(body_of(upyun)["code"])) // 100000 == 431
    wantu = exchange(server, b"POST /api/proxy/upload HTTP/1.1\r\nHost: x\r\n" + BIG_LINE + b"\r\n")
    doc = body_of(wantu)
    assert status_of(wantu) == 400 and doc["code"] == "InvalidArgument" and doc["requestId"], wantu
    imagex = exchange(
        server,
        b"GET /?Action=ApplyImageUpload&Version=2018-08-01 HTTP/1.1\r\nHost: x\r\n" + BIG_LINE + b"\r\n",
    )
    meta = body_of(imagex)["ResponseMetadata"]
    assert status_of(imagex) == 431 and isinstance(meta, dict), imagex
    assert meta["Action"] == "ApplyImageUpload" and meta["Error"]["Message"], meta  # type: ignore[index]
    for response in (upyun, wantu, imagex):
        assert head_of(response)["connection"] == "close"
        assert b"larger than" in response


def test_a_stalled_head_is_408_in_the_dialects_shape(impatient: LiveServer) -> None:
    with connect(impatient) as sock:
        sock.sendall(b"PUT /tos-cn-i-svc/a.png HTTP/1.1\r\nHost: x\r\n")
        answered = read_all(sock)
    assert status_of(answered) == 408, answered
    doc = body_of(answered)
    assert doc["success"] == -1 and doc["ResponseMetadata"], doc


def test_a_flood_of_malformed_requests_is_not_a_flood_of_log_lines(tmp_path: Path) -> None:
    """Each refusal is answered, but a client sending garbage as fast as it can gets at most ten
    'refused a request' lines a minute into the log (logs.Throttled), not one per request."""
    live = LiveServer(make_home(tmp_path / "home").home).start()
    try:
        for _ in range(40):
            assert status_of(exchange(live, b"NOT HTTP AT ALL\r\n\r\n")) == 400
    finally:
        live.stop()
    refused = [line for line in live.log().splitlines() if "refused a request" in line]
    assert len(refused) == 10, refused

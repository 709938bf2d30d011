"""Hostile input on every route of the one port: a clear error in the route's own dialect, never a
5xx, a hang, a partial object, a stray staging file or a secret in the log.

The corpus is generated from a fixed seed (``SEED``), so a failure reproduces; each failure names
the request that caused it. Requests go over raw sockets, so that the request-target, the headers
and the framing are exactly what the corpus says (an HTTP client would normalise ``..``, refuse bad
header bytes and fix Content-Length). What a route's error looks like:

| route                                          | error body                                    |
| ---------------------------------------------- | --------------------------------------------- |
| ``/`` (ImageX OpenAPI)                         | ``ResponseMetadata.Error{Code, CodeN, Message}`` |
| ``/upload/v1/…``, ``/tos-cn-i-…/…`` (ImageX)   | the same, plus ``success`` non-zero            |
| ``/mweb/v1/get_upload_token`` (Dreamina)       | ``{"ret", "errmsg"}``                          |
| ``/api/proxy/<op>``, ``/3.0/…``, ``/3.1/…``    | Wantu ``{"code", "message", "requestId"}``     |
| anything else (bucket paths, UPYUN)            | REST ``{"msg", "code": int}`` or FORM/public    |
|                                                | ``{"code": int, "message"}``                   |
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import random
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qs, quote, unquote

import httpx
import pytest

from mediagate.config import Settings
from mediagate.core.buckets import BucketCredentials, create_bucket
from mediagate.core.gateway import Gateway
from tests.conftest import LiveServer, staging_files
from tests.protocols.upyun.rest_client import sign as upyun_sign
from tests.protocols.wantu.client import upload_token

SEED = 20261123
TIMEOUT = 5.0
"""A request that has no complete answer within this many seconds hangs: a failure."""

UVICORN_REFUSAL = b"Invalid HTTP request received."
"""uvicorn's answer to a request its HTTP parser rejects (e.g. a method httptools does not know);
that happens before the app, so no dialect can answer it."""
HTTP_LAYER_STATUSES = {400, 414, 431, 501}
"""What ``mediagate.httpserver`` refuses before the app: malformed framing, an oversize request
line or head, a transfer coding it does not decode."""


def refused_before_the_app(reply: Reply) -> bool:
    """An answer of the HTTP layer (uvicorn's text, or mediagate.httpserver's ``{"code": status,
    "message"}`` with ``Connection: close``): no dialect has seen the request, so none answers."""
    if reply.status == 400 and reply.body == UVICORN_REFUSAL:
        return True
    if reply.status not in HTTP_LAYER_STATUSES or reply.headers.get("connection") != "close":
        return False
    try:
        doc = reply.json()
    except ValueError:
        return False
    return isinstance(doc, dict) and doc.get("code") == reply.status and isinstance(doc.get("message"), str)


METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "PROPFIND", "FOO"]
WANTU_OPS = ["upload", "blockInit", "blockUpload", "blockComplete", "blockCancel"]
AUTH_SCHEMES = ["UPYUN", "UPLOAD_AK_TOP", "ACL_TOP", "AWS4-HMAC-SHA256", "HMAC-SHA256", "Bearer", "Basic"]


# -- a raw HTTP/1.1 client ----------------------------------------------------------------------------


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Req:
    method: str
    target: str
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    body: bytes = b""
    content_length: int | None = None
    """Declared length; None: the real one. Set it to lie."""

    def wire(self, host: str) -> bytes:
        head = [f"{self.method} {self.target} HTTP/1.1".encode(), f"Host: {host}".encode()]
        names = {name.lower() for name, _ in self.headers}
        for name, value in self.headers:
            head.append(name.encode() + b": " + value)
        framed = "content-length" in names or "transfer-encoding" in names
        if not framed and (self.body or self.content_length is not None or self.method in ("POST", "PUT")):
            declared = len(self.body) if self.content_length is None else self.content_length
            head.append(f"Content-Length: {declared}".encode())
        head.append(b"Connection: close")
        return b"\r\n".join(head) + b"\r\n\r\n" + self.body

    def __str__(self) -> str:
        shown = self.target if len(self.target) < 200 else self.target[:200] + "…"
        return (
            f"{self.method} {shown} headers={[(n, v[:80]) for n, v in self.headers]} body={self.body[:80]!r}"
        )


def _dechunk(data: bytes) -> bytes:
    out = bytearray()
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return bytes(out)


def parse_reply(raw: bytes, *, head: bool) -> Reply:
    header_block, sep, body = raw.partition(b"\r\n\r\n")
    assert sep, f"no complete response head: {raw[:300]!r}"
    lines = header_block.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if head:
        return Reply(status, headers, b"")
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    elif "content-length" in headers:
        declared = int(headers["content-length"])
        assert len(body) == declared, f"body cut short: {len(body)} of {declared} bytes"
    return Reply(status, headers, body)


def exchange(
    server: LiveServer, wire: bytes, *, head: bool = False, half_close: bool = False
) -> Reply | None:
    """Send ``wire`` and read the answer until the server closes (``Connection: close``). With
    ``half_close`` the client shuts its sending side after ``wire``: a server that sees the body
    cut short may close without an answer (None)."""
    deadline = time.monotonic() + TIMEOUT
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        try:
            sock.sendall(wire)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered early and closed; read what it said
        raw = bytearray()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"no complete answer within {TIMEOUT} s (hang); got {bytes(raw[:300])!r}"
                )
            sock.settimeout(left)
            try:
                chunk = sock.recv(65536)
            except TimeoutError as exc:
                raise AssertionError(
                    f"no answer within {TIMEOUT} s (hang); got {bytes(raw[:300])!r}"
                ) from exc
            except ConnectionResetError:
                break
            if not chunk:
                break
            raw += chunk
    if not raw and half_close:
        return None
    return parse_reply(bytes(raw), head=head)


def send(server: LiveServer, req: Req) -> Reply:
    reply = exchange(server, req.wire(server.endpoint), head=req.method == "HEAD")
    assert reply is not None
    return reply


# -- what each route's error looks like ---------------------------------------------------------------


def dialect_of(method: str, target: str) -> str:
    """The dialect that owns a request, by the routing table (on the decoded path, as the router
    sees it)."""
    path, _, query = target.partition("?")
    path = unquote(path, errors="replace")
    if path == "/" and method in ("GET", "HEAD") and "Action" not in parse_qs(query, keep_blank_values=True):
        return "web"  # the landing page (never an error)
    if path == "/":
        return "imagex-action"
    if path == "/ui" or path.startswith("/ui/"):
        return "web"
    if path == "/mweb/v1/get_upload_token":
        return "imagex-token"
    sid, slash, _ = path.removeprefix("/tos-cn-i-").partition("/")
    if path.startswith("/tos-cn-i-") and sid and slash:
        return "upyun" if method in ("GET", "HEAD") else "imagex-upload"  # GET is a public read
    if path.startswith("/upload/v1/"):
        return "imagex-upload"
    if path in {f"/api/proxy/{op}" for op in WANTU_OPS} or path.startswith(("/3.0/", "/3.1/")):
        return "wantu"
    return "upyun"


def check_error_format(dialect: str, reply: Reply) -> None:
    """The error body of ``dialect``; raises AssertionError naming what is wrong."""
    try:
        doc = reply.json()
    except ValueError as exc:
        raise AssertionError(f"error body is not JSON: {reply.body[:200]!r}") from exc
    assert isinstance(doc, dict), doc
    if dialect.startswith("imagex") and dialect != "imagex-token":
        err = doc["ResponseMetadata"]["Error"]
        assert isinstance(err["Code"], str) and err["Code"], err
        assert isinstance(err["CodeN"], int), err
        assert isinstance(err["Message"], str) and err["Message"], err
        assert doc["ResponseMetadata"]["RequestId"], doc
        if dialect == "imagex-upload":
            assert doc["success"] != 0, doc
    elif dialect == "imagex-token":
        assert isinstance(doc["ret"], str) and doc["ret"] != "0", doc
        assert isinstance(doc["errmsg"], str) and doc["errmsg"], doc
    elif dialect == "wantu":
        assert isinstance(doc["code"], str) and doc["code"], doc
        assert isinstance(doc["message"], str) and doc["message"], doc
        assert doc["requestId"], doc
    else:
        if "msg" in doc:  # REST
            assert isinstance(doc["msg"], str) and doc["msg"], doc
            assert isinstance(doc["code"], int) and doc["code"] // 100000 == reply.status, doc
        else:  # FORM / public read
            assert doc["code"] == reply.status, doc
            assert isinstance(doc["message"], str) and doc["message"], doc


def check(server: LiveServer, req: Req, failures: list[str], *, half_close: bool = False) -> Reply | None:
    """Send one corpus request and record (rather than raise) what is wrong with its answer."""
    try:
        wire = req.wire(server.endpoint)
        reply = exchange(server, wire, head=req.method == "HEAD", half_close=half_close)
        if reply is None:
            return None  # the client cut its body and closed: the server may just close too
        assert reply.status < 500, f"status {reply.status}: {reply.body[:300]!r}"
        if req.method == "HEAD" or reply.status in (204, 304) or reply.status < 400:
            return reply
        if refused_before_the_app(reply):
            return reply  # refused by the HTTP layer, before any dialect sees it
        check_error_format(dialect_of(req.method, req.target), reply)
        return reply
    except (AssertionError, KeyError, TypeError, OSError) as exc:
        failures.append(f"{req}\n    -> {type(exc).__name__}: {exc}")
        return None


def report(failures: list[str]) -> None:
    assert not failures, f"{len(failures)} hostile requests failed:\n" + "\n".join(failures[:25])


# -- the corpus ---------------------------------------------------------------------------------------


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def weird_segments(rng: random.Random) -> list[str]:
    return [
        "..",
        "%2e%2e",
        "%2E%2e/%2e%2e",
        "a%00b",
        "%00",
        "a%0ab",
        "%0d%0a",
        "",
        "x" * 10_240,
        "%ff%fe",
        "%c3%28",
        "%",
        "%zz",
        "%2f",
        quote("图片/ü.jpg"),
        quote("\u202e\u0000\ufeff"),
        "a!b",
        "a!/fw/300",
        "a!/fw/-1/format/xyz",
        "~",
        "." * rng.randint(1, 5),
        "".join(rng.choice("abc%./!~-_") for _ in range(rng.randint(1, 30))),
    ]


def route_prefixes(bucket: str) -> list[str]:
    return [
        "",
        "/healthz",
        "/mweb/v1/get_upload_token",
        "/upload/v1",
        "/tos-cn-i-abc",
        "/tos-cn-i-",
        *(f"/api/proxy/{op}" for op in WANTU_OPS),
        "/api",
        "/3.0/files",
        "/3.0/folders",
        "/3.1/scanPorn",
        "/3.0",
        f"/{bucket}",
        "/nosuchbucket",
        "/",
    ]


def garbage_authorization(rng: random.Random, scheme: str) -> bytes:
    options: list[bytes] = [
        b"",
        b"x",
        b":",
        b"a:b:c:d:e",
        b"!!!not-base64!!!",
        b64(b"\xff\xfe\x00garbage").encode(),
        b64("ak:" + "p" * 5000 + ":sig").encode(),
        b64("ak:e30:sig").encode(),  # e30 = {} as a policy
        b64("ak:" + b64("[1,2,3]") + ":sig").encode(),
        b64("ak:" + b64('{"expiration": 1e999, "namespace": []}') + ":sig").encode(),
        "é中".encode(),
        b"\xff\xfe",
        b"Credential=, SignedHeaders=, Signature=",
        b"Credential=AK/20260101/cn-north-1/ImageX/request, SignedHeaders=host;x-date, Signature=zz",
        b"Credential=AK, Signature=00",
        b"Credential=AK/bad, SignedHeaders=;;;, Signature=" + b"0" * 64,
        b"Credential=" + b"A" * 8000,
        bytes(rng.randint(0x20, 0x7E) for _ in range(rng.randint(1, 200))),
    ]
    value = rng.choice(options)
    return scheme.encode() + (b" " + value if value or rng.random() < 0.5 else b"")


def garbage_date(rng: random.Random) -> bytes:
    return rng.choice(
        [
            b"",
            b"yesterday",
            b"Mon, 99 Foo 2026 99:99:99 GMT",
            formatdate(time.time() - 86400 * 365, usegmt=True).encode(),
            formatdate(time.time() + 86400 * 365, usegmt=True).encode(),
            b"20260101T000000Z",
            b"99999999T999999Z",
            b"-1",
            b"1" * 400,
            "周一".encode(),
        ]
    )


def garbage_query(rng: random.Random) -> str:
    return rng.choice(
        [
            "",
            "?",
            "?Action=",
            "?Action=ApplyImageUpload",
            "?Action=ApplyImageUpload&Version=2018-08-01&ServiceId=",
            "?Action=CommitImageUpload&Version=2018-08-01&Action=AssumeRole",
            "?Action=AssumeRole&Version=2018-01-01&DurationSeconds=1e99",
            "?Action=" + "A" * 20_000 + "&Version=2018-08-01",
            "?Action=%ff%fe&Version=%00",
            "?Action=%&Version=%%%",
            "?usage",
            "?usage=%ff",
            "?partNumber=-1&uploadID=x",
            "?phase=init&uploadid=..%2f..",
            "?phase=transfer&part_number=99999999999999999999",
            "?phase=finish&uploadid=",
            "?currentPage=-5&pageSize=1e9",
            "?namespace=%00&dir=../..",
            "?" + "&".join(f"k{i}=v" for i in range(500)),
            "?X-Amz-Date=garbage&X-Amz-Signature=00&X-Amz-Credential=a%2Fb",
            "?a=" + quote("中文") + "&b=%E4%B8",
        ]
    )


def garbage_body(rng: random.Random) -> tuple[bytes, list[tuple[str, bytes]]]:
    """A body and the headers that go with it."""
    kind = rng.randrange(9)
    if kind == 0:
        return b"", []
    if kind == 1:
        return rng.randbytes(rng.randint(1, 4096)), [("Content-Type", b"application/octet-stream")]
    if kind == 2:
        boundary = rng.choice([b"", b"x" * 5000, b'"unterminated', b"\xff\xfe", b"ok"])
        body = b'--ok\r\nContent-Disposition: form-data; name="policy"\r\n\r\neyJ9\r\n--ok\r\nContent-Disp'
        return body, [("Content-Type", b"multipart/form-data; boundary=" + boundary)]
    if kind == 3:
        return b"--x\r\n\r\n", [("Content-Type", b"multipart/form-data")]
    if kind == 4:
        doc = rng.choice(
            [
                b"[1,2,3]",
                b'"str"',
                b"null",
                b"1e99999",
                b"9" * 5000,
                b"[" * 10_000 + b"]" * 10_000,
                b'{"SessionKey": ' + b"[" * 5000 + b"]" * 5000 + b"}",
                b'{"SessionKey": 12345678901234567890123456789}',
                b'{"SessionKey": "' + b64(b"\xff" * 40).encode() + b'"}',
                b'{"SessionKey": "!!!"}',
                b"{not json",
                b"\xff\xfe{}",
            ]
        )
        return doc, [("Content-Type", b"application/json")]
    if kind == 5:
        form = rng.choice(
            [b"namespace=%ff&dir=..", b"a=" + b"b" * 50_000, b"%%%%", b"parts=" + b64(b"\x00\xff").encode()]
        )
        return form, [("Content-Type", b"application/x-www-form-urlencoded")]
    if kind == 6:
        return b"hello", [("Content-MD5", rng.choice([b"zzz", b"0" * 32, b"=" * 24, "é".encode()]))]
    if kind == 7:
        return b"hello", [("Content-CRC32", rng.choice([b"zzzzzzzz", b"-1", b"1" * 100, b"0x1"]))]
    return b"", [("Range", rng.choice([b"bytes=9999999999999999999-", b"bytes=-", b"bytes=5-3", b"x" * 300]))]


def random_request(rng: random.Random, bucket: str) -> Req:
    prefix = rng.choice(route_prefixes(bucket))
    segments = weird_segments(rng)
    tail = "/".join(rng.choice(segments) for _ in range(rng.randint(0, 2)))
    target = prefix + ("/" + tail if tail or not prefix else "")
    target = (target or "/") + garbage_query(rng)
    target = target.replace(" ", "%20")
    method = rng.choice(METHODS)
    body, headers = garbage_body(rng) if method not in ("GET", "HEAD") or rng.random() < 0.2 else (b"", [])
    if rng.random() < 0.6:
        headers.append(("Authorization", garbage_authorization(rng, rng.choice(AUTH_SCHEMES))))
    for name in ("Date", "X-Date", "X-Amz-Date"):
        if rng.random() < 0.3:
            headers.append((name, garbage_date(rng)))
    if rng.random() < 0.15:
        headers.append(("Cookie", b"sessionid=" + rng.choice([b"", b"x" * 3000, b"%ff", b"\xff"])))
    if rng.random() < 0.1:
        headers.append(("Origin", rng.choice([b"null", b"http://evil.example", b"\xff"])))
        headers.append(("Access-Control-Request-Method", rng.choice([b"PUT", b"BREW", b""])))
    return Req(method, target, headers, body)


# -- fixtures -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def target(admin: Gateway) -> BucketCredentials:
    """The bucket every hostile request aims at; it must stay empty."""
    return create_bucket(admin.catalog, admin.secrets, f"h{uuid.uuid4().hex[:12]}")


def secrets_of(creds: BucketCredentials) -> list[str]:
    values = [creds.password, creds.form_api_secret, creds.secret_access_key]
    values.append(hashlib.md5(creds.password.encode()).hexdigest())
    return [v for v in values if v]


def wait_for(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


def staging_is_empty(home: Settings) -> bool:
    return not staging_files(home.home)


# -- the sweep -----------------------------------------------------------------------------------------


def test_generated_corpus_gets_dialect_errors(server: LiveServer, target: BucketCredentials) -> None:
    """A few hundred generated requests across every route: no 5xx, no hang, the dialect's format."""
    rng = random.Random(SEED)
    failures: list[str] = []
    for _ in range(600):
        check(server, random_request(rng, target.bucket), failures)
    report(failures)


def test_every_route_and_method(server: LiveServer, target: BucketCredentials) -> None:
    """Every method on every route row, including the ones the row does not serve: the wrong method
    on a fixed route is that dialect's error, not the framework's plain-text 405."""
    failures: list[str] = []
    for prefix in route_prefixes(target.bucket):
        for suffix in ("", "/x", "/x/y.jpg"):
            path = (prefix + suffix) or "/"
            for method in METHODS:
                check(server, Req(method, path), failures)
    report(failures)


def test_wrong_method_on_a_fixed_route_is_the_dialects_405(server: LiveServer) -> None:
    """The dialect's own error with status 405 and ``Allow``; OPTIONS stays a CORS preflight."""
    cases = {
        "/api/proxy/upload": ("wantu", "PUT, POST"),
        "/": ("imagex-action", "GET, POST"),
        "/upload/v1/x": ("imagex-upload", "POST"),
        "/tos-cn-i-abc/x": ("imagex-upload", "GET, PUT"),
        "/mweb/v1/get_upload_token": ("imagex-token", "POST"),
    }
    for path, (dialect, methods) in cases.items():
        reply = send(server, Req("DELETE", path))
        assert reply.status == 405, (path, reply)
        check_error_format(dialect, reply)
        assert set(reply.headers["allow"].split(", ")) == set(methods.split(", ")) | (
            {"HEAD"} if "GET" in methods else set()
        )
        pre = send(
            server,
            Req(
                "OPTIONS",
                path,
                [("Origin", b"https://app.example"), ("Access-Control-Request-Method", b"PUT")],
            ),
        )
        assert pre.status == 204, (path, pre)
        assert pre.headers["access-control-allow-origin"] == "*"
    assert send(server, Req("POST", "/healthz")).status == 405


@pytest.mark.parametrize(
    "path",
    ["//", "//x", "///a/b", "/%2f%2f", "/%00", "/%0a", "/..", "/%2e%2e/%2e%2e/etc/passwd", "/%ff%fe"],
)
def test_paths_outside_every_route(server: LiveServer, path: str) -> None:
    """Targets no row names (empty first segment, encoded slashes, dot segments) still get a JSON
    error, never the framework's plain-text 404."""
    failures: list[str] = []
    for method in ("GET", "PUT", "POST", "DELETE", "HEAD", "FOO"):
        reply = check(server, Req(method, path), failures)
        if reply is not None and method == "GET":
            assert reply.status in (400, 401, 403, 404, 405), reply
    report(failures)


def _upyun_signed(creds: BucketCredentials, method: str, uri: str, md5: str = "") -> list[tuple[str, bytes]]:
    signed = upyun_sign(creds, method, uri, content_md5=md5)
    return [(k, v.encode()) for k, v in signed.items()] + ([("Content-MD5", md5.encode())] if md5 else [])


def test_signed_upyun_requests_with_bad_parts(server: LiveServer, target: BucketCredentials) -> None:
    """Correctly signed REST requests whose key, headers or body are wrong: a REST error, nothing
    stored."""
    failures: list[str] = []
    b = target.bucket
    keys = ["..", "a/../../etc/passwd", "%2e%2e/x", "a%00b", "a%0ab", "x" * 10_240, "%ff%fe", "%"]
    for key in keys:
        uri = f"/{b}/{key}"
        for method in ("PUT", "GET", "HEAD", "DELETE", "POST"):
            check(server, Req(method, uri, _upyun_signed(target, method, uri), b"data"), failures)
    uri = f"/{b}/ok.bin"
    bad_headers: list[list[tuple[str, bytes]]] = [
        [("X-Upyun-Multi-Stage", b"initiate"), ("X-Upyun-Multi-Length", b"-1")],
        [("X-Upyun-Multi-Stage", b"upload"), ("X-Upyun-Multi-Uuid", b"..%2f"), ("X-Upyun-Part-Id", b"x")],
        [("X-Upyun-Multi-Stage", b"complete"), ("X-Upyun-Multi-Uuid", uuid.uuid4().hex.encode())],
        [("X-Upyun-Multi-Stage", b"\xff\xfe")],
        [("X-Upyun-Move-Source", b"/../../etc/passwd")],
        [("X-Upyun-Copy-Source", b"%ff%fe")],
        [("X-Upyun-Move-Source", b"/a"), ("X-Upyun-Copy-Source", b"/b")],
        [("X-Gmkerl-Thumb", b"/fw/-1/fh/99999999999")],
        [("X-Gmkerl-Type", b"\xff")],
        [("Content-Secret", b"\x00" * 3)],
        [("X-Upyun-Meta-a.b", b"v")],
        [("X-Upyun-Meta-Ttl", b"1e9")],
        [("Content-Length", b"-5")],
        [("Content-Length", b"99999999999999999999")],
        [("X-List-Limit", b"-1")],
        [("X-List-Iter", b"!!!")],
        [("Content-Type", b"\xff/\xfe")],
    ]
    for extra in bad_headers:
        method = "GET" if any(n.startswith("X-List") for n, _ in extra) else "PUT"
        list_uri = f"/{b}/" if method == "GET" else uri
        body = b"" if method == "GET" or any(n == "Content-Length" for n, _ in extra) else b"data"
        req = Req(method, list_uri, _upyun_signed(target, method, list_uri) + extra, body)
        reply = check(server, req, failures)
        if reply is not None and reply.status < 400:
            failures.append(f"{req}\n    -> accepted ({reply.status}) though a header is bad")
    for md5 in ("zzz", "0" * 32, "=" * 24, "é"):
        check(server, Req("PUT", uri, _upyun_signed(target, "PUT", uri, md5), b"data"), failures)
    report(failures)


NUMBERS = ["\u00b2", "\u0661", "9" * 5000, "1" + "0" * 4400]
"""Numbers that ``str.isdigit()`` accepts but ``int()`` refuses: a superscript two (byte 0xB2 in a
Latin-1 header), an Arabic-Indic one (UTF-8 in a query or a JSON policy), and more digits than
Python converts."""


def test_numeric_fields_that_only_look_like_numbers(server: LiveServer, target: BucketCredentials) -> None:
    """Every numeric header, query parameter and policy field, given a 'digit' string ``int()``
    refuses: the dialect's 4xx, never a 500."""
    from tests.protocols.upyun.forms import multipart, policy_of, signature

    failures: list[str] = []
    b = target.bucket
    uri = f"/{b}/n.bin"
    for number in NUMBERS:
        raw = number.encode("latin-1", errors="ignore") or number.encode()
        headers_put: list[list[tuple[str, bytes]]] = [
            [("X-Upyun-Meta-Ttl", raw)],
            [("X-Upyun-Multi-Stage", b"initiate"), ("X-Upyun-Multi-Length", raw)],
            [("X-Upyun-Multi-Stage", b"upload"), ("X-Upyun-Multi-Uuid", b"u"), ("X-Upyun-Part-Id", raw)],
            [("X-Gmkerl-Type", b"get_theme_color"), ("X-Gmkerl-Extract-Color-Count", raw)],
        ]
        for extra in headers_put:
            check(server, Req("PUT", uri, _upyun_signed(target, "PUT", uri) + extra, b"data"), failures)
        list_uri = f"/{b}/"
        check(
            server,
            Req("GET", list_uri, [*_upyun_signed(target, "GET", list_uri), ("X-List-Limit", raw)]),
            failures,
        )
        policy = policy_of(target, "/n.bin", x_upyun_meta_ttl=number)
        body, ctype = multipart(
            [("policy", policy), ("signature", signature(target, policy)), ("file", ("n", b"x"))]
        )
        check(server, Req("POST", f"/{b}", [("Content-Type", ctype.encode())], body), failures)
        for path in ("/3.0/files?currentPage=", "/3.0/files?pageSize="):
            check(server, Req("GET", path + quote(number)), failures)
    report(failures)


def _wantu_auth(creds: BucketCredentials, policy: Any) -> bytes:
    raw = policy if isinstance(policy, str) else json.dumps(policy)
    encoded = b64(raw)
    return ("UPLOAD_AK_TOP " + upload_token(creds.access_key_id, creds.secret_access_key, encoded)).encode()


def test_signed_wantu_tokens_with_garbage_policies(server: LiveServer, target: BucketCredentials) -> None:
    """Upload tokens with a valid signature over garbage policies: Wantu errors."""
    failures: list[str] = []
    ns = target.bucket
    policies: list[Any] = [
        "not json",
        "[]",
        "null",
        "1e999",
        {"namespace": ns},
        {"namespace": ns, "expiration": "soon"},
        {"namespace": ns, "expiration": 10**40},
        {"namespace": ns, "expiration": -1},
        {"namespace": ns, "expiration": 1e300},
        f'{{"namespace": "{ns}", "expiration": 1e999}}',
        f'{{"namespace": "{ns}", "expiration": NaN}}',
        f'{{"namespace": "{ns}", "expiration": {"[" * 5000 + "]" * 5000}}}',
        {"namespace": ns, "expiration": True},
        {"namespace": [ns], "expiration": int(time.time() * 1000) + 60_000},
        {"namespace": ns, "expiration": int(time.time() * 1000) + 60_000, "sizeLimit": "x"},
        {"namespace": ns, "expiration": int(time.time() * 1000) + 60_000, "dir": "../../etc"},
        {"namespace": ns, "expiration": int(time.time() * 1000) + 60_000, "name": "%00\n"},
        {
            "namespace": ns,
            "expiration": int(time.time() * 1000) + 60_000,
            "callbackUrl": "file:///etc/passwd",
        },
        {"namespace": ns, "expiration": int(time.time() * 1000) + 60_000, "mimeLimit": 5},
        {"namespace": ns, "expiration": int(time.time() * 1000) + 60_000, "returnUrl": "http://[::1"},
        {"namespace": ns, "expiration": int(time.time() * 1000) + 60_000, "returnUrl": "http://h:99999/"},
        {"namespace": ns, "expiration": int(time.time() * 1000) + 60_000, "callbackUrl": "http://[::1"},
        {"namespace": ns, "expiration": int(time.time() * 1000) + 60_000, "insertOnly": {"a": 1}},
    ]
    bodies: list[tuple[bytes, list[tuple[str, bytes]]]] = [
        (b"", []),
        (
            b'--b\r\nContent-Disposition: form-data; name="content"\r\n\r\nabc',
            [("Content-Type", b"multipart/form-data; boundary=b")],
        ),
        (b"garbage", [("Content-Type", b"multipart/form-data; boundary=")]),
        (
            b"size=-1&md5=zz&parts=!!!&partNumber=1e9&uploadId=..&id=%00",
            [("Content-Type", b"application/x-www-form-urlencoded")],
        ),
    ]
    for policy in policies:
        auth = _wantu_auth(target, policy)
        for op in WANTU_OPS:
            for body, headers in bodies:
                check(
                    server,
                    Req("POST", f"/api/proxy/{op}", [("Authorization", auth), *headers], body),
                    failures,
                )
    report(failures)


def test_signed_wantu_management_garbage(server: LiveServer, target: BucketCredentials) -> None:
    """ACL_TOP requests signed correctly over garbage resource ids, pages and bodies."""
    import hmac

    failures: list[str] = []
    rids = [
        "!!!",
        b64(b"\xff\xfe"),
        b64("[]"),
        b64("[1,2]"),
        b64('["x","/a"]'),
        b64('["","/../..","n"]'),
        "%ff",
    ]
    paths = [f"/3.0/files/{r}" for r in rids] + [f"/3.0/folders/{r}/exist" for r in rids]
    paths += ["/3.0/files?currentPage=-1&pageSize=0", "/3.0/files?pageSize=1e99", "/3.0/folders?dir=%00"]
    paths += ["/3.0/files?namespace=" + "n" * 5000, "/3.0/mediaEncodeResult/..", "/3.0/nosuchapi"]
    for path in paths:
        for method in ("GET", "DELETE", "POST", "PUT", "PATCH"):
            body = "[1,2" if method == "POST" else ""
            date = formatdate(usegmt=True)
            mac = hmac.new(target.secret_access_key.encode(), f"{path}\n{body}\n{date}".encode(), "sha1")
            token = b64(f"{target.access_key_id}:{base64.b64encode(mac.digest()).decode()}")
            headers = [("Authorization", f"ACL_TOP {token}".encode()), ("Date", date.encode())]
            check(server, Req(method, path, headers, body.encode()), failures)
    report(failures)


def test_signed_imagex_actions_with_garbage(server: LiveServer, target: BucketCredentials) -> None:
    """Signed OpenAPI calls with garbage parameters and bodies: ImageX errors.

    The signature covers the Host header, so these are signed for the server's real endpoint."""
    from mediagate.signing import sigv4

    failures: list[str] = []
    b = target.bucket
    calls: list[tuple[str, dict[str, str], bytes]] = [
        ("GET", {"Action": "ApplyImageUpload", "Version": "2018-08-01", "ServiceId": "other"}, b""),
        (
            "GET",
            {"Action": "ApplyImageUpload", "Version": "2018-08-01", "ServiceId": b, "UploadNum": "-1"},
            b"",
        ),
        (
            "GET",
            {"Action": "ApplyImageUpload", "Version": "2018-08-01", "ServiceId": b, "UploadNum": "1e9"},
            b"",
        ),
        (
            "GET",
            {"Action": "ApplyImageUpload", "Version": "2018-08-01", "ServiceId": b, "FileSize": "x"},
            b"",
        ),
        (
            "GET",
            {"Action": "ApplyImageUpload", "Version": "2018-08-01", "ServiceId": b, "StoreKeys": "../.."},
            b"",
        ),
        ("GET", {"Action": "AssumeRole", "Version": "2018-08-01", "DurationSeconds": "1e99"}, b""),
        ("GET", {"Action": "AssumeRole", "Version": "2018-08-01", "Policy": "{not json"}, b""),
    ]
    for body in (
        b"[1]",
        b"null",
        b"1e99999",
        b"[" * 10_000 + b"]" * 10_000,
        b'{"SessionKey": 1}',
        b'{"SessionKey": "' + b64(b"\xff" * 64).encode() + b'"}',
        b"\xff\xfe",
        b'{"SessionKey": "x"}' * 2,
    ):
        calls.append(("POST", {"Action": "CommitImageUpload", "Version": "2018-08-01", "ServiceId": b}, body))
    for method, params, body in calls:
        query = list(params.items())
        headers = sigv4.sign(
            sigv4.VOLC,
            access_key_id=target.access_key_id,
            secret=target.secret_access_key,
            method=method,
            host=server.endpoint,
            query=query,
            body=body,
            content_type="application/json" if body else None,
        )
        wire_target = "/?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query)
        hdrs = [(k, v.encode()) for k, v in headers.items() if k.lower() != "host"]
        if body:
            hdrs.append(("Content-Type", b"application/json"))
        reply = check(server, Req(method, wire_target, hdrs, body), failures)
        if reply is not None and reply.status == 401:
            failures.append(
                f"{method} {params}: the signature itself was refused, so nothing deeper was tried"
            )
    report(failures)


def test_range_and_conditional_garbage_on_a_real_object(
    server: LiveServer, bucket: BucketCredentials
) -> None:
    """Garbage Range / If-* headers on an object that exists, on the public read and the signed
    REST GET: 200, 206, 304, 412 or 416 with a consistent body, never a 5xx."""
    uri = f"/{bucket.bucket}/r.bin"
    data = bytes(range(256)) * 4
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        assert client.put(uri, content=data, headers=upyun_sign(bucket, "PUT", uri)).status_code == 200
    values: list[tuple[str, bytes]] = [
        ("Range", v)
        for v in (
            b"bytes=9999999999999999999-",
            b"bytes=-0",
            b"bytes=-",
            b"bytes=5-3",
            b"bytes=0-0,1-1",
            b"bytes=1024-",
            b"bytes=-99999999999999999999",
            b"items=0-1",
            b"bytes=\xff-",
            b"x" * 4000,
            b"bytes=" + b"1" * 5000 + b"-",
        )
    ]
    values += [
        (h, v)
        for h in ("If-Modified-Since", "If-Unmodified-Since", "If-Range", "If-Match", "If-None-Match")
        for v in (b"garbage", b"Mon, 99 Foo 9999 99:99:99 GMT", b'"', b"W/", b",,,", b"\xff", b"*")
    ]
    failures: list[str] = []
    for name, value in values:
        for signed in (False, True):
            headers = [(name, value)] + (_upyun_signed(bucket, "GET", uri) if signed else [])
            if name == "If-Range":
                headers.append(("Range", b"bytes=0-9"))
            reply = check(server, Req("GET", uri, headers), failures)
            if reply is None:
                continue
            if reply.status == 200 and reply.body != data:
                failures.append(f"{name}: {value[:40]!r} -> 200 with a different body")
            if reply.status == 206:
                first, last = reply.headers["content-range"].split(" ")[1].split("/")[0].split("-")
                if reply.body != data[int(first) : int(last) + 1]:
                    failures.append(f"{name}: {value[:40]!r} -> 206 body does not match Content-Range")
            if reply.status not in (200, 206, 304, 412, 416):
                failures.append(f"{name}: {value[:40]!r} -> unexpected {reply.status}")
    report(failures)


def random_spec(rng: random.Random) -> str:
    """A processing suffix built from real option names and hostile values."""
    keys = [
        "fw",
        "fh",
        "sq",
        "max",
        "min",
        "scale",
        "fwfh",
        "both",
        "crop",
        "clip",
        "rotate",
        "format",
        "quality",
        "gaussblur",
        "gravity",
        "force",
        "strip",
        "watermark",
        "text",
        "size",
        "margin",
        "opacity",
        "color",
        "border",
        "canvas",
        "url",
        "nosuch",
    ]
    values = [
        "1",
        "0",
        "-1",
        "99999999",
        "9" * 5000,
        "\u00b2",
        "\u0661",
        "1x1",
        "0x0",
        "1x1a-9a-9",
        "99999x99999",
        "auto",
        "webp",
        "xyz",
        "true",
        "maybe",
        "%ff",
        "..",
        "ZmFrZQ",
        "!!!",
        "1.5",
        "",
    ]
    parts: list[str] = []
    for _ in range(rng.randint(1, 5)):
        parts.append(rng.choice(keys))
        if rng.random() < 0.95:
            parts.append(rng.choice(values))
    return "/" + "/".join(quote(p, safe="") for p in parts)


def test_processing_specs_with_garbage(server: LiveServer, bucket: BucketCredentials) -> None:
    """Generated ``key!/spec`` suffixes on a real image: a processed image or a 4xx, never a 5xx."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (12, 9), (10, 200, 30)).save(buf, "PNG")
    uri = f"/{bucket.bucket}/img.png"
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        assert (
            client.put(uri, content=buf.getvalue(), headers=upyun_sign(bucket, "PUT", uri)).status_code == 200
        )
    rng = random.Random(SEED + 1)
    failures: list[str] = []
    for _ in range(80):
        check(server, Req(rng.choice(["GET", "HEAD"]), uri + "!" + random_spec(rng)), failures)
    report(failures)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [SEED + 10 + i for i in range(5)])
def test_generated_corpus_more_seeds(server: LiveServer, target: BucketCredentials, seed: int) -> None:
    """The generated corpus again with other seeds and more requests (the default run keeps one)."""
    rng = random.Random(seed)
    failures: list[str] = []
    for _ in range(1500):
        check(server, random_request(rng, target.bucket), failures)
    report(failures)


FORM_FIELDS: dict[str, list[Any]] = {
    "save-key": [
        "/..",
        "/a/../../b",
        "/{nosuch}",
        "/{filemd5}" * 200,
        "/\u0000x",
        "",
        "no-slash",
        "/" + "x" * 2000,
    ],
    "expiration": ["soon", -1, 1e300, 10**40, None, [], True],
    "content-length-range": ["5", "9,1", "a,b", "-1,5", "0," + "9" * 5000, [1], "\u00b2,\u00b3"],
    "allow-file-type": [5, "", "../", "x" * 5000, ["jpg"]],
    "image-width-range": ["1", "0,0", "x"],
    "notify-url": ["file:///etc/passwd", "javascript:alert(1)", "http://", "http://[::1", 5],
    "return-url": ["javascript:alert(1)", "http://\u0000", "//evil", ["x"]],
    "x-gmkerl-thumb": ["/fw/-1", "/nosuch/1", "x" * 3000, 5],
    "x-gmkerl-rotate": ["400", "\u00b2"],
    "apps": ["[", "[1]", [{"name": "naga"}], 5],
    "ext-param": ["x" * 100_000, ["x"], "\u0000"],
    "content-secret": ["a/b", "\u0000", "x" * 300],
    "x-upyun-meta-ttl": ["0", "181", "\u00b2", "9" * 5000],
    "bucket": ["other", "", ["x"]],
}


def test_signed_form_policies_with_garbage_fields(server: LiveServer, target: BucketCredentials) -> None:
    """FORM uploads whose policy is correctly signed but holds hostile values (every policy also
    pins a content-md5 the file does not have, so even a policy we accept stores nothing)."""
    from tests.protocols.upyun.forms import multipart, raw_policy, signature

    rng = random.Random(SEED + 2)
    failures: list[str] = []
    for _ in range(120):
        doc: dict[str, Any] = {
            "bucket": target.bucket,
            "expiration": int(time.time()) + 600,
            "save-key": "/f.bin",
            "content-md5": "0" * 32,
        }
        for name in rng.sample(sorted(FORM_FIELDS), rng.randint(1, 3)):
            doc[name] = rng.choice(FORM_FIELDS[name])
        policy = raw_policy(doc)
        fields: list[Any] = [
            ("policy", policy),
            ("signature", signature(target, policy)),
            ("file", ("f", b"x" * 64)),
        ]
        body, ctype = multipart(fields)
        reply = check(
            server, Req("POST", f"/{target.bucket}", [("Content-Type", ctype.encode())], body), failures
        )
        if reply is not None and reply.status < 300:
            failures.append(
                f"policy {doc} -> {reply.status}: accepted a file whose MD5 the policy contradicts"
            )
    report(failures)


def test_wantu_uploads_with_garbage_fields(server: LiveServer, target: BucketCredentials) -> None:
    """Wantu uploads with a valid token and hostile form fields and part headers (md5 always wrong,
    so nothing is stored even when the rest is accepted)."""
    rng = random.Random(SEED + 3)
    ns = target.bucket
    auth = _wantu_auth(target, {"namespace": ns, "expiration": int(time.time() * 1000) + 600_000})
    values = ["", "..", "/../..", "\u0000", "x" * 5000, "9" * 5000, "\u00b2", "-1", "/a//b", "%ff", "a\nb"]
    failures: list[str] = []
    for _ in range(80):
        fields = {
            name: rng.choice(values)
            for name in rng.sample(["dir", "name", "size", "uploadId", "id", "partNumber", "parts"], 3)
        }
        fields["md5"] = "0" * 32
        part_type = rng.choice([b"image/png", b"\xff/\xfe", b"", b"text/plain; charset=\xff", b"x" * 3000])
        out = bytearray()
        for name, value in fields.items():
            out += b'--W\r\nContent-Disposition: form-data; name="' + name.encode() + b'"\r\n\r\n'
            out += value.encode() + b"\r\n"
        out += (
            b'--W\r\nContent-Disposition: form-data; name="content"; filename="'
            + rng.choice([b"a.png", b"..\\..\\x", b"\xff\xfe", b"x" * 3000])
            + b'"\r\nContent-Type: '
            + part_type
            + b"\r\n\r\n"
            + b"q" * 100
            + b"\r\n--W--\r\n"
        )
        op = rng.choice(WANTU_OPS)
        headers = [("Authorization", auth), ("Content-Type", b"multipart/form-data; boundary=W")]
        reply = check(
            server, Req(rng.choice(["PUT", "POST"]), f"/api/proxy/{op}", headers, bytes(out)), failures
        )
        if reply is not None and reply.status < 300 and op in ("upload", "blockComplete"):
            failures.append(f"{op} {fields} -> {reply.status}: stored although the md5 is wrong")
    report(failures)


@pytest.mark.parametrize("filename", ["图片.png", "ü ß.jpg", "\ufeff\u202e.bin", "😀.gif"])
def test_utf8_and_odd_filenames_upload(server: LiveServer, bucket: BucketCredentials, filename: str) -> None:
    """Browsers send a part's filename as raw UTF-8: FORM and Wantu uploads with one succeed (they
    were 500s: the multipart header parser wants Latin-1), and ``{filename}`` in a save-key is it;
    a name with invisible characters (a BOM, a bidi override) is refused as a key, a 400 in either
    dialect's shape (core.keys)."""
    from tests.protocols.upyun.forms import upload
    from tests.protocols.wantu.client import WantuClient

    if filename.startswith("\ufeff"):
        with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
            r = upload(client, bucket, b"form bytes", filename=filename, key="/f/{filename}{.suffix}")
            assert r.status_code == 400 and "U+FEFF" in r.json()["message"], r.text
        wantu = WantuClient(server.url, bucket.access_key_id, bucket.secret_access_key, bucket.bucket)
        with contextlib.closing(wantu):
            r2 = wantu.upload(b"wantu bytes", fields={"dir": "/w", "name": filename}, filename=filename)
            assert r2.status_code == 400 and r2.json()["code"], r2.text
        return
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        r = upload(client, bucket, b"form bytes", filename=filename, key="/f/{filename}{.suffix}")
        assert r.status_code == 200, r.text
        assert r.json()["url"] == "/f/" + filename
    wantu = WantuClient(server.url, bucket.access_key_id, bucket.secret_access_key, bucket.bucket)
    try:
        r2 = wantu.upload(b"wantu bytes", fields={"dir": "/w", "name": filename}, filename=filename)
        assert r2.status_code == 200, r2.text
        assert r2.json()["name"] == filename
    finally:
        wantu.close()


@pytest.mark.parametrize(
    "content_type",
    ["图/片", "image/png; x=\u00e9\u4e2d", "image/png;\u0000", "text/\u00ff", "a b/c", "image/" + "x" * 300],
)
def test_declared_types_that_cannot_be_served_are_refused(
    server: LiveServer, admin: Gateway, bucket: BucketCredentials, content_type: str
) -> None:
    """A type that HTTP cannot carry back (non-Latin-1, control characters, not a token) is refused
    at upload on every path that takes one, instead of being stored and failing every later read.
    (Wantu keeps only the part's ``type/subtype``, so there a bad parameter is dropped, not refused.)"""
    target = bucket
    from tests.protocols.upyun.forms import multipart, policy_of, signature

    failures: list[str] = []
    b = target.bucket
    uri = f"/{b}/t.bin"
    raw = content_type.encode("utf-8")
    check(
        server, Req("PUT", uri, [*_upyun_signed(target, "PUT", uri), ("Content-Type", raw)], b"x"), failures
    )
    multi = [
        ("X-Upyun-Multi-Stage", b"initiate"),
        ("X-Upyun-Multi-Length", b"1"),
        ("X-Upyun-Multi-Type", raw),
    ]
    check(server, Req("PUT", uri, _upyun_signed(target, "PUT", uri) + multi), failures)
    policy = policy_of(target, "/t.bin", content_type=content_type)
    body, ctype = multipart(
        [("policy", policy), ("signature", signature(target, policy)), ("file", ("t", b"x"))]
    )
    check(server, Req("POST", f"/{b}", [("Content-Type", ctype.encode())], body), failures)
    auth = _wantu_auth(
        target, {"namespace": b, "expiration": int(time.time() * 1000) + 600_000, "detectMime": 0}
    )
    part = (
        b'--W\r\nContent-Disposition: form-data; name="dir"\r\n\r\n/t\r\n'
        b'--W\r\nContent-Disposition: form-data; name="name"\r\n\r\nt.bin\r\n'
        b'--W\r\nContent-Disposition: form-data; name="content"; filename="t"\r\nContent-Type: '
        + raw
        + b"\r\n\r\nx\r\n--W--\r\n"
    )
    headers = [("Authorization", auth), ("Content-Type", b"multipart/form-data; boundary=W")]
    reply = check(server, Req("POST", "/api/proxy/upload", headers, part), failures)
    report(failures)
    found = admin.catalog.get_bucket(b)
    assert found is not None
    main_type = content_type.split(";")[0].strip()
    if main_type.isascii() and main_type.isprintable() and " " not in main_type and len(main_type) < 100:
        assert reply is not None and reply.status == 200
        with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
            assert client.get(f"/{b}/t/t.bin").headers["content-type"] == main_type
    else:
        assert admin.catalog.list_dir(found.id, "", limit=10) == []


def test_open_sessions_fed_garbage(server: LiveServer, target: BucketCredentials) -> None:
    """Real multi-part sessions (UPYUN disorder and sequential, Wantu blocks) continued with hostile
    part ids, sizes, checksums and completion lists; every answer a dialect 4xx; then cancelled."""
    from tests.protocols.wantu.client import WantuClient
    from tests.protocols.wantu.client import b64 as wb64

    rng = random.Random(SEED + 4)
    failures: list[str] = []
    b = target.bucket
    uri = f"/{b}/multi.bin"
    garbage = ["", "-1", "1e3", "\u00b2", "9" * 30, "99999", "0x1", "%00", "x" * 3000, "1,2", "..", "zz" * 16]
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        uuids: list[str] = []
        for disorder in (True, False):
            headers = {"X-Upyun-Multi-Stage": "initiate", "X-Upyun-Multi-Length": "2048"}
            headers |= {"X-Upyun-Multi-Part-Size": "1024"} | (
                {"X-Upyun-Multi-Disorder": "true"} if disorder else {}
            )
            r = client.put(uri, headers={**headers, **upyun_sign(target, "PUT", uri)})
            assert r.status_code == 204, r.text
            uuids.append(r.headers["x-upyun-multi-uuid"])
        for _ in range(60):
            session = rng.choice(uuids)
            stage = rng.choice(
                [b"upload", b"complete", b"upload,complete", b"initiate,upload", b"cancel", b""]
            )
            extra: list[tuple[str, bytes]] = [
                ("X-Upyun-Multi-Stage", stage),
                (
                    "X-Upyun-Multi-Uuid",
                    rng.choice([session, session.upper(), "0" * 32, rng.choice(garbage)]).encode(),
                ),
                ("X-Upyun-Part-Id", rng.choice(["0", "1", "2", *garbage]).encode("utf-8")),
            ]
            if rng.random() < 0.3:
                extra.append(("X-Upyun-Multi-MD5", rng.choice(garbage).encode()))
            body = rng.choice([b"", b"y" * 1024, b"y" * 1025, b"y" * 10])
            check(server, Req("PUT", uri, _upyun_signed(target, "PUT", uri) + extra, body), failures)
        for session in uuids:
            client.delete(uri, headers={"X-Upyun-Multi-Uuid": session, **upyun_sign(target, "DELETE", uri)})
    wantu = WantuClient(server.url, target.access_key_id, target.secret_access_key, b)
    try:
        auth = wantu.authorization(dir="/w", name="m.bin")
        r = wantu.block_init(b"z" * 100, auth)
        assert r.status_code == 200, r.text
        upload_id, id_ = r.json()["uploadId"], r.json()["id"]
        for _ in range(60):
            op = rng.choice(["blockUpload", "blockComplete"])
            fields = {
                "uploadId": rng.choice([upload_id, upload_id.lower(), rng.choice(garbage)]),
                "id": rng.choice([id_, rng.choice(garbage)]),
                "partNumber": rng.choice(["1", "2", "10001", *garbage]),
                "size": rng.choice(["100", *garbage]),
                "md5": rng.choice(["0" * 32, *garbage]),
                "parts": rng.choice([wb64("[]"), wb64('[{"partNumber": "1"}]'), wb64("[" * 3000), *garbage]),
            }
            content = b"z" * 100 if op == "blockUpload" else None
            r = wantu.send(
                op, [(k, v) for k, v in fields.items() if rng.random() < 0.8], content, authorization=auth
            )
            if r.status_code >= 500 or (op == "blockComplete" and r.status_code < 300):
                failures.append(f"wantu {op} {fields} -> {r.status_code} {r.text[:200]}")
            elif r.status_code >= 400:
                try:
                    check_error_format("wantu", Reply(r.status_code, dict(r.headers), r.content))
                except (AssertionError, KeyError) as exc:
                    failures.append(f"wantu {op} {fields} -> {exc}")
        wantu.block_cancel(auth, upload_id, id_)
    finally:
        wantu.close()
    report(failures)


def test_imagex_upload_session_fed_garbage(server: LiveServer, target: BucketCredentials) -> None:
    """A real ApplyImageUpload, then the upload host and CommitImageUpload with hostile queries,
    CRCs, merge lists and session keys: ImageX errors only, and (checked at the end) nothing
    stored."""
    from tests.protocols.imagex.conftest import signed

    creds = {"ak": target.access_key_id, "sk": target.secret_access_key}
    params = {"Action": "ApplyImageUpload", "Version": "2018-08-01", "ServiceId": target.bucket}
    r = signed(server, "GET", params, **creds)
    assert r.status_code == 200, r.text
    address = r.json()["Result"]["UploadAddress"]
    store, session_key = address["StoreInfos"][0], address["SessionKey"]
    rng = random.Random(SEED + 5)
    garbage = [
        "",
        "-1",
        "\u00b2",
        "9" * 30,
        "99999",
        "%00",
        "x" * 3000,
        "..",
        "0:zz",
        "0:1,0:1",
        "1:0",
        "0:" + "f" * 9,
    ]
    failures: list[str] = []
    for _ in range(60):
        query = rng.choice(
            [
                "",
                "?uploads",
                "?uploadID=" + quote(rng.choice(garbage)),
                "?uploadID=x&partNumber=1",
                "?partNumber=" + quote(rng.choice(garbage)),
                "?uploadID=" + quote(rng.choice(garbage)) + "&phase=finish",
            ]
        )
        headers = [
            ("Authorization", rng.choice([store["Auth"], store["Auth"][:-3], "x"]).encode()),
            ("Content-CRC32", rng.choice(["00000000", "zz", *garbage]).encode("utf-8")),
        ]
        if rng.random() < 0.3:
            headers.append(("X-Storage-Mode", rng.choice([b"gateway", b"\xff"])))
        body = rng.choice([b"", b"not an image", rng.choice(garbage).encode("utf-8")])
        check(
            server, Req(rng.choice(["PUT", "POST"]), f"/{store['StoreUri']}{query}", headers, body), failures
        )
    commit = {"Action": "CommitImageUpload", "Version": "2018-08-01", "ServiceId": target.bucket}
    for key in [session_key, session_key[:-4], "", "x" * 5000, session_key + "."]:
        for extra in ({}, {"SuccessOids": ["../x"]}, {"Functions": [{"Name": "nosuch"}]}, {"OptionInfos": 5}):
            body = json.dumps({"SessionKey": key, **extra}).encode()
            r = signed(server, "POST", commit, body=body, **creds)
            if r.status_code >= 500 or r.status_code < 400:
                failures.append(f"commit {key[:40]!r} {extra} -> {r.status_code} {r.text[:200]}")
            else:
                try:
                    check_error_format("imagex-action", Reply(r.status_code, dict(r.headers), r.content))
                except (AssertionError, KeyError) as exc:
                    failures.append(f"commit {key[:40]!r} {extra} -> {exc}")
    report(failures)


# -- framing: lies and cuts (raw sockets) -------------------------------------------------------------


def _form_post(creds: BucketCredentials, boundary: bytes = b"bnd") -> tuple[bytes, list[tuple[str, bytes]]]:
    body = (
        b"--"
        + boundary
        + b'\r\nContent-Disposition: form-data; name="policy"\r\n\r\n'
        + b64("{}").encode()
        + b"\r\n"
        b"--"
        + boundary
        + b'\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\n'
        + b"z" * 1000
    )
    return body, [("Content-Type", b"multipart/form-data; boundary=" + boundary)]


def test_framing_lies_and_cut_bodies(server: LiveServer, admin: Gateway, bucket: BucketCredentials) -> None:
    """Content-Length shorter or longer than the body, chunked bodies cut mid-way, on the upload
    routes: an answer (or a closed connection) in the dialect's format, never a hang, a 5xx or a
    partial object. A short Content-Length is a complete (shorter) upload as far as HTTP can tell,
    so the one object left is exactly that long."""
    failures: list[str] = []
    target = bucket
    b = target.bucket
    uri = f"/{b}/cut.bin"
    form_body, form_headers = _form_post(target)
    wantu_auth = _wantu_auth(target, {"namespace": b, "expiration": int(time.time() * 1000) + 60_000})
    wantu_body = b'--w\r\nContent-Disposition: form-data; name="content"; filename="c"\r\n\r\n' + b"q" * 2000
    uploads = [
        Req("PUT", uri, _upyun_signed(target, "PUT", uri), b"x" * 5000),
        Req("POST", f"/{b}", form_headers, form_body),
        Req(
            "POST",
            "/api/proxy/upload",
            [("Authorization", wantu_auth), ("Content-Type", b"multipart/form-data; boundary=w")],
            wantu_body,
        ),
        Req(
            "PUT",
            "/tos-cn-i-abc/x.png",
            [("Authorization", b"garbage"), ("Content-CRC32", b"zz")],
            b"x" * 5000,
        ),
    ]
    for up in uploads:
        # longer than the body, then the client closes its side: the body is cut
        lie = Req(up.method, up.target, up.headers, up.body, content_length=len(up.body) + 10_000)
        check(server, lie, failures, half_close=True)
        # shorter than the body: the first answer is in format; the rest is a second (bad) request
        short = Req(up.method, up.target, up.headers, up.body, content_length=max(1, len(up.body) // 2))
        try:
            reply = exchange(server, short.wire(server.endpoint))
            assert reply is not None and reply.status < 500, reply
        except AssertionError as exc:
            failures.append(f"short Content-Length {short}\n    -> {exc}")
        # chunked, cut mid-chunk
        chunked = Req(up.method, up.target, [*up.headers, ("Transfer-Encoding", b"chunked")])
        wire = chunked.wire(server.endpoint) + b"1000\r\n" + up.body[:100]
        try:
            exchange(server, wire, half_close=True)
        except AssertionError as exc:
            if "hang" in str(exc):
                failures.append(f"cut chunked {chunked}\n    -> {exc}")
    report(failures)
    found = admin.catalog.get_bucket(b)
    assert found is not None
    entries = admin.catalog.list_dir(found.id, "", limit=10)
    assert [(e.name, e.size) for e in entries] == [("cut.bin", 2500)]


RAW_REQUESTS = [
    b"PUT /b/k HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"PUT /b/k HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    b"PUT /b/k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nxx",
    b"PUT /b/k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    b"PUT /b/k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\nx",
    b"GET http://evil.example/b/k HTTP/1.1\r\nHost: x\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /b/k HTTP/1.0\r\n\r\n",
    b"GET /b/k HTTP/9.9\r\nHost: x\r\n\r\n",
    b"GET /b/k\r\n\r\n",
    b"GET /b/k HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
    b"GET /b/k HTTP/1.1\r\nHost: x\r\nBad Header: v\r\n\r\n",
    b"GET /%%%% HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Many: v\r\n" * 2000 + b"\r\n",
]


@pytest.mark.parametrize("wire", RAW_REQUESTS, ids=range(len(RAW_REQUESTS)))
def test_malformed_http_framing(server: LiveServer, wire: bytes) -> None:
    """Smuggling-style and malformed requests: refused by the HTTP layer (uvicorn's 400) or answered
    in a dialect's format, or the connection closed; never a 5xx or a hang; the server stays up."""
    failures: list[str] = []
    try:
        reply = exchange(server, wire.replace(b"/b/", b"/nosuchbucket/"), half_close=True)
        if reply is not None:
            assert reply.status < 500, reply
            if reply.status >= 400 and reply.body != UVICORN_REFUSAL:
                reply.json()
    except (AssertionError, ValueError, OSError) as exc:
        failures.append(f"{wire[:120]!r} -> {exc}")
    report(failures)
    assert httpx.get(f"{server.url}/healthz", timeout=TIMEOUT).status_code == 200


def test_slow_body_does_not_block_other_uploads(
    server: LiveServer, server_home: Settings, bucket: BucketCredentials
) -> None:
    """A client that sends headers and part of a body, then stalls, holds nothing another upload
    of the same key needs, on each upload path (REST, FORM, Wantu); when it finally goes away it
    leaves neither a partial object nor a staging file."""
    from tests.protocols.upyun.forms import multipart, policy_of, signature
    from tests.protocols.upyun.forms import upload as form_upload
    from tests.protocols.wantu.client import WantuClient

    b = bucket.bucket
    uri = f"/{b}/same.bin"
    policy = policy_of(bucket, "/form.bin")
    form_body, form_type = multipart(
        [("policy", policy), ("signature", signature(bucket, policy)), ("file", ("f", b"z" * 60_000))]
    )
    wantu = WantuClient(server.url, bucket.access_key_id, bucket.secret_access_key, b)
    wantu_auth = wantu.authorization(dir="/w", name="same.bin").encode()
    wantu_head = b'--W\r\nContent-Disposition: form-data; name="content"; filename="c"\r\n\r\n'
    stalls = [
        Req("PUT", uri, _upyun_signed(bucket, "PUT", uri), content_length=1_000_000).wire(server.endpoint)
        + b"y" * 50_000,
        Req(
            "POST", f"/{b}", [("Content-Type", form_type.encode())], content_length=len(form_body) + 500_000
        ).wire(server.endpoint)
        + form_body[:-100],
        Req(
            "POST",
            "/api/proxy/upload",
            [("Authorization", wantu_auth), ("Content-Type", b"multipart/form-data; boundary=W")],
            content_length=1_000_000,
        ).wire(server.endpoint)
        + wantu_head
        + b"q" * 50_000,
        b"PUT " + uri.encode() + b" HTTP/1.1\r\nHost: x\r\nAuthor",  # headers that never end
    ]
    socks = [socket.create_connection(("127.0.0.1", server.port)) for _ in stalls]
    try:
        for sock, wire in zip(socks, stalls, strict=True):
            sock.sendall(wire)
        time.sleep(0.3)
        started = time.monotonic()
        with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
            assert (
                client.put(uri, content=b"rest done", headers=upyun_sign(bucket, "PUT", uri)).status_code
                == 200
            )
            assert form_upload(client, bucket, b"form done", key="/form.bin").status_code == 200
            assert wantu.upload(b"wantu done", fields={"dir": "/w", "name": "same.bin"}).status_code == 200
            assert client.get("/healthz").status_code == 200
        assert time.monotonic() - started < 3.0
    finally:
        for sock in socks:
            sock.close()
        wantu.close()
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as client:
        assert wait_for(lambda: staging_is_empty(server_home)), staging_files(server_home.home)
        assert client.get(uri).content == b"rest done"
        assert client.get(f"/{b}/form.bin").content == b"form done"
        assert client.get(f"/{b}/w/same.bin").content == b"wantu done"


def test_stalled_clients_do_not_starve_the_server(server: LiveServer, target: BucketCredentials) -> None:
    """Many stalled connections at once (headers cut, bodies cut) while normal requests go on."""
    socks: list[socket.socket] = []
    errors: list[str] = []
    try:
        for i in range(20):
            s = socket.create_connection(("127.0.0.1", server.port))
            if i % 2:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            else:
                s.sendall(b"PUT /api/proxy/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc")
            socks.append(s)

        def ping() -> None:
            try:
                assert httpx.get(f"{server.url}/healthz", timeout=TIMEOUT).status_code == 200
            except Exception as exc:  # recorded for the main thread
                errors.append(repr(exc))

        threads = [threading.Thread(target=ping) for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(TIMEOUT * 2)
        assert not errors, errors
    finally:
        for s in socks:
            s.close()


# -- afterwards: nothing stored, nothing staged, nothing leaked -------------------------------------


def test_zz_nothing_was_stored_staged_or_leaked(
    server: LiveServer, server_home: Settings, admin: Gateway, target: BucketCredentials
) -> None:
    """Runs last in this module: the hostile bucket is empty, staging is empty, and the log holds
    neither a traceback nor any of the bucket's secrets."""
    bucket = admin.catalog.get_bucket(target.bucket)
    assert bucket is not None
    assert wait_for(lambda: staging_is_empty(server_home)), staging_files(server_home.home)
    entries = admin.catalog.list_dir(bucket.id, "", limit=10)
    assert entries == [], [(e.name, e.is_folder, e.mime) for e in entries]
    assert admin.catalog.usage(bucket.id) == 0
    log = server.log()
    assert "Traceback" not in log, log[-5000:]
    for secret in secrets_of(target):
        assert secret not in log

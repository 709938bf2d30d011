"""Public reads: ``GET/HEAD /<bucket>/<key>`` without credentials, against a live server.

Objects are uploaded in-process through the Gateway (the ``admin`` fixture) and read over HTTP.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime

import httpx
import psutil
import pytest

from mediagate.core.buckets import BucketCredentials
from mediagate.core.gateway import Gateway
from mediagate.core.grant import UploadGrant
from tests.conftest import LiveServer
from tests.protocols.upyun.forms import upload
from tests.protocols.upyun.rest_client import object_uri, signed
from tests.support.cli import run_mediagate

BODY = bytes(range(256)) * 40  # 10240 bytes, not text


async def _chunks(data: bytes, size: int = 65536) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def put(
    admin: Gateway,
    bucket: str,
    key: str,
    data: bytes = BODY,
    *,
    filename: str | None = None,
    created_at: datetime | None = None,
    **grant: object,
) -> None:
    """Store ``data`` at ``key`` through the real pipeline (receive, check, commit)."""

    async def run() -> None:
        g = UploadGrant(bucket=bucket, render_key=lambda _facts: key, **grant)  # type: ignore[arg-type]
        received = await admin.receive(g, _chunks(data))
        await admin.commit(g, received, filename=filename or key.rsplit("/", 1)[-1], created_at=created_at)

    asyncio.run(run())


@pytest.fixture
def client(server: LiveServer) -> httpx.Client:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c  # type: ignore[misc]


def url(bucket: BucketCredentials, key: str) -> str:
    return f"/{bucket.bucket}/{key}"


# -- full reads ---------------------------------------------------------------------------------------


def test_get_streams_the_bytes_with_validators(
    admin: Gateway, bucket: BucketCredentials, client: httpx.Client
) -> None:
    put(admin, bucket.bucket, "dir/data.bin")
    r = client.get(url(bucket, "dir/data.bin"))
    assert r.status_code == 200
    assert r.content == BODY
    assert r.headers["content-length"] == str(len(BODY))
    assert r.headers["etag"] == f'"{hashlib.md5(BODY).hexdigest()}"'
    assert r.headers["accept-ranges"] == "bytes"
    assert r.headers["content-type"] == "application/octet-stream"
    modified = parsedate_to_datetime(r.headers["last-modified"])
    assert abs((datetime.now(UTC) - modified).total_seconds()) < 60
    assert r.headers["x-request-id"]
    assert not any(h.startswith("x-upyun-meta") for h in r.headers)


def test_content_type_is_the_objects_mime(
    admin: Gateway, bucket: BucketCredentials, client: httpx.Client
) -> None:
    png = (
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
        b"\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7V\xbd\xfa\x00\x00\x00\x00IEND\xaeB`\x82"
    )
    put(admin, bucket.bucket, "pixel.png", png)
    put(admin, bucket.bucket, "typed.bin", b"hello", content_type="text/x-custom")
    assert client.get(url(bucket, "pixel.png")).headers["content-type"] == "image/png"
    assert client.get(url(bucket, "typed.bin")).headers["content-type"] == "text/x-custom"


def test_head_gives_the_headers_without_a_body(
    admin: Gateway, bucket: BucketCredentials, client: httpx.Client
) -> None:
    put(admin, bucket.bucket, "h.bin")
    r = client.head(url(bucket, "h.bin"))
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["content-length"] == str(len(BODY))
    assert r.headers["etag"] == f'"{hashlib.md5(BODY).hexdigest()}"'
    missing = client.head(url(bucket, "nope.bin"))
    assert missing.status_code == 404
    assert missing.content == b""


def test_keys_with_unicode_and_spaces(
    admin: Gateway, bucket: BucketCredentials, client: httpx.Client
) -> None:
    put(admin, bucket.bucket, "a b/中文 名.txt", b"unicode")
    r = client.get(f"/{bucket.bucket}/a%20b/%E4%B8%AD%E6%96%87%20%E5%90%8D.txt")
    assert r.status_code == 200
    assert r.content == b"unicode"


def test_empty_object(admin: Gateway, bucket: BucketCredentials, client: httpx.Client) -> None:
    put(admin, bucket.bucket, "empty.txt", b"")
    r = client.get(url(bucket, "empty.txt"))
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["content-length"] == "0"
    r = client.get(url(bucket, "empty.txt"), headers={"Range": "bytes=0-"})
    assert r.status_code == 416
    assert r.headers["content-range"] == "bytes */0"


# -- ranges -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-0", 0, 1),
        ("bytes=100-199", 100, 200),
        ("bytes=10000-", 10000, len(BODY)),
        ("bytes=-40", len(BODY) - 40, len(BODY)),
        ("bytes=-999999", 0, len(BODY)),
        ("bytes=10200-999999", 10200, len(BODY)),
    ],
)
def test_single_byte_ranges(
    admin: Gateway, bucket: BucketCredentials, client: httpx.Client, header: str, start: int, end: int
) -> None:
    put(admin, bucket.bucket, "r.bin")
    r = client.get(url(bucket, "r.bin"), headers={"Range": header})
    assert r.status_code == 206
    assert r.content == BODY[start:end]
    assert r.headers["content-range"] == f"bytes {start}-{end - 1}/{len(BODY)}"
    assert r.headers["content-length"] == str(end - start)


@pytest.mark.parametrize("header", [f"bytes={len(BODY)}-", "bytes=999999-1000000", "bytes=-0"])
def test_unsatisfiable_range_is_416(
    admin: Gateway, bucket: BucketCredentials, client: httpx.Client, header: str
) -> None:
    put(admin, bucket.bucket, "r.bin")
    r = client.get(url(bucket, "r.bin"), headers={"Range": header})
    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{len(BODY)}"
    assert r.json()["code"] == 416


@pytest.mark.parametrize(
    "header", ["bytes=abc", "items=0-5", "bytes=5-3", "bytes=", "bytes=-", "0-5", "bytes=0-1,5-9"]
)
def test_malformed_or_multiple_ranges_get_the_full_body(
    admin: Gateway, bucket: BucketCredentials, client: httpx.Client, header: str
) -> None:
    put(admin, bucket.bucket, "r.bin")
    r = client.get(url(bucket, "r.bin"), headers={"Range": header})
    assert r.status_code == 200
    assert r.content == BODY


def test_if_range(admin: Gateway, bucket: BucketCredentials, client: httpx.Client) -> None:
    put(admin, bucket.bucket, "ir.bin")
    first = client.get(url(bucket, "ir.bin"))
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    same = client.get(url(bucket, "ir.bin"), headers={"Range": "bytes=0-9", "If-Range": etag})
    assert (same.status_code, same.content) == (206, BODY[:10])
    by_date = client.get(url(bucket, "ir.bin"), headers={"Range": "bytes=0-9", "If-Range": modified})
    assert by_date.status_code == 206
    changed = client.get(url(bucket, "ir.bin"), headers={"Range": "bytes=0-9", "If-Range": '"other"'})
    assert (changed.status_code, changed.content) == (200, BODY)
    weak = client.get(url(bucket, "ir.bin"), headers={"Range": "bytes=0-9", "If-Range": f"W/{etag}"})
    assert weak.status_code == 200


# -- conditional requests ---------------------------------------------------------------------------


def test_not_modified(admin: Gateway, bucket: BucketCredentials, client: httpx.Client) -> None:
    put(admin, bucket.bucket, "c.bin")
    first = client.get(url(bucket, "c.bin"))
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    for headers in (
        {"If-None-Match": etag},
        {"If-None-Match": f'"zzz", W/{etag}'},
        {"If-None-Match": "*"},
        {"If-Modified-Since": modified},
        {"If-Modified-Since": format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)},
    ):
        r = client.get(url(bucket, "c.bin"), headers=headers)
        assert r.status_code == 304, headers
        assert r.content == b""
        assert r.headers["etag"] == etag
        assert client.head(url(bucket, "c.bin"), headers=headers).status_code == 304
    old = format_datetime(datetime.now(UTC) - timedelta(days=1), usegmt=True)
    assert client.get(url(bucket, "c.bin"), headers={"If-Modified-Since": old}).status_code == 200
    assert client.get(url(bucket, "c.bin"), headers={"If-None-Match": '"other"'}).status_code == 200
    # If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2)
    r = client.get(url(bucket, "c.bin"), headers={"If-None-Match": '"other"', "If-Modified-Since": modified})
    assert r.status_code == 200
    assert client.get(url(bucket, "c.bin"), headers={"If-Modified-Since": "garbage"}).status_code == 200


def test_precondition_failed(admin: Gateway, bucket: BucketCredentials, client: httpx.Client) -> None:
    put(admin, bucket.bucket, "p.bin")
    first = client.get(url(bucket, "p.bin"))
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    assert client.get(url(bucket, "p.bin"), headers={"If-Match": etag}).status_code == 200
    assert client.get(url(bucket, "p.bin"), headers={"If-Match": "*"}).status_code == 200
    r = client.get(url(bucket, "p.bin"), headers={"If-Match": '"other"'})
    assert r.status_code == 412
    assert r.json() == {"code": 412, "message": "precondition failed"}
    assert client.get(url(bucket, "p.bin"), headers={"If-Match": f"W/{etag}"}).status_code == 412
    old = format_datetime(datetime.now(UTC) - timedelta(days=1), usegmt=True)
    assert client.get(url(bucket, "p.bin"), headers={"If-Unmodified-Since": old}).status_code == 412
    assert client.get(url(bucket, "p.bin"), headers={"If-Unmodified-Since": modified}).status_code == 200
    # If-Match takes precedence over If-Unmodified-Since
    assert (
        client.get(url(bucket, "p.bin"), headers={"If-Match": etag, "If-Unmodified-Since": old}).status_code
        == 200
    )


def test_etag_changes_when_the_object_is_replaced(
    admin: Gateway, bucket: BucketCredentials, client: httpx.Client
) -> None:
    put(admin, bucket.bucket, "v.txt", b"one")
    etag = client.get(url(bucket, "v.txt")).headers["etag"]
    put(admin, bucket.bucket, "v.txt", b"two")
    r = client.get(url(bucket, "v.txt"), headers={"If-None-Match": etag})
    assert (r.status_code, r.content) == (200, b"two")


# -- what is not served -----------------------------------------------------------------------------


def test_content_secret(admin: Gateway, bucket: BucketCredentials, client: httpx.Client) -> None:
    put(admin, bucket.bucket, "secret/s.bin", content_secret="s3cr3t")
    plain = client.get(url(bucket, "secret/s.bin"))
    assert plain.status_code == 404
    assert plain.json() == {"code": 404, "message": "file not found"}
    assert client.get(url(bucket, "secret/s.bin!wrong")).status_code == 404
    assert client.get(url(bucket, "secret/s.bin!s3cr3")).status_code == 404
    assert client.get(url(bucket, "secret/s.bin!")).status_code == 404
    assert client.head(url(bucket, "secret/s.bin")).status_code == 404
    r = client.get(url(bucket, "secret/s.bin!s3cr3t"))
    assert (r.status_code, r.content) == (200, BODY)
    ranged = client.get(url(bucket, "secret/s.bin!s3cr3t"), headers={"Range": "bytes=0-3"})
    assert (ranged.status_code, ranged.content) == (206, BODY[:4])


def test_a_suffix_on_an_object_without_secret_is_not_found(
    admin: Gateway, bucket: BucketCredentials, client: httpx.Client
) -> None:
    put(admin, bucket.bucket, "open.bin")
    assert client.get(url(bucket, "open.bin!anything")).status_code == 404


def test_keys_containing_the_separator(
    admin: Gateway, bucket: BucketCredentials, client: httpx.Client
) -> None:
    put(admin, bucket.bucket, "wow!.txt", b"bang")
    put(admin, bucket.bucket, "x!y.txt", b"hidden", content_secret="k")
    assert client.get(url(bucket, "wow!.txt")).content == b"bang"
    assert client.get(url(bucket, "x!y.txt")).status_code == 404
    assert client.get(url(bucket, "x!y.txt!k")).content == b"hidden"


def test_folders_root_and_unknown_buckets_are_not_found(
    admin: Gateway, bucket: BucketCredentials, client: httpx.Client
) -> None:
    put(admin, bucket.bucket, "a/b/c.txt", b"deep")
    for path in ("a", "a/", "a/b", "a/b/", "", "/", "missing.txt"):
        r = client.get(f"/{bucket.bucket}/{path}")
        assert r.status_code == 404, path
        assert r.json()["code"] == 404
    assert client.get(f"/{bucket.bucket}").status_code == 404
    assert client.get("/nosuchbucket-here/a/b/c.txt").status_code == 404
    assert client.head(f"/{bucket.bucket}/a/b").status_code == 404


def test_expired_objects_are_not_found(
    admin: Gateway, bucket: BucketCredentials, client: httpx.Client
) -> None:
    put(
        admin,
        bucket.bucket,
        "old.txt",
        b"gone",
        ttl_seconds=5,
        created_at=datetime.now(UTC) - timedelta(seconds=10),
    )
    put(admin, bucket.bucket, "young.txt", b"here", ttl_seconds=3600)
    assert client.get(url(bucket, "old.txt")).status_code == 404
    assert client.get(url(bucket, "young.txt")).content == b"here"


@pytest.mark.parametrize("raw", ["a/%2e%2e/b.txt", "%2e%2e/%2e%2e/etc/passwd", "a%01b", "a%00b", "a//..//b"])
def test_invalid_keys_are_client_errors(bucket: BucketCredentials, server: LiveServer, raw: str) -> None:
    # send the target exactly as written (httpx would resolve dot segments itself)
    with httpx.Client(base_url=server.url) as c:
        request = c.build_request("GET", server.url)
        request.url = request.url.copy_with(raw_path=f"/{bucket.bucket}/{raw}".encode())
        r = c.send(request)
    assert r.status_code in (400, 404)
    assert r.json()["code"] == r.status_code


def test_private_bucket_refuses_anonymous_reads(
    admin: Gateway, bucket: BucketCredentials, client: httpx.Client
) -> None:
    put(admin, bucket.bucket, "p.txt", b"private")
    put(admin, bucket.bucket, "ps.txt", b"private", content_secret="k")
    admin.catalog.update_bucket_settings(bucket.bucket, {"public": False})
    for path in ("p.txt", "ps.txt!k", "missing.txt"):
        r = client.get(url(bucket, path))
        assert r.status_code == 403, path
        assert r.json()["code"] == 403


def test_bucket_public_switch_via_cli_reaches_the_running_server(
    admin: Gateway, bucket: BucketCredentials, client: httpx.Client, server: LiveServer
) -> None:
    put(admin, bucket.bucket, "sw.txt", b"switch")
    assert client.get(url(bucket, "sw.txt")).status_code == 200

    def cli(*args: str) -> None:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "mediagate",
                "--home",
                str(server.home),
                "bucket",
                "public",
                bucket.bucket,
                *args,
            ],
            check=True,
            capture_output=True,
        )

    def settles_to(status: int) -> float:
        start = time.monotonic()
        while time.monotonic() - start < 10:
            if client.get(url(bucket, "sw.txt")).status_code == status:
                return time.monotonic() - start
            time.sleep(0.2)
        raise AssertionError(f"status never became {status}")

    cli("--off")
    assert settles_to(403) < 5
    cli("--on")
    assert settles_to(200) < 5


# -- streaming ------------------------------------------------------------------------------------


def test_large_object_is_streamed_with_flat_memory(
    admin: Gateway, bucket: BucketCredentials, server: LiveServer
) -> None:
    size = 50 * 1024 * 1024
    data = os.urandom(1024 * 1024) * 50
    put(admin, bucket.bucket, "big.bin", data)
    assert server.process is not None
    proc = psutil.Process(server.process.pid)
    with httpx.Client(base_url=server.url, timeout=60) as c:
        c.get(url(bucket, "big.bin"), headers={"Range": "bytes=0-0"})  # warm up
        before = proc.memory_info().rss
        peak = before
        digest = hashlib.md5()
        received = 0
        with c.stream("GET", url(bucket, "big.bin")) as r:
            assert r.status_code == 200
            assert r.headers["content-length"] == str(size)
            for chunk in r.iter_bytes():
                digest.update(chunk)
                received += len(chunk)
                peak = max(peak, proc.memory_info().rss)
        tail = c.get(url(bucket, "big.bin"), headers={"Range": f"bytes={size - 5}-"})
    assert received == size
    assert digest.hexdigest() == hashlib.md5(data).hexdigest()
    assert tail.content == data[-5:]
    assert peak - before < 20 * 1024 * 1024, f"server RSS grew by {(peak - before) >> 20} MiB"


def test_client_leaving_mid_stream_does_not_hurt_the_server(
    admin: Gateway, bucket: BucketCredentials, server: LiveServer
) -> None:
    data = os.urandom(8 * 1024 * 1024)
    put(admin, bucket.bucket, "cut.bin", data)
    for _ in range(3):
        with httpx.Client(base_url=server.url) as c, c.stream("GET", url(bucket, "cut.bin")) as r:
            next(r.iter_raw())
    with httpx.Client(base_url=server.url) as c:
        assert c.get(url(bucket, "cut.bin")).content == data


# -- user content cannot script the gateway -----------------------------------------------------------

HTML = b"<!doctype html><script>fetch('/mweb/v1/get_upload_token',{method:'POST'})</script>"
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.cookie)</script></svg>'


def _form_upload(
    client: httpx.Client, bucket: BucketCredentials, name: str, data: bytes, declared: str | None = None
) -> None:
    """The attack's way in: an ordinary UPYUN FORM upload of an .html/.svg file (its type sniffed,
    or declared in the policy)."""
    policy = {"content_type": declared} if declared else {}
    resp = upload(client, bucket, data, filename=name, key=f"/{name}", **policy)
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize(
    "name,data,declared",
    [
        ("x.html", HTML, None),
        ("x.svg", SVG, "image/svg+xml"),
        ("y.html", HTML, "text/html; charset=utf-8"),
        ("x.xhtml", HTML, "application/xhtml+xml"),
        ("x.js", b"alert(1)", "application/javascript"),
    ],
)
def test_uploaded_active_content_is_a_sandboxed_download(
    bucket: BucketCredentials, client: httpx.Client, name: str, data: bytes, declared: str | None
) -> None:
    _form_upload(client, bucket, name, data, declared)
    for method in ("GET", "HEAD"):
        r = client.request(method, url(bucket, name))
        assert r.status_code == 200
        if declared:
            assert r.headers["content-type"] == declared
        assert r.headers["content-security-policy"] == "sandbox"
        assert r.headers["content-disposition"] == "attachment"
        assert r.headers["x-content-type-options"] == "nosniff"
    assert client.get(url(bucket, name)).content == data
    # the authenticated UPYUN REST read is sandboxed too
    rest = signed(client, bucket, "GET", object_uri(bucket.bucket, name))
    assert rest.status_code == 200
    assert rest.headers["content-security-policy"] == "sandbox"
    assert rest.headers["content-disposition"] == "attachment"


def test_passive_content_is_served_inline(
    admin: Gateway, bucket: BucketCredentials, client: httpx.Client
) -> None:
    put(admin, bucket.bucket, "photo.bin")
    _form_upload(client, bucket, "sniffed.svg", SVG)  # not declared: sniffed as text, shown as text
    for key in ("photo.bin", "sniffed.svg"):
        r = client.get(url(bucket, key))
        assert "content-disposition" not in r.headers and "content-security-policy" not in r.headers
        assert r.headers["x-content-type-options"] == "nosniff"
    assert client.get(url(bucket, "sniffed.svg")).headers["content-type"].startswith("text/plain")


def test_nosniff_on_every_response(bucket: BucketCredentials, client: httpx.Client) -> None:
    for r in (
        client.get(url(bucket, "missing")),
        client.get("/healthz"),
        client.post("/mweb/v1/get_upload_token"),
        client.get("/?Action=ApplyImageUpload&Version=2018-08-01"),
        client.options(url(bucket, "x"), headers={"Origin": "https://a.example"}),
    ):
        assert r.headers["x-content-type-options"] == "nosniff", (r.request.url, r.status_code)


def test_a_bucket_may_opt_in_to_inline_active_content(
    server: LiveServer, bucket: BucketCredentials, client: httpx.Client
) -> None:
    _form_upload(client, bucket, "page.html", HTML)
    done = run_mediagate(server.home, "bucket", "inline-active", bucket.bucket, "--on")
    assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the running server re-reads bucket settings within seconds
        r = client.get(url(bucket, "page.html"))
        if "content-disposition" not in r.headers:
            break
        time.sleep(0.2)
    assert "content-disposition" not in r.headers and "content-security-policy" not in r.headers
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize(
    "mime",
    [
        "text/plain; charset=utf-8,text/html",
        "text/plain;,text/html",
        "image/png, image/svg+xml",
        "x/y,TEXT/HTML",
    ],
)
def test_a_type_list_with_an_active_member_is_sandboxed(mime: str) -> None:
    """Browsers use the last type of a comma-separated Content-Type: each member is judged."""
    from mediagate.serving import content_headers, is_active

    assert is_active(mime)
    assert content_headers(mime) == {
        "Content-Security-Policy": "sandbox",
        "Content-Disposition": "attachment",
    }
    assert not is_active("text/plain; charset=utf-8")


@pytest.mark.parametrize("mime", ["text/plain; charset=utf-8,text/html", "text/plain;,text/html"])
def test_a_declared_type_a_browser_would_read_as_html_is_refused(
    server: LiveServer, admin: Gateway, bucket: BucketCredentials, mime: str
) -> None:
    """Before, ``text/plain; charset=utf-8,text/html`` was stored and served as it was, without
    the sandbox: a browser renders it as HTML on the gateway's origin (stored XSS). REST PUT,
    multi-part and FORM uploads refuse it in their own error shapes; nothing is stored."""
    from tests.protocols.upyun.forms import multipart, policy_of, signature
    from tests.protocols.upyun.rest_client import sign

    with httpx.Client(base_url=server.url, timeout=30) as client:
        uri = object_uri(bucket.bucket, "x.txt")
        put = signed(
            client, bucket, "PUT", uri, content=b"<script>1</script>", headers={"Content-Type": mime}
        )
        assert put.status_code == 400 and set(put.json()) == {"msg", "code", "id"}, put.text
        init = client.put(
            uri,
            headers={
                "X-Upyun-Multi-Stage": "initiate",
                "X-Upyun-Multi-Length": "1",
                "X-Upyun-Multi-Type": mime,
            }
            | sign(bucket, "PUT", uri),
        )
        assert init.status_code == 400, init.text
        policy = policy_of(bucket, "/x.txt", content_type=mime)
        body, ctype = multipart(
            [("policy", policy), ("signature", signature(bucket, policy)), ("file", ("x.txt", b"<script>"))]
        )
        form = client.post(f"/{bucket.bucket}", content=body, headers={"Content-Type": ctype})
        assert form.status_code == 400 and form.json()["code"] == 400, form.text
        assert client.get(f"/{bucket.bucket}/x.txt").status_code == 404

"""/v1 objects against a live server: streamed uploads (raw and multipart) with an API key or an
upload token, listing with prefix and cursor, metadata, bytes, delete, copy and move."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from mediagate.core.buckets import BucketCredentials
from mediagate.core.gateway import Gateway
from tests.conftest import LiveServer, staging_files
from tests.protocols.native.api import client, error_of, new_key
from tests.protocols.upyun.forms import multipart

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8cf"
    "c0f01f0005000201a2ff3d4b0000000049454e44ae426082"
)


@pytest.fixture
def api(server: LiveServer, admin: Gateway, bucket: BucketCredentials) -> Iterator[httpx.Client]:
    with client(server.url, new_key(admin, bucket.bucket, "read,write")) as c:
        yield c


def test_put_then_read_back_every_way(api: httpx.Client, bucket: BucketCredentials) -> None:
    b = bucket.bucket
    data = b"hello, v1\n" * 1000
    r = api.put(f"/v1/buckets/{b}/objects/docs/hello.txt", content=data)
    assert r.status_code == 201, r.text
    obj = r.json()
    assert obj["key"] == "docs/hello.txt" and obj["size"] == len(data) and obj["bucket"] == b
    assert obj["md5"] == hashlib.md5(data).hexdigest() and obj["sha256"] == hashlib.sha256(data).hexdigest()
    assert obj["mime"] == "text/plain" and obj["url"] == f"/{b}/docs/hello.txt"

    assert api.get(f"/v1/buckets/{b}/objects/docs/hello.txt").json() == obj
    head = api.head(f"/v1/buckets/{b}/objects/docs/hello.txt")
    assert head.status_code == 200 and head.headers["content-length"] == str(len(data))
    assert head.headers["etag"].strip('"') == obj["md5"]
    content = api.get(f"/v1/buckets/{b}/content/docs/hello.txt")
    assert content.status_code == 200 and content.content == data
    ranged = api.get(f"/v1/buckets/{b}/content/docs/hello.txt", headers={"Range": "bytes=0-4"})
    assert ranged.status_code == 206 and ranged.content == b"hello"
    public = httpx.get(f"{api.base_url}/{b}/docs/hello.txt")
    assert public.content == data


def test_multipart_upload_streams_through_the_form_parser(
    api: httpx.Client, bucket: BucketCredentials
) -> None:
    b = bucket.bucket
    body, ctype = multipart([("key", "img/dot.png"), ("file", ("ignored.png", PNG))])
    r = api.post(f"/v1/buckets/{b}/objects", content=body, headers={"Content-Type": ctype})
    assert r.status_code == 201, r.text
    assert r.json()["key"] == "img/dot.png" and r.json()["mime"] == "image/png" and r.json()["width"] == 1
    body, ctype = multipart([("file", ("named.txt", b"by its name"))])
    r = api.post(f"/v1/buckets/{b}/objects", content=body, headers={"Content-Type": ctype})
    assert r.status_code == 201 and r.json()["key"] == "named.txt"
    body, ctype = multipart([("key", "x")])
    r = api.post(f"/v1/buckets/{b}/objects", content=body, headers={"Content-Type": ctype})
    assert error_of(r) == (400, "missing_file")
    r = api.post(f"/v1/buckets/{b}/objects", content=b"x", headers={"Content-Type": "text/plain"})
    assert error_of(r) == (400, "bad_request")


def test_overwrite_false_refuses_an_existing_key(api: httpx.Client, bucket: BucketCredentials) -> None:
    url = f"/v1/buckets/{bucket.bucket}/objects/once.txt"
    assert api.put(url, content=b"1", params={"overwrite": "false"}).status_code == 201
    assert error_of(api.put(url, content=b"2", params={"overwrite": "false"})) == (409, "key_exists")
    assert api.put(url, content=b"3").status_code == 201
    assert api.get(f"/v1/buckets/{bucket.bucket}/content/once.txt").content == b"3"


def test_listing_pages_with_a_cursor_and_a_prefix(api: httpx.Client, bucket: BucketCredentials) -> None:
    b = bucket.bucket
    keys = [f"p/{n:02d}.txt" for n in range(7)] + ["q/other.txt", "p.txt"]
    for key in keys:
        assert api.put(f"/v1/buckets/{b}/objects/{key}", content=key.encode()).status_code == 201
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"prefix": "p/", "limit": "3", **({"cursor": cursor} if cursor else {})}
        page = api.get(f"/v1/buckets/{b}/objects", params=params).json()
        seen += [o["key"] for o in page["objects"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(k for k in keys if k.startswith("p/")) and pages == 3
    everything = api.get(f"/v1/buckets/{b}/objects", params={"limit": "1000"}).json()
    assert [o["key"] for o in everything["objects"]] == sorted(keys) and everything["next_cursor"] is None
    bad = api.get(f"/v1/buckets/{b}/objects", params={"cursor": "%%%"})
    assert error_of(bad) == (400, "invalid_cursor")
    assert error_of(api.get(f"/v1/buckets/{b}/objects", params={"limit": "0"})) == (400, "invalid_request")


def test_newest_first_pages_the_whole_bucket_by_upload_time(
    api: httpx.Client, bucket: BucketCredentials
) -> None:
    b = bucket.bucket
    keys = [f"n/{i:02d}.txt" for i in range(7)] + ["a.txt", "z/deep/x.txt"]
    for key in keys:
        assert api.put(f"/v1/buckets/{b}/objects/{key}", content=key.encode()).status_code == 201
    assert api.put(f"/v1/buckets/{b}/objects/n/03.txt", content=b"again").status_code == 201
    newest = ["n/03.txt", "z/deep/x.txt", "a.txt", "n/06.txt", "n/05.txt", "n/04.txt", "n/02.txt"]
    newest += ["n/01.txt", "n/00.txt"]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"order": "newest", "limit": "4", **({"cursor": cursor} if cursor else {})}
        page = api.get(f"/v1/buckets/{b}/objects", params=params).json()
        seen += [o["key"] for o in page["objects"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        if len(seen) == 4:  # an upload after the first page is not on a later one
            assert api.put(f"/v1/buckets/{b}/objects/late.txt", content=b"late").status_code == 201
    assert seen == newest
    first = api.get(f"/v1/buckets/{b}/objects", params={"order": "newest", "limit": "2"}).json()
    assert [o["key"] for o in first["objects"]] == ["late.txt", "n/03.txt"]
    by_name = api.get(f"/v1/buckets/{b}/objects", params={"limit": "1000", "order": "key"}).json()
    assert [o["key"] for o in by_name["objects"]] == sorted([*keys, "late.txt"])
    refused = api.get(f"/v1/buckets/{b}/objects", params={"order": "newest", "prefix": "n/"})
    assert error_of(refused) == (400, "invalid_order")
    name_cursor = api.get(f"/v1/buckets/{b}/objects", params={"limit": "1"}).json()["next_cursor"]
    wrong = api.get(f"/v1/buckets/{b}/objects", params={"order": "newest", "cursor": name_cursor})
    assert error_of(wrong) == (400, "invalid_cursor")
    assert error_of(api.get(f"/v1/buckets/{b}/objects", params={"order": "oldest"})) == (
        400,
        "invalid_request",
    )


def test_metadata_delete_copy_move(api: httpx.Client, bucket: BucketCredentials) -> None:
    b = bucket.bucket
    api.put(f"/v1/buckets/{b}/objects/a.txt", content=b"A")
    r = api.patch(f"/v1/buckets/{b}/objects/a.txt", json={"meta": {"owner": "u1"}})
    assert r.status_code == 200 and r.json()["meta"] == {"owner": "u1"}
    copied = api.post(f"/v1/buckets/{b}/copy", json={"source": "a.txt", "destination": "c/a.txt"})
    assert copied.status_code == 201 and copied.json()["meta"] == {"owner": "u1"}
    again = api.post(
        f"/v1/buckets/{b}/copy", json={"source": "a.txt", "destination": "c/a.txt", "overwrite": False}
    )
    assert error_of(again) == (409, "key_exists")
    moved = api.post(f"/v1/buckets/{b}/move", json={"source": "c/a.txt", "destination": "m.txt"})
    assert moved.status_code == 200 and moved.json()["key"] == "m.txt"
    assert error_of(api.get(f"/v1/buckets/{b}/objects/c/a.txt")) == (404, "file_not_found")
    assert api.delete(f"/v1/buckets/{b}/objects/m.txt").status_code == 204
    assert error_of(api.delete(f"/v1/buckets/{b}/objects/m.txt")) == (404, "file_not_found")
    assert api.head(f"/v1/buckets/{b}/objects/m.txt").status_code == 404
    gone = api.post(f"/v1/buckets/{b}/move", json={"source": "nope", "destination": "x"})
    assert error_of(gone) == (404, "file_not_found")
    escape = api.post(f"/v1/buckets/{b}/copy", json={"source": "a.txt", "destination": "../x"})
    assert error_of(escape) == (400, "invalid_key")


def test_read_scope_cannot_write(server: LiveServer, admin: Gateway, bucket: BucketCredentials) -> None:
    b = bucket.bucket
    with client(server.url, new_key(admin, b, "read")) as reader:
        assert error_of(reader.put(f"/v1/buckets/{b}/objects/x", content=b"x")) == (403, "insufficient_scope")
        body, ctype = multipart([("file", ("x", b"x"))])
        r = reader.post(f"/v1/buckets/{b}/objects", content=body, headers={"Content-Type": ctype})
        assert error_of(r) == (403, "insufficient_scope")
        assert error_of(reader.delete(f"/v1/buckets/{b}/objects/x")) == (403, "insufficient_scope")
        assert reader.get(f"/v1/buckets/{b}/objects").status_code == 200
    with client(server.url, None) as anonymous:
        assert error_of(anonymous.get(f"/v1/buckets/{b}/objects")) == (401, "missing_credentials")
    with client(server.url, "mgk_0123456789abcdef_" + "0" * 48) as forged:
        assert error_of(forged.get(f"/v1/buckets/{b}/objects")) == (401, "invalid_api_key")


def exchange(server: LiveServer, head: str) -> str:
    """Send a request head only (no body) and read the answer to the connection's close."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head.encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


# -- upload tokens -----------------------------------------------------------------------------------


def issue(api: httpx.Client, bucket: str, **limits: object) -> str:
    r = api.post(f"/v1/buckets/{bucket}/upload-tokens", json=limits)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["bucket"] == bucket and body["uses"] == 0 and body["token"].startswith("mgt_")
    return str(body["token"])


def test_a_one_time_token_uploads_once_under_its_prefix(
    server: LiveServer, api: httpx.Client, bucket: BucketCredentials
) -> None:
    b = bucket.bucket
    token = issue(api, b, prefix="avatars/u1/", max_uses=1, max_size=1000, content_types=["image/*"])
    with client(server.url, token) as browser:
        outside = browser.put(
            f"/v1/buckets/{b}/objects/avatars/u2/me.png", content=PNG, headers={"Content-Type": "image/png"}
        )
        assert error_of(outside) == (403, "key_outside_prefix")
        text = browser.put(
            f"/v1/buckets/{b}/objects/avatars/u1/me.txt",
            content=b"hi",
            headers={"Content-Type": "text/plain"},
        )
        assert error_of(text) == (403, "content_type_not_allowed")
        body, ctype = multipart([("file", ("me.png", PNG))])
        r = browser.post(f"/v1/buckets/{b}/objects", content=body, headers={"Content-Type": ctype})
        assert r.status_code == 201, r.text
        assert r.json()["key"] == "avatars/u1/me.png"
        again = browser.put(
            f"/v1/buckets/{b}/objects/avatars/u1/2.png", content=PNG, headers={"Content-Type": "image/png"}
        )
        assert error_of(again) == (403, "token_used_up")
        assert error_of(browser.get(f"/v1/buckets/{b}/objects")) == (403, "upload_token_not_allowed")
    [listed] = api.get(f"/v1/buckets/{b}/upload-tokens").json()["upload_tokens"]
    assert listed["uses"] == 1 and "token" not in listed


def test_a_lying_client_is_refused_and_its_use_given_back(
    server: LiveServer, api: httpx.Client, bucket: BucketCredentials
) -> None:
    """A text file declared as image/png: refused after sniffing, nothing stored, the use back."""
    b = bucket.bucket
    token = issue(api, b, max_uses=1, content_types=["image/png"])
    with client(server.url, token) as browser:
        lie = browser.put(
            f"/v1/buckets/{b}/objects/fake.png",
            content=b"not an image",
            headers={"Content-Type": "image/png"},
        )
        assert lie.status_code in (403, 415), lie.text
        assert error_of(api.get(f"/v1/buckets/{b}/objects/fake.png")) == (404, "file_not_found")
        ok = browser.put(
            f"/v1/buckets/{b}/objects/real.png", content=PNG, headers={"Content-Type": "image/png"}
        )
        assert ok.status_code == 201, ok.text


def test_a_token_over_its_size_is_refused_before_the_body_is_read(
    server: LiveServer, api: httpx.Client, bucket: BucketCredentials
) -> None:
    """Content-Length over max_size: 413 while the client still waits for 100 Continue."""
    b = bucket.bucket
    token = issue(api, b, max_size=10)
    head = (
        f"PUT /v1/buckets/{b}/objects/big.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        "Content-Length: 1000000\r\nExpect: 100-continue\r\n\r\n"
    )
    answer = exchange(server, head)
    assert answer.startswith("HTTP/1.1 413"), answer
    assert '"code":"token_max_size"' in answer and "100 Continue" not in answer
    with client(server.url, token) as browser:
        streamed = browser.put(f"/v1/buckets/{b}/objects/big.bin", content=iter([b"x" * 6, b"y" * 6]))
        assert error_of(streamed) == (413, "payload_too_large")
        assert browser.put(f"/v1/buckets/{b}/objects/small.bin", content=b"x" * 10).status_code == 201
    assert not staging_files(server.home)


def test_tokens_are_bound_to_their_bucket_and_die_with_their_key(
    server: LiveServer, admin: Gateway, bucket: BucketCredentials
) -> None:
    from mediagate.core.buckets import create_bucket

    b = bucket.bucket
    other = create_bucket(admin.catalog, admin.secrets, f"{b}-o").bucket
    issuer_secret = new_key(admin, b, "write")
    with client(server.url, issuer_secret) as issuer:
        token = issue(issuer, b, max_uses=5)
        assert error_of(issuer.post(f"/v1/buckets/{other}/upload-tokens", json={})) == (
            403,
            "bucket_forbidden",
        )
        with client(server.url, token) as browser:
            r = browser.put(f"/v1/buckets/{other}/objects/x.txt", content=b"x")
            assert error_of(r) == (403, "token_bucket_mismatch")
            assert browser.put(f"/v1/buckets/{b}/objects/x.txt", content=b"x").status_code == 201
            key_id = "mk_" + issuer_secret.split("_")[1]
            from mediagate.core.apikeys import revoke_key

            revoke_key(admin.catalog, key_id)
            assert error_of(browser.put(f"/v1/buckets/{b}/objects/y.txt", content=b"y")) == (
                401,
                "invalid_upload_token",
            )


def test_revoking_a_token(server: LiveServer, api: httpx.Client, bucket: BucketCredentials) -> None:
    b = bucket.bucket
    r = api.post(f"/v1/buckets/{b}/upload-tokens", json={"max_uses": 3, "key": "fixed/name.bin", "ttl": 60})
    made = r.json()
    assert made["key"] == "fixed/name.bin" and made["max_uses"] == 3
    with client(server.url, made["token"]) as browser:
        body, ctype = multipart([("file", ("whatever.bin", b"z"))])
        ok = browser.post(f"/v1/buckets/{b}/objects", content=body, headers={"Content-Type": ctype})
        assert ok.status_code == 201 and ok.json()["key"] == "fixed/name.bin"
        gone = api.delete(f"/v1/buckets/{b}/upload-tokens/{made['token_id']}")
        assert gone.status_code == 200 and gone.json()["revoked_at"] is not None
        ok = browser.post(f"/v1/buckets/{b}/objects", content=body, headers={"Content-Type": ctype})
        assert error_of(ok) == (401, "invalid_upload_token")
    assert error_of(api.delete(f"/v1/buckets/{b}/upload-tokens/{made['token_id']}")) == (
        404,
        "token_not_found",
    )
    bad = api.post(f"/v1/buckets/{b}/upload-tokens", json={"ttl": 0})
    assert error_of(bad) == (400, "invalid_request")
    bad = api.post(f"/v1/buckets/{b}/upload-tokens", json={"content_types": ["nonsense"]})
    assert error_of(bad) == (400, "invalid_token_request")


def uses_of(api: httpx.Client, bucket: str) -> int:
    [listed] = api.get(f"/v1/buckets/{bucket}/upload-tokens").json()["upload_tokens"]
    return int(listed["uses"])


def test_a_token_does_not_replace_an_existing_object_by_default(
    server: LiveServer, api: httpx.Client, bucket: BucketCredentials
) -> None:
    b = bucket.bucket
    assert (
        api.put(f"/v1/buckets/{b}/objects/uploads/theirs.txt", content=b"someone else's").status_code == 201
    )
    r = api.post(f"/v1/buckets/{b}/upload-tokens", json={"prefix": "uploads/", "max_uses": 3})
    made = r.json()
    assert r.status_code == 201 and made["overwrite"] is False
    with client(server.url, made["token"]) as browser:
        put = browser.put(f"/v1/buckets/{b}/objects/uploads/theirs.txt", content=b"replaced")
        assert error_of(put) == (409, "key_exists")
        body, ctype = multipart([("file", ("theirs.txt", b"replaced"))])
        form = browser.post(f"/v1/buckets/{b}/objects", content=body, headers={"Content-Type": ctype})
        assert error_of(form) == (409, "key_exists")
        # asking for overwrite in the query does not lift the token's limit
        forced = browser.put(
            f"/v1/buckets/{b}/objects/uploads/theirs.txt?overwrite=true", content=b"replaced"
        )
        assert error_of(forced) == (409, "key_exists")
        assert uses_of(api, b) == 0  # every refusal gave its use back
        fresh = browser.put(f"/v1/buckets/{b}/objects/uploads/mine.txt", content=b"mine")
        assert fresh.status_code == 201, fresh.text
    assert api.get(f"/v1/buckets/{b}/content/uploads/theirs.txt").content == b"someone else's"
    assert uses_of(api, b) == 1
    [listed] = api.get(f"/v1/buckets/{b}/upload-tokens").json()["upload_tokens"]
    assert listed["overwrite"] is False


def test_a_token_issued_with_overwrite_replaces(
    server: LiveServer, api: httpx.Client, bucket: BucketCredentials
) -> None:
    b = bucket.bucket
    assert api.put(f"/v1/buckets/{b}/objects/avatars/u1.txt", content=b"old").status_code == 201
    r = api.post(
        f"/v1/buckets/{b}/upload-tokens", json={"key": "avatars/u1.txt", "max_uses": 2, "overwrite": True}
    )
    made = r.json()
    assert r.status_code == 201 and made["overwrite"] is True
    with client(server.url, made["token"]) as browser:
        put = browser.put(f"/v1/buckets/{b}/objects/avatars/u1.txt", content=b"new")
        assert put.status_code == 201, put.text
        body, ctype = multipart([("file", ("u1.txt", b"newer"))])
        form = browser.post(f"/v1/buckets/{b}/objects", content=body, headers={"Content-Type": ctype})
        assert form.status_code == 201, form.text
    assert api.get(f"/v1/buckets/{b}/content/avatars/u1.txt").content == b"newer"


def test_racing_uploads_of_one_key_with_a_no_overwrite_token_store_exactly_one(
    server: LiveServer, api: httpx.Client, bucket: BucketCredentials
) -> None:
    b = bucket.bucket
    token = issue(api, b, prefix="race/", max_uses=8)

    def upload(n: int) -> httpx.Response:
        with client(server.url, token) as browser:
            return browser.put(f"/v1/buckets/{b}/objects/race/same.txt", content=f"upload {n}".encode())

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(upload, range(8)))
    won = [r for r in answers if r.status_code == 201]
    assert len(won) == 1, [r.text for r in answers]
    assert all(error_of(r) == (409, "key_exists") for r in answers if r.status_code != 201)
    stored = api.get(f"/v1/buckets/{b}/content/race/same.txt").content
    assert stored == f"upload {answers.index(won[0])}".encode()
    listing = api.get(f"/v1/buckets/{b}/objects", params={"prefix": "race/"}).json()["objects"]
    assert [o["key"] for o in listing] == ["race/same.txt"]
    assert uses_of(api, b) == 1  # the seven refused gave theirs back


def test_a_body_over_the_server_limit_is_refused_in_the_v1_shape(
    server: LiveServer, api: httpx.Client, bucket: BucketCredentials
) -> None:
    """The front door answers before routing: in the /v1 error shape too."""
    head = (
        f"PUT /v1/buckets/{bucket.bucket}/objects/huge HTTP/1.1\r\nHost: x\r\n"
        f"Content-Length: {10**15}\r\nExpect: 100-continue\r\n\r\n"
    )
    answer = exchange(server, head)
    assert answer.startswith("HTTP/1.1 413") and '{"error":{"code":"payload_too_large"' in answer, answer


def test_a_web_page_uploads_cross_origin_with_the_bucket_cors_rules(
    server: LiveServer, admin: Gateway, api: httpx.Client, bucket: BucketCredentials
) -> None:
    """The bucket's CORS rules hold on its /v1 paths: the preflight for a PUT with Authorization
    is allowed for an allowed origin, refused for another."""
    b = bucket.bucket
    admin.catalog.update_bucket_settings(b, {"cors_origins": ["https://app.example.com"]})
    token = issue(api, b, max_uses=1)
    preflight = {
        "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    url = f"/v1/buckets/{b}/objects/web/x.txt"
    with client(server.url, None) as browser:
        assert wait_for_cors(browser, url, preflight)
        ok = browser.options(url, headers={"Origin": "https://app.example.com", **preflight})
        assert ok.headers["access-control-allow-origin"] == "https://app.example.com"
        assert "authorization" in ok.headers["access-control-allow-headers"]
        assert "PUT" in ok.headers["access-control-allow-methods"]
        denied = browser.options(url, headers={"Origin": "https://evil.example", **preflight})
        assert denied.status_code == 403 and "access-control-allow-origin" not in denied.headers
        put = browser.put(
            url,
            content=b"x",
            headers={"Origin": "https://app.example.com", "Authorization": f"Bearer {token}"},
        )
        assert put.status_code == 201
        assert put.headers["access-control-allow-origin"] == "https://app.example.com"
        assert "X-Request-Id" in put.headers["access-control-expose-headers"]


def wait_for_cors(browser: httpx.Client, url: str, preflight: dict[str, str]) -> bool:
    """The server caches bucket settings for a couple of seconds (bucketconf.CACHE_SECONDS)."""
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if browser.options(url, headers={"Origin": "https://evil.example", **preflight}).status_code == 403:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
@pytest.mark.parametrize("form", [False, True], ids=["raw", "multipart"])
def test_a_large_upload_streams_with_flat_memory(
    server: LiveServer, api: httpx.Client, bucket: BucketCredentials, form: bool
) -> None:
    """64 MiB through /v1 (raw body, and a multipart form): the server's memory does not grow
    with the file, and the bytes read back are the bytes sent."""
    import psutil

    size, chunk = 64 * 1024 * 1024, bytes(range(256)) * 4096
    boundary = "v1bigboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def stream() -> Iterator[bytes]:
        if form:
            yield head
        for _ in range(size // len(chunk)):
            yield chunk
        if form:
            yield tail

    process = psutil.Process(server.process.pid if server.process else 0)
    before = process.memory_info().rss
    if form:
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        r = api.post(f"/v1/buckets/{bucket.bucket}/objects", content=stream(), headers=headers)
    else:
        r = api.put(f"/v1/buckets/{bucket.bucket}/objects/big.bin", content=stream())
    grown = process.memory_info().rss - before
    assert r.status_code == 201, r.text
    assert r.json()["size"] == size and r.json()["key"] == "big.bin"
    assert grown < 32 * 1024 * 1024, grown
    expected = hashlib.sha256()
    for _ in range(size // len(chunk)):
        expected.update(chunk)
    assert r.json()["sha256"] == expected.hexdigest()


def test_an_upload_cut_short_leaves_no_trace_and_gives_its_use_back(
    server: LiveServer, api: httpx.Client, bucket: BucketCredentials
) -> None:
    """The client goes away halfway through the body: no object, no staged file, and the token's
    use is spent on nothing, so it is given back."""
    import time

    b = bucket.bucket
    token = issue(api, b, max_uses=1)
    head = (
        f"PUT /v1/buckets/{b}/objects/cut.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        "Content-Length: 1048576\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head.encode() + b"x" * 300_000)
        time.sleep(0.5)
    deadline = time.monotonic() + 10
    while (
        api.get(f"/v1/buckets/{b}/upload-tokens").json()["upload_tokens"][0]["uses"]
        and time.monotonic() < deadline
    ):
        time.sleep(0.1)
    assert api.get(f"/v1/buckets/{b}/upload-tokens").json()["upload_tokens"][0]["uses"] == 0
    assert error_of(api.get(f"/v1/buckets/{b}/objects/cut.bin")) == (404, "file_not_found")
    assert not staging_files(server.home)
    with client(server.url, token) as browser:
        assert browser.put(f"/v1/buckets/{b}/objects/whole.bin", content=b"x" * 10).status_code == 201


def test_listing_one_folder_level_with_a_delimiter(api: httpx.Client, bucket: BucketCredentials) -> None:
    """delimiter=/ lists a folder as a file browser shows it: subfolders and files, by name, paged."""
    b = bucket.bucket
    for key in ("top.txt", "a/1.txt", "a/2.txt", "a/deep/3.txt", "a/deeper/x/4.txt", "b/5.txt"):
        assert api.put(f"/v1/buckets/{b}/objects/{key}", content=b"x").status_code == 201
    root = api.get(f"/v1/buckets/{b}/objects", params={"delimiter": "/"}).json()
    assert root["folders"] == ["a/", "b/"] and [o["key"] for o in root["objects"]] == ["top.txt"]
    assert root["next_cursor"] is None
    seen_folders: list[str] = []
    seen_files: list[str] = []
    cursor = None
    while True:
        params = {"delimiter": "/", "prefix": "a/", "limit": "2", **({"cursor": cursor} if cursor else {})}
        page = api.get(f"/v1/buckets/{b}/objects", params=params).json()
        seen_folders += page["folders"]
        seen_files += [o["key"] for o in page["objects"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen_folders == ["a/deep/", "a/deeper/"] and seen_files == ["a/1.txt", "a/2.txt"]
    flat = api.get(f"/v1/buckets/{b}/objects", params={"prefix": "a/"}).json()
    assert flat["folders"] == [] and len(flat["objects"]) == 4
    bad = api.get(f"/v1/buckets/{b}/objects", params={"delimiter": "/", "prefix": "a"})
    assert error_of(bad) == (400, "invalid_prefix")
    assert error_of(api.get(f"/v1/buckets/{b}/objects", params={"delimiter": ","})) == (
        400,
        "invalid_request",
    )

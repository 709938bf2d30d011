"""A hostile client against the /v1 API and its tokens, on a live server: bodies that would fill
memory, keys and prefixes that try to escape, secrets that must never reach the log. Each test
is a defect found by attacking this surface (or a guard it must keep)."""

from __future__ import annotations

import re
import socket
import threading
from pathlib import Path

import httpx
import psutil
import pytest

from mediagate.core.buckets import BucketCredentials, create_bucket
from mediagate.core.gateway import Gateway
from mediagate.services import build_gateway
from tests.conftest import LiveServer, make_home
from tests.protocols.native.api import client, error_of, new_key
from tests.support.pg import fresh_schema

MIB = 1024 * 1024


def _answer(sock: socket.socket) -> str:
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except OSError:
        pass
    return b"".join(chunks).decode("latin-1")


def _send_chunked(server: LiveServer, path: str, total: int, headers: str = "") -> str:
    """POST ``total`` bytes of one JSON string, chunked (no Content-Length), from a thread; the
    answer as read to the connection's close (the server may stop reading early)."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{headers}"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    piece = b"x" * MIB

    def send() -> None:
        try:
            sock.sendall(head.encode() + b'3\r\n{"a\r\n')
            sent = 0
            while sent < total:
                sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                sent += len(piece)
            sock.sendall(b'2\r\n"}\r\n0\r\n\r\n')
        except OSError:
            pass  # the server answered and closed: what a refusal looks like

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    with sock:
        answer = _answer(sock)
    sender.join(30)
    return answer


def test_a_json_body_beyond_its_limit_is_refused_without_reading_it(server: LiveServer) -> None:
    """Defect: FastAPI reads a JSON body whole, before any key is checked, so one unauthenticated
    client could make the server hold gigabytes (up to the upload limit). A JSON body is now
    capped at 1 MiB: a declared one is refused unread, a chunked one as it passes the cap."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            (
                "POST /v1/keys HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {2 * MIB}\r\nExpect: 100-continue\r\n\r\n"
            ).encode()
        )
        answer = _answer(sock)
    assert answer.startswith("HTTP/1.1 413"), answer
    assert '{"error":{"code":"payload_too_large"' in answer and "100 Continue" not in answer

    process = psutil.Process(server.process.pid if server.process else 0)
    before = process.memory_info().rss
    answer = _send_chunked(server, "/v1/keys", 128 * MIB)
    grown = process.memory_info().rss - before
    assert answer.startswith("HTTP/1.1 413"), answer[:500]
    assert '"code":"payload_too_large"' in answer
    assert grown < 32 * MIB, grown


def test_a_json_body_within_its_limit_still_works(server: LiveServer, admin: Gateway) -> None:
    """The cap leaves room for any real request: a body of 200 KB passes."""
    with client(server.url, new_key(admin, None)) as root:
        made = root.post("/v1/keys", json={"scopes": ["read"], "label": "x" * 200})
        assert made.status_code == 201, made.text
        wide = root.post(
            "/v1/keys",
            content=b'{"scopes": ["read"]' + b" " * 200_000 + b"}",
            headers={"Content-Type": "application/json"},
        )
        assert wide.status_code == 201, wide.text


def test_an_upload_body_is_not_held_to_the_json_cap(
    server: LiveServer, admin: Gateway, bucket: BucketCredentials
) -> None:
    """Object uploads (raw and multipart) stream, and may be as large as the server allows."""
    with client(server.url, new_key(admin, bucket.bucket, "write")) as writer:
        r = writer.put(f"/v1/buckets/{bucket.bucket}/objects/big.bin", content=b"z" * (3 * MIB))
        assert r.status_code == 201 and r.json()["size"] == 3 * MIB, r.text
        r = writer.post(
            f"/v1/buckets/{bucket.bucket}/objects", files={"file": ("big2.bin", b"y" * (3 * MIB))}
        )
        assert r.status_code == 201 and r.json()["size"] == 3 * MIB, r.text


def test_deep_and_malformed_json_is_a_400(server: LiveServer, admin: Gateway) -> None:
    with client(server.url, new_key(admin, None)) as root:
        for body in (b"[" * 100_000 + b"]" * 100_000, b'{"scopes":', b"\xff\xfe", b'{"scopes":["read"]}x'):
            r = root.post("/v1/keys", content=body, headers={"Content-Type": "application/json"})
            assert error_of(r)[0] == 400, r.text


def test_a_token_prefix_is_kept_in_the_form_keys_take(
    server: LiveServer, admin: Gateway, bucket: BucketCredentials
) -> None:
    """Defect: a prefix was stored as given ('u1//'), but every key is normalised ('u1/f'), so the
    token could never upload anything. The prefix is now normalised as keys are."""
    b = bucket.bucket
    with client(server.url, new_key(admin, b, "write")) as writer:
        made = writer.post(f"/v1/buckets/{b}/upload-tokens", json={"prefix": "//u1//", "max_uses": 3})
        assert made.status_code == 201, made.text
        assert made.json()["prefix"] == "u1/"
        token = made.json()["token"]
    with client(server.url, token) as browser:
        assert browser.put(f"/v1/buckets/{b}/objects/u1/f.txt", content=b"hi").status_code == 201
        assert error_of(browser.put(f"/v1/buckets/{b}/objects/u2/f.txt", content=b"hi")) == (
            403,
            "key_outside_prefix",
        )
        for escape in ("u1/%2e%2e/u2/f.txt", "u1%2f..%2fu2%2ff.txt"):
            assert error_of(browser.put(f"/v1/buckets/{b}/objects/{escape}", content=b"hi")) == (
                400,
                "invalid_key",
            )


def test_no_key_or_token_secret_reaches_the_log(tmp_path: Path) -> None:
    """Secrets sent every way a client might (a good key, a revoked one, one cut short, a token in
    the header, in the query, in tus metadata, in the path; a webhook secret; the metrics token)
    and refused every way: the server's log, at debug level, holds none of them (only the public
    ``mk_``/``ut_`` ids may appear)."""
    home = make_home(tmp_path / "home")
    metrics_token = "mtok-0123456789abcdef0123456789abcdef"
    env = {"MEDIAGATE_LOG_LEVEL": "debug", "MEDIAGATE_METRICS_TOKEN": metrics_token}
    live = LiveServer(home.home, env=env).start()
    gw = build_gateway(home, migrate=False)
    try:
        b = create_bucket(gw.catalog, gw.secrets, "logs-a").bucket
        other = create_bucket(gw.catalog, gw.secrets, "logs-b").bucket
        key = new_key(gw, b, "read,write,admin")
        revoked = new_key(gw, b, "read")
        with client(live.url, key) as api:
            token = api.post(f"/v1/buckets/{b}/upload-tokens", json={"max_uses": 5}).json()["token"]
            made = api.post("/v1/keys", json={"bucket": b, "scopes": ["read"]}).json()["secret"]
            assert api.delete(f"/v1/keys/mk_{revoked.split('_')[1]}").status_code == 200
            api.get(f"/v1/buckets/{other}/objects")
            api.put(f"/v1/buckets/{b}/objects/a%00b", content=b"x")
            hook = api.post(f"/v1/buckets/{b}/webhook-secret").json()["secret"]
        secrets = [key, revoked, token, made, hook, metrics_token]
        for sent in (metrics_token, metrics_token[:-1], hook):
            httpx.get(f"{live.url}/metrics", headers={"Authorization": f"Bearer {sent}"})
        for secret in secrets:
            for variant in (secret, secret[:-1], secret + "0", secret.upper()):
                with client(live.url, variant) as c:
                    c.get("/v1/me")
                    c.put(f"/v1/buckets/{b}/objects/x.txt", content=b"hi")
                    c.put(f"/v1/buckets/{other}/objects/x.txt", content=b"hi")
                    c.post(f"/v1/tus/{b}/", headers={"Tus-Resumable": "1.0.0", "Upload-Length": "1"})
            httpx.get(f"{live.url}/v1/me", params={"token": secret, "key": secret})
            httpx.get(f"{live.url}/v1/me", headers={"Authorization": f"Basic {secret}"})
            httpx.post(
                f"{live.url}/v1/tus/{b}/",
                headers={"Tus-Resumable": "1.0.0", "Upload-Length": "1", "Upload-Metadata": f"{secret} !"},
            )
    finally:
        live.stop()
        gw.catalog.close()
    log = live.log()
    assert "access" in log and "status=401" in log and "status=403" in log
    for secret in secrets:
        random = secret.rsplit("_", 1)[-1]
        assert random not in log and random.upper() not in log, secret


def test_the_new_first_segments_are_reserved_and_their_neighbours_still_buckets(
    server: LiveServer, admin: Gateway
) -> None:
    """The one-port rows added this session (/v1, /v1/tus, /docs, /redoc, /openapi.json, and /ui,
    /metrics to come) take first path segments that were reserved bucket names from the first
    release, so no install can hold such a bucket; a bucket whose name merely starts the same
    way is still a bucket on every path."""
    with client(server.url, new_key(admin, None)) as root:
        for name in ("v1", "docs", "redoc", "metrics", "ui", "static", "healthz"):
            assert error_of(root.post("/v1/buckets", json={"name": name}))[0] == 400, name
        for name in ("v1x", "docs-site", "redoc1", "uix", "metrics2", "v1-tus"):
            made = root.post("/v1/buckets", json={"name": name, "settings": {"public": True}})
            assert made.status_code == 201, made.text
            assert root.put(f"/v1/buckets/{name}/objects/a/b.txt", content=name.encode()).status_code == 201
            read = httpx.get(f"{server.url}/{name}/a/b.txt")
            assert read.status_code == 200 and read.content == name.encode(), (name, read.text)
    for path in ("/redoc/x", "/openapi.json/x"):
        assert httpx.get(f"{server.url}{path}").status_code == 404
    assert httpx.get(f"{server.url}/docs").status_code == 200
    assert error_of(httpx.get(f"{server.url}/docs/nothing")) == (404, "not_found")


def test_the_docs_pages_cannot_be_framed(server: LiveServer) -> None:
    """Defect: /docs and /redoc (where an operator pastes an API key to try the API) had no
    framing policy, so another site could frame them and click-jack "Execute". Like /ui/, they
    now refuse every frame and send no referrer."""
    for page in ("/docs", "/redoc", "/ui/"):
        r = httpx.get(f"{server.url}{page}")
        assert r.status_code == 200, page
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"], page
        assert r.headers["x-frame-options"] == "DENY" and r.headers["referrer-policy"] == "no-referrer"


def test_text_that_is_not_unicode_is_a_400_and_stores_nothing(
    server: LiveServer, admin: Gateway, bucket: BucketCredentials
) -> None:
    """Defect: JSON may spell a lone surrogate (``"\\ud800"``), which is no Unicode text. In
    object metadata and CORS origins it got past validation, was stored, and failed the answer
    with a 500 (and every later read of the object). Every /v1 JSON body is now checked: 400
    ``invalid_request``, nothing stored."""
    b = bucket.bucket
    with client(server.url, new_key(admin, None)) as root:
        assert root.put(f"/v1/buckets/{b}/objects/src.txt", content=b"x").status_code == 201
        bodies = [
            ("PATCH", f"/v1/buckets/{b}/objects/src.txt", '{"meta": {"k": "\\ud800"}}'),
            ("PATCH", f"/v1/buckets/{b}/objects/src.txt", '{"meta": {"\\udfff": "v"}}'),
            ("PATCH", f"/v1/buckets/{b}", '{"settings": {"cors_origins": ["https://\\ud800.example"]}}'),
            ("POST", f"/v1/buckets/{b}/upload-tokens", '{"content_types": ["image/\\ud800"]}'),
            ("POST", "/v1/keys", '{"scopes": ["read"], "label": "\\ud800"}'),
            ("POST", f"/v1/buckets/{b}/copy", '{"source": "src.txt", "destination": "d\\ud800"}'),
        ]
        for method, path, body in bodies:
            r = root.request(method, path, content=body, headers={"Content-Type": "application/json"})
            assert error_of(r)[0] == 400, (path, body, r.text)
        got = root.get(f"/v1/buckets/{b}/objects/src.txt")
        assert got.status_code == 200 and got.json()["meta"] == {}, got.text
        assert root.get(f"/v1/buckets/{b}").json()["settings"].get("cors_origins") is None
        assert root.get(f"/v1/buckets/{b}/objects").status_code == 200


@pytest.mark.postgres
def test_a_nul_in_a_name_is_a_clear_4xx_on_postgresql(tmp_path: Path) -> None:
    """Defect: PostgreSQL cannot hold or compare a NUL in text; the driver refused such a bucket
    name, key, id or label with an error that became a 500 on every dialect (a public read of
    ``/%00/x``, tus, and a dozen /v1 lookups). The hostile suites ran on SQLite, which has no such
    limit. The catalog's border now answers it as a 400; JSON bodies refuse a NUL up front."""
    with fresh_schema() as url:
        home = make_home(tmp_path / "home", database_url=url)
        live = LiveServer(home.home, env={"MEDIAGATE_DATABASE_URL": url}).start()
        gw = build_gateway(home, migrate=False)
        try:
            b = create_bucket(gw.catalog, gw.secrets, "nul-a").bucket
            root = new_key(gw, None)
            with client(live.url, root) as api:
                assert api.put(f"/v1/buckets/{b}/objects/src.txt", content=b"x").status_code == 201
                v1 = [
                    api.get("/v1/buckets/%00"),
                    api.get("/v1/tasks/%00"),
                    api.get("/v1/keys", params={"bucket": "\x00"}),
                    api.get("/v1/tasks", params={"bucket": "a\x00"}),
                    api.get("/v1/deliveries", params={"bucket": "\x00"}),
                    api.get(f"/v1/buckets/{b}/objects", params={"prefix": "\x00"}),
                    api.get(f"/v1/buckets/{b}/objects", params={"cursor": "YQBi"}),  # "a\0b"
                    api.get(f"/v1/buckets/{b}/objects", params={"cursor": "YQBi", "delimiter": "/"}),
                    api.delete(f"/v1/buckets/{b}/upload-tokens/ut_%00"),
                    api.delete("/v1/keys/mk_%00"),
                    api.post("/v1/keys", json={"scopes": ["read"], "label": "a\x00b"}),
                    api.patch(f"/v1/buckets/{b}/objects/src.txt", json={"meta": {"k": "a\x00"}}),
                    api.patch(f"/v1/buckets/{b}", json={"settings": {"cors_origins": ["https://a\x00.b"]}}),
                    # an id past PostgreSQL's INTEGER was a driver error, a 500 (schemathesis on PG)
                    api.get(f"/v1/deliveries/{2**62 - 1}"),
                    api.post(f"/v1/deliveries/{2**31}/redeliver"),
                ]
                for r in v1:
                    status, _ = error_of(r)
                    assert 400 <= status < 500, (r.request.method, r.request.url, r.text)
                assert api.get(f"/v1/buckets/{b}/objects/src.txt").json()["meta"] == {}
                token = api.post(f"/v1/buckets/{b}/upload-tokens", json={}).json()["token"]
            tus = httpx.post(
                f"{live.url}/v1/tus/%00/",
                headers={"Tus-Resumable": "1.0.0", "Upload-Length": "1", "Authorization": f"Bearer {token}"},
            )
            assert 400 <= tus.status_code < 500, tus.text
            for path in ("/%00/x", "/ab%00c/x"):
                read = httpx.get(f"{live.url}{path}")
                assert 400 <= read.status_code < 500, (path, read.text)
        finally:
            live.stop()
            gw.catalog.close()
    assert not re.findall(r"status=5\d\d", live.log()), live.log()[-3000:]


def test_numbers_past_what_the_catalog_holds_are_a_400(
    server: LiveServer, admin: Gateway, bucket: BucketCredentials
) -> None:
    """Defect: an upload token's ``max_size`` had no upper bound, and 2**63 or 10**20 failed in
    the database driver with a 500 (on SQLite and PostgreSQL). It is bounded by what the catalog
    holds (a signed 64-bit integer); a larger value is a 400."""
    b = bucket.bucket
    with client(server.url, new_key(admin, b, "write")) as writer:
        for size in (2**63, 10**20, 10**400):
            r = writer.post(
                f"/v1/buckets/{b}/upload-tokens",
                content=f'{{"max_size": {size}}}',
                headers={"Content-Type": "application/json"},
            )
            assert error_of(r) == (400, "invalid_request"), r.text
        ok = writer.post(f"/v1/buckets/{b}/upload-tokens", json={"max_size": 2**63 - 1})
        assert ok.status_code == 201 and ok.json()["max_size"] == 2**63 - 1


def test_copies_and_tus_uploads_cannot_pass_a_bucket_quota(
    server: LiveServer, admin: Gateway, bucket: BucketCredentials
) -> None:
    """Ways around a quota that do not look like an upload: a /v1 copy (a new object from no
    body), a tus upload declared too large, and one whose length is known only at its end. Each
    is refused in its own shape, stores nothing, and gives its token use back."""
    b = bucket.bucket
    admin.catalog.set_quota(admin.catalog.require_bucket(b).id, {"max_bytes": 3000})
    with client(server.url, new_key(admin, b, "read,write")) as api:
        assert api.put(f"/v1/buckets/{b}/objects/a.bin", content=b"a" * 1000).status_code == 201
        for copy in ("c1", "c2"):
            made = api.post(f"/v1/buckets/{b}/copy", json={"source": "a.bin", "destination": copy})
            assert made.status_code == 201, made.text
        over = api.post(f"/v1/buckets/{b}/copy", json={"source": "c1", "destination": "c3"})
        assert error_of(over) == (413, "quota_exceeded")
        assert api.delete(f"/v1/buckets/{b}/objects/c2").status_code == 204  # 1000 bytes free
        token = api.post(f"/v1/buckets/{b}/upload-tokens", json={"max_uses": 2}).json()["token"]
        tus = {"Tus-Resumable": "1.0.0", "Authorization": f"Bearer {token}"}
        name = {"Upload-Metadata": "filename YmlnLmJpbg=="}  # big.bin
        create = f"{server.url}/v1/tus/{b}/"
        declared = httpx.post(create, headers={**tus, **name, "Upload-Length": "5000"})
        assert error_of(declared) == (413, "quota_exceeded")
        deferred = httpx.post(create, headers={**tus, **name, "Upload-Defer-Length": "1"})
        assert deferred.status_code == 201, deferred.text
        last = httpx.patch(
            deferred.headers["location"],
            headers={
                **tus,
                "Content-Type": "application/offset+octet-stream",
                "Upload-Offset": "0",
                "Upload-Length": "2000",
            },
            content=b"z" * 2000,
        )
        assert error_of(last) == (413, "quota_exceeded")
        assert error_of(api.get(f"/v1/buckets/{b}/objects/big.bin")) == (404, "file_not_found")
        assert api.get(f"/v1/buckets/{b}/upload-tokens").json()["upload_tokens"][0]["uses"] == 0
        assert api.get(f"/v1/buckets/{b}/usage").json() == {"bucket": b, "bytes": 2000, "objects": 2}

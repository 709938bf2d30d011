"""Malformed and refused FORM API requests: each gets the UPYUN form error JSON with the right 4xx
status (``code`` == HTTP status, a message), and leaves nothing behind: no object in the catalog,
no file in <home>/staging."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from mediagate.core.buckets import BucketCredentials, create_bucket
from mediagate.core.gateway import Gateway
from mediagate.services import build_gateway
from tests.conftest import LiveServer, make_home, staging_files
from tests.protocols.upyun.forms import (
    Field,
    authorization,
    http_date,
    keys_in,
    multipart,
    policy_of,
    post,
    raw_policy,
    signature,
    staging_is_empty,
    wait_until,
)

BODY = b"some file content\n" * 20
PNG_1x1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def assert_refused(response: httpx.Response, status: int, fragment: str = "") -> dict[str, object]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == status
    assert isinstance(body["message"], str) and body["message"]
    assert fragment.lower() in str(body["message"]).lower(), body["message"]
    assert body["url"] == ""
    assert isinstance(body["time"], int)
    assert "sign" not in body
    return dict(body)


def assert_nothing_left(server: LiveServer, admin: Gateway | None, creds: BucketCredentials | None) -> None:
    assert wait_until(lambda: staging_is_empty(server.home), timeout=5), staging_files(server.home)
    if admin is not None and creds is not None:
        assert keys_in(admin, creds.bucket) == []


def signed(creds: BucketCredentials, policy: str, file: bytes = BODY, filename: str = "f.bin") -> list[Field]:
    return [("policy", policy), ("signature", signature(creds, policy)), ("file", (filename, file))]


def signed_doc(creds: BucketCredentials, doc: dict[str, object], file: bytes = BODY) -> list[Field]:
    return signed(creds, raw_policy(doc), file)


def base_doc(creds: BucketCredentials, **extra: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "bucket": creds.bucket,
        "expiration": int(time.time()) + 600,
        "save-key": "/k.bin",
    }
    doc.update(extra)
    return doc


@dataclass(frozen=True)
class Case:
    fields: Callable[[BucketCredentials], list[Field]]
    status: int
    fragment: str = ""


def _hmac_fields(creds: BucketCredentials, operator: str | None = None, **extra: object) -> list[Field]:
    p = policy_of(creds, "/h.bin", **extra)
    auth = authorization(creds, p, date=str(extra.get("date", "")))
    if operator is not None:
        auth = auth.replace(f"UPYUN {creds.operator}:", f"UPYUN {operator}:")
    return [("policy", p), ("authorization", auth), ("file", ("h.bin", BODY))]


CASES: dict[str, Case] = {
    # signatures
    "bad-old-signature": Case(
        lambda c: [("policy", policy_of(c)), ("signature", "0" * 32), ("file", ("f", BODY))], 401, "signature"
    ),
    "signature-of-another-policy": Case(
        lambda c: [
            ("policy", policy_of(c)),
            ("signature", signature(c, policy_of(c, "/other"))),
            ("file", ("f", BODY)),
        ],
        401,
    ),
    "missing-signature": Case(lambda c: [("policy", policy_of(c)), ("file", ("f", BODY))], 401, "signature"),
    "empty-authorization": Case(
        lambda c: [("policy", policy_of(c)), ("authorization", ""), ("file", ("f", BODY))], 401
    ),
    "malformed-authorization": Case(
        lambda c: [("policy", policy_of(c)), ("authorization", "UPYUN no-colon-here"), ("file", ("f", BODY))],
        401,
    ),
    "unknown-operator": Case(lambda c: _hmac_fields(c, operator="nobody"), 401, "operator"),
    "wrong-password-hmac": Case(
        lambda c: [
            ("policy", p := policy_of(c)),
            ("authorization", authorization(BucketCredentials(**{**c.as_dict(), "password": "x"}), p)),
            ("file", ("f", BODY)),
        ],
        401,
    ),
    "hmac-over-another-uri": Case(
        lambda c: [
            ("policy", p := policy_of(c)),
            ("authorization", authorization(c, p, uri="/elsewhere/")),
            ("file", ("f", BODY)),
        ],
        401,
    ),
    "date-skew": Case(lambda c: _hmac_fields(c, date=http_date(-3 * 3600)), 401, "date"),
    "date-not-a-date": Case(lambda c: _hmac_fields(c, date="yesterday-ish"), 400, "date"),
    # the policy itself
    "expired": Case(lambda c: signed_doc(c, base_doc(c, expiration=int(time.time()) - 5)), 403, "expired"),
    "missing-expiration": Case(
        lambda c: signed_doc(c, {"bucket": c.bucket, "save-key": "/x"}), 400, "expiration"
    ),
    "expiration-not-a-number": Case(
        lambda c: signed_doc(c, base_doc(c, expiration="soon")), 400, "expiration"
    ),
    "policy-not-base64": Case(lambda c: signed(c, "this is *not* base64!"), 400, "base64"),
    "policy-not-json": Case(lambda c: signed(c, base64.b64encode(b"{bucket: nope").decode()), 400, "json"),
    "policy-json-not-object": Case(
        lambda c: signed(c, base64.b64encode(b'["a", 1]').decode()), 400, "object"
    ),
    "missing-policy": Case(lambda c: [("signature", "0" * 32), ("file", ("f", BODY))], 400, "policy"),
    "duplicate-policy": Case(
        lambda c: [
            ("policy", p := policy_of(c)),
            ("policy", p),
            ("signature", signature(c, p)),
            ("file", ("f", BODY)),
        ],
        400,
        "twice",
    ),
    "policy-for-another-bucket": Case(
        lambda c: signed_doc(c, base_doc(c, bucket="someone-else")), 403, "bucket"
    ),
    "service-disagrees": Case(lambda c: signed_doc(c, base_doc(c, service="someone-else")), 403, "service"),
    "no-bucket-in-policy": Case(
        lambda c: signed_doc(c, {"expiration": int(time.time()) + 60, "save-key": "/x"}), 400, "bucket"
    ),
    # save-key
    "missing-save-key": Case(
        lambda c: signed_doc(c, {"bucket": c.bucket, "expiration": int(time.time()) + 60}), 400, "save-key"
    ),
    "save-key-dotdot": Case(lambda c: signed_doc(c, base_doc(c, **{"save-key": "/../x"})), 400, "save-key"),
    "save-key-deep-dotdot": Case(lambda c: signed_doc(c, base_doc(c, **{"save-key": "/a/../../x"})), 400),
    "save-key-root": Case(lambda c: signed_doc(c, base_doc(c, **{"save-key": "/"})), 400, "save-key"),
    "save-key-nul": Case(lambda c: signed_doc(c, base_doc(c, **{"save-key": "/a\x00b"})), 400, "save-key"),
    "save-key-too-long": Case(
        lambda c: signed_doc(c, base_doc(c, **{"save-key": "/" + "k" * 1100})), 400, "1024"
    ),
    "save-key-not-string": Case(lambda c: signed_doc(c, base_doc(c, **{"save-key": 42})), 400, "save-key"),
    "save-key-filename-dot": Case(
        lambda c: [
            ("policy", p := raw_policy(base_doc(c, **{"save-key": "/d/{filename}"}))),
            ("signature", signature(c, p)),
            ("file", ("..", BODY)),
        ],
        400,
    ),
    # checks on the bytes
    "wrong-content-md5": Case(
        lambda c: signed_doc(c, base_doc(c, **{"content-md5": hashlib.md5(b"other").hexdigest()})), 400, "md5"
    ),
    "content-md5-malformed": Case(lambda c: signed_doc(c, base_doc(c, **{"content-md5": "xyz"})), 400, "md5"),
    "too-small": Case(
        lambda c: signed_doc(c, base_doc(c, **{"content-length-range": "1000,2000"})), 403, "size"
    ),
    "too-big": Case(lambda c: signed_doc(c, base_doc(c, **{"content-length-range": "0,10"})), 403, "size"),
    "disallowed-type": Case(
        lambda c: signed_doc(c, base_doc(c, **{"allow-file-type": "jpg,png"})), 403, "extension"
    ),
    "image-range-on-non-image": Case(
        lambda c: signed_doc(c, base_doc(c, **{"image-width-range": "0,100"})), 415, "not an image"
    ),
    "image-too-high": Case(
        lambda c: signed_doc(c, base_doc(c, **{"image-height-range": "2,10"}), PNG_1x1), 403, "height"
    ),
    "bad-b64-content": Case(
        lambda c: signed_doc(c, base_doc(c, b64encoded="on"), b"not base64 at all!"), 400, "base64"
    ),
    # malformed values
    "range-one-number": Case(
        lambda c: signed_doc(c, base_doc(c, **{"content-length-range": "10"})), 400, "content-length-range"
    ),
    "range-not-numbers": Case(
        lambda c: signed_doc(c, base_doc(c, **{"content-length-range": "a,b"})), 400, "content-length-range"
    ),
    "range-min-over-max": Case(
        lambda c: signed_doc(c, base_doc(c, **{"image-width-range": "20,10"})), 400, "image-width-range"
    ),
    "range-negative": Case(
        lambda c: signed_doc(c, base_doc(c, **{"image-height-range": "-1,10"})), 400, "image-height-range"
    ),
    "range-wrong-type": Case(
        lambda c: signed_doc(c, base_doc(c, **{"content-length-range": {"min": 1}})),
        400,
        "content-length-range",
    ),
    "content-length-negative": Case(
        lambda c: signed_doc(c, base_doc(c, **{"content-length": -4})), 400, "content-length"
    ),
    "b64encoded-not-on": Case(lambda c: signed_doc(c, base_doc(c, b64encoded="yes")), 400, "b64encoded"),
    "ext-param-too-long": Case(
        lambda c: signed_doc(c, base_doc(c, **{"ext-param": "é" * 128})), 400, "ext-param"
    ),
    "ttl-too-long": Case(lambda c: signed_doc(c, base_doc(c, **{"x-upyun-meta-ttl": 181})), 400, "ttl"),
    "ttl-zero": Case(lambda c: signed_doc(c, base_doc(c, **{"x-upyun-meta-ttl": "0"})), 400, "ttl"),
    "meta-not-string": Case(
        lambda c: signed_doc(c, base_doc(c, **{"x-upyun-meta-tags": ["a"]})), 400, "x-upyun-meta-tags"
    ),
    "content-type-garbage": Case(
        lambda c: signed_doc(c, base_doc(c, **{"content-type": "not a type"})), 400, "content-type"
    ),
    "content-secret-with-slash": Case(
        lambda c: signed_doc(c, base_doc(c, **{"content-secret": "a/b"})), 400, "content-secret"
    ),
    "notify-url-not-http": Case(
        lambda c: signed_doc(c, base_doc(c, **{"notify-url": "ftp://example.com/x"})), 400, "notify-url"
    ),
    "return-url-javascript": Case(
        lambda c: signed_doc(c, base_doc(c, **{"return-url": "javascript:alert(1)"})), 400, "return-url"
    ),
    "callback-url-relative": Case(
        lambda c: signed_doc(c, base_doc(c, **{"callback-url": "/cb"})), 400, "callback-url"
    ),
    # image processing asked of a file that is not an image, or with bad parameters
    "x-gmkerl-thumb-not-an-image": Case(
        lambda c: signed_doc(c, base_doc(c, **{"x-gmkerl-thumb": "/fw/300"})), 415, "not an image"
    ),
    "x-gmkerl-type-get-meta-not-an-image": Case(
        lambda c: signed_doc(c, base_doc(c, **{"x-gmkerl-type": "get_meta"})), 415, "not an image"
    ),
    "x-gmkerl-thumb-bad-width": Case(
        lambda c: signed_doc(c, base_doc(c, **{"x-gmkerl-thumb": "/fw/abc"}), PNG_1x1), 400, "fw"
    ),
    "x-gmkerl-thumb-absurd-width": Case(
        lambda c: signed_doc(c, base_doc(c, **{"x-gmkerl-thumb": "/fw/99999999"}), PNG_1x1), 400, "fw"
    ),
    "x-gmkerl-thumbnail-unknown-version": Case(
        lambda c: signed_doc(c, base_doc(c, **{"x-gmkerl-thumbnail": "nope"}), PNG_1x1), 400, "version"
    ),
    "x-gmkerl-unknown-field": Case(
        lambda c: signed_doc(c, base_doc(c, **{"x-gmkerl-rocket": "1"}), PNG_1x1), 400, "x-gmkerl-rocket"
    ),
    # async apps (protocols.upyun.apps): the structure is checked before anything is stored
    "apps-notify-url-not-http": Case(
        lambda c: signed_doc(
            c, base_doc(c, apps=[{"name": "thumb", "x-gmkerl-thumb": "/fw/9", "notify_url": "ftp://x/y"}])
        ),
        400,
        "notify_url",
    ),
    "apps-thumb-not-string": Case(
        lambda c: signed_doc(c, base_doc(c, apps=[{"name": "thumb", "x-gmkerl-thumb": 100}])),
        400,
        "x-gmkerl-thumb",
    ),
    "apps-malformed": Case(lambda c: signed_doc(c, base_doc(c, apps=[{"name": "rocket"}])), 400, "apps"),
    # the multipart body
    "missing-file": Case(
        lambda c: [("policy", p := policy_of(c)), ("signature", signature(c, p))], 400, "file"
    ),
    "two-files": Case(lambda c: [*signed(c, policy_of(c)), ("file", ("second", BODY))], 400, "one 'file'"),
    "two-files-before-policy": Case(
        lambda c: [
            ("file", ("a", BODY)),
            ("file", ("b", BODY)),
            ("policy", p := policy_of(c)),
            ("signature", signature(c, p)),
        ],
        400,
        "one 'file'",
    ),
    "file-first-bad-signature": Case(
        lambda c: [("file", ("early", BODY)), ("policy", policy_of(c)), ("signature", "f" * 32)], 401
    ),
    "huge-field": Case(
        lambda c: [
            ("policy", policy_of(c)),
            ("note", "x" * (64 * 1024 + 1)),
            ("signature", "0" * 32),
            ("file", ("f", BODY)),
        ],
        400,
        "too large",
    ),
    "huge-policy-field": Case(
        lambda c: [("policy", "A" * (70 * 1024)), ("file", ("f", BODY))], 400, "too large"
    ),
    "field-not-utf8": Case(lambda c: [("policy", b"\xff\xfe\xfd"), ("file", ("f", BODY))], 400, "utf-8"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_refused_and_nothing_left(
    name: str, server: LiveServer, admin: Gateway, bucket: BucketCredentials, client: httpx.Client
) -> None:
    case = CASES[name]
    response = post(client, bucket.bucket, case.fields(bucket))
    assert_refused(response, case.status, case.fragment)
    assert_nothing_left(server, admin, bucket)


def test_error_codes_carry_the_upyun_eight_digit_detail(
    client: httpx.Client, bucket: BucketCredentials
) -> None:
    body = assert_refused(post(client, bucket.bucket, CASES["expired"].fields(bucket)), 403)
    assert str(body["error_code"]).startswith("403") and len(str(body["error_code"])) == 8


def test_unknown_bucket_is_404(server: LiveServer, client: httpx.Client, bucket: BucketCredentials) -> None:
    fields = signed(bucket, policy_of(bucket))
    assert_refused(post(client, bucket.bucket, fields, path="/no-such-bucket-x1"), 404, "bucket")
    assert_nothing_left(server, None, None)


def test_operator_of_another_bucket_is_refused(
    server: LiveServer, admin: Gateway, bucket: BucketCredentials, client: httpx.Client
) -> None:
    other = create_bucket(admin.catalog, admin.secrets, f"b{uuid.uuid4().hex[:12]}")
    p = policy_of(bucket)
    fields: list[Field] = [("policy", p), ("authorization", authorization(other, p)), ("file", ("f", BODY))]
    assert_refused(post(client, bucket.bucket, fields), 401)
    old: list[Field] = [("policy", p), ("signature", signature(other, p)), ("file", ("f", BODY))]
    assert_refused(post(client, bucket.bucket, old), 401)
    assert_nothing_left(server, admin, bucket)
    assert keys_in(admin, other.bucket) == []


def test_no_boundary(
    server: LiveServer, admin: Gateway, bucket: BucketCredentials, client: httpx.Client
) -> None:
    body, _ = multipart(signed(bucket, policy_of(bucket)))
    r = client.post(f"/{bucket.bucket}", content=body, headers={"Content-Type": "multipart/form-data"})
    assert_refused(r, 400, "boundary")
    assert_nothing_left(server, admin, bucket)


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.95])
def test_truncated_multipart(
    cut: float, server: LiveServer, admin: Gateway, bucket: BucketCredentials, client: httpx.Client
) -> None:
    body, content_type = multipart(signed(bucket, policy_of(bucket), file=BODY * 50))
    r = client.post(
        f"/{bucket.bucket}", content=body[: int(len(body) * cut)], headers={"Content-Type": content_type}
    )
    assert_refused(r, 400, "truncated")
    assert_nothing_left(server, admin, bucket)


def test_garbage_body(
    server: LiveServer, admin: Gateway, bucket: BucketCredentials, client: httpx.Client
) -> None:
    r = client.post(
        f"/{bucket.bucket}",
        content=b"\x00garbage" * 100,
        headers={"Content-Type": "multipart/form-data; boundary=zz"},
    )
    assert_refused(r, 400)
    assert_nothing_left(server, admin, bucket)


def test_client_gone_mid_file_leaves_nothing(
    server: LiveServer, admin: Gateway, bucket: BucketCredentials
) -> None:
    body, content_type = multipart(signed(bucket, policy_of(bucket), file=b"z" * (3 * 1024 * 1024)))
    head = (
        f"POST /{bucket.bucket} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(head + body[: len(body) // 2])
        time.sleep(0.3)
    assert_nothing_left(server, admin, bucket)


def test_return_url_is_not_used_before_the_policy_is_valid(
    server: LiveServer, admin: Gateway, bucket: BucketCredentials, client: httpx.Client
) -> None:
    """An unsigned or invalid policy cannot make us redirect anywhere."""
    doc = base_doc(bucket, **{"return-url": "http://app.example/r", "expiration": int(time.time()) - 1})
    assert_refused(post(client, bucket.bucket, signed_doc(bucket, doc)), 403)
    p = raw_policy(base_doc(bucket, **{"return-url": "http://app.example/r"}))
    assert_refused(
        post(client, bucket.bucket, [("policy", p), ("signature", "0" * 32), ("file", ("f", BODY))]), 401
    )
    assert_nothing_left(server, admin, bucket)


# -- a strict server: private callback targets refused, a small prebuffer ----------------------------------


@dataclass
class Strict:
    server: LiveServer
    admin: Gateway
    creds: BucketCredentials


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Strict]:
    settings = make_home(tmp_path_factory.mktemp("strict"))
    gw = build_gateway(settings, migrate=False)
    creds = create_bucket(gw.catalog, gw.secrets, "strict-bucket")
    live = LiveServer(settings.home, env={"MEDIAGATE_FORM_PREBUFFER_LIMIT": "4096"}).start()
    yield Strict(live, gw, creds)
    live.stop()
    gw.catalog.close()
    assert "Traceback" not in live.log(), live.log()[-5000:]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
        "https://192.168.1.1/hook",
    ],
)
@pytest.mark.parametrize("field", ["notify-url", "callback-url"])
def test_private_callback_targets_are_refused(strict: Strict, url: str, field: str) -> None:
    c = strict.creds
    with httpx.Client(base_url=strict.server.url, timeout=30) as client:
        r = post(client, c.bucket, signed_doc(c, base_doc(c, **{field: url})))
    assert_refused(r, 403, "address")
    assert_nothing_left(strict.server, strict.admin, c)


def test_file_before_policy_is_capped(strict: Strict) -> None:
    c = strict.creds
    p = policy_of(c)
    fields: list[Field] = [("file", ("big", b"q" * 5000)), ("policy", p), ("signature", signature(c, p))]
    with httpx.Client(base_url=strict.server.url, timeout=30) as client:
        r = post(client, c.bucket, fields)
        assert_refused(r, 413, "before the policy")
        assert_nothing_left(strict.server, strict.admin, c)
        ok = post(
            client, c.bucket, [("policy", p), ("signature", signature(c, p)), ("file", ("big", b"q" * 5000))]
        )
    assert ok.status_code == 200, ok.text
    assert json.loads(ok.text)["file_size"] == 5000


def test_bad_signature_is_answered_before_the_file_is_sent(
    server: LiveServer, admin: Gateway, bucket: BucketCredentials
) -> None:
    """Authorisation happens before any file byte is read: the client need not send the file."""
    p = policy_of(bucket)
    body, content_type = multipart(
        [("policy", p), ("signature", "0" * 32), ("file", ("f", b"y" * 10_000_000))]
    )
    head = (
        f"POST /{bucket.bucket} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    start = body.index(b"y" * 100)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head + body[: start + 1000])
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 401"), answer[:300]
    assert json.loads(rest.split(b"\r\n\r\n", 1)[1])["code"] == 401
    assert_nothing_left(server, admin, bucket)

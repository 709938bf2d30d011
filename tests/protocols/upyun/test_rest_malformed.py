"""Malformed UPYUN REST requests: each gets UPYUN's error JSON ``{"msg", "code", "id"}`` with a 4xx
status (never a 5xx), the id of ``X-Request-Id``, and leaves no object, folder or staging file.

Requests are built by hand (``rest_client``) so that every part of them is under the test's
control; a request is signed correctly unless breaking the signature is the point.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from uuid import UUID

import httpx
import pytest

from mediagate.config import Settings
from mediagate.core.buckets import BucketCredentials, create_bucket
from mediagate.core.gateway import Gateway
from mediagate.core.usermeta import MAX_BYTES
from tests.conftest import LiveServer, staging_files
from tests.protocols.upyun.rest_client import object_uri, sign


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


@pytest.fixture
def other(admin: Gateway) -> BucketCredentials:
    return create_bucket(admin.catalog, admin.secrets, f"other{datetime.now(UTC).strftime('%H%M%S%f')}")


@dataclass
class Bad:
    """One malformed request: how to build it, and the status and message words expected."""

    name: str
    status: int
    words: str
    build: Callable[[BucketCredentials, BucketCredentials], tuple[str, str, dict[str, str], bytes]]
    extra: dict[str, str] = field(default_factory=dict)


BODY = b"some file bytes"
MD5_HEX = hashlib.md5(BODY).hexdigest()
OTHER_HEX = hashlib.md5(b"other bytes").hexdigest()


def put(key: str = "f.txt", *, headers: dict[str, str] | None = None, md5: str = "", body: bytes = BODY):
    """A correctly signed PUT of ``key`` (over ``md5`` as Content-MD5 when given)."""

    def build(c: BucketCredentials, _o: BucketCredentials) -> tuple[str, str, dict[str, str], bytes]:
        uri = object_uri(c.bucket, key)
        extra = dict(headers or {})
        if md5:
            extra["Content-MD5"] = md5
        return "PUT", uri, {**extra, **sign(c, "PUT", uri, content_md5=md5)}, body

    return build


def raw(
    method: str,
    uri_of: Callable[[str], str],
    headers_of: Callable[[BucketCredentials, BucketCredentials, str], dict[str, str]],
    body: bytes = BODY,
):
    def build(c: BucketCredentials, o: BucketCredentials) -> tuple[str, str, dict[str, str], bytes]:
        uri = uri_of(c.bucket)
        return method, uri, headers_of(c, o, uri), body

    return build


def at(key: str) -> Callable[[str], str]:
    return lambda bucket: f"/{bucket}/{key}"


def skewed(minutes: int) -> str:
    return format_datetime(datetime.now(UTC) + timedelta(minutes=minutes), usegmt=True)


CASES = [
    Bad("no authorization", 401, "Authorization", raw("PUT", at("f.txt"), lambda c, o, u: {})),
    Bad(
        "not UPYUN scheme",
        401,
        "malformed",
        raw("PUT", at("f.txt"), lambda c, o, u: {"Authorization": "UPYUN nocolon", "Date": skewed(0)}),
    ),
    Bad(
        "wrong password",
        401,
        "signature",
        raw("PUT", at("f.txt"), lambda c, o, u: sign(c, "PUT", u, password="wrong")),
    ),
    Bad(
        "unknown operator",
        401,
        "operator",
        raw("PUT", at("f.txt"), lambda c, o, u: sign(c, "PUT", u, operator="nobody")),
    ),
    Bad(
        "another bucket's operator",
        401,
        "operator",
        raw("PUT", at("f.txt"), lambda c, o, u: sign(o, "PUT", u)),
    ),
    Bad(
        "date missing",
        401,
        "Date",
        raw(
            "PUT", at("f.txt"), lambda c, o, u: {"Authorization": sign(c, "PUT", u, date="")["Authorization"]}
        ),
    ),
    Bad(
        "date 31 minutes old",
        401,
        "minutes",
        raw("PUT", at("f.txt"), lambda c, o, u: sign(c, "PUT", u, date=skewed(-31))),
    ),
    Bad(
        "date 31 minutes ahead",
        401,
        "minutes",
        raw("PUT", at("f.txt"), lambda c, o, u: sign(c, "PUT", u, date=skewed(31))),
    ),
    Bad(
        "date garbage",
        401,
        "Date",
        raw("PUT", at("f.txt"), lambda c, o, u: sign(c, "PUT", u, date="yesterday at noon")),
    ),
    Bad(
        "signed another uri",
        401,
        "signature",
        raw("PUT", at("f.txt"), lambda c, o, u: sign(c, "PUT", f"/{c.bucket}/g.txt")),
    ),
    Bad(
        "signed the decoded uri",
        401,
        "signature",
        raw("PUT", at("a%20b.txt"), lambda c, o, u: sign(c, "PUT", f"/{c.bucket}/a b.txt")),
    ),
    Bad(
        "signed another method", 401, "signature", raw("PUT", at("f.txt"), lambda c, o, u: sign(c, "GET", u))
    ),
    Bad(
        "content-md5 not signed",
        401,
        "signature",
        raw("PUT", at("f.txt"), lambda c, o, u: {"Content-MD5": MD5_HEX, **sign(c, "PUT", u)}),
    ),
    Bad("wrong content-md5 hex", 400, "MD5", put(md5=OTHER_HEX)),
    Bad(
        "wrong content-md5 base64", 400, "MD5", put(md5=base64.b64encode(hashlib.md5(b"x").digest()).decode())
    ),
    Bad("content-md5 not a digest", 400, "MD5", put(md5="not-an-md5")),
    Bad("dot-dot key", 400, "'..'", raw("PUT", at("%2e%2e/escape.txt"), lambda c, o, u: sign(c, "PUT", u))),
    Bad("dot-dot only", 400, "'..'", raw("PUT", at("a/%2E%2E/%2e%2e/x"), lambda c, o, u: sign(c, "PUT", u))),
    Bad("NUL in key", 400, "control", raw("PUT", at("a%00b.txt"), lambda c, o, u: sign(c, "PUT", u))),
    Bad("newline in key", 400, "control", raw("PUT", at("a%0Ab.txt"), lambda c, o, u: sign(c, "PUT", u))),
    Bad("key over 1024 bytes", 400, "1024", put("k" * 1025)),
    Bad("put on a folder path", 400, "folder", put("dir/")),
    Bad(
        "unknown bucket",
        401,
        "bucket",
        raw("PUT", lambda b: "/nosuchbucket1/f.txt", lambda c, o, u: sign(c, "PUT", u)),
    ),
    Bad("image processing of a non-image", 415, "not an image", put(headers={"x-gmkerl-thumb": "/fw/100"})),
    Bad("image processing, bad spec", 400, "fw", put(headers={"x-gmkerl-thumb": "/fw/-1"})),
    Bad("ttl too long", 400, "ttl", put(headers={"x-upyun-meta-ttl": "181"})),
    Bad("ttl not a number", 400, "ttl", put(headers={"x-upyun-meta-ttl": "soon"})),
    Bad("bad meta name", 400, "metadata", put(headers={"x-upyun-meta-a.b": "1"})),
    Bad("secret with a slash", 400, "Content-Secret", put(headers={"Content-Secret": "a/b"})),
    Bad(
        "unknown multi uuid",
        404,
        "x-upyun-multi-uuid not found",
        put(
            headers={"X-Upyun-Multi-Stage": "upload", "X-Upyun-Multi-Uuid": "f" * 32, "X-Upyun-Part-Id": "0"}
        ),
    ),
    Bad(
        "uuid that is not an id",
        404,
        "x-upyun-multi-uuid not found",
        put(headers={"X-Upyun-Multi-Stage": "complete", "X-Upyun-Multi-Uuid": "../../etc"}, body=b""),
    ),
    Bad("unknown multi stage", 400, "Stage", put(headers={"X-Upyun-Multi-Stage": "explode"})),
    Bad(
        "uuid with initiate",
        400,
        "initiate",
        put(headers={"X-Upyun-Multi-Stage": "initiate", "X-Upyun-Multi-Uuid": "f" * 32}, body=b""),
    ),
    Bad(
        "sequential without length",
        400,
        "Length",
        put(headers={"X-Upyun-Multi-Stage": "initiate,upload", "X-Upyun-Part-Id": "0"}),
    ),
    Bad(
        "first part not 0",
        400,
        "Part-Id: 0",
        put(
            headers={
                "X-Upyun-Multi-Stage": "initiate,upload",
                "X-Upyun-Multi-Length": "15",
                "X-Upyun-Part-Id": "1",
            }
        ),
    ),
    Bad(
        "negative part size",
        400,
        "Part-Size",
        put(
            headers={
                "X-Upyun-Multi-Stage": "initiate",
                "X-Upyun-Multi-Disorder": "true",
                "X-Upyun-Multi-Part-Size": "-5",
            },
            body=b"",
        ),
    ),
    Bad(
        "too many parts",
        400,
        "parts",
        put(
            headers={
                "X-Upyun-Multi-Stage": "initiate",
                "X-Upyun-Multi-Disorder": "true",
                "X-Upyun-Multi-Part-Size": "1",
                "X-Upyun-Multi-Length": "10001",
            },
            body=b"",
        ),
    ),
    Bad(
        "move and copy at once",
        400,
        "not both",
        put(headers={"X-Upyun-Move-Source": "/b/a", "X-Upyun-Copy-Source": "/b/a"}, body=b""),
    ),
    Bad(
        "copy from another bucket",
        403,
        "this bucket",
        raw(
            "PUT",
            at("f.txt"),
            lambda c, o, u: {"X-Upyun-Copy-Source": f"/{o.bucket}/a.txt", **sign(c, "PUT", u)},
            b"",
        ),
    ),
    Bad(
        "list limit not a number",
        400,
        "X-List-Limit",
        raw("GET", at(""), lambda c, o, u: {"X-List-Limit": "many", **sign(c, "GET", u)}, b""),
    ),
    Bad(
        "list order sideways",
        400,
        "X-List-Order",
        raw("GET", at(""), lambda c, o, u: {"X-List-Order": "sideways", **sign(c, "GET", u)}, b""),
    ),
    Bad(
        "list iter forged",
        400,
        "X-List-Iter",
        raw("GET", at(""), lambda c, o, u: {"X-List-Iter": "bm90IG91cnM", **sign(c, "GET", u)}, b""),
    ),
    Bad("post without folder", 400, "Folder", raw("POST", at("d"), lambda c, o, u: sign(c, "POST", u), b"")),
    Bad(
        "patch without ?metadata",
        400,
        "metadata",
        raw("PATCH", at("f.txt"), lambda c, o, u: sign(c, "PATCH", u)),
    ),
    Bad(
        "patch of an unknown operation",
        400,
        "metadata=merge",
        raw("PATCH", lambda b: f"/{b}/f.txt?metadata=add", lambda c, o, u: sign(c, "PATCH", u)),
    ),
    Bad(
        "patch of a missing file",
        404,
        "not found",
        raw(
            "PATCH",
            lambda b: f"/{b}/none.txt?metadata=merge",
            lambda c, o, u: {"x-upyun-meta-a": "1", **sign(c, "PATCH", u)},
        ),
    ),
    Bad(
        "patch with a bad ttl",
        400,
        "ttl",
        raw(
            "PATCH",
            lambda b: f"/{b}/f.txt?metadata=merge",
            lambda c, o, u: {"x-upyun-meta-ttl": "999", **sign(c, "PATCH", u)},
        ),
    ),
    Bad(
        "X-Date other than the date signed",
        401,
        "signature",
        raw(
            "PUT",
            at("xd.txt"),
            lambda c, o, u: {
                "Authorization": sign(c, "PUT", u, date="Mon, 01 Jan 2024 00:00:00 GMT")["Authorization"],
                "X-Date": format_datetime(datetime.now(UTC), usegmt=True),
            },
        ),
    ),
    Bad("huge header", 431, "headers", put(headers={"x-upyun-meta-big": "x" * 20000})),
    Bad("delete the root", 403, "root", raw("DELETE", at(""), lambda c, o, u: sign(c, "DELETE", u), b"")),
    Bad(
        "delete missing",
        404,
        "not found",
        raw("DELETE", at("none.txt"), lambda c, o, u: sign(c, "DELETE", u), b""),
    ),
]


def assert_nothing_left(admin: Gateway, creds: BucketCredentials, home: Settings) -> None:
    bucket = admin.catalog.require_bucket(creds.bucket)
    assert admin.catalog.list_dir(bucket.id, "", limit=10) == []
    assert admin.catalog.usage(bucket.id) == 0
    assert staging_files(home.home) == []


def assert_rest_error(r: httpx.Response, status: int, words: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"msg", "code", "id"}
    assert words.lower() in body["msg"].lower(), body["msg"]
    assert body["code"] // 100000 == status
    assert body["id"] == r.headers["x-request-id"]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_malformed_request_is_refused_cleanly(
    case: Bad,
    client: httpx.Client,
    bucket: BucketCredentials,
    other: BucketCredentials,
    admin: Gateway,
    server_home: Settings,
) -> None:
    method, uri, headers, body = case.build(bucket, other)
    r = client.request(method, uri, headers=headers, content=body)
    assert_rest_error(r, case.status, case.words)
    assert_nothing_left(admin, bucket, server_home)


def test_head_errors_have_the_status_and_no_body(client: httpx.Client, bucket: BucketCredentials) -> None:
    uri = object_uri(bucket.bucket, "none.txt")
    r = client.head(uri, headers=sign(bucket, "HEAD", uri))
    assert r.status_code == 404
    assert r.content == b""
    r = client.head(uri, headers=sign(bucket, "HEAD", uri, password="wrong"))
    assert r.status_code == 401


# -- within a real multi-part session ---------------------------------------------------------------


def initiate(client: httpx.Client, creds: BucketCredentials, key: str, **headers: str) -> str:
    uri = object_uri(creds.bucket, key)
    h = {"X-Upyun-Multi-Stage": "initiate", "X-Upyun-Multi-Disorder": "true", **headers}
    r = client.put(uri, headers={**h, **sign(creds, "PUT", uri)})
    assert r.status_code == 204, r.text
    return r.headers["x-upyun-multi-uuid"]


def part(
    client: httpx.Client,
    creds: BucketCredentials,
    key: str,
    uuid: str,
    part_id: str,
    body: bytes,
    **headers: str,
) -> httpx.Response:
    uri = object_uri(creds.bucket, key)
    h = {"X-Upyun-Multi-Stage": "upload", "X-Upyun-Multi-Uuid": uuid, "X-Upyun-Part-Id": part_id, **headers}
    md5 = h.get("Content-MD5", "")
    return client.put(uri, content=body, headers={**h, **sign(creds, "PUT", uri, content_md5=md5)})


def complete(
    client: httpx.Client, creds: BucketCredentials, key: str, uuid: str, **headers: str
) -> httpx.Response:
    uri = object_uri(creds.bucket, key)
    h = {"X-Upyun-Multi-Stage": "complete", "X-Upyun-Multi-Uuid": uuid, **headers}
    return client.put(uri, headers={**h, **sign(creds, "PUT", uri)})


@pytest.mark.parametrize("part_id", ["-1", "abc", "1.5", "", "10000", "99999999999999999999"])
def test_bad_part_ids(
    part_id: str, client: httpx.Client, bucket: BucketCredentials, admin: Gateway, server_home: Settings
) -> None:
    uuid = initiate(client, bucket, "p.bin", **{"X-Upyun-Multi-Part-Size": "4"})
    r = part(client, bucket, "p.bin", uuid, part_id, b"abcd")
    assert_rest_error(r, 400, "X-Upyun-Part-Id")
    assert_nothing_left(admin, bucket, server_home)
    assert admin.catalog.parts(UUID(uuid).hex) == []


def test_part_checks(
    client: httpx.Client, bucket: BucketCredentials, admin: Gateway, server_home: Settings
) -> None:
    uuid = initiate(client, bucket, "q.bin", **{"X-Upyun-Multi-Part-Size": "4", "X-Upyun-Multi-Length": "10"})
    cases = [
        (part(client, bucket, "q.bin", uuid, "0", b"abcd", **{"Content-MD5": OTHER_HEX}), 400, "Content-MD5"),
        (part(client, bucket, "q.bin", uuid, "0", b"abcde"), 400, "longer"),
        (part(client, bucket, "q.bin", uuid, "2", b"abc"), 400, "2 bytes"),
        (part(client, bucket, "q.bin", uuid, "3", b"ab"), 400, "past the last part"),
        (part(client, bucket, "other.bin", uuid, "0", b"abcd"), 404, "x-upyun-multi-uuid not found"),
        (complete(client, bucket, "q.bin", uuid), 400, "parts missing: 0, 1, 2"),
    ]
    for r, status, words in cases:
        assert_rest_error(r, status, words)
    assert admin.catalog.parts(UUID(uuid).hex) == []
    assert_nothing_left(admin, bucket, server_home)


def test_sequential_parts_out_of_order_say_where_to_resume(
    client: httpx.Client, bucket: BucketCredentials, admin: Gateway, server_home: Settings
) -> None:
    uri = object_uri(bucket.bucket, "s.bin")
    h = {
        "X-Upyun-Multi-Stage": "initiate,upload",
        "X-Upyun-Multi-Length": "10",
        "X-Upyun-Multi-Part-Size": "4",
        "X-Upyun-Part-Id": "0",
    }
    r = client.put(uri, content=b"0123", headers={**h, **sign(bucket, "PUT", uri)})
    assert r.status_code == 204, r.text
    assert r.headers["x-upyun-next-part-id"] == "1"
    uuid = r.headers["x-upyun-multi-uuid"]
    r = part(client, bucket, "s.bin", uuid, "2", b"89")
    assert_rest_error(r, 400, "part id error")
    assert r.headers["x-upyun-next-part-id"] == "1"
    r = complete(client, bucket, "s.bin", uuid)
    assert_rest_error(r, 400, "part id error")
    assert r.headers["x-upyun-next-part-id"] == "1"
    assert_nothing_left(admin, bucket, server_home)


def test_a_failed_first_part_leaves_no_session(
    client: httpx.Client, bucket: BucketCredentials, admin: Gateway, server_home: Settings
) -> None:
    uri = object_uri(bucket.bucket, "first.bin")
    h = {
        "X-Upyun-Multi-Stage": "initiate,upload,complete",
        "X-Upyun-Multi-Length": "4",
        "X-Upyun-Part-Id": "0",
        "Content-MD5": OTHER_HEX,
    }
    r = client.put(uri, content=b"0123", headers={**h, **sign(bucket, "PUT", uri, content_md5=OTHER_HEX)})
    assert_rest_error(r, 400, "Content-MD5")
    assert_nothing_left(admin, bucket, server_home)


def test_metadata_merges_cannot_pile_up_past_what_a_put_carries(
    client: httpx.Client, bucket: BucketCredentials
) -> None:
    """Each merge is within the header limit, but before, twelve of them left 150 KB of
    metadata: the file's own HEAD/GET answers then broke clients (httpx: 'Receive buffer too
    long'). A merge whose result would pass the metadata limit (core.usermeta) is refused; the file
    stays readable and keeps what it had."""
    uri = object_uri(bucket.bucket, "meta.txt")
    assert client.put(uri, content=b"x", headers=sign(bucket, "PUT", uri)).status_code == 200
    target = uri + "?metadata=merge"
    answers = []
    for i in range(12):
        names = {f"x-upyun-meta-k{i}-{j}": "v" * 140 for j in range(20)}
        answers.append(client.patch(target, headers={**names, **sign(bucket, "PATCH", target)}))
    assert answers[0].status_code == 200
    refused = [r for r in answers if r.status_code != 200]
    assert refused, "every merge was accepted"
    assert_rest_error(refused[0], 400, "metadata")
    head = client.head(uri, headers=sign(bucket, "HEAD", uri))
    assert head.status_code == 200
    assert head.headers["x-upyun-meta-k0-0"] == "v" * 140
    total = sum(len(k) + len(v) + 4 for k, v in head.headers.items() if k.startswith("x-upyun-meta-"))
    assert total <= MAX_BYTES
    replaced = client.patch(
        uri + "?metadata=replace",
        headers={"x-upyun-meta-a": "1", **sign(bucket, "PATCH", uri + "?metadata=replace")},
    )
    assert replaced.status_code == 200
    assert "x-upyun-meta-k0-0" not in client.head(uri, headers=sign(bucket, "HEAD", uri)).headers

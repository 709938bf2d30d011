"""No tenant reaches another: bucket A's credentials, tokens and sessions never read, write, list,
delete, rename, copy/move into or continue anything of bucket B, in any dialect.

Each test sets up bucket B with something worth stealing (a file, an open upload session), then
attacks it with everything bucket A holds, and checks both the refusal (in the dialect's own error
shape, never a 5xx) and that B is exactly as it was.
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
import uuid
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mediagate.core.buckets import BucketCredentials, create_bucket
from mediagate.core.gateway import Gateway
from tests.conftest import LiveServer
from tests.protocols.imagex.conftest import png, signed, web_session
from tests.protocols.upyun import forms
from tests.protocols.upyun.rest_client import object_uri, sign
from tests.protocols.upyun.rest_client import signed as upyun_signed
from tests.protocols.wantu.client import WantuClient, md5, resource_id

V = "2018-08-01"
SECRET = b"bucket B's private bytes"


@pytest.fixture
def a(admin: Gateway) -> BucketCredentials:
    return create_bucket(admin.catalog, admin.secrets, f"a{uuid.uuid4().hex[:12]}")


@pytest.fixture
def b(admin: Gateway, server: LiveServer) -> BucketCredentials:
    """Bucket B, holding ``secret.txt`` and ``dir/inner.txt``."""
    creds = create_bucket(admin.catalog, admin.secrets, f"b{uuid.uuid4().hex[:12]}")
    with httpx.Client(base_url=server.url) as c:
        for key in ("secret.txt", "dir/inner.txt"):
            resp = upyun_signed(c, creds, "PUT", object_uri(creds.bucket, key), content=SECRET)
            assert resp.status_code == 200, resp.text
    return creds


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def state_of(admin: Gateway, creds: BucketCredentials) -> list[tuple[str, str, Any]]:
    """Every object of a bucket with its MD5 and metadata: what an attack must not change."""
    bucket = admin.catalog.get_bucket(creds.bucket)
    assert bucket is not None
    objects = [admin.catalog.get_object(bucket.id, key) for key in forms.keys_in(admin, creds.bucket)]
    return sorted((o.key, o.md5, o.meta) for o in objects if o is not None)


def keys_of(admin: Gateway, creds: BucketCredentials) -> list[str]:
    return [key for key, _, _ in state_of(admin, creds)]


def upyun_error(resp: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert resp.status_code in statuses, (resp.status_code, resp.text)
    body: dict[str, Any] = resp.json()
    assert set(body) == {"msg", "code", "id"}, body
    return body


def wantu_error(resp: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert resp.status_code in statuses, (resp.status_code, resp.text)
    body: dict[str, Any] = resp.json()
    assert body["code"] and body["message"] and "requestId" in body, body
    return body


def imagex_error(resp: httpx.Response, *statuses: int) -> dict[str, Any]:
    assert resp.status_code in statuses, (resp.status_code, resp.text)
    err: dict[str, Any] = resp.json()["ResponseMetadata"]["Error"]
    assert err["Code"] and err["Message"], err
    return err


def raw_get(server: LiveServer, target: str) -> tuple[int, bytes]:
    """A GET with the request target exactly as given (no client-side dot-segment folding)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1]), data


# -- UPYUN REST --------------------------------------------------------------------------------------------


def test_upyun_operator_of_a_is_refused_everywhere_in_b(
    http: httpx.Client, admin: Gateway, a: BucketCredentials, b: BucketCredentials
) -> None:
    before = state_of(admin, b)
    secret_uri = object_uri(b.bucket, "secret.txt")
    attacks: list[tuple[str, str, dict[str, str]]] = [
        ("GET", secret_uri, {}),
        ("HEAD", secret_uri, {}),
        ("GET", f"/{b.bucket}/", {}),
        ("GET", f"/{b.bucket}/?usage", {}),
        ("PUT", object_uri(b.bucket, "new.txt"), {}),
        ("PUT", secret_uri, {}),
        ("DELETE", secret_uri, {}),
        ("DELETE", f"/{b.bucket}/dir/", {}),
        ("PATCH", secret_uri + "?metadata=merge", {"x-upyun-meta-owner": "a"}),
        ("PATCH", secret_uri + "?metadata=replace", {}),
        ("POST", f"/{b.bucket}/newdir", {"Folder": "true"}),
        ("PUT", object_uri(b.bucket, "moved.txt"), {"X-Upyun-Move-Source": f"/{b.bucket}/secret.txt"}),
        ("PUT", object_uri(b.bucket, "copied.txt"), {"X-Upyun-Copy-Source": f"/{b.bucket}/secret.txt"}),
        (
            "PUT",
            object_uri(b.bucket, "multi.bin"),
            {"X-Upyun-Multi-Stage": "initiate", "X-Upyun-Multi-Length": "4"},
        ),
    ]
    for method, uri, headers in attacks:
        for_a = sign(a, method, uri)
        resp = http.request(
            method, uri, headers={**headers, **for_a}, content=b"evil" if method == "PUT" else None
        )
        if method == "HEAD":
            assert resp.status_code == 401, (method, uri)
            continue
        upyun_error(resp, 401)
        # A's password under B's operator name, and B's operator name with A's password
        forged = sign(a, method, uri, operator=b.operator)
        resp = http.request(method, uri, headers={**headers, **forged})
        assert resp.status_code == 401, (method, uri, resp.text)
    assert state_of(admin, b) == before


@pytest.mark.parametrize(
    "source",
    [
        "/{b}/secret.txt",
        "{b}/secret.txt",
        "//{b}/secret.txt",
        "/{a}/../{b}/secret.txt",
        "/{a}/%2e%2e/{b}/secret.txt",
        "/{a}/%2E%2E/{b}/secret.txt",
        "%2F{b}%2Fsecret.txt",
        "/%2F{b}/secret.txt",
        "/{a}/..%2F{b}%2Fsecret.txt",
        "/{a}%2F..%2F{b}/secret.txt",
        "/{b}\\secret.txt",
        "/{a}/%00/../{b}/secret.txt",
        "/{a}/secret.txt/../../{b}/secret.txt",
    ],
)
@pytest.mark.parametrize("header", ["X-Upyun-Copy-Source", "X-Upyun-Move-Source"])
def test_copy_or_move_from_another_bucket_is_refused(
    http: httpx.Client, admin: Gateway, a: BucketCredentials, b: BucketCredentials, source: str, header: str
) -> None:
    before = state_of(admin, b)
    value = source.format(a=a.bucket, b=b.bucket)
    uri = object_uri(a.bucket, "stolen.txt")
    resp = http.put(uri, headers={header: value, **sign(a, "PUT", uri)})
    upyun_error(resp, 400, 403, 404)
    assert keys_of(admin, a) == []
    assert state_of(admin, b) == before


def test_upyun_multipart_uuid_of_b_is_unknown_to_a(
    http: httpx.Client, admin: Gateway, a: BucketCredentials, b: BucketCredentials
) -> None:
    key = "big.bin"
    b_uri, a_uri = object_uri(b.bucket, key), object_uri(a.bucket, key)
    init = {"X-Upyun-Multi-Stage": "initiate", "X-Upyun-Multi-Length": "8", "X-Upyun-Multi-Part-Size": "4"}
    started = http.put(b_uri, headers={**init, **sign(b, "PUT", b_uri)})
    assert started.status_code == 204, started.text
    upload_id = started.headers["x-upyun-multi-uuid"]
    part0 = http.put(
        b_uri,
        content=b"BBBB",
        headers={
            "X-Upyun-Multi-Stage": "upload",
            "X-Upyun-Multi-Uuid": upload_id,
            "X-Upyun-Part-Id": "0",
            **sign(b, "PUT", b_uri),
        },
    )
    assert part0.status_code == 204, part0.text
    for spelling in (upload_id, upload_id.replace("-", ""), upload_id.upper()):
        attacks = [
            ("PUT", {"X-Upyun-Multi-Stage": "upload", "X-Upyun-Part-Id": "1"}, b"AAAA"),
            ("PUT", {"X-Upyun-Multi-Stage": "upload", "X-Upyun-Part-Id": "0"}, b"AAAA"),
            ("PUT", {"X-Upyun-Multi-Stage": "complete"}, None),
            ("GET", {}, None),
            ("DELETE", {}, None),
        ]
        for method, headers, content in attacks:
            resp = http.request(
                method,
                a_uri,
                content=content,
                headers={**headers, "X-Upyun-Multi-Uuid": spelling, **sign(a, method, a_uri)},
            )
            upyun_error(resp, 404)
    # B's upload is intact and finishes as B meant it
    listed = http.get(b_uri, headers={"X-Upyun-Multi-Uuid": upload_id, **sign(b, "GET", b_uri)})
    assert listed.status_code == 200 and [p["id"] for p in listed.json()["parts"]] == [0], listed.text
    last = http.put(
        b_uri,
        content=b"bbbb",
        headers={
            "X-Upyun-Multi-Stage": "upload,complete",
            "X-Upyun-Multi-Uuid": upload_id,
            "X-Upyun-Part-Id": "1",
            **sign(b, "PUT", b_uri),
        },
    )
    assert last.status_code in (201, 204), last.text
    assert http.get(f"/{b.bucket}/{key}").content == b"BBBBbbbb"
    assert keys_of(admin, a) == []


# -- UPYUN FORM --------------------------------------------------------------------------------------------


def test_form_credentials_of_a_cannot_upload_into_b(
    http: httpx.Client, admin: Gateway, a: BucketCredentials, b: BucketCredentials
) -> None:
    before = state_of(admin, b)
    for_b = forms.raw_policy(
        {"bucket": b.bucket, "expiration": int(time.time()) + 600, "save-key": "/secret.txt"}
    )
    for_a = forms.policy_of(a, "/secret.txt")
    attempts: list[list[forms.Field]] = [
        # A's form secret over a policy naming B, sent to B
        [("policy", for_b), ("signature", forms.signature(a, for_b))],
        # A's own signed policy, replayed at B's URL
        [("policy", for_a), ("signature", forms.signature(a, for_a))],
        # A's operator (HMAC form) over a policy naming B
        [("policy", for_b), ("authorization", forms.authorization(a, for_b, uri=f"/{b.bucket}"))],
        [
            ("policy", for_b),
            (
                "authorization",
                forms.authorization(a, for_b, uri=f"/{b.bucket}").replace(a.operator, b.operator),
            ),
        ],
    ]
    for fields in attempts:
        resp = forms.post(http, b.bucket, [*fields, ("file", ("x.txt", b"evil"))])
        assert 400 <= resp.status_code < 500, resp.text
        assert resp.json()["code"] >= 400 and resp.json()["message"], resp.text
    # and B's policy signed with A's secret, sent to A, stores nothing in either
    resp = forms.post(
        http,
        a.bucket,
        [("policy", for_b), ("signature", forms.signature(a, for_b)), ("file", ("x.txt", b"evil"))],
    )
    assert 400 <= resp.status_code < 500, resp.text
    assert state_of(admin, b) == before
    assert keys_of(admin, a) == []


# -- Wantu -------------------------------------------------------------------------------------------------


@pytest.fixture
def wantu_a(server: LiveServer, a: BucketCredentials) -> Iterator[WantuClient]:
    client = WantuClient(server.url, a.access_key_id, a.secret_access_key, a.bucket)
    yield client
    client.close()


@pytest.fixture
def wantu_b(server: LiveServer, b: BucketCredentials) -> Iterator[WantuClient]:
    client = WantuClient(server.url, b.access_key_id, b.secret_access_key, b.bucket)
    yield client
    client.close()


def test_wantu_upload_token_of_a_cannot_name_b(
    wantu_a: WantuClient, admin: Gateway, a: BucketCredentials, b: BucketCredentials
) -> None:
    before = state_of(admin, b)
    for policy in (
        wantu_a.policy(namespace=b.bucket),
        wantu_a.policy(namespace=b.bucket, dir="/", name="secret.txt", insertOnly=0),
        wantu_a.policy(namespace=f"{a.bucket}/../{b.bucket}"),
        wantu_a.policy(dir=f"/../../{b.bucket}", name="secret.txt"),
    ):
        wantu_error(
            wantu_a.upload(b"evil", policy=policy, fields={"dir": "/", "name": "secret.txt"}), 400, 401, 403
        )
        auth = wantu_a.authorization(policy)
        wantu_error(wantu_a.block_init(b"evil", auth, {"dir": "/", "name": "secret.txt"}), 400, 401, 403)
    assert state_of(admin, b) == before


def test_wantu_management_of_a_cannot_reach_b(
    wantu_a: WantuClient, wantu_b: WantuClient, admin: Gateway, a: BucketCredentials, b: BucketCredentials
) -> None:
    assert wantu_a.upload(b"mine", fields={"dir": "/", "name": "mine.txt"}).status_code == 200
    before_a, before_b = state_of(admin, a), state_of(admin, b)
    theirs = wantu_b.file_rid("/", "secret.txt")
    their_dir = wantu_b.folder_rid("/dir")
    mine = wantu_a.file_rid("/", "mine.txt")
    attacks = [
        ("GET", f"/3.0/files/{theirs}", ""),
        ("GET", f"/3.0/files/{theirs}/exist", ""),
        ("DELETE", f"/3.0/files/{theirs}", ""),
        ("POST", f"/3.0/files/{theirs}/rename/{mine}", ""),
        ("POST", f"/3.0/files/{theirs}/rename/{wantu_a.file_rid('/', 'stolen.txt')}", ""),
        ("POST", f"/3.0/files/{mine}/rename/{wantu_b.file_rid('/', 'planted.txt')}", ""),
        ("POST", f"/3.0/files/{mine}/rename/{theirs}", ""),
        ("GET", f"/3.0/files?namespace={b.bucket}&dir=/", ""),
        ("GET", f"/3.0/folders?namespace={b.bucket}&dir=/", ""),
        ("GET", f"/3.0/folders/{their_dir}/exist", ""),
        ("DELETE", f"/3.0/folders/{their_dir}", ""),
        ("POST", f"/3.0/folders/{wantu_b.folder_rid('/planted')}", ""),
    ]
    for method, path, body in attacks:
        wantu_error(wantu_a.manage(method, path, body=body), 400, 401, 403, 404)
        # B's management signature with A's access key: the signature cannot match
        wantu_error(wantu_a.manage(method, path, body=body, sk=b.secret_access_key), 401, 403)
    # rids whose namespace is empty (the AK's own) mean A's namespace, never B's
    empty_ns = resource_id("", "/", "secret.txt")
    wantu_error(wantu_a.manage("GET", f"/3.0/files/{empty_ns}"), 404)
    wantu_error(wantu_a.manage("DELETE", f"/3.0/files/{empty_ns}"), 404)
    assert state_of(admin, b) == before_b
    assert state_of(admin, a) == before_a


def test_wantu_block_upload_of_b_cannot_be_continued_by_a(
    wantu_a: WantuClient, wantu_b: WantuClient, admin: Gateway, b: BucketCredentials
) -> None:
    before = state_of(admin, b)
    b_auth = wantu_b.authorization(wantu_b.policy(dir="/", name="blocks.bin"))
    init = wantu_b.block_init(b"B" * 10, b_auth)
    assert init.status_code == 200, init.text
    upload_id, id_ = init.json()["uploadId"], init.json()["id"]
    a_auth = wantu_a.authorization(wantu_a.policy(dir="/", name="blocks.bin"))
    parts = [(1, md5(b"B" * 10)), (2, md5(b"A" * 10))]
    for attempt in (
        lambda: wantu_a.block_upload(b"A" * 10, a_auth, upload_id, id_, 2),
        lambda: wantu_a.block_complete(a_auth, upload_id, id_, parts, md5(b"B" * 10 + b"A" * 10)),
        lambda: wantu_a.block_cancel(a_auth, upload_id, id_),
    ):
        wantu_error(attempt(), 400, 401, 403, 404)
    assert admin.catalog.get_session(upload_id.replace("-", "").lower()) is not None
    done = wantu_b.block_complete(b_auth, upload_id, id_, [(1, md5(b"B" * 10))], md5(b"B" * 10))
    assert done.status_code == 200, done.text
    assert state_of(admin, b) != before and "blocks.bin" in keys_of(admin, b)


# -- ImageX ------------------------------------------------------------------------------------------------


def _apply(server: LiveServer, creds: dict[str, Any], service: str, **extra: Any) -> httpx.Response:
    params = {"Action": "ApplyImageUpload", "Version": V, "ServiceId": service, **extra}
    return signed(server, "GET", params, **creds)


def _commit(server: LiveServer, creds: dict[str, Any], service: str, session_key: str) -> httpx.Response:
    params = {"Action": "CommitImageUpload", "Version": V, "ServiceId": service}
    return signed(server, "POST", params, body=json.dumps({"SessionKey": session_key}).encode(), **creds)


def _long_term(c: BucketCredentials) -> dict[str, Any]:
    return {"ak": c.access_key_id, "sk": c.secret_access_key}


def _temporary(server: LiveServer, admin: Gateway, c: BucketCredentials) -> list[dict[str, Any]]:
    """A's temporary credentials, from AssumeRole and from a Dreamina web session."""
    params = {"Action": "AssumeRole", "Version": "2018-01-01"}
    role = signed(server, "GET", params, **_long_term(c))
    assert role.status_code == 200, role.text
    rc = role.json()["Result"]["Credentials"]
    sessionid = web_session(admin, c.bucket)
    got = httpx.post(
        f"{server.url}/mweb/v1/get_upload_token", headers={"Cookie": f"sessionid={sessionid}"}, json={}
    )
    assert got.status_code == 200, got.text
    d = got.json()["data"]
    return [
        {"ak": rc["AccessKeyId"], "sk": rc["SecretAccessKey"], "token": rc["SessionToken"]},
        {"ak": d["access_key_id"], "sk": d["secret_access_key"], "token": d["session_token"]},
    ]


def test_imagex_credentials_of_a_cannot_apply_or_commit_for_b(
    server: LiveServer, admin: Gateway, a: BucketCredentials, b: BucketCredentials
) -> None:
    before = state_of(admin, b)
    # B applies and uploads, but has not committed yet
    applied = _apply(server, _long_term(b), b.bucket)
    assert applied.status_code == 200, applied.text
    addr = applied.json()["Result"]["UploadAddress"]
    [info] = addr["StoreInfos"]
    data = png()
    put = httpx.put(
        f"{server.url}/{info['StoreUri']}",
        content=data,
        headers={"Authorization": info["Auth"], "Content-CRC32": f"{zlib.crc32(data):08x}"},
    )
    assert put.status_code == 200, put.text
    for creds in [_long_term(a), *_temporary(server, admin, a)]:
        imagex_error(_apply(server, creds, b.bucket), 403)
        imagex_error(_apply(server, creds, b.bucket, StoreKeys="secret.txt", Overwrite="true"), 403)
        imagex_error(_commit(server, creds, b.bucket, addr["SessionKey"]), 403)
        imagex_error(_commit(server, creds, a.bucket, addr["SessionKey"]), 400, 403, 404)
    # A's own upload Auth does not open B's StoreUri
    mine = _apply(server, _long_term(a), a.bucket).json()["Result"]["UploadAddress"]["StoreInfos"][0]
    for query in ("", "?uploads", "?partNumber=1&uploadID=x", "?uploadID=x"):
        resp = httpx.put(
            f"{server.url}/{info['StoreUri']}{query}",
            content=b"evil",
            headers={"Authorization": mine["Auth"]},
        )
        assert resp.status_code in (401, 403), resp.text
    assert state_of(admin, b) == before
    assert keys_of(admin, a) == []
    done = _commit(server, _long_term(b), b.bucket, addr["SessionKey"])
    assert done.status_code == 200, done.text
    assert len(keys_of(admin, b)) == len(before) + 1


def _applied_and_uploaded(server: LiveServer, creds: BucketCredentials) -> dict[str, Any]:
    """ApplyImageUpload's UploadAddress, its one file uploaded but not committed yet."""
    applied: dict[str, Any] = _apply(server, _long_term(creds), creds.bucket).json()["Result"][
        "UploadAddress"
    ]
    [info] = applied["StoreInfos"]
    data = png()
    httpx.put(
        f"{server.url}/{info['StoreUri']}",
        content=data,
        headers={"Authorization": info["Auth"], "Content-CRC32": f"{zlib.crc32(data):08x}"},
    ).raise_for_status()
    return applied


def test_imagex_session_key_of_b_cannot_be_committed_into_a(
    server: LiveServer, admin: Gateway, a: BucketCredentials, b: BucketCredentials
) -> None:
    """A SessionKey names its bucket: committing B's upload with A's credentials under A's
    ServiceId must not publish B's bytes into A (nor into B)."""
    applied = _applied_and_uploaded(server, b)
    before = state_of(admin, b)
    imagex_error(_commit(server, _long_term(a), a.bucket, applied["SessionKey"]), 400, 403, 404)
    assert keys_of(admin, a) == []
    assert state_of(admin, b) == before


# -- public reads and on-the-fly processing ------------------------------------------------------------------


def test_private_bucket_and_dot_segments_do_not_leak_through_public_reads(
    server: LiveServer, admin: Gateway, a: BucketCredentials, b: BucketCredentials
) -> None:
    admin.catalog.update_bucket_settings(b.bucket, {"public": False})
    deadline = time.monotonic() + 10  # the server keeps bucket rows a few seconds (bucketconf)
    while raw_get(server, f"/{b.bucket}/secret.txt")[0] == 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    for target in (
        f"/{b.bucket}/secret.txt",
        f"/{b.bucket}/secret.txt!/fw/8",
        f"/tos-cn-i-{b.bucket}/secret.txt",
        f"/{a.bucket}/../{b.bucket}/secret.txt",
        f"/{a.bucket}/%2e%2e/{b.bucket}/secret.txt",
        f"/{a.bucket}/..%2f{b.bucket}%2fsecret.txt",
        f"/{a.bucket}%2f..%2f{b.bucket}/secret.txt",
        f"/{a.bucket}/x!/../../{b.bucket}/secret.txt",
    ):
        status, raw = raw_get(server, target)
        assert status in (400, 403, 404), (target, raw[:300])
        assert SECRET not in raw, target


def test_on_the_fly_variant_of_a_key_is_the_bucket_own(
    http: httpx.Client, admin: Gateway, a: BucketCredentials, b: BucketCredentials
) -> None:
    """Two buckets with the same key: a processed variant is made from the bucket's own bytes, and
    a named version of one bucket means nothing in the other."""
    admin.catalog.update_bucket_settings(a.bucket, {"versions": {"small": "/fw/4"}})
    red, blue = png(16, 16, (250, 0, 0)), png(16, 16, (0, 0, 250))
    for creds, data in ((a, red), (b, blue)):
        uri = object_uri(creds.bucket, "p.png")
        assert upyun_signed(http, creds, "PUT", uri, content=data).status_code == 200
    ra, rb = http.get(f"/{a.bucket}/p.png!/fw/8/format/png"), http.get(f"/{b.bucket}/p.png!/fw/8/format/png")
    assert ra.status_code == rb.status_code == 200
    assert ra.content != rb.content
    assert http.get(f"/{a.bucket}/p.png!small").status_code == 200
    assert http.get(f"/{b.bucket}/p.png!small").status_code == 404
    assert hashlib.md5(http.get(f"/{b.bucket}/p.png").content).hexdigest() == hashlib.md5(blue).hexdigest()


# -- mediagate's own /v1 API -----------------------------------------------------------------------


def v1_error(resp: httpx.Response, *statuses: int) -> str:
    """The /v1 error code, after checking the status and the one error shape."""
    assert resp.status_code in statuses, (resp.status_code, resp.text)
    body = resp.json()
    assert set(body) == {"error"} and {"code", "message", "request_id"} <= set(body["error"]), body
    return str(body["error"]["code"])


def test_v1_key_of_a_cannot_reach_b(
    server: LiveServer, admin: Gateway, a: BucketCredentials, b: BucketCredentials
) -> None:
    """Bucket A's API key with every scope: every /v1 route naming B is refused, before B's
    existence or contents are looked at."""
    from tests.protocols.native.api import client, new_key

    before = state_of(admin, b)
    B = b.bucket
    with client(server.url, new_key(admin, a.bucket, "read,write,admin")) as api:
        attacks = [
            api.get(f"/v1/buckets/{B}"),
            api.patch(f"/v1/buckets/{B}", json={"settings": {"public": True}}),
            api.delete(f"/v1/buckets/{B}", params={"force": "true"}),
            api.get(f"/v1/buckets/{B}/usage"),
            api.get(f"/v1/buckets/{B}/objects"),
            api.get(f"/v1/buckets/{B}/objects/secret.txt"),
            api.head(f"/v1/buckets/{B}/objects/secret.txt"),
            api.get(f"/v1/buckets/{B}/content/secret.txt"),
            api.put(f"/v1/buckets/{B}/objects/secret.txt", content=b"overwritten"),
            api.patch(f"/v1/buckets/{B}/objects/secret.txt", json={"meta": {"x": "y"}}),
            api.delete(f"/v1/buckets/{B}/objects/secret.txt"),
            api.post(f"/v1/buckets/{B}/copy", json={"source": "secret.txt", "destination": "c.txt"}),
            api.post(f"/v1/buckets/{B}/move", json={"source": "secret.txt", "destination": "m.txt"}),
            api.post(f"/v1/buckets/{B}/upload-tokens", json={}),
            api.get(f"/v1/buckets/{B}/upload-tokens"),
            api.get("/v1/keys", params={"bucket": B}),
            api.post("/v1/keys", json={"bucket": B, "scopes": ["read"]}),
            api.get("/v1/tasks", params={"bucket": B}),
            api.get("/v1/deliveries", params={"bucket": B}),
        ]
        for resp in attacks:
            if resp.request.method == "HEAD":
                assert resp.status_code == 403
                continue
            assert v1_error(resp, 403) == "bucket_forbidden", resp.request.url
        assert B not in [x["name"] for x in api.get("/v1/buckets").json()["buckets"]]
        # A's own copy/move cannot name a key of B: keys are within the path's bucket
        api.put(f"/v1/buckets/{a.bucket}/objects/mine.txt", content=b"mine")
        moved = api.post(
            f"/v1/buckets/{a.bucket}/copy", json={"source": f"/{B}/secret.txt", "destination": "x"}
        )
        assert v1_error(moved, 404) == "file_not_found"
    with client(server.url, new_key(admin, a.bucket, "write")) as issuer:
        token = issuer.post(f"/v1/buckets/{a.bucket}/upload-tokens", json={"max_uses": 5}).json()["token"]
    with client(server.url, token) as browser:
        assert (
            v1_error(browser.put(f"/v1/buckets/{B}/objects/secret.txt", content=b"x"), 403)
            == "token_bucket_mismatch"
        )
        form, ctype = forms.multipart([("file", ("secret.txt", b"x"))])
        posted = browser.post(f"/v1/buckets/{B}/objects", content=form, headers={"Content-Type": ctype})
        assert v1_error(posted, 403) == "token_bucket_mismatch"
        assert v1_error(browser.get(f"/v1/buckets/{B}/objects"), 403) == "upload_token_not_allowed"
    assert state_of(admin, b) == before
    assert admin.catalog.get_bucket(B) is not None and admin.catalog.get_bucket(B).settings == {}  # type: ignore[union-attr]


def test_a_bucket_admin_key_cannot_serve_its_pages_as_the_server(
    server: LiveServer, admin: Gateway, a: BucketCredentials
) -> None:
    """Defect: a bucket's own admin key could turn ``inline_active`` on through /v1, and have its
    HTML served inline on the server's origin, the origin of the API docs (and the web console),
    where its script would act with whatever key the operator's browser holds there. Whether a
    bucket's active files run as the server is the operator's call (`mediagate bucket
    inline-active`, or a server-wide admin key), not a tenant's."""
    from tests.protocols.native.api import client, new_key

    A = a.bucket
    with client(server.url, new_key(admin, A, "read,write,admin")) as tenant:
        refused = tenant.patch(f"/v1/buckets/{A}", json={"settings": {"inline_active": True}})
        assert v1_error(refused, 403) == "bucket_forbidden"
        assert "server-wide" in refused.json()["error"]["message"]
        both = {"settings": {"public": True, "inline_active": True}}
        assert v1_error(tenant.patch(f"/v1/buckets/{A}", json=both), 403) == "bucket_forbidden"
        ok = tenant.patch(f"/v1/buckets/{A}", json={"settings": {"public": True, "inline_active": None}})
        assert ok.status_code == 403  # null would reset it: still the operator's setting
        assert tenant.patch(f"/v1/buckets/{A}", json={"settings": {"public": True}}).status_code == 200
        page = b"<html><script>fetch('/v1/keys')</script></html>"
        assert tenant.put(f"/v1/buckets/{A}/objects/p.html", content=page).status_code == 201
    served = httpx.get(f"{server.url}/{A}/p.html")
    assert served.status_code == 200 and served.headers["content-security-policy"] == "sandbox"
    assert (admin.catalog.get_bucket(A).settings or {}).get("inline_active") is not True  # type: ignore[union-attr]
    with client(server.url, new_key(admin, None)) as operator:
        on = operator.patch(f"/v1/buckets/{A}", json={"settings": {"inline_active": True}})
        assert on.status_code == 200 and on.json()["settings"]["inline_active"] is True


# -- more surfaces: list cursors, pretreatment, Wantu media, ImageX SessionKey reuse, tus, /v1 ids ---------


def test_upyun_list_iter_of_b_does_not_page_a(
    http: httpx.Client, admin: Gateway, a: BucketCredentials, b: BucketCredentials
) -> None:
    """B's cursor names B's folder and bucket; on A (same folder name, even the same keys) it is
    refused, never answered with a page of either bucket."""
    for key in ("secret.txt", "dir/inner.txt"):
        assert upyun_signed(http, a, "PUT", object_uri(a.bucket, key), content=b"a").status_code == 200
    b_root = f"/{b.bucket}/"
    first = http.get(b_root, headers={"X-List-Limit": "1", **sign(b, "GET", b_root)})
    assert first.status_code == 200, first.text
    cursor = first.headers["x-upyun-list-iter"]
    a_root = f"/{a.bucket}/"
    for headers in ({"X-List-Iter": cursor}, {"X-List-Iter": cursor, "X-List-Order": "asc"}):
        resp = http.get(a_root, headers={**headers, "X-List-Limit": "1", **sign(a, "GET", a_root)})
        assert "X-List-Iter" in upyun_error(resp, 400)["msg"]


def test_pretreatment_of_a_cannot_reach_b(
    server: LiveServer, admin: Gateway, a: BucketCredentials, b: BucketCredentials
) -> None:
    """UPYUN's processing API: A's operator cannot submit for service B, nor see B's task ids;
    a source path naming B's bucket is a key in A (which does not exist), never B's file."""
    import base64
    from urllib.parse import urlencode

    def post(creds: BucketCredentials, service: str, source: str) -> httpx.Response:
        tasks = base64.b64encode(json.dumps([{"type": "probe", "avopts": ""}]).encode()).decode()
        fields = {"service": service, "notify_url": "", "source": source, "tasks": tasks, "accept": "json"}
        body = urlencode(fields).encode()
        digest = hashlib.md5(body).hexdigest()
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Content-MD5": digest}
        headers |= sign(creds, "POST", "/pretreatment/", content_md5=digest)
        return httpx.post(f"{server.url}/pretreatment/", content=body, headers=headers)

    def query(creds: BucketCredentials, what: str, ids: list[str]) -> httpx.Response:
        uri = f"/{what}/?" + urlencode({"service": creds.bucket, "task_ids": ",".join(ids)})
        return httpx.get(server.url + uri, headers=sign(creds, "GET", uri))

    upyun_error(post(a, b.bucket, "/secret.txt"), 401)
    theirs = post(b, b.bucket, "/secret.txt")
    assert theirs.status_code == 200, theirs.text
    ids = theirs.json()
    for what in ("status", "result"):
        answer = query(a, what, ids)
        assert answer.status_code == 200 and answer.json()["tasks"] == {i: None for i in ids}, answer.text
        assert SECRET.decode() not in answer.text
    for source in (f"/{b.bucket}/secret.txt", f"/../{b.bucket}/secret.txt", f"/./{b.bucket}/secret.txt"):
        mine = post(a, a.bucket, source)
        if mine.status_code == 200:  # recorded as A's (missing) key: it fails 404 in A, reads nothing of B
            [task_id] = mine.json()
            task = admin.catalog.get_task(task_id)
            assert task is not None and task.bucket_id == admin.catalog.require_bucket(a.bucket).id
        else:
            upyun_error(mine, 400, 404)


def test_wantu_media_of_a_cannot_name_b_files(
    wantu_a: WantuClient, wantu_b: WantuClient, admin: Gateway, a: BucketCredentials, b: BucketCredentials
) -> None:
    """mediaEncode/snapshot inputs, outputs and watermarks, and scanPorn resourceIds, of B's
    namespace are refused (scanPorn: the per-file "no such file" status, never a score), and B's
    task ids are unknown to A. Nothing is recorded or written in B."""
    from urllib.parse import quote

    before = state_of(admin, b)
    assert wantu_a.upload(b"mine", fields={"dir": "/", "name": "mine.mp4"}).status_code == 200
    theirs, mine = wantu_b.file_rid("/", "secret.txt"), wantu_a.file_rid("/", "mine.mp4")
    planted = wantu_b.file_rid("/", "planted.mp4")

    def submit(client: WantuClient, path: str, **fields: str) -> httpx.Response:
        return client.manage(
            "POST", path, body="&".join(f"{k}={quote(v, safe='')}" for k, v in fields.items())
        )

    attacks = [
        (
            "/3.0/mediaEncode",
            {"input": theirs, "output": wantu_a.file_rid("/", "o.mp4"), "encodeTemplate": "mp4-360p"},
        ),
        ("/3.0/mediaEncode", {"input": mine, "output": planted, "encodeTemplate": "mp4-360p"}),
        (
            "/3.0/mediaEncode",
            {
                "input": mine,
                "output": wantu_a.file_rid("/", "w.mp4"),
                "encodeTemplate": "mp4-360p",
                "watermark": wantu_b.file_rid("/", "logo.png"),
            },
        ),
        ("/3.0/snapshot", {"input": theirs, "output": wantu_a.file_rid("/", "s.jpg"), "time": "0"}),
        ("/3.0/snapshot", {"input": mine, "output": wantu_b.file_rid("/", "s.jpg"), "time": "0"}),
    ]
    for path, fields in attacks:
        wantu_error(submit(wantu_a, path, usePreset="1", **fields), 400, 401, 403, 404)
    scanned = submit(wantu_a, "/3.1/scanPorn", resourceId=theirs)
    assert scanned.status_code == 200, scanned.text
    [entry] = scanned.json()["result"]
    assert entry["status"] == 2 and "score" not in entry, entry  # 2: no such file in this namespace
    # B's task, looked up by A
    clip = b"\x00" * 16
    assert wantu_b.upload(clip, fields={"dir": "/", "name": "v.mp4"}).status_code == 200
    task = submit(
        wantu_b,
        "/3.0/snapshot",
        input=wantu_b.file_rid("/", "v.mp4"),
        output=wantu_b.file_rid("/", "v.jpg"),
        time="0",
    )
    assert task.status_code == 200, task.text
    task_id = task.json()["taskId"]
    for which in ("snapshotResult", "mediaEncodeResult"):
        wantu_error(wantu_a.manage("GET", f"/3.0/{which}/{task_id}"), 404)
    assert {k for k, _, _ in state_of(admin, b)} >= {k for k, _, _ in before}
    assert "planted.mp4" not in keys_of(admin, b) and "s.jpg" not in keys_of(admin, b)


def test_imagex_session_key_commits_once(server: LiveServer, admin: Gateway, b: BucketCredentials) -> None:
    """A SessionKey publishes its upload once: replayed (even by its own service), it is refused
    and publishes nothing more."""
    applied = _applied_and_uploaded(server, b)
    assert _commit(server, _long_term(b), b.bucket, applied["SessionKey"]).status_code == 200
    after = state_of(admin, b)
    imagex_error(_commit(server, _long_term(b), b.bucket, applied["SessionKey"]), 400, 404, 409)
    assert state_of(admin, b) == after


def test_tus_upload_of_b_is_unknown_to_a(
    server: LiveServer, admin: Gateway, a: BucketCredentials, b: BucketCredentials
) -> None:
    from tests.protocols.tus.conftest import auth, create, head, issue_token, meta, patch

    b_token = issue_token(admin, b.bucket, prefix="tus/")
    a_token = issue_token(admin, a.bucket, prefix="tus/", max_uses=5)
    url = create(server.url, b.bucket, b_token, 8, **{"Upload-Metadata": meta(filename="t.bin")}).headers[
        "Location"
    ]
    assert patch(url, b_token, 0, b"BBBB").status_code == 204
    session_id = url.rsplit("/", 1)[1]
    under_a = url.replace(f"/v1/tus/{b.bucket}/", f"/v1/tus/{a.bucket}/")
    for target, token, refused in (
        (url, a_token, (403, 404)),
        (under_a, a_token, (404,)),
        (under_a, b_token, (403, 404)),
    ):
        assert head(target, token).status_code in refused
        assert patch(target, token, 4, b"AAAA").status_code in refused
        assert httpx.delete(target, headers=auth(token)).status_code in refused
    assert admin.catalog.get_session(session_id) is not None
    assert head(url, b_token).headers["Upload-Offset"] == "4"
    assert patch(url, b_token, 4, b"bbbb").status_code == 204
    assert httpx.get(f"{server.url}/{b.bucket}/tus/t.bin").content == b"BBBBbbbb"
    assert keys_of(admin, a) == []


def test_v1_ids_of_b_are_unknown_to_a(
    server: LiveServer, admin: Gateway, a: BucketCredentials, b: BucketCredentials
) -> None:
    """Revoking by id: B's API key and B's upload token are as unknown to A's admin key as
    made-up ids (under A's path too); /v1/usage and /v1/me show A only."""
    from tests.protocols.native.api import client, new_key

    with client(server.url, new_key(admin, b.bucket, "read,write,admin")) as owner:
        b_key = owner.post("/v1/keys", json={"bucket": b.bucket, "scopes": ["read"]}).json()["key_id"]
        b_tok = owner.post(f"/v1/buckets/{b.bucket}/upload-tokens", json={}).json()["token_id"]
    with client(server.url, new_key(admin, a.bucket, "read,write,admin")) as api:
        assert v1_error(api.delete(f"/v1/keys/{b_key}"), 404) == "key_not_found"
        assert v1_error(api.get(f"/v1/keys/{b_key}"), 404, 405) in ("key_not_found", "method_not_allowed")
        gone = api.delete(f"/v1/buckets/{a.bucket}/upload-tokens/{b_tok}")
        assert v1_error(gone, 404) == "token_not_found"
        assert [u["bucket"] for u in api.get("/v1/usage").json()["buckets"]] == [a.bucket]
        assert b.bucket not in api.get("/v1/me").text
        assert b_key not in api.get("/v1/keys").text
    with client(server.url, new_key(admin, b.bucket, "read,write,admin")) as owner:
        assert [k["revoked_at"] for k in owner.get("/v1/keys").json()["keys"] if k["key_id"] == b_key] == [
            None
        ]
        tokens = owner.get(f"/v1/buckets/{b.bucket}/upload-tokens").json()["upload_tokens"]
        assert [t["revoked_at"] for t in tokens if t["token_id"] == b_tok] == [None]


def test_metrics_and_the_web_page_name_no_tenant(
    http: httpx.Client, a: BucketCredentials, b: BucketCredentials
) -> None:
    """/metrics and /ui/ are the same for everyone: after traffic of both buckets neither names a
    bucket, an operator, a key or a path."""
    upyun_signed(http, a, "PUT", object_uri(a.bucket, "m.txt"), content=b"m")
    http.get(f"/{b.bucket}/secret.txt")
    http.get(f"/{b.bucket}/nope.txt")
    for path in ("/metrics", "/ui/", "/"):
        page = http.get(path)
        assert page.status_code == 200, path
        for secret in (
            a.bucket,
            b.bucket,
            a.operator,
            b.operator,
            a.access_key_id,
            b.access_key_id,
            "secret.txt",
        ):
            assert secret not in page.text, (path, secret)


def test_another_tenant_cannot_tell_which_bucket_names_exist(
    server: LiveServer, http: httpx.Client, admin: Gateway, a: BucketCredentials, b: BucketCredentials
) -> None:
    """Defect: A's UPYUN operator on B got "not authorised for this bucket" and on a made-up name
    "does not exist or not authorised", and A's tus token 403 on B but 404 ``bucket_not_found`` on
    a made-up name: either told A which names are buckets. Now the answers are the same."""
    from tests.protocols.native.api import client, new_key
    from tests.protocols.tus.conftest import create, head, issue_token, meta

    token = issue_token(admin, a.bucket)
    b_token = issue_token(admin, b.bucket, prefix="t/")
    b_upload = create(server.url, b.bucket, b_token, 3, **{"Upload-Metadata": meta(filename="x")})
    upload_id = b_upload.headers["Location"].rsplit("/", 1)[1]

    def answers(name: str) -> list[Any]:
        uri = f"/{name}/x.txt"
        rest = http.put(uri, content=b"x", headers=sign(a, "PUT", uri))
        made = create(server.url, name, token, 3, **{"Upload-Metadata": meta(filename="x")})
        resumed = head(f"{server.url}/v1/tus/{name}/{upload_id}", token)
        imagex = _apply(server, _long_term(a), name)
        wantu = WantuClient(server.url, a.access_key_id, a.secret_access_key, a.bucket)
        try:
            policy = wantu.policy(namespace=name)
            w = wantu.upload(b"x", policy=policy, fields={"dir": "/", "name": "x.txt"})
        finally:
            wantu.close()
        with client(server.url, new_key(admin, a.bucket)) as api:
            v1 = api.get(f"/v1/buckets/{name}/objects")
        return [
            (rest.status_code, rest.json()["code"], rest.json()["msg"]),
            (made.status_code, made.json()["error"]["code"]),
            resumed.status_code,
            (imagex.status_code, imagex.json()["ResponseMetadata"]["Error"]["Code"]),
            (w.status_code, w.json()["code"], w.json()["message"]),
            (v1.status_code, v1.json()["error"]["code"]),
        ]

    assert answers(b.bucket) == answers(f"z{uuid.uuid4().hex[:12]}")

"""Malformed Wantu requests: each gets the seed's error JSON (code, message/msg, requestId) with the
right status, never a 5xx, and leaves no visible object behind."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import formatdate

import httpx
import pytest

from mediagate.core.buckets import BucketCredentials
from mediagate.core.gateway import Gateway
from tests.protocols.wantu.client import (
    WantuClient,
    b64,
    encoded_policy,
    hmac_sha1,
    md5,
    multipart,
    upload_token,
)
from tests.protocols.wantu.conftest import png

Case = Callable[[WantuClient], httpx.Response]
DATA = b"some file bytes"
OK_FIELDS = {"name": "n.txt", "dir": "/d"}


def _auth_raw(value: str) -> Case:
    return lambda w: w.send("upload", OK_FIELDS.items(), DATA, authorization=value)


def _policy(**fields: object) -> Case:
    return lambda w: w.upload(DATA, policy=w.policy(**fields), fields=OK_FIELDS)


def _fields(**fields: str) -> Case:
    return lambda w: w.upload(DATA, fields=fields)


def _tampered(w: WantuClient) -> httpx.Response:
    good = encoded_policy(w.policy())
    evil = encoded_policy(w.policy(sizeLimit=10**12))
    token = b64(f"{w.ak}:{evil}:{hmac_sha1(w.sk, good)}")
    return w.send("upload", OK_FIELDS.items(), DATA, authorization=f"UPLOAD_AK_TOP {token}")


def _signed_policy_text(text: str) -> Case:
    def case(w: WantuClient) -> httpx.Response:
        return w.send(
            "upload",
            OK_FIELDS.items(),
            DATA,
            authorization="UPLOAD_AK_TOP " + upload_token(w.ak, w.sk, b64(text)),
        )

    return case


def _raw_body(body: bytes, content_type: str) -> Case:
    return lambda w: w.http.put(
        "/api/proxy/upload",
        content=body,
        headers={"Content-Type": content_type, "Authorization": w.authorization()},
    )


def _truncated(w: WantuClient) -> httpx.Response:
    body, ctype = multipart(OK_FIELDS.items(), DATA * 100)
    return _raw_body(body[:-200], ctype)(w)


def _duplicate_field(w: WantuClient) -> httpx.Response:
    return w.send("upload", [("name", "a"), ("name", "b")], DATA, authorization=w.authorization())


UPLOAD_CASES: dict[str, tuple[Case, int, str]] = {
    "no authorization": (
        lambda w: w.send("upload", OK_FIELDS.items(), DATA, authorization=None),
        401,
        "AuthenticationFailed",
    ),
    "wrong token type": (_auth_raw("Bearer abc"), 401, "AuthenticationFailed"),
    "token not base64": (_auth_raw("UPLOAD_AK_TOP !!!***"), 401, "AuthenticationFailed"),
    "token with two parts": (_auth_raw("UPLOAD_AK_TOP " + b64("ak:policy")), 401, "AuthenticationFailed"),
    "unknown access key": (
        lambda w: _auth_raw("UPLOAD_AK_TOP " + upload_token("NOPE", w.sk, w.policy()))(w),
        401,
        "AuthenticationFailed",
    ),
    "wrong secret": (
        lambda w: _auth_raw("UPLOAD_AK_TOP " + upload_token(w.ak, "wrong", w.policy()))(w),
        401,
        "AuthenticationFailed",
    ),
    "tampered policy": (_tampered, 401, "AuthenticationFailed"),
    "expired (ms)": (_policy(expiration=int(time.time() * 1000) - 60_000), 401, "AuthenticationFailed"),
    "expired (seconds)": (_policy(expiration=int(time.time()) - 60), 401, "AuthenticationFailed"),
    "wrong namespace": (_policy(namespace="someone-else"), 401, "AuthenticationFailed"),
    "policy not JSON": (_signed_policy_text("not json"), 400, "InvalidArgument"),
    "policy not an object": (_signed_policy_text("[1,2]"), 400, "InvalidArgument"),
    "sizeLimit not an integer": (_policy(sizeLimit="big"), 400, "InvalidArgument"),
    "size over sizeLimit": (_policy(sizeLimit=5), 400, "InvalidArgument"),
    "declared size over sizeLimit": (
        lambda w: w.upload(DATA, policy=w.policy(sizeLimit=5), fields=OK_FIELDS | {"size": "1000"}),
        400,
        "InvalidArgument",
    ),
    "mime outside mimeLimit": (_policy(mimeLimit="image/png;image/jpeg"), 400, "InvalidArgument"),
    "wrong md5": (_fields(**OK_FIELDS, md5=md5(b"other")), 400, "InvalidArgument"),
    "malformed md5": (_fields(**OK_FIELDS, md5="xyz"), 400, "InvalidArgument"),
    "size does not match": (_fields(**OK_FIELDS, size=str(len(DATA) + 1)), 400, "InvalidArgument"),
    "size too small": (_fields(**OK_FIELDS, size="3"), 400, "InvalidArgument"),
    "size not a number": (_fields(**OK_FIELDS, size="-1"), 400, "InvalidArgument"),
    "name missing": (_fields(dir="/d"), 400, "InvalidArgument"),
    "name longer than 64 bytes": (_fields(name="x" * 65), 400, "InvalidArgument"),
    "name with a slash": (_policy(name="a/b"), 400, "InvalidArgument"),
    "dir with //": (_fields(name="n", dir="/a//b"), 400, "InvalidArgument"),
    "dir ending with /": (_fields(name="n", dir="/a/"), 400, "InvalidArgument"),
    "dir longer than 192 bytes": (_fields(name="n", dir="/" + "d" * 192), 400, "InvalidArgument"),
    "dir with ..": (_fields(name="n", dir="/a/../b"), 400, "InvalidArgument"),
    "no content part": (
        lambda w: w.send("upload", OK_FIELDS.items(), None, authorization=w.authorization()),
        400,
        "InvalidArgument",
    ),
    "not multipart": (_raw_body(b"name=n", "application/x-www-form-urlencoded"), 400, "InvalidArgument"),
    "no boundary": (_raw_body(b"x", "multipart/form-data"), 400, "InvalidArgument"),
    "truncated multipart": (_truncated, 400, "InvalidArgument"),
    "duplicate field": (_duplicate_field, 400, "InvalidArgument"),
    "callbackUrl not http": (_policy(callbackUrl="file:///etc/passwd"), 400, "InvalidArgument"),
    "negative expiration": (_policy(expiration=-5), 400, "InvalidArgument"),
}


def _assert_error(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert body["code"] == code and body["message"] and body["msg"] == body["message"] and body["requestId"]
    assert r.headers["code"] == code and r.headers["requestId"] == body["requestId"]


def _nothing_visible(admin: Gateway, bucket: BucketCredentials) -> None:
    b = admin.catalog.require_bucket(bucket.bucket)
    assert admin.catalog.usage(b.id) == 0
    assert admin.catalog.list_dir(b.id, "") == []


@pytest.mark.parametrize("case", list(UPLOAD_CASES), ids=list(UPLOAD_CASES))
def test_malformed_upload(wantu: WantuClient, admin: Gateway, bucket: BucketCredentials, case: str) -> None:
    send, status, code = UPLOAD_CASES[case]
    _assert_error(send(wantu), status, code)
    _nothing_visible(admin, bucket)


def test_insert_only_duplicate_keeps_the_original(wantu: WantuClient) -> None:
    assert wantu.upload(b"1", policy=wantu.policy(insertOnly=1), fields={"name": "k"}).status_code == 200
    _assert_error(
        wantu.upload(b"2", policy=wantu.policy(insertOnly=1), fields={"name": "k"}), 400, "NameDuplicated"
    )


# -- block upload ---------------------------------------------------------------------------------------


def _parts(items: list[dict[str, object]]) -> str:
    return base64.urlsafe_b64encode(json.dumps(items).encode()).decode()


BLOCK_CASES: dict[str, tuple[Callable[[WantuClient, str, str, str], httpx.Response], int, str]] = {
    "unknown uploadId": (
        lambda w, a, u, i: w.block_upload(b"x", a, "A" * 32, "", 2),
        404,
        "ResourceNotFound",
    ),
    "unknown id": (
        lambda w, a, u, i: w.block_upload(b"x", a, "", "00000000-0000-4000-8000-000000000000", 2),
        404,
        "ResourceNotFound",
    ),
    "malformed uploadId": (lambda w, a, u, i: w.block_upload(b"x", a, "xyz", "", 2), 400, "InvalidArgument"),
    "id and uploadId disagree": (
        lambda w, a, u, i: w.block_upload(b"x", a, u, "00000000-0000-4000-8000-000000000000", 2),
        400,
        "InvalidArgument",
    ),
    "partNumber zero": (lambda w, a, u, i: w.block_upload(b"x", a, u, i, 0), 400, "InvalidArgument"),
    "partNumber not a number": (
        lambda w, a, u, i: w.send(
            "blockUpload", {"id": i, "uploadId": u, "partNumber": "two"}.items(), b"x", authorization=a
        ),
        400,
        "InvalidArgument",
    ),
    "block md5 wrong": (
        lambda w, a, u, i: w.block_upload(b"x", a, u, i, 2, {"md5": md5(b"y")}),
        400,
        "InvalidArgument",
    ),
    "block size wrong": (
        lambda w, a, u, i: w.block_upload(b"xyz", a, u, i, 2, {"size": "2"}),
        400,
        "InvalidArgument",
    ),
    "wrong part ETag": (
        lambda w, a, u, i: w.block_complete(a, u, i, [(1, md5(b"nope"))], md5(b"first")),
        400,
        "InvalidArgument",
    ),
    "missing part": (
        lambda w, a, u, i: w.block_complete(
            a, u, i, [(1, md5(b"first")), (2, md5(b"second"))], md5(b"firstsecond")
        ),
        400,
        "InvalidArgument",
    ),
    "parts not base64": (
        lambda w, a, u, i: w.block_complete(a, u, i, "%%%", md5(b"first")),
        400,
        "InvalidArgument",
    ),
    "parts not a list": (
        lambda w, a, u, i: w.block_complete(a, u, i, _parts([]), md5(b"first")),
        400,
        "InvalidArgument",
    ),
    "parts listed twice": (
        lambda w, a, u, i: w.block_complete(
            a, u, i, _parts([{"eTag": md5(b"first"), "partNumber": "1"}] * 2), md5(b"firstfirst")
        ),
        400,
        "InvalidArgument",
    ),
    "whole md5 wrong": (
        lambda w, a, u, i: w.block_complete(a, u, i, [(1, md5(b"first"))], md5(b"other")),
        400,
        "InvalidArgument",
    ),
    "whole md5 missing": (
        lambda w, a, u, i: w.send(
            "blockComplete", {"id": i, "uploadId": u, "parts": _parts([])}.items(), authorization=a
        ),
        400,
        "InvalidArgument",
    ),
    "complete without token": (
        lambda w, a, u, i: w.send("blockComplete", {"id": i, "uploadId": u}.items(), authorization=None),
        401,
        "AuthenticationFailed",
    ),
    "cancel unknown upload": (lambda w, a, u, i: w.block_cancel(a, "B" * 32, ""), 404, "ResourceNotFound"),
}


@pytest.mark.parametrize("case", list(BLOCK_CASES), ids=list(BLOCK_CASES))
def test_malformed_block_calls(
    wantu: WantuClient, admin: Gateway, bucket: BucketCredentials, case: str
) -> None:
    auth = wantu.authorization(wantu.policy(name="blocks.bin"))
    init = wantu.block_init(b"first", auth)
    assert init.status_code == 200, init.text
    upload_id, id_ = init.json()["uploadId"], init.json()["id"]
    send, status, code = BLOCK_CASES[case]
    _assert_error(send(wantu, auth, upload_id, id_), status, code)
    _nothing_visible(admin, bucket)
    parts = {p.part_number for p in admin.catalog.parts(upload_id.lower())}
    assert parts == {1}  # a refused block is not stored
    # the session survives a refused call: the client can still finish it properly
    done = wantu.block_complete(auth, upload_id, id_, [(1, md5(b"first"))], md5(b"first"))
    assert done.status_code == 200, done.text


def test_refused_first_block_leaves_no_session(
    wantu: WantuClient, admin: Gateway, bucket: BucketCredentials
) -> None:
    auth = wantu.authorization(wantu.policy(name="x.bin"))
    _assert_error(wantu.block_init(b"first", auth, {"md5": md5(b"other")}), 400, "InvalidArgument")
    _assert_error(wantu.block_init(b"first", auth, {"size": "4"}), 400, "InvalidArgument")
    b = admin.catalog.require_bucket(bucket.bucket)
    every = admin.catalog.stale_sessions(datetime.now(UTC) + timedelta(minutes=1), limit=100_000)
    sessions = [admin.catalog.get_session(s) for s in every]
    assert [s for s in sessions if s is not None and s.bucket_id == b.id] == []


def test_mime_limit_applies_at_completion(
    wantu: WantuClient, admin: Gateway, bucket: BucketCredentials
) -> None:
    auth = wantu.authorization(wantu.policy(name="img.bin", mimeLimit="image/png"))
    init = wantu.block_init(b"not an image at all", auth)
    upload_id, id_ = init.json()["uploadId"], init.json()["id"]
    r = wantu.block_complete(
        auth, upload_id, id_, [(1, md5(b"not an image at all"))], md5(b"not an image at all")
    )
    _assert_error(r, 400, "InvalidArgument")
    _nothing_visible(admin, bucket)
    ok = wantu.authorization(wantu.policy(name="img.png", mimeLimit="image/png"))
    image = png()
    init = wantu.block_init(image, ok)
    done = wantu.block_complete(ok, init.json()["uploadId"], init.json()["id"], [(1, md5(image))], md5(image))
    assert done.status_code == 200 and done.json()["mimeType"] == "image/png"


# -- management -----------------------------------------------------------------------------------------


def _signed(w: WantuClient, method: str, path: str, date: str) -> httpx.Response:
    token = b64(f"{w.ak}:{hmac_sha1(w.sk, f'{path}' + chr(10) + chr(10) + date)}")
    return w.http.request(method, path, headers={"Authorization": f"ACL_TOP {token}", "Date": date})


MANAGE_CASES: dict[str, tuple[Case, int, str]] = {
    "no authorization": (
        lambda w: w.http.get("/3.0/files", headers={"Date": formatdate(usegmt=True)}),
        401,
        "AuthenticationFailed",
    ),
    "wrong token type": (
        lambda w: w.http.get(
            "/3.0/files", headers={"Authorization": "UPYUN a:b", "Date": formatdate(usegmt=True)}
        ),
        401,
        "AuthenticationFailed",
    ),
    "token not AK:sign": (
        lambda w: w.http.get(
            "/3.0/files",
            headers={"Authorization": "ACL_TOP " + b64("nocolon"), "Date": formatdate(usegmt=True)},
        ),
        401,
        "AuthenticationFailed",
    ),
    "wrong secret": (lambda w: w.manage("GET", "/3.0/files", sk="wrong"), 401, "AuthenticationFailed"),
    "signed another path": (
        lambda w: w.manage("GET", "/3.0/folders", sign_path="/3.0/files"),
        401,
        "AuthenticationFailed",
    ),
    "Date 40 minutes old (the default skew is 30)": (
        lambda w: w.manage("GET", "/3.0/files", date=formatdate(time.time() - 2400, usegmt=True)),
        401,
        "AuthenticationFailed",
    ),
    "Date 40 minutes ahead (ms)": (
        lambda w: w.manage("GET", "/3.0/files", date=str(int((time.time() + 2400) * 1000))),
        401,
        "AuthenticationFailed",
    ),
    "Date past year 9999, validly signed": (
        lambda w: w.manage("GET", "/3.0/files", date="9999999999999999"),
        401,
        "AuthenticationFailed",
    ),
    "Date missing": (
        lambda w: w.http.get("/3.0/files", headers={"Authorization": "ACL_TOP " + b64(f"{w.ak}:{'0' * 40}")}),
        401,
        "AuthenticationFailed",
    ),
    "Date unparseable": (lambda w: _signed(w, "GET", "/3.0/files", "sometime"), 401, "AuthenticationFailed"),
    "resourceId not base64": (lambda w: w.manage("GET", "/3.0/files/%%%%/exist"), 400, "InvalidArgument"),
    "resourceId not JSON": (lambda w: w.manage("GET", f"/3.0/files/{b64('hello')}"), 400, "InvalidArgument"),
    "resourceId not an array": (lambda w: w.manage("GET", f"/3.0/files/{b64('{}')}"), 400, "InvalidArgument"),
    "folder resourceId for a file": (
        lambda w: w.manage("DELETE", f"/3.0/files/{w.folder_rid('/a')}"),
        400,
        "InvalidArgument",
    ),
    "file resourceId for a folder": (
        lambda w: w.manage("POST", f"/3.0/folders/{w.file_rid('/a', 'b')}"),
        400,
        "InvalidArgument",
    ),
    "resourceId dir without /": (
        lambda w: w.manage("POST", f"/3.0/folders/{w.folder_rid('a')}"),
        400,
        "InvalidArgument",
    ),
    "resourceId dir with //": (
        lambda w: w.manage("POST", f"/3.0/folders/{w.folder_rid('/a//b')}"),
        400,
        "InvalidArgument",
    ),
    "resourceId of another namespace": (
        lambda w: w.manage("DELETE", f"/3.0/files/{w.file_rid('/a', 'b', namespace='other')}"),
        401,
        "AuthenticationFailed",
    ),
    "list another namespace": (
        lambda w: w.manage("GET", "/3.0/files", query="namespace=other&dir=/"),
        401,
        "AuthenticationFailed",
    ),
    "pageSize 0": (lambda w: w.manage("GET", "/3.0/files", query="dir=/&pageSize=0"), 400, "InvalidArgument"),
    "pageSize 101": (
        lambda w: w.manage("GET", "/3.0/folders", query="dir=/&pageSize=101"),
        400,
        "InvalidArgument",
    ),
    "currentPage 0": (
        lambda w: w.manage("GET", "/3.0/files", query="dir=/&currentPage=0"),
        400,
        "InvalidArgument",
    ),
    "currentPage not a number": (
        lambda w: w.manage("GET", "/3.0/files", query="dir=/&currentPage=x"),
        400,
        "InvalidArgument",
    ),
    "list dir without /": (
        lambda w: w.manage("GET", "/3.0/files", query="dir=photos"),
        400,
        "InvalidArgument",
    ),
    "unknown API": (lambda w: w.manage("GET", "/3.0/nothing"), 404, "ResourceNotFound"),
    "delete the root folder": (
        lambda w: w.manage("DELETE", f"/3.0/folders/{w.folder_rid('/')}"),
        400,
        "InvalidArgument",
    ),
}


@pytest.mark.parametrize("case", list(MANAGE_CASES), ids=list(MANAGE_CASES))
def test_malformed_management(
    wantu: WantuClient, admin: Gateway, bucket: BucketCredentials, case: str
) -> None:
    send, status, code = MANAGE_CASES[case]
    _assert_error(send(wantu), status, code)
    _nothing_visible(admin, bucket)

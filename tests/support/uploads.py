"""One upload per dialect over a caller's ``httpx.Client`` (so keep-alive is under the test's control),
and a check that an error answer is in that dialect's own shape. Requests are built by the tests'
own clients (tests/protocols/*/), never by mediagate's code."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import httpx

from mediagate.core.buckets import BucketCredentials
from tests.protocols.imagex.conftest import signed as imagex_signed
from tests.protocols.upyun import forms
from tests.protocols.upyun.rest_client import object_uri, signed
from tests.protocols.wantu.client import multipart as wantu_multipart
from tests.protocols.wantu.client import upload_token

Upload = Callable[[httpx.Client, BucketCredentials, bytes], httpx.Response]


def upyun_rest(client: httpx.Client, creds: BucketCredentials, data: bytes) -> httpx.Response:
    return signed(client, creds, "PUT", object_uri(creds.bucket, "/outage/rest.bin"), content=data)


def upyun_form(client: httpx.Client, creds: BucketCredentials, data: bytes) -> httpx.Response:
    policy = forms.policy_of(creds, "/outage/form.bin")
    body, ctype = forms.multipart(
        [("policy", policy), ("signature", forms.signature(creds, policy)), ("file", ("f.bin", data))]
    )
    return client.post(f"/{creds.bucket}", content=body, headers={"Content-Type": ctype})


def wantu(client: httpx.Client, creds: BucketCredentials, data: bytes) -> httpx.Response:
    import time

    policy = {"namespace": creds.bucket, "expiration": int(time.time() * 1000) + 3600_000}
    token = upload_token(creds.access_key_id, creds.secret_access_key, policy)
    body, ctype = wantu_multipart([("dir", "/outage"), ("name", "wantu.bin")], data)
    headers = {"Content-Type": ctype, "Authorization": f"UPLOAD_AK_TOP {token}"}
    return client.put("/api/proxy/upload", content=body, headers=headers)


def imagex_apply(server: Any, creds: BucketCredentials) -> httpx.Response:
    params = {"Action": "ApplyImageUpload", "Version": "2018-08-01", "ServiceId": creds.bucket}
    return imagex_signed(server, "GET", params, ak=creds.access_key_id, sk=creds.secret_access_key)


def imagex(server: Any) -> Upload:
    """ApplyImageUpload (its own connection), then the PUT to the upload host on ``client``."""

    def upload(client: httpx.Client, creds: BucketCredentials, data: bytes) -> httpx.Response:
        applied = imagex_apply(server, creds)
        if applied.status_code != 200:
            return applied
        [info] = applied.json()["Result"]["UploadAddress"]["StoreInfos"]
        headers = {"Authorization": info["Auth"], "Content-CRC32": f"{zlib.crc32(data):08x}"}
        return client.put(f"/{info['StoreUri']}", content=data, headers=headers)

    return upload


# -- error shapes ------------------------------------------------------------------------------------


def assert_upyun_rest_error(resp: httpx.Response, status: int) -> dict[str, Any]:
    body: dict[str, Any] = resp.json()
    assert resp.status_code == status, resp.text
    assert set(body) == {"msg", "code", "id"}, body
    assert body["code"] // 100000 == status and body["msg"], body
    assert body["id"] == resp.headers["x-request-id"]
    return body


def assert_upyun_form_error(resp: httpx.Response, status: int) -> dict[str, Any]:
    body: dict[str, Any] = resp.json()
    assert resp.status_code == status, resp.text
    assert body["code"] == status and body["message"] and body["url"] == "" and body["time"] > 0, body
    return body


def assert_wantu_error(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    body: dict[str, Any] = resp.json()
    assert resp.status_code == status, resp.text
    assert body["code"] == code and body["message"] and body["requestId"] == resp.headers["x-request-id"]
    assert resp.headers["code"] == code
    return body


def assert_imagex_upload_error(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    body: dict[str, Any] = resp.json()
    assert resp.status_code == status, resp.text
    assert body["success"] != 0 and body["error"]["code"] == status, body
    error = body["ResponseMetadata"]["Error"]
    assert error["Code"] == code and error["Message"], body
    assert body["ResponseMetadata"]["RequestId"] == resp.headers["x-request-id"]
    return body


def assert_imagex_action_error(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    body: dict[str, Any] = resp.json()
    assert resp.status_code == status, resp.text
    error = body["ResponseMetadata"]["Error"]
    assert error["Code"] == code and error["Message"], body
    assert body["ResponseMetadata"]["RequestId"] == resp.headers["x-request-id"]
    return body

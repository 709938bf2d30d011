"""User metadata limits (``mediagate.core.usermeta``): whatever a dialect writes, the object stays
readable by the official SDKs, whose HTTP stacks refuse more than 100 response headers
(Python's http.client) or a response head over 16 KiB (Node)."""

from __future__ import annotations

import base64
import http.client
import json
import time

import httpx
import pytest
import upyun

from mediagate.core.buckets import BucketCredentials
from mediagate.core.errors import BadRequest
from mediagate.core.gateway import Gateway
from mediagate.core.usermeta import MAX_BYTES, MAX_ENTRIES, check_user_meta
from tests.conftest import LiveServer
from tests.protocols.native import api
from tests.protocols.upyun import forms
from tests.protocols.upyun.rest_client import object_uri, sign
from tests.support import uploads


def test_limits_count_entries_and_header_bytes() -> None:
    check_user_meta({f"k{i}": "v" for i in range(MAX_ENTRIES)})
    with pytest.raises(BadRequest) as many:
        check_user_meta({f"k{i}": "v" for i in range(MAX_ENTRIES + 1)})
    assert many.value.code == "metadata_too_large"
    with pytest.raises(BadRequest) as big:
        check_user_meta({"k": "v" * MAX_BYTES})
    assert big.value.code == "metadata_too_large"


def meta_headers(count: int, value: str = "v") -> dict[str, str]:
    return {f"x-upyun-meta-m{i}": value for i in range(count)}


def test_a_put_with_85_metadata_headers_is_refused_and_the_limit_is_readable_by_the_sdk(
    server: LiveServer, admin: Gateway, bucket: BucketCredentials
) -> None:
    """Defect: 85 ``x-upyun-meta-*`` headers were stored, and every HEAD/GET of the file then
    failed in the official Python SDK (``http.client``: got more than 100 headers)."""
    with httpx.Client(base_url=server.url, timeout=30) as c:
        uri = object_uri(bucket.bucket, "many.txt")
        refused = c.put(uri, content=b"x", headers={**meta_headers(85), **sign(bucket, "PUT", uri)})
        body = uploads.assert_upyun_rest_error(refused, 400)
        assert body["code"] == 40000013 and "metadata" in body["msg"], body
        assert c.head(uri, headers=sign(bucket, "HEAD", uri)).status_code == 404
        # a multi-part upload is refused at its start, not after its parts
        init = {"X-Upyun-Multi-Stage": "initiate", "X-Upyun-Multi-Length": "4", **meta_headers(85)}
        started = c.put(uri, headers={**init, **sign(bucket, "PUT", uri)})
        assert uploads.assert_upyun_rest_error(started, 400)["code"] == 40000013
        # and the most a file may hold is read back whole by the SDK and by http.client
        fullest = {**meta_headers(MAX_ENTRIES - 1, "v" * 100), "x-upyun-meta-big": "w" * 1000}
        stored = c.put(uri, content=b"x", headers={**fullest, **sign(bucket, "PUT", uri)})
        assert stored.status_code == 200, stored.text
    info = upyun.UpYun(bucket.bucket, bucket.operator, bucket.password, endpoint=server.endpoint).getinfo(
        "/many.txt"
    )
    assert info["meta-big"] == "w" * 1000 and info["meta-m0"] == "v" * 100
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    uri = object_uri(bucket.bucket, "many.txt")
    conn.request("GET", uri, headers=sign(bucket, "GET", uri))
    got = conn.getresponse()
    assert got.status == 200 and got.read() == b"x"
    assert sum(1 for name, _ in got.getheaders() if name.lower().startswith("x-upyun-meta-")) == MAX_ENTRIES
    conn.close()


def test_merges_and_v1_edits_cannot_pass_the_limit(
    server: LiveServer, admin: Gateway, bucket: BucketCredentials
) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        uri = object_uri(bucket.bucket, "merged.txt")
        assert c.put(uri, content=b"x", headers=sign(bucket, "PUT", uri)).status_code == 200
        target = uri + "?metadata=merge"
        for batch in range(2):
            names = {f"x-upyun-meta-b{batch}-{i}": "v" for i in range(30)}
            answer = c.patch(target, headers={**names, **sign(bucket, "PATCH", target)})
            if batch == 0:
                assert answer.status_code == 200, answer.text
            else:
                assert uploads.assert_upyun_rest_error(answer, 400)["code"] == 40000013
        head = c.head(uri, headers=sign(bucket, "HEAD", uri))
        assert sum(1 for k in head.headers if k.startswith("x-upyun-meta-")) == 30
    with api.client(server.url, api.new_key(admin, bucket.bucket, "write")) as v1:
        many = {f"k{i}": "v" for i in range(MAX_ENTRIES + 1)}
        edited = v1.patch(f"/v1/buckets/{bucket.bucket}/objects/merged.txt", json={"meta": many})
        assert api.error_of(edited) == (400, "metadata_too_large")


def test_a_form_policy_with_too_much_metadata_is_refused_before_the_file(
    server: LiveServer, admin: Gateway, bucket: BucketCredentials
) -> None:
    doc = {
        "bucket": bucket.bucket,
        "expiration": int(time.time()) + 600,
        "save-key": "/form.txt",
        **{f"x-upyun-meta-f{i}": "v" for i in range(85)},
    }
    policy = base64.b64encode(json.dumps(doc).encode()).decode()
    with httpx.Client(base_url=server.url, timeout=30) as c:
        resp = forms.post(
            c,
            bucket.bucket,
            [("policy", policy), ("signature", forms.signature(bucket, policy)), ("file", ("f.txt", b"x"))],
        )
    assert "metadata" in uploads.assert_upyun_form_error(resp, 400)["message"]
    assert forms.keys_in(admin, bucket.bucket) == []

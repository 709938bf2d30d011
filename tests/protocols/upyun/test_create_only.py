"""REST ``PUT`` with ``If-None-Match: *`` stores only when the key is free (RFC 9110 §13.1.2): the
atomic form of ``mediagate upload``'s no-overwrite default, where a HEAD first would race."""

from __future__ import annotations

import hashlib

import httpx

from mediagate.client import UpyunClient
from mediagate.core.buckets import BucketCredentials
from tests.conftest import LiveServer


def put(up: UpyunClient, key: str, body: bytes, **headers: str) -> httpx.Response:
    from email.utils import formatdate

    uri, date = f"/{up.bucket}/{key}", formatdate(usegmt=True)
    md5 = hashlib.md5(body).hexdigest()
    signed = {"Date": date, "Authorization": up.sign("PUT", uri, date, md5), "Content-MD5": md5}
    return httpx.put(f"{up.endpoint}{uri}", content=body, headers={**signed, **headers})


def test_if_none_match_star_refuses_a_taken_key(server: LiveServer, bucket: BucketCredentials) -> None:
    up = UpyunClient(server.url, bucket.bucket, bucket.operator, bucket.password)
    assert put(up, "a.txt", b"first", **{"If-None-Match": "*"}).status_code == 200
    refused = put(up, "a.txt", b"second", **{"If-None-Match": "*"})
    assert refused.status_code == 409
    body = refused.json()
    assert body["code"] == 40900002 and "already exists" in body["msg"] and body["id"]
    assert httpx.get(f"{server.url}/{bucket.bucket}/a.txt").content == b"first"
    assert put(up, "a.txt", b"second").status_code == 200  # without the header: the SDK's replace
    assert httpx.get(f"{server.url}/{bucket.bucket}/a.txt").content == b"second"

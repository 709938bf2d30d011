"""Upload tokens minted for temporary credentials never outlive them: an ``Auth`` or ``SessionKey``
from ``ApplyImageUpload`` signed with an STS2 key expires when that key does, not an hour later."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any

import httpx
from volcengine.Policy import ComplexEncoder, InnerToken
from volcengine.util.Util import Util

from mediagate.core.buckets import BucketCredentials
from mediagate.core.gateway import Gateway
from tests.conftest import LiveServer
from tests.protocols.imagex.conftest import png, signed
from tests.protocols.imagex.test_hostile import V, commit, error_of, put


def short_sts2(lt_ak: str, lt_sk: str, seconds: int) -> tuple[str, str, str, int]:
    """STS2 credentials valid for ``seconds``, built with the volcengine SDK's own primitives the
    way ``Service.sign_sts2`` does (which will not go below 60 s): (ak, sk, session token, expiry)."""
    key = hashlib.md5(lt_sk.encode()).digest()
    inner = InnerToken()
    inner.lt_access_key_id = lt_ak
    inner.access_key_id = Util.generate_access_key_id("AKTP")
    secret = Util.generate_secret_key()
    inner.policy_string = ""
    inner.signed_secret_access_key = Util.aes_encrypt_cbc_with_base64(secret, key)
    inner.expired_time = int(time.time()) + seconds
    sign_str = (
        f"{inner.lt_access_key_id}|{inner.access_key_id}|{inner.expired_time}|"
        f"{inner.signed_secret_access_key}|{inner.policy_string}"
    )
    inner.signature = Util.to_hex(Util.hmac_sha256(key, sign_str))
    doc = json.dumps(inner, cls=ComplexEncoder, sort_keys=True).replace(" ", "")
    token = "STS2" + base64.b64encode(doc.encode()).decode()
    return inner.access_key_id, secret, token, inner.expired_time


def seal_payload(sealed: str) -> dict[str, Any]:
    """The payload of one of our sealed tokens (signed, not secret)."""
    body = sealed.split(".")[0]
    payload: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return payload


def expiry_of(sealed: str) -> int:
    """The ``e`` of one of our sealed tokens."""
    return int(seal_payload(sealed)["e"])


def apply_with(server: LiveServer, bucket: BucketCredentials, **creds: Any) -> dict[str, Any]:
    params = {"Action": "ApplyImageUpload", "Version": V, "ServiceId": bucket.bucket, "UploadNum": 2}
    resp = signed(server, "GET", params, **creds)
    assert resp.status_code == 200, resp.text
    addr: dict[str, Any] = resp.json()["Result"]["UploadAddress"]
    return addr


def test_upload_tokens_expire_with_the_sts_that_applied(
    server: LiveServer, bucket: BucketCredentials
) -> None:
    ak, sk, token, sts_expires = short_sts2(bucket.access_key_id, bucket.secret_access_key, seconds=2)
    addr = apply_with(server, bucket, ak=ak, sk=sk, token=token)
    first, second = addr["StoreInfos"]
    assert {expiry_of(first["Auth"]), expiry_of(second["Auth"]), expiry_of(addr["SessionKey"])} == {
        sts_expires
    }
    data = png(4, 4)
    assert put(server, first, data).status_code == 200  # good while the STS is
    time.sleep(max(0.0, sts_expires - time.time()) + 0.2)
    error_of(put(server, second, data), 403, "ExpiredUploadAuth")
    # the SessionKey too: not even the bucket's long-term key can commit it any more
    error_of(commit(server, bucket, addr["SessionKey"]), 403, "InvalidSessionKey")
    sid, name = first["StoreUri"].removeprefix("tos-cn-i-").split("/", 1)
    assert httpx.get(f"{server.url}/{sid}/{name}").status_code == 404  # nothing was published


def test_a_long_term_keys_upload_tokens_last_the_full_hour(
    server: LiveServer, bucket: BucketCredentials
) -> None:
    before = int(time.time())
    addr = apply_with(server, bucket, ak=bucket.access_key_id, sk=bucket.secret_access_key)
    for sealed in [i["Auth"] for i in addr["StoreInfos"]] + [addr["SessionKey"]]:
        assert before + 3600 <= expiry_of(sealed) <= int(time.time()) + 3600


def test_an_apply_never_committed_is_collected_when_its_tokens_expire(
    server: LiveServer, bucket: BucketCredentials, admin: Gateway
) -> None:
    """Its sessions (and the bytes already uploaded to them) are dead once the Auth and SessionKey
    expire: the collector ends them then, not after ``session_max_age_seconds`` (a week), or a
    client that applies and never commits piles them up for a week under sustained load."""
    ak, sk, token, sts_expires = short_sts2(bucket.access_key_id, bucket.secret_access_key, seconds=2)
    addr = apply_with(server, bucket, ak=ak, sk=sk, token=token)
    first, _ = addr["StoreInfos"]
    assert put(server, first, png(4, 4)).status_code == 200
    sessions = seal_payload(addr["SessionKey"])["s"]
    assert all(admin.catalog.get_session(s) is not None for s in sessions)
    admin.collect_garbage()
    assert all(admin.catalog.get_session(s) is not None for s in sessions)  # alive until the expiry
    time.sleep(max(0.0, sts_expires - time.time()) + 0.2)
    admin.collect_garbage()
    assert [s for s in sessions if admin.catalog.get_session(s) is not None] == []

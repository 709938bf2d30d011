"""The Wantu explainers through the registry, in-process on the live server's home."""

from __future__ import annotations

import asyncio
import json
import time
from email.utils import formatdate

from mediagate.core.buckets import BucketCredentials
from mediagate.core.gateway import Gateway
from mediagate.explain import ExplainContext, Explanation, explain
from tests.protocols.wantu.client import b64, hmac_sha1, upload_token


def run(gw: Gateway, creds: BucketCredentials, token: str, **context: str) -> Explanation:
    async def go() -> Explanation:
        bucket = await gw.find_bucket(creds.bucket)
        return await explain(
            token, ExplainContext(gateway=gw, bucket_name=creds.bucket, bucket=bucket, **context)
        )

    return asyncio.run(go())


def test_valid_upload_token(admin: Gateway, bucket: BucketCredentials) -> None:
    policy = {"namespace": bucket.bucket, "expiration": int(time.time() * 1000) + 600_000, "sizeLimit": 1024}
    result = run(
        admin, bucket, "UPLOAD_AK_TOP " + upload_token(bucket.access_key_id, bucket.secret_access_key, policy)
    )
    assert result.dialect == "Wantu upload token" and result.accepted, result.findings
    assert result.decoded["policy"] == policy
    assert any("1024 bytes" in line for line in result.allows)
    assert bucket.secret_access_key not in json.dumps(result.as_dict())


def test_bad_upload_tokens_are_explained(admin: Gateway, bucket: BucketCredentials) -> None:
    expired = {"namespace": bucket.bucket, "expiration": int(time.time()) - 60}
    result = run(admin, bucket, "UPLOAD_AK_TOP " + upload_token(bucket.access_key_id, "wrong", expired))
    errors = {f.topic for f in result.findings if f.severity == "error"}
    assert errors == {"signature", "expiration"}
    forever = run(
        admin, bucket, upload_token(bucket.access_key_id, bucket.secret_access_key, {"expiration": -1})
    )
    assert forever.accepted and {f.topic for f in forever.findings if f.severity == "warning"} == {
        "expiration"
    }


def test_manage_token(admin: Gateway, bucket: BucketCredentials) -> None:
    date = formatdate(usegmt=True)
    uri = "/3.0/files?dir=/"
    token = "ACL_TOP " + b64(
        f"{bucket.access_key_id}:{hmac_sha1(bucket.secret_access_key, f'{uri}' + chr(10) * 2 + date)}"
    )
    good = run(admin, bucket, token, uri=uri, date=date)
    assert good.dialect == "Wantu manage token" and good.accepted, good.findings
    stale = run(admin, bucket, token, uri=uri, date=formatdate(time.time() - 3600, usegmt=True))
    assert {f.topic for f in stale.findings if f.severity == "error"} == {"signature", "date"}
    unknown = run(admin, bucket, "ACL_TOP " + b64("NOPE:" + "0" * 40), uri=uri, date=date)
    assert not unknown.accepted

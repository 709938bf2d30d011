"""``mediagate policy explain`` recognises the volcengine SDK's ``get_upload_auth_token`` tokens
(and single presigned URLs) and checks them with the server's own code."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from volcengine.imagex.ImageXService import ImageXService

from mediagate.core.buckets import BucketCredentials, create_bucket
from mediagate.core.gateway import Gateway
from mediagate.explain import ExplainContext, Explanation, explain
from mediagate.services import build_gateway
from mediagate.signing import sigv4
from tests.conftest import make_home


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gateway = build_gateway(make_home(tmp_path_factory.mktemp("home")))
    yield gateway
    gateway.catalog.close()


@pytest.fixture(scope="module")
def creds(gw: Gateway) -> BucketCredentials:
    return create_bucket(gw.catalog, gw.secrets, "explained")


def run(gw: Gateway, token: str) -> Explanation:
    async def go() -> Explanation:
        bucket = await gw.find_bucket("explained")
        return await explain(token, ExplainContext(gateway=gw, bucket_name="explained", bucket=bucket))

    return asyncio.run(go())


def sdk_token(creds: BucketCredentials, **params: str) -> str:
    svc = ImageXService()
    svc.set_ak(creds.access_key_id)
    svc.set_sk(creds.secret_access_key)
    svc.set_session_token("")
    token: str = svc.get_upload_auth_token({"ServiceId": creds.bucket, **params})
    return token


def test_a_fresh_sdk_token_is_accepted(gw: Gateway, creds: BucketCredentials) -> None:
    result = run(gw, sdk_token(creds, **{"X-Expires": "600"}))
    assert result.dialect.startswith("ImageX upload token")
    assert result.accepted, result.findings
    assert result.allows == [
        "ApplyImageUpload on ServiceId explained",
        "CommitImageUpload on ServiceId explained",
    ]
    assert creds.secret_access_key not in json.dumps(result.decoded)


def test_a_tampered_or_stale_token_is_explained(gw: Gateway, creds: BucketCredentials) -> None:
    doc = json.loads(base64.b64decode(sdk_token(creds)))
    doc["ApplyUploadToken"] = doc["ApplyUploadToken"].replace("ServiceId=explained", "ServiceId=other")
    tampered = run(gw, base64.b64encode(json.dumps(doc).encode()).decode())
    assert not tampered.accepted
    assert any("does not verify" in f.message for f in tampered.findings if f.topic == "ApplyUploadToken")
    old = sigv4.presign(
        access_key_id=creds.access_key_id,
        secret=creds.secret_access_key,
        method="GET",
        query=[("Action", "ApplyImageUpload"), ("Version", "2018-08-01"), ("ServiceId", "explained")],
        now=datetime.now(UTC) - timedelta(hours=1),
    )
    stale = run(gw, "https://imagex.volcengineapi.com/?" + urlencode(old))
    assert [f.message for f in stale.findings if f.severity == "error"] == [
        "ApplyImageUpload expired 45 min ago (it was valid 15 min)"
    ]

"""The explainer registry, in-process on a real home (no server needed)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator

import pytest

from mediagate.config import Settings
from mediagate.core.buckets import BucketCredentials, create_bucket
from mediagate.core.gateway import Gateway
from mediagate.explain import EXPLAINERS, ExplainContext, Explanation, ago, explain, explainers
from mediagate.services import build_gateway
from tests.conftest import make_home


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    settings: Settings = make_home(tmp_path_factory.mktemp("home"))
    gateway = build_gateway(settings)
    yield gateway
    gateway.catalog.close()


@pytest.fixture(scope="module")
def creds(gw: Gateway) -> BucketCredentials:
    return create_bucket(gw.catalog, gw.secrets, "explained")


def run(gw: Gateway, token: str, **context: str) -> Explanation:
    async def go() -> Explanation:
        bucket = await gw.find_bucket("explained")
        return await explain(
            token, ExplainContext(gateway=gw, bucket_name="explained", bucket=bucket, **context)
        )

    return asyncio.run(go())


def test_every_registered_explainer_resolves() -> None:
    assert len(explainers()) == len(EXPLAINERS)
    assert all(callable(e) for e in explainers())


@pytest.mark.parametrize(
    "token",
    [
        "",
        "!!!",
        base64.b64encode(b"not json").decode(),
        base64.b64encode(b"[1, 2]").decode(),
        "UPLOAD_AK_TOP dGVzdGFrOmV5SnVZVzFsYzNCaFkyVWlPaUprWlcxdklpd2laWGh3YVhKaGRHbHZiaUk2TVRRMU1UUTVNVEl3",
    ],
)
def test_tokens_no_dialect_knows_are_unknown_not_a_crash(
    gw: Gateway, creds: BucketCredentials, token: str
) -> None:
    result = run(gw, token)
    assert result.dialect == "unknown"
    assert not result.accepted


def test_a_valid_policy_is_accepted_and_secrets_stay_out(gw: Gateway, creds: BucketCredentials) -> None:
    doc = {"bucket": "explained", "save-key": "/a/{random32}{.suffix}", "expiration": int(time.time()) + 600}
    policy = base64.b64encode(json.dumps(doc).encode()).decode()
    signature = hashlib.md5(f"{policy}&{creds.form_api_secret}".encode()).hexdigest()
    result = run(gw, policy, signature=signature)
    assert result.accepted, result.findings
    assert result.decoded == doc
    dumped = json.dumps(result.as_dict())
    assert creds.form_api_secret not in dumped
    assert creds.password not in dumped


def test_long_lived_policy_is_accepted_with_a_warning(gw: Gateway, creds: BucketCredentials) -> None:
    doc = {"bucket": "explained", "save-key": "/a.jpg", "expiration": int(time.time()) + 365 * 86400}
    policy = base64.b64encode(json.dumps(doc).encode()).decode()
    signature = hashlib.md5(f"{policy}&{creds.form_api_secret}".encode()).hexdigest()
    result = run(gw, policy, signature=signature)
    assert result.accepted
    severities = {f.topic: f.severity for f in result.findings}
    assert severities["expiration"] == "warning"
    assert severities["save-key"] == "info"  # a fixed key: every upload replaces it


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (40, "40 s"),
        (-40, "40 s"),
        (25 * 60, "25 min"),
        (3 * 3600, "3 h"),
        (5 * 86400, "5 days"),
        (3 * 366 * 86400, "3 years"),
        pytest.param(10**400, "more than 1000 years", id="1e400"),
    ],
)
def test_ago(seconds: float, text: str) -> None:
    assert ago(seconds) == text


@pytest.mark.parametrize("expiration", [10**17, pytest.param(10**400, id="1e400")])
def test_wantu_token_expiring_past_the_calendar(
    gw: Gateway, creds: BucketCredentials, expiration: int
) -> None:
    """A Wantu upload token valid past the year 9999 is explained, not a crash."""

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    encoded = b64(json.dumps({"namespace": "explained", "expiration": expiration}).encode())
    sign = hmac.new(creds.secret_access_key.encode(), encoded.encode(), hashlib.sha1).hexdigest()
    token = "UPLOAD_AK_TOP " + b64(f"{creds.access_key_id}:{encoded}:{sign}".encode())
    result = run(gw, token)
    assert result.accepted, result.findings
    [finding] = [f for f in result.findings if f.topic == "expiration"]
    assert "after the year 9999" in finding.message


@pytest.mark.parametrize("date", ["9999999999999999", "-99999999999999999", "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_wantu_manage_token_with_a_date_no_calendar_holds(
    gw: Gateway, creds: BucketCredentials, date: str
) -> None:
    token = "ACL_TOP " + base64.urlsafe_b64encode(f"{creds.access_key_id}:c2lnbmF0dXJl".encode()).decode()
    result = run(gw, token, uri="/3.0/files", date=date)
    assert result.dialect == "Wantu manage token"
    assert not result.accepted
    [finding] = [f for f in result.findings if f.topic == "date"]
    assert finding.severity == "error", finding

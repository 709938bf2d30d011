"""UPYUN signatures: the seed's vectors (spec §6) and the self-made REST vector, exact outputs."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from mediagate.core.errors import Unauthorized
from mediagate.protocols.upyun import signing
from mediagate.protocols.upyun.policy import decode_policy

V1_POLICY = "eyJidWNrZXQiOiJkZW1vYnVja2V0IiwiZXhwaXJhdGlvbiI6MTQwOTIwMDc1OCwic2F2ZS1rZXkiOiIvaW1nLmpwZyJ9"
V5_POLICY = (
    "eyJjb250ZW50LWxlbmd0aCI6IDEwLCAiYnVja2V0IjogImJ1Y2tldDEiLCAiZXhwaXJhdGlvbiI6IDE1MDkyMDA3NTgsICJzYXZlLWtl"
    "eSI6ICIvaW1nMS50eHQifQ=="
)
SEED_URL = "/2015/06/17/190623/upload_QQ图片201506011111206f7c696f0920f097d7eefd750334003e.png"
SEED_URL_SPACED = "/2015/06/17/190623/upload_QQ 图片 201506011111206f7c696f0920f097d7eefd750334003e.png"


def test_v1_policy_decodes_to_the_seed_document() -> None:
    policy = decode_policy(V1_POLICY)
    assert policy.doc == {"bucket": "demobucket", "expiration": 1409200758, "save-key": "/img.jpg"}
    assert policy.raw == V1_POLICY


def test_v5_large_file_policy_decodes() -> None:
    assert decode_policy(V5_POLICY).doc == {
        "content-length": 10,
        "bucket": "bucket1",
        "expiration": 1509200758,
        "save-key": "/img1.txt",
    }


@pytest.mark.parametrize(
    "variant",
    [
        V1_POLICY.rstrip("="),
        V1_POLICY.replace("+", "-").replace("/", "_"),
        V5_POLICY.rstrip("="),
        f"  {V1_POLICY}\n",
    ],
)
def test_policy_accepts_url_safe_and_unpadded_base64(variant: str) -> None:
    assert isinstance(decode_policy(variant).doc, dict)


def test_v2_old_form_signature() -> None:
    assert (
        signing.old_form_signature(V1_POLICY, "cAnyet74l9hdUag34h2dZu8z7gU=")
        == "646a6a629c344ce0e6a10cadd49756d4"
    )


def test_v3_callback_sign() -> None:
    sign = signing.callback_sign(200, "ok", SEED_URL, 1434539183, "lGetaXubhGezKp89+6iuOb5IaS3=")
    assert sign == "086c46cfedfc22bfa2e4971a77530a76"


def test_v4_no_sign_has_no_trailing_ampersand() -> None:
    assert (
        signing.callback_sign(200, "ok", SEED_URL_SPACED, 1434539183, "")
        == "bbaeeb9d05623fe1b380f756a291011a"
    )


def test_callback_sign_appends_ext_param_after_the_secret() -> None:
    expected = hashlib.md5(b"200&ok&/a.png&1434539183&secret&client_42").hexdigest()
    assert signing.callback_sign(200, "ok", "/a.png", 1434539183, "secret", "client_42") == expected


def test_rest_vector() -> None:
    password_md5 = hashlib.md5(b"pw").hexdigest()
    message = signing.string_to_sign("PUT", "/demo/a.txt", "Wed, 29 Oct 2014 02:26:58 GMT")
    assert message == "PUT&/demo/a.txt&Wed, 29 Oct 2014 02:26:58 GMT"
    assert signing.authorization("op", password_md5, message) == "UPYUN op:Sx6Xvn30iKfA0gJpRBIl8oUuoao="


def test_form_string_to_sign_orders_policy_then_md5_and_skips_empty_parts() -> None:
    s = signing.string_to_sign("post", "/demo/", "D", "P", "M")
    assert s == "POST&/demo/&D&P&M"
    assert signing.string_to_sign("POST", "/demo", "D", "P", "") == "POST&/demo&D&P"


def test_signature_matches_any_candidate_only() -> None:
    key = hashlib.md5(b"pw").hexdigest()
    good = signing.hmac_signature(key, "b")
    assert signing.signature_matches(key, good, ["a", "b", "c"])
    assert not signing.signature_matches(key, good, ["a", "c"])
    assert not signing.signature_matches(hashlib.md5(b"other").hexdigest(), good, ["b"])


def test_the_sdk_form_signature_is_recognised() -> None:
    """The upyun SDK's own signer (used by ``put(form=True)``) against ours."""
    from upyun.modules.sign import make_policy, make_signature

    password_md5 = hashlib.md5(b"secret-pw").hexdigest()
    policy = make_policy({"service": "demo", "expiration": 1, "save-key": "/x", "date": "D"}).decode()
    header = make_signature(
        username="op", password=password_md5, method="POST", uri="/demo/", date="D", policy=policy
    )
    operator, sig = signing.parse_authorization(header)
    assert operator == "op"
    assert signing.signature_matches(
        password_md5, sig, [signing.string_to_sign("POST", "/demo/", "D", policy)]
    )
    assert decode_policy(policy).doc == {"service": "demo", "expiration": 1, "save-key": "/x", "date": "D"}


@pytest.mark.parametrize("header", ["", "UPYUN", "UPYUN op", "Basic op:sig", "UPYUN :sig", "UPYUN op:"])
def test_malformed_authorization_is_refused(header: str) -> None:
    with pytest.raises(Unauthorized):
        signing.parse_authorization(header)


def test_date_format_and_skew() -> None:
    moment = datetime(2014, 10, 29, 2, 26, 58, tzinfo=UTC)
    assert signing.format_http_date(moment) == "Wed, 29 Oct 2014 02:26:58 GMT"
    assert signing.check_date("Wed, 29 Oct 2014 02:26:58 GMT", skew_seconds=60, now=moment) == moment
    with pytest.raises(Unauthorized):
        signing.check_date(
            signing.format_http_date(moment), skew_seconds=60, now=moment + timedelta(minutes=2)
        )
    with pytest.raises(Unauthorized):
        signing.check_date("yesterday", skew_seconds=60, now=moment)

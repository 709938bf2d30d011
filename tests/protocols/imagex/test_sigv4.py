"""Signing vectors from specs/imagex.md §3-4 (computed with the SDK's signer and by hand)."""

from __future__ import annotations

from datetime import UTC, datetime

from mediagate.signing import sigv4

NOW = datetime(2024, 1, 1, tzinfo=UTC)


def _sig(headers: dict[str, str]) -> str:
    return headers["Authorization"].rsplit("Signature=", 1)[1]


def test_seed_scheme_get_vector_a1() -> None:
    query = [
        ("Action", "ApplyImageUpload"),
        ("FileSize", "1234"),
        ("ServiceId", "bkt"),
        ("Version", "2018-08-01"),
        ("s", "abcdefghijk"),
    ]
    headers = sigv4.sign(
        sigv4.AWS,
        access_key_id="AKTPtest",
        secret="secretkey",
        method="GET",
        host="x",
        query=query,
        session_token="STSTOKEN",
        now=NOW,
    )
    assert headers["Authorization"].startswith(
        "AWS4-HMAC-SHA256 Credential=AKTPtest/20240101/cn-north-1/imagex/aws4_request, "
        "SignedHeaders=x-amz-date;x-amz-security-token, "
    )
    assert _sig(headers) == "0dad08cbdb389ff0a99a7076d39d13a71cdfee41a90e99cf31d9944bbffb73e0"


def test_seed_scheme_post_vector_a2() -> None:
    query = [("Action", "CommitImageUpload"), ("ServiceId", "bkt"), ("Version", "2018-08-01")]
    headers = sigv4.sign(
        sigv4.AWS,
        access_key_id="AKTPtest",
        secret="secretkey",
        method="POST",
        host="x",
        query=query,
        body=b'{"SessionKey": "sk1"}',
        session_token="STSTOKEN",
        now=NOW,
    )
    assert "SignedHeaders=x-amz-content-sha256;x-amz-date;x-amz-security-token" in headers["Authorization"]
    assert _sig(headers) == "b71b1b9b094b61d6d50e51603433a8ccbe992bd8300d45a6c76f9a2d61c814f2"


def test_sdk_scheme_vectors_b1_b2() -> None:
    apply_q = [
        ("Action", "ApplyImageUpload"),
        ("Version", "2018-08-01"),
        ("ServiceId", "bkt"),
        ("SessionKey", ""),
        ("UploadNum", "1"),
        ("Overwrite", "False"),
    ]
    headers = sigv4.sign(
        sigv4.VOLC,
        access_key_id="AKTPtest",
        secret="secretkey",
        method="GET",
        host="127.0.0.1:8080",
        query=apply_q,
        session_token="STSTOKEN",
        now=NOW,
    )
    assert "SignedHeaders=host;x-content-sha256;x-date;x-security-token" in headers["Authorization"]
    assert _sig(headers) == "41306159ee79acdfaf38f903057d5df3f13b0b5455c6c1b419deef5798a9f2d0"
    commit_q = [
        ("Action", "CommitImageUpload"),
        ("Version", "2018-08-01"),
        ("ServiceId", "bkt"),
        ("SkipMeta", "False"),
    ]
    body = b'{"SessionKey": "sk1", "SuccessOids": ["tos-cn-i-bkt/abc"], "Functions": [], "OptionInfos": []}'
    headers = sigv4.sign(
        sigv4.VOLC,
        access_key_id="AKTPtest",
        secret="secretkey",
        method="POST",
        host="127.0.0.1:8080",
        query=commit_q,
        body=body,
        session_token="STSTOKEN",
        content_type="application/json",
        now=NOW,
    )
    assert headers["X-Content-Sha256"] == "db2aebd567117855bd89ec19f42bf33d132230e175068131b1dfb41bd172178d"
    assert _sig(headers) == "1e8661a59ae5ddfcc382306a008ab6382e49e3e07acd2213fb013e974c2229f0"


def test_verifier_accepts_what_the_signer_produces_and_nothing_else() -> None:
    query = [("Action", "ApplyImageUpload"), ("ServiceId", "b"), ("Version", "2018-08-01")]
    for alg in (sigv4.AWS, sigv4.VOLC):
        headers = sigv4.sign(
            alg, access_key_id="AK", secret="s3", method="GET", host="h:1", query=query, now=NOW
        )
        auth = sigv4.parse_authorization(headers["Authorization"])
        lower = {k.lower(): v for k, v in headers.items()} | {"host": "h:1"}
        args = dict(method="GET", path="/", query=query, headers=lower, body_sha256=sigv4.EMPTY_SHA256)
        assert sigv4.matches(auth, sigv4.expected_signatures(auth, secret="s3", **args))  # type: ignore[arg-type]
        assert not sigv4.matches(auth, sigv4.expected_signatures(auth, secret="s4", **args))  # type: ignore[arg-type]
        tampered = dict(args, query=[*query[:-1], ("Version", "2018-08-02")])
        assert not sigv4.matches(auth, sigv4.expected_signatures(auth, secret="s3", **tampered))  # type: ignore[arg-type]


def test_presign_builds_the_query_the_sdk_signs() -> None:
    """Our ``presign`` (used by hostile tests) agrees byte for byte with ``SignerV4.sign_url``;
    the verifier accepts it and refuses it tampered."""
    from urllib.parse import parse_qsl

    from volcengine.imagex.ImageXService import ImageXService

    svc = ImageXService()
    svc.set_ak("AKLTexample")
    svc.set_sk("secretkey")
    svc.set_session_token("STSTOKEN")
    try:
        sdk_query = parse_qsl(
            svc.get_sign_url("ApplyImageUpload", {"ServiceId": "bkt", "X-Expires": "60"}),
            keep_blank_values=True,
        )
    finally:
        svc.set_session_token("")  # the SDK keeps credentials in module-level state
    date = dict(sdk_query)["X-Date"]
    ours = sigv4.presign(
        access_key_id="AKLTexample",
        secret="secretkey",
        method="GET",
        query=[
            ("Action", "ApplyImageUpload"),
            ("Version", "2018-08-01"),
            ("ServiceId", "bkt"),
            ("X-Expires", "60"),
        ],
        session_token="STSTOKEN",
        now=datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC),
    )
    assert sorted(ours) == sorted(sdk_query)
    p = sigv4.parse_presigned(sdk_query)
    assert p.expires == 60 and not p.sign_body and p.auth.signed_headers == ()
    args = dict(method="GET", path="/", headers={}, body_sha256=sigv4.EMPTY_SHA256)
    good = sigv4.presigned_signature(p, secret="secretkey", query=sdk_query, **args)  # type: ignore[arg-type]
    assert sigv4.matches(p.auth, [good])
    tampered = [(k, "other" if k == "ServiceId" else v) for k, v in sdk_query]
    bad = sigv4.presigned_signature(p, secret="secretkey", query=tampered, **args)  # type: ignore[arg-type]
    assert not sigv4.matches(p.auth, [bad])
    # a parameter the signer did not list is outside the signature (the holder may add it)
    extra = sigv4.presigned_signature(p, secret="secretkey", query=[*sdk_query, ("UploadNum", "2")], **args)  # type: ignore[arg-type]
    assert extra == good

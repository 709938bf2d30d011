"""Malformed and hostile requests get ImageX-shaped 4xx errors, never a 5xx, and leave nothing."""

from __future__ import annotations

import json
import time
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from volcengine.imagex.ImageXService import ImageXService

from mediagate.core.buckets import AKSK, BucketCredentials, create_bucket
from mediagate.core.gateway import Gateway
from mediagate.protocols.imagex.apply import AUTH_PURPOSE
from mediagate.protocols.imagex.tokens import seal, unseal
from mediagate.services import build_gateway
from mediagate.signing import sigv4
from tests.conftest import LiveServer, make_home
from tests.protocols.imagex.conftest import png, signed, web_session

V = "2018-08-01"


def error_of(resp: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    err: dict[str, Any] = resp.json()["ResponseMetadata"]["Error"]
    assert err["Code"] == code, err
    assert err["Message"] and isinstance(err["CodeN"], int)
    return err


def apply(server: LiveServer, b: BucketCredentials, **extra: Any) -> dict[str, Any]:
    params = {"Action": "ApplyImageUpload", "Version": V, "ServiceId": b.bucket, **extra}
    resp = signed(server, "GET", params, ak=b.access_key_id, sk=b.secret_access_key)
    assert resp.status_code == 200, resp.text
    addr: dict[str, Any] = resp.json()["Result"]["UploadAddress"]
    return addr


def commit(server: LiveServer, b: BucketCredentials, session_key: str) -> httpx.Response:
    body = json.dumps({"SessionKey": session_key}).encode()
    params = {"Action": "CommitImageUpload", "Version": V, "ServiceId": b.bucket}
    return signed(server, "POST", params, ak=b.access_key_id, sk=b.secret_access_key, body=body)


def put(
    server: LiveServer, info: dict[str, str], data: bytes, crc: str | None = None, **kw: Any
) -> httpx.Response:
    headers = {
        "Authorization": info["Auth"],
        "Content-CRC32": crc if crc is not None else f"{zlib.crc32(data):08x}",
    }
    return httpx.put(f"{server.url}/{info['StoreUri']}", content=data, headers=headers, **kw)


def apply_params(b: BucketCredentials) -> dict[str, Any]:
    return {"Action": "ApplyImageUpload", "Version": V, "ServiceId": b.bucket}


# -- signatures ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", [sigv4.AWS, sigv4.VOLC])
def test_tampered_signature_and_wrong_secret(
    server: LiveServer, bucket: BucketCredentials, algorithm: str
) -> None:
    params = apply_params(bucket)
    query = [(k, str(v)) for k, v in params.items()]
    headers = sigv4.sign(
        algorithm,
        access_key_id=bucket.access_key_id,
        secret=bucket.secret_access_key,
        method="GET",
        host=server.endpoint,
        query=query,
    )
    headers["Authorization"] = headers["Authorization"][:-4] + "0000"
    error_of(httpx.get(f"{server.url}/", params=query, headers=headers), 403, "SignatureDoesNotMatch")
    wrong = signed(server, "GET", params, ak=bucket.access_key_id, sk="not-the-secret", algorithm=algorithm)
    error_of(wrong, 403, "SignatureDoesNotMatch")
    # a signed query parameter changed after signing
    headers = sigv4.sign(
        algorithm,
        access_key_id=bucket.access_key_id,
        secret=bucket.secret_access_key,
        method="GET",
        host=server.endpoint,
        query=query,
    )
    changed = [*query, ("UploadNum", "3")]
    error_of(httpx.get(f"{server.url}/", params=changed, headers=headers), 403, "SignatureDoesNotMatch")


def test_unknown_key_garbage_header_and_no_header(server: LiveServer, bucket: BucketCredentials) -> None:
    params = apply_params(bucket)
    error_of(signed(server, "GET", params, ak="AKNOBODY", sk="x"), 401, "InvalidAccessKey")
    garbage = httpx.get(f"{server.url}/", params=params, headers={"Authorization": "HMAC-SHA256 nonsense"})
    error_of(garbage, 401, "InvalidAuthorization")
    error_of(httpx.get(f"{server.url}/", params=params), 401, "MissingAuthenticationToken")


def test_clock_skew_is_bounded(server: LiveServer, bucket: BucketCredentials) -> None:
    old = datetime.now(UTC) - timedelta(minutes=40)  # the date_skew_seconds default is 30 minutes
    resp = signed(
        server, "GET", apply_params(bucket), ak=bucket.access_key_id, sk=bucket.secret_access_key, now=old
    )
    error_of(resp, 403, "RequestExpired")
    ok = datetime.now(UTC) - timedelta(minutes=5)
    assert (
        signed(
            server, "GET", apply_params(bucket), ak=bucket.access_key_id, sk=bucket.secret_access_key, now=ok
        ).status_code
        == 200
    )


def test_clock_skew_follows_the_date_skew_setting(tmp_path: Path) -> None:
    """``date_skew_seconds`` bounds ImageX signatures too (it was a hard-coded 15 minutes)."""
    home = make_home(tmp_path / "home")
    gw = build_gateway(home, migrate=False)
    b = create_bucket(gw.catalog, gw.secrets, "skewed")
    gw.catalog.close()
    live = LiveServer(home.home, env={"MEDIAGATE_DATE_SKEW_SECONDS": "60"}).start()
    try:
        keys = {"ak": b.access_key_id, "sk": b.secret_access_key}
        two_minutes = datetime.now(UTC) - timedelta(minutes=2)
        error_of(signed(live, "GET", apply_params(b), now=two_minutes, **keys), 403, "RequestExpired")
        assert signed(live, "GET", apply_params(b), **keys).status_code == 200
        # a presigned URL may be used until it expires, but not before it is dated (less the skew)
        future = datetime.now(UTC) + timedelta(minutes=2)
        query = sigv4.presign(
            access_key_id=b.access_key_id,
            secret=b.secret_access_key,
            method="GET",
            query=[*apply_params(b).items()],
            now=future,
        )
        error_of(httpx.get(f"{live.url}/", params=query), 403, "RequestExpired")
    finally:
        live.stop()


def test_declared_body_hash_must_match(server: LiveServer, bucket: BucketCredentials) -> None:
    params = {"Action": "CommitImageUpload", "Version": V, "ServiceId": bucket.bucket}
    query = [(k, v) for k, v in params.items()]
    body = b'{"SessionKey": "x"}'
    headers = sigv4.sign(
        sigv4.VOLC,
        access_key_id=bucket.access_key_id,
        secret=bucket.secret_access_key,
        method="POST",
        host=server.endpoint,
        query=query,
        body=body,
    )
    resp = httpx.post(f"{server.url}/", params=query, headers=headers, content=b'{"SessionKey": "y"}')
    error_of(resp, 400, "InvalidParameter")


def test_unknown_action_or_version(server: LiveServer, bucket: BucketCredentials) -> None:
    creds = {"ak": bucket.access_key_id, "sk": bucket.secret_access_key}
    error_of(
        signed(server, "GET", {"Action": "DeleteEverything", "Version": V}, **creds),
        404,
        "InvalidActionOrVersion",
    )
    error_of(
        signed(server, "GET", {**apply_params(bucket), "Version": "2099-01-01"}, **creds),
        404,
        "InvalidActionOrVersion",
    )
    error_of(httpx.get(f"{server.url}/", params={"Action": ""}), 404, "InvalidActionOrVersion")
    error_of(httpx.post(f"{server.url}/"), 404, "InvalidActionOrVersion")  # GET / is the landing page


def test_other_service_and_bad_parameters(server: LiveServer, bucket: BucketCredentials) -> None:
    creds = {"ak": bucket.access_key_id, "sk": bucket.secret_access_key}
    error_of(
        signed(server, "GET", {**apply_params(bucket), "ServiceId": "someoneelse"}, **creds),
        403,
        "AccessDenied",
    )
    error_of(
        signed(server, "GET", {**apply_params(bucket), "UploadNum": "0"}, **creds), 400, "InvalidParameter"
    )
    error_of(
        signed(server, "GET", {**apply_params(bucket), "UploadNum": "x"}, **creds), 400, "InvalidParameter"
    )
    error_of(
        signed(server, "GET", {**apply_params(bucket), "FileSize": "-1"}, **creds), 400, "InvalidFileSize"
    )
    error_of(
        signed(server, "GET", {**apply_params(bucket), "StoreKeys": "../x"}, **creds), 400, "InvalidParameter"
    )
    params = {"Action": "CommitImageUpload", "Version": V, "ServiceId": bucket.bucket}
    error_of(signed(server, "POST", params, body=b"[not json", **creds), 400, "InvalidParameter")
    error_of(
        signed(server, "POST", params, body=b'{"SessionKey": "forged.key"}', **creds),
        400,
        "InvalidSessionKey",
    )


# -- temporary credentials ------------------------------------------------------------------------------


def assume_role(server: LiveServer, b: BucketCredentials, **extra: Any) -> dict[str, str]:
    params = {"Action": "AssumeRole", "Version": "2018-01-01", **extra}
    resp = signed(server, "GET", params, ak=b.access_key_id, sk=b.secret_access_key)
    assert resp.status_code == 200, resp.text
    creds: dict[str, str] = resp.json()["Result"]["Credentials"]
    return creds


def test_expired_sts_is_refused(
    server: LiveServer, bucket: BucketCredentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    issuer = ImageXService()
    issuer.set_ak(bucket.access_key_id)
    issuer.set_sk(bucket.secret_access_key)
    with monkeypatch.context() as m:  # the SDK mints with its own clock: wind it back two hours
        m.setattr(time, "time", lambda: datetime.now(UTC).timestamp() - 7200)
        old = issuer.get_upload_auth([bucket.bucket], expire=3600, tag={})
    resp = signed(
        server,
        "GET",
        apply_params(bucket),
        ak=old.access_key_id,
        sk=old.secret_access_key,
        token=old.session_token,
    )
    error_of(resp, 403, "ExpiredSecurityToken")


def test_sts_token_tampering_and_mismatch(server: LiveServer, bucket: BucketCredentials) -> None:
    c = assume_role(server, bucket)
    ok = signed(
        server,
        "GET",
        apply_params(bucket),
        ak=c["AccessKeyId"],
        sk=c["SecretAccessKey"],
        token=c["SessionToken"],
    )
    assert ok.status_code == 200, ok.text
    other = assume_role(server, bucket)
    mixed = signed(
        server,
        "GET",
        apply_params(bucket),
        ak=c["AccessKeyId"],
        sk=c["SecretAccessKey"],
        token=other["SessionToken"],
    )
    error_of(mixed, 401, "InvalidSecurityToken")
    no_token = signed(server, "GET", apply_params(bucket), ak=c["AccessKeyId"], sk=c["SecretAccessKey"])
    error_of(no_token, 401, "InvalidSecurityToken")
    bad = signed(
        server,
        "GET",
        apply_params(bucket),
        ak=c["AccessKeyId"],
        sk=c["SecretAccessKey"],
        token="STS2" + "A" * 40,
    )
    error_of(bad, 401, "InvalidSecurityToken")
    more = signed(
        server,
        "GET",
        {"Action": "AssumeRole", "Version": "2018-01-01"},
        ak=c["AccessKeyId"],
        sk=c["SecretAccessKey"],
        token=c["SessionToken"],
    )
    error_of(more, 403, "AccessDenied")


def test_sts_scope_limits_actions_and_keys(server: LiveServer, bucket: BucketCredentials) -> None:
    c = assume_role(server, bucket, Actions="ApplyImageUpload", KeyPrefix="users/7/")
    creds = {"ak": c["AccessKeyId"], "sk": c["SecretAccessKey"], "token": c["SessionToken"]}
    assert signed(server, "GET", {**apply_params(bucket), "Prefix": "users/7"}, **creds).status_code == 200
    error_of(
        signed(server, "GET", {**apply_params(bucket), "StoreKeys": "users/8/a.png"}, **creds),
        403,
        "AccessDenied",
    )
    params = {"Action": "CommitImageUpload", "Version": V, "ServiceId": bucket.bucket}
    error_of(signed(server, "POST", params, body=b'{"SessionKey": "x"}', **creds), 403, "AccessDenied")


def test_rotating_the_long_term_key_revokes_sts(
    server: LiveServer, admin: Gateway, bucket: BucketCredentials
) -> None:
    c = assume_role(server, bucket)
    [(cred, _)] = [admin.catalog.find_credential(AKSK, bucket.access_key_id)]  # type: ignore[misc]
    admin.catalog.revoke_credential(cred.id)
    resp = signed(
        server,
        "GET",
        apply_params(bucket),
        ak=c["AccessKeyId"],
        sk=c["SecretAccessKey"],
        token=c["SessionToken"],
    )
    error_of(resp, 401, "InvalidSecurityToken")


def test_token_endpoint_refuses_bad_and_revoked_sessions(
    server: LiveServer, admin: Gateway, bucket: BucketCredentials
) -> None:
    url = f"{server.url}/mweb/v1/get_upload_token?aid=513695&da_version=3.3.8"
    for cookie in ({}, {"Cookie": "sessionid=nope"}, {"Cookie": "sessionid=a.b"}, {"Cookie": "garbage;;=="}):
        resp = httpx.post(url, headers=cookie, json={"scene": 2})
        assert resp.status_code == 401, resp.text
        assert resp.json()["ret"] == "1014" and resp.json()["data"] is None
    sessionid = web_session(admin, bucket.bucket)
    got = httpx.post(url, headers={"Cookie": f"sessionid={sessionid}"}, json={"scene": 2})
    assert got.status_code == 200 and got.json()["ret"] == "0"
    data = got.json()["data"]
    assert data["access_key_id"].startswith("AKTP")
    creds = {"ak": data["access_key_id"], "sk": data["secret_access_key"], "token": data["session_token"]}
    assert signed(server, "GET", apply_params(bucket), **creds).status_code == 200
    import asyncio

    from mediagate.protocols.imagex import sts

    assert asyncio.run(sts.revoke_web_session(admin, sessionid))
    again = httpx.post(url, headers={"Cookie": f"sessionid={sessionid}"}, json={"scene": 2})
    assert again.status_code == 401 and again.json()["ret"] == "1014"
    error_of(signed(server, "GET", apply_params(bucket), **creds), 401, "InvalidSecurityToken")


def test_the_session_cookie_is_http_only_and_same_site_strict(
    server: LiveServer, admin: Gateway, bucket: BucketCredentials
) -> None:
    """A page that runs on the gateway's origin must neither read the sessionid nor have another
    site send it: the token endpoint reissues it locked down (no Secure over plain HTTP)."""
    sessionid = web_session(admin, bucket.bucket, ttl=3600)
    got = httpx.post(
        f"{server.url}/mweb/v1/get_upload_token", headers={"Cookie": f"sessionid={sessionid}"}, json={}
    )
    assert got.status_code == 200
    cookie = got.headers["set-cookie"]
    attrs = [a.strip().lower() for a in cookie.split(";")]
    assert attrs[0] == f"sessionid={sessionid}".lower()
    assert "httponly" in attrs and "samesite=strict" in attrs and "path=/" in attrs
    assert "secure" not in attrs
    max_age = next(int(a.split("=")[1]) for a in attrs if a.startswith("max-age="))
    assert 3500 < max_age <= 3600
    assert got.headers["x-content-type-options"] == "nosniff"


# -- the upload host ------------------------------------------------------------------------------------


def test_wrong_crc32_is_refused_and_leaves_nothing(
    server: LiveServer, admin: Gateway, bucket: BucketCredentials
) -> None:
    addr = apply(server, bucket)
    [info] = addr["StoreInfos"]
    data = png(3, 3)
    wrong = "%08x" % (zlib.crc32(data) ^ 1)
    error_of(put(server, info, data, crc=wrong), 400, "InvalidCrc32")
    error_of(put(server, info, data, crc="zz"), 400, "InvalidCrc32")
    seed_style = httpx.post(
        f"{server.url}/upload/v1/{info['StoreUri']}",
        content=data,
        headers={"Authorization": info["Auth"], "Content-Crc32": wrong},
    )
    error_of(seed_style, 400, "InvalidCrc32")
    error_of(commit(server, bucket, addr["SessionKey"]), 400, "InvalidParameter")  # nothing was uploaded
    sid, name = info["StoreUri"].removeprefix("tos-cn-i-").split("/", 1)
    assert httpx.get(f"{server.url}/{sid}/{name}").status_code == 404


def test_auth_is_bound_to_its_store_uri_and_expires(
    server: LiveServer, admin: Gateway, bucket: BucketCredentials
) -> None:
    addr = apply(server, bucket, UploadNum="2")
    first, second = addr["StoreInfos"]
    error_of(
        put(server, {"StoreUri": second["StoreUri"], "Auth": first["Auth"]}, b"x"), 403, "InvalidUploadAuth"
    )
    error_of(put(server, {"StoreUri": first["StoreUri"], "Auth": "forged"}, b"x"), 401, "InvalidUploadAuth")
    error_of(put(server, {"StoreUri": first["StoreUri"], "Auth": ""}, b"x"), 401, "InvalidUploadAuth")
    expired = seal(
        admin.secrets.derive(AUTH_PURPOSE),
        {"b": bucket.bucket, "u": first["StoreUri"], "s": "x", "n": None, "e": int(time.time()) - 1},
    )
    error_of(put(server, {"StoreUri": first["StoreUri"], "Auth": expired}, b"x"), 403, "ExpiredUploadAuth")


def test_file_size_mismatch(server: LiveServer, bucket: BucketCredentials) -> None:
    addr = apply(server, bucket, FileSize="10")
    [info] = addr["StoreInfos"]
    error_of(put(server, info, b"x" * 11), 400, "InvalidFileSize")
    error_of(put(server, info, b"x" * 9), 400, "InvalidFileSize")

    def stream() -> Any:  # no Content-Length: cut off while streaming
        yield b"x" * 8
        yield b"x" * 8

    resp = httpx.put(
        f"{server.url}/{info['StoreUri']}", content=stream(), headers={"Authorization": info["Auth"]}
    )
    error_of(resp, 400, "InvalidFileSize")
    assert put(server, info, b"x" * 10).status_code == 200
    assert commit(server, bucket, addr["SessionKey"]).status_code == 200


def test_replayed_session_key(server: LiveServer, bucket: BucketCredentials) -> None:
    addr = apply(server, bucket)
    [info] = addr["StoreInfos"]
    assert put(server, info, b"payload").status_code == 200
    assert commit(server, bucket, addr["SessionKey"]).status_code == 200
    error_of(commit(server, bucket, addr["SessionKey"]), 409, "SessionKeyCommitted")
    error_of(put(server, info, b"again"), 409, "SessionKeyCommitted")


def test_chunked_protocol_errors(server: LiveServer, bucket: BucketCredentials) -> None:
    addr = apply(server, bucket)
    [info] = addr["StoreInfos"]
    base = f"{server.url}/{info['StoreUri']}"
    auth = {"Authorization": info["Auth"]}
    init = httpx.put(f"{base}?uploads", headers=auth)
    upload_id = init.json()["payload"]["uploadID"]
    error_of(
        httpx.put(f"{base}?partNumber=0&uploadID=other", headers=auth, content=b"a"), 400, "InvalidParameter"
    )
    error_of(
        httpx.put(f"{base}?partNumber=x&uploadID={upload_id}", headers=auth, content=b"a"),
        400,
        "InvalidParameter",
    )
    parts = [b"first part ", b"second part"]
    for n, part in enumerate(parts):
        resp = httpx.put(
            f"{base}?partNumber={n}&uploadID={upload_id}",
            content=part,
            headers={**auth, "Content-CRC32": f"{zlib.crc32(part):08x}"},
        )
        assert resp.json()["success"] == 0
    merge = f"{base}?uploadID={upload_id}"
    error_of(httpx.put(merge, headers=auth, content=b"garbage"), 400, "InvalidParameter")
    error_of(
        httpx.put(merge, headers=auth, content=b"0:%08x" % zlib.crc32(parts[0])), 400, "InvalidParameter"
    )
    bad = b"0:%08x,1:%08x" % (zlib.crc32(parts[0]), zlib.crc32(parts[0]))
    error_of(httpx.put(merge, headers=auth, content=bad), 400, "InvalidCrc32")
    good = b"0:%x,1:%x" % (zlib.crc32(parts[0]), zlib.crc32(parts[1]))
    assert httpx.put(merge, headers=auth, content=good).json()["success"] == 0
    assert commit(server, bucket, addr["SessionKey"]).status_code == 200
    sid, name = info["StoreUri"].removeprefix("tos-cn-i-").split("/", 1)
    assert httpx.get(f"{server.url}/{sid}/{name}").content == b"".join(parts)


# -- presigned URLs ------------------------------------------------------------------------------------


def presigned(b: BucketCredentials, params: dict[str, str], **kw: Any) -> list[tuple[str, str]]:
    return sigv4.presign(
        access_key_id=b.access_key_id,
        secret=b.secret_access_key,
        method=kw.pop("method", "GET"),
        query=list(params.items()),
        **kw,
    )


def test_presigned_url_expires(server: LiveServer, bucket: BucketCredentials) -> None:
    params = {**apply_params(bucket), "X-Expires": "60"}
    fresh = presigned(bucket, params, now=datetime.now(UTC) - timedelta(seconds=30))
    assert httpx.get(f"{server.url}/", params=fresh).status_code == 200
    stale = presigned(bucket, params, now=datetime.now(UTC) - timedelta(seconds=90))
    err = error_of(httpx.get(f"{server.url}/", params=stale), 403, "RequestExpired")
    assert "expired" in err["Message"]
    # without X-Expires a URL lives 900 s, as the SDKs document
    default = presigned(bucket, apply_params(bucket), now=datetime.now(UTC) - timedelta(seconds=1000))
    error_of(httpx.get(f"{server.url}/", params=default), 403, "RequestExpired")
    # the holder cannot lengthen it: an added expiry is outside the signature and refused
    longer = [*stale, ("X-Amz-Expires", "3600")]
    error_of(httpx.get(f"{server.url}/", params=longer), 401, "InvalidAuthorization")


def test_presigned_url_tampering(server: LiveServer, bucket: BucketCredentials) -> None:
    query = presigned(bucket, apply_params(bucket))
    url = f"{server.url}/"
    flipped = [(k, ("0" * 64 if k == "X-Signature" else v)) for k, v in query]
    error_of(httpx.get(url, params=flipped), 403, "SignatureDoesNotMatch")
    wrong = sigv4.presign(
        access_key_id=bucket.access_key_id,
        secret="nope",
        method="GET",
        query=list(apply_params(bucket).items()),
    )
    error_of(httpx.get(url, params=wrong), 403, "SignatureDoesNotMatch")
    # a second value for a signed parameter joins the signed string
    error_of(httpx.get(url, params=[*query, ("ServiceId", "other")]), 403, "SignatureDoesNotMatch")
    # signed for GET, replayed as POST
    error_of(httpx.post(url, params=query), 403, "SignatureDoesNotMatch")
    # authority cannot be added after signing
    error_of(httpx.get(url, params=[*query, ("Overwrite", "True")]), 403, "AccessDenied")
    assert httpx.get(url, params=[*query, ("Overwrite", "False")]).status_code == 200
    missing = [(k, v) for k, v in query if k != "X-SignedQueries"]
    error_of(httpx.get(url, params=missing), 401, "InvalidAuthorization")
    garbage = [(k, ("AK/x" if k == "X-Credential" else v)) for k, v in query]
    error_of(httpx.get(url, params=garbage), 401, "InvalidAuthorization")
    error_of(httpx.get(url, params=[*query, ("X-Signature", "1" * 64)]), 401, "InvalidAuthorization")
    unknown = sigv4.presign(
        access_key_id="AKNOBODY", secret="x", method="GET", query=list(apply_params(bucket).items())
    )
    error_of(httpx.get(url, params=unknown), 401, "InvalidAccessKey")


def test_presigned_url_with_a_signed_host(server: LiveServer, bucket: BucketCredentials) -> None:
    """``X-SignedHeaders=host``: valid only on the Host it was signed for."""
    query = presigned(bucket, apply_params(bucket), host=server.endpoint)
    assert dict(query)["X-SignedHeaders"] == "host"
    assert httpx.get(f"{server.url}/", params=query).status_code == 200
    elsewhere = httpx.get(f"{server.url}/", params=query, headers={"Host": "other.example"})
    error_of(elsewhere, 403, "SignatureDoesNotMatch")
    listed = [(k, ("host;x-date" if k == "X-SignedHeaders" else v)) for k, v in query]
    error_of(httpx.get(f"{server.url}/", params=listed), 401, "InvalidAuthorization")  # x-date: not sent


def test_presigned_url_may_not_mint_credentials(server: LiveServer, bucket: BucketCredentials) -> None:
    query = presigned(bucket, {"Action": "AssumeRole", "Version": "2018-01-01", "ServiceId": bucket.bucket})
    error_of(httpx.get(f"{server.url}/", params=query), 403, "AccessDenied")
    # and must sign its Action, Version and ServiceId
    bare = presigned(bucket, {"Action": "ApplyImageUpload", "Version": V})
    error_of(httpx.get(f"{server.url}/", params=[*bare, ("ServiceId", bucket.bucket)]), 403, "AccessDenied")


# -- FileSize binds chunked uploads ---------------------------------------------------------------------


def _chunk(base: str, auth: dict[str, str], upload_id: str, n: int, data: Any) -> httpx.Response:
    return httpx.put(f"{base}?partNumber={n}&uploadID={upload_id}", headers=auth, content=data)


def test_file_size_binds_the_sum_of_chunked_parts(server: LiveServer, bucket: BucketCredentials) -> None:
    addr = apply(server, bucket, FileSize="10")
    [info] = addr["StoreInfos"]
    base, auth = f"{server.url}/{info['StoreUri']}", {"Authorization": info["Auth"]}
    upload_id = httpx.put(f"{base}?uploads", headers=auth).json()["payload"]["uploadID"]
    # refused as the parts arrive: a part larger than FileSize, declared or streamed
    error_of(_chunk(base, auth, upload_id, 0, b"x" * 50000), 400, "InvalidFileSize")

    def stream() -> Any:
        yield b"x" * 8
        yield b"x" * 8

    error_of(_chunk(base, auth, upload_id, 0, stream()), 400, "InvalidFileSize")
    assert _chunk(base, auth, upload_id, 0, b"a" * 6).status_code == 200
    error_of(_chunk(base, auth, upload_id, 1, b"b" * 5), 400, "InvalidFileSize")  # 6 + 5 > 10
    assert _chunk(base, auth, upload_id, 0, b"a" * 5).status_code == 200  # a part may be replaced
    assert _chunk(base, auth, upload_id, 1, b"b" * 5).status_code == 200
    merge = b"0:%08x,1:%08x" % (zlib.crc32(b"a" * 5), zlib.crc32(b"b" * 5))
    assert httpx.put(f"{base}?uploadID={upload_id}", headers=auth, content=merge).json()["success"] == 0
    assert commit(server, bucket, addr["SessionKey"]).status_code == 200
    sid, name = info["StoreUri"].removeprefix("tos-cn-i-").split("/", 1)
    assert httpx.get(f"{server.url}/{sid}/{name}").content == b"a" * 5 + b"b" * 5


def test_file_size_binds_the_committed_object(server: LiveServer, bucket: BucketCredentials) -> None:
    """The bypass from the issue: a whole 10-byte PUT, then ``?uploads`` and a 50000-byte part 0."""
    addr = apply(server, bucket, FileSize="10")
    [info] = addr["StoreInfos"]
    base, auth = f"{server.url}/{info['StoreUri']}", {"Authorization": info["Auth"]}
    assert put(server, info, b"y" * 10).status_code == 200
    upload_id = httpx.put(f"{base}?uploads", headers=auth).json()["payload"]["uploadID"]
    error_of(_chunk(base, auth, upload_id, 0, b"x" * 50000), 400, "InvalidFileSize")
    # a part of the right size stored after the whole-file PUT voids its merge: commit needs a new one
    assert _chunk(base, auth, upload_id, 0, b"z" * 10).status_code == 200
    error_of(commit(server, bucket, addr["SessionKey"]), 400, "InvalidParameter")
    sid, name = info["StoreUri"].removeprefix("tos-cn-i-").split("/", 1)
    assert httpx.get(f"{server.url}/{sid}/{name}").status_code == 404


def test_without_file_size_the_parts_are_bound_by_the_server_limit(tmp_path: Path) -> None:
    home = make_home(tmp_path / "home")
    gw = build_gateway(home, migrate=False)
    b = create_bucket(gw.catalog, gw.secrets, "limited")
    gw.catalog.close()
    live = LiveServer(home.home, env={"MEDIAGATE_MAX_UPLOAD_SIZE": "1000"}).start()
    try:
        addr = apply(live, b)
        [info] = addr["StoreInfos"]
        base, auth = f"{live.url}/{info['StoreUri']}", {"Authorization": info["Auth"]}
        upload_id = httpx.put(f"{base}?uploads", headers=auth).json()["payload"]["uploadID"]
        assert _chunk(base, auth, upload_id, 0, b"a" * 600).status_code == 200
        err = error_of(_chunk(base, auth, upload_id, 1, b"b" * 600), 400, "InvalidFileSize")
        assert "upload limit" in err["Message"]
        assert _chunk(base, auth, upload_id, 1, b"b" * 400).status_code == 200
    finally:
        live.stop()


def test_without_file_size_chunks_are_unbounded_by_it(server: LiveServer, bucket: BucketCredentials) -> None:
    addr = apply(server, bucket)
    [info] = addr["StoreInfos"]
    base, auth = f"{server.url}/{info['StoreUri']}", {"Authorization": info["Auth"]}
    upload_id = httpx.put(f"{base}?uploads", headers=auth).json()["payload"]["uploadID"]
    big = b"x" * 50000
    assert _chunk(base, auth, upload_id, 0, big).status_code == 200
    merge = b"0:%08x" % zlib.crc32(big)
    assert httpx.put(f"{base}?uploadID={upload_id}", headers=auth, content=merge).json()["success"] == 0
    assert commit(server, bucket, addr["SessionKey"]).status_code == 200


# -- CommitImageUpload is all or nothing ----------------------------------------------------------------


def _session_of(gw: Gateway, info: dict[str, str]) -> str:
    payload = unseal(gw.secrets.derive(AUTH_PURPOSE), info["Auth"])
    assert payload is not None
    return str(payload["s"])


def test_a_commit_that_fails_partway_can_be_retried(tmp_path: Path) -> None:
    """The second StoreUri's bytes vanish from storage between upload and commit: the commit fails,
    no session stays claimed, and once the bytes are back a retry publishes both."""
    home = make_home(tmp_path / "home")
    gw = build_gateway(home, migrate=False)
    b = create_bucket(gw.catalog, gw.secrets, "partway")
    live = LiveServer(home.home).start()
    try:
        addr = apply(live, b, UploadNum="2")
        first, second = addr["StoreInfos"]
        datas = [png(4, 4), png(5, 5)]
        for info, data in zip(addr["StoreInfos"], datas, strict=True):
            assert put(live, info, data).status_code == 200
        sessions = [_session_of(gw, info) for info in (first, second)]
        [part] = gw.catalog.parts(sessions[1])
        blob = home.home / "blobs" / part.blob_id[:2] / part.blob_id[2:4] / part.blob_id
        aside = blob.with_name("aside")
        blob.rename(aside)

        failed = commit(live, b, addr["SessionKey"])
        assert failed.status_code >= 400
        states = [s.state for sid in sessions if (s := gw.catalog.get_session(sid)) is not None]
        assert set(states) <= {"open", "completed"}

        aside.rename(blob)
        done = commit(live, b, addr["SessionKey"])
        assert done.status_code == 200, done.text
        result = done.json()["Result"]
        assert sorted(r["Uri"] for r in result["Results"]) == sorted([first["StoreUri"], second["StoreUri"]])
        assert {r["UriStatus"] for r in result["Results"]} == {2000}
        assert len(result["PluginResult"]) == 2
        for info, data in zip(addr["StoreInfos"], datas, strict=True):
            sid, name = info["StoreUri"].removeprefix("tos-cn-i-").split("/", 1)
            assert httpx.get(f"{live.url}/{sid}/{name}").content == data
        # and now it is committed, once
        error_of(commit(live, b, addr["SessionKey"]), 409, "SessionKeyCommitted")
    finally:
        live.stop()
        gw.catalog.close()


def test_a_refused_commit_releases_its_claims(
    server: LiveServer, admin: Gateway, bucket: BucketCredentials
) -> None:
    """A commit refused before publishing (the second StoreUri was never uploaded) claims nothing:
    after the upload a retry succeeds."""
    addr = apply(server, bucket, UploadNum="2")
    first, second = addr["StoreInfos"]
    assert put(server, first, b"one").status_code == 200
    error_of(commit(server, bucket, addr["SessionKey"]), 400, "InvalidParameter")
    for info in (first, second):
        session = admin.catalog.get_session(_session_of(admin, info))
        assert session is not None and session.state == "open"
    assert put(server, second, b"two").status_code == 200
    assert commit(server, bucket, addr["SessionKey"]).status_code == 200
    sid, name = second["StoreUri"].removeprefix("tos-cn-i-").split("/", 1)
    assert httpx.get(f"{server.url}/{sid}/{name}").content == b"two"


def test_a_claim_left_by_a_dead_commit_lapses(
    server: LiveServer, admin: Gateway, bucket: BucketCredentials
) -> None:
    """A process killed mid-commit leaves its claim (``lease:<deadline>``) behind: while the lease
    runs the SessionKey is busy, once it has lapsed a retry takes the session over."""
    addr = apply(server, bucket)
    [info] = addr["StoreInfos"]
    assert put(server, info, b"survivor").status_code == 200
    sid = _session_of(admin, info)
    running = f"lease:{int(time.time()) + 600}"
    assert admin.catalog.transition_session(sid, "open", running)
    error_of(commit(server, bucket, addr["SessionKey"]), 409, "SessionKeyCommitted")
    assert admin.catalog.transition_session(sid, running, f"lease:{int(time.time()) - 1}")
    done = commit(server, bucket, addr["SessionKey"])
    assert done.status_code == 200, done.text
    sid_, name = info["StoreUri"].removeprefix("tos-cn-i-").split("/", 1)
    assert httpx.get(f"{server.url}/{sid_}/{name}").content == b"survivor"


def test_a_lost_session_releases_the_others(
    server: LiveServer, admin: Gateway, bucket: BucketCredentials
) -> None:
    """One session of the SessionKey is gone (collected): the commit is refused and the sessions it
    had claimed before noticing are open again, not claimed for good."""
    addr = apply(server, bucket, UploadNum="2")
    first, second = addr["StoreInfos"]
    for info in (first, second):
        assert put(server, info, b"x").status_code == 200
    admin.catalog.end_session(_session_of(admin, second))
    error_of(commit(server, bucket, addr["SessionKey"]), 409, "SessionKeyCommitted")
    session = admin.catalog.get_session(_session_of(admin, first))
    assert session is not None and session.state == "open"


def test_a_commit_stops_before_publishing_when_a_store_uri_was_taken(
    server: LiveServer, bucket: BucketCredentials
) -> None:
    """Without Overwrite, a StoreUri someone else filled since Apply refuses the whole commit
    before the other StoreUris are published; the commit without it then succeeds."""
    addr = apply(server, bucket, UploadNum="2")
    first, second = addr["StoreInfos"]
    a, b = (info["StoreUri"].split("/", 1)[1] for info in (first, second))
    for info in (first, second):
        assert put(server, info, b"mine").status_code == 200
    other = apply(server, bucket, StoreKeys=b)
    assert put(server, other["StoreInfos"][0], b"theirs").status_code == 200
    assert commit(server, bucket, other["SessionKey"]).status_code == 200

    error_of(commit(server, bucket, addr["SessionKey"]), 409, "ResourceAlreadyExists")
    assert httpx.get(f"{server.url}/{bucket.bucket}/{a}").status_code == 404
    body = json.dumps({"SessionKey": addr["SessionKey"], "SuccessOids": [first["StoreUri"]]}).encode()
    params = {"Action": "CommitImageUpload", "Version": V, "ServiceId": bucket.bucket}
    done = signed(server, "POST", params, ak=bucket.access_key_id, sk=bucket.secret_access_key, body=body)
    assert done.status_code == 200, done.text
    assert httpx.get(f"{server.url}/{bucket.bucket}/{a}").content == b"mine"
    assert httpx.get(f"{server.url}/{bucket.bucket}/{b}").content == b"theirs"


def test_upload_policy_bottom_limit_alone_is_honoured(server: LiveServer, bucket: BucketCredentials) -> None:
    issuer = ImageXService()
    issuer.set_ak(bucket.access_key_id)
    issuer.set_sk(bucket.secret_access_key)
    issuer.set_session_token("")
    sts2 = issuer.get_upload_auth(
        [bucket.bucket], expire=600, tag={"UploadPolicy": json.dumps({"FileSizeBottomLimit": "100"})}
    )
    creds = {"ak": sts2.access_key_id, "sk": sts2.secret_access_key, "token": sts2.session_token}
    resp = signed(server, "GET", apply_params(bucket), **creds)
    assert resp.status_code == 200, resp.text
    addr = resp.json()["Result"]["UploadAddress"]
    [info] = addr["StoreInfos"]
    assert put(server, info, b"tiny").status_code == 200
    body = json.dumps({"SessionKey": addr["SessionKey"]}).encode()
    params = {"Action": "CommitImageUpload", "Version": V, "ServiceId": bucket.bucket}
    error_of(signed(server, "POST", params, body=body, **creds), 400, "InvalidFileSize")

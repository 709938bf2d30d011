"""The real volcengine SDK (``volcengine.imagex.ImageXService``) against a live mediagate.

The SDK's OpenAPI calls honour ``set_host``/``set_scheme``; its upload URLs are hard-coded
``https://<UploadHosts[0]>/…``, so the SDK's own requests session gets a transport adapter that
sends those to our plain-HTTP loopback port (nothing of ours is patched).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from requests.adapters import HTTPAdapter
from volcengine.imagex.ImageXService import ImageXService

from mediagate.core.buckets import BucketCredentials
from tests.conftest import LiveServer
from tests.protocols.imagex.conftest import png, signed


class _PlainHttp(HTTPAdapter):
    """Sends the SDK's https:// upload URLs to the loopback server over http."""

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        assert request.url is not None
        request.url = "http://" + request.url.removeprefix("https://")
        return super().send(request, *args, **kwargs)


def sdk(server: LiveServer, ak: str, sk: str, token: str = "") -> ImageXService:
    svc = ImageXService()
    svc.set_ak(ak)
    svc.set_sk(sk)
    svc.set_session_token(token)
    svc.set_host(server.endpoint)
    svc.set_scheme("http")
    svc.session.mount(f"https://{server.endpoint}", _PlainHttp())
    return svc


@pytest.fixture
def svc(server: LiveServer, bucket: BucketCredentials) -> Iterator[ImageXService]:
    yield sdk(server, bucket.access_key_id, bucket.secret_access_key)


def read(server: LiveServer, uri: str) -> bytes:
    sid, name = uri.removeprefix("tos-cn-i-").split("/", 1)
    got = httpx.get(f"{server.url}/{sid}/{name}")
    assert got.status_code == 200, got.text
    return got.content


def test_upload_image_data_small_image(
    server: LiveServer, bucket: BucketCredentials, svc: ImageXService
) -> None:
    data = png(7, 5)
    result = svc.upload_image_data({"ServiceId": bucket.bucket}, [data])
    [entry] = result["Results"]
    assert entry["UriStatus"] == 2000
    assert entry["Uri"].startswith(f"tos-cn-i-{bucket.bucket}/")
    [plugin] = result["PluginResult"]
    assert (plugin["ImageWidth"], plugin["ImageHeight"], plugin["ImageFormat"]) == (7, 5, "png")
    assert plugin["ImageSize"] == len(data)
    assert plugin["ImageMd5"] == hashlib.md5(data).hexdigest()
    assert read(server, entry["Uri"]) == data


def test_upload_several_with_store_keys(
    server: LiveServer, bucket: BucketCredentials, svc: ImageXService
) -> None:
    datas = [png(2, 2, (i * 40, 0, 0)) for i in range(4)]
    keys = [f"album/{i}.png" for i in range(4)]
    result = svc.upload_image_data({"ServiceId": bucket.bucket, "StoreKeys": keys}, datas)
    uris = sorted(r["Uri"] for r in result["Results"])
    assert uris == sorted(f"tos-cn-i-{bucket.bucket}/{k}" for k in keys)
    for key, data in zip(keys, datas, strict=True):
        assert httpx.get(f"{server.url}/{bucket.bucket}/{key}").content == data
    # the same keys again without Overwrite are refused at apply time; with Overwrite they replace
    with pytest.raises(Exception, match="ResourceAlreadyExists"):
        svc.upload_image_data({"ServiceId": bucket.bucket, "StoreKeys": keys[:1]}, datas[:1])
    svc.upload_image_data(
        {"ServiceId": bucket.bucket, "StoreKeys": keys[:1], "Overwrite": True}, [b"new bytes"]
    )
    assert httpx.get(f"{server.url}/{bucket.bucket}/{keys[0]}").content == b"new bytes"


def test_upload_image_40_mib_takes_the_chunked_path(
    server: LiveServer, bucket: BucketCredentials, svc: ImageXService, tmp_path: Path
) -> None:
    path = tmp_path / "big.bin"
    block = os.urandom(1024 * 1024)
    with path.open("wb") as f:
        for i in range(40):
            f.write(bytes([i]) + block[1:])
    started = time.monotonic()
    result = svc.upload_image({"ServiceId": bucket.bucket}, [str(path)])
    [entry] = result["Results"]
    assert entry["UriStatus"] == 2000
    [plugin] = result["PluginResult"]
    assert plugin["ImageSize"] == 40 * 1024 * 1024
    digest = hashlib.md5(path.read_bytes()).hexdigest()
    assert plugin["ImageMd5"] == digest
    sid, name = entry["Uri"].removeprefix("tos-cn-i-").split("/", 1)
    md5 = hashlib.md5()
    with httpx.stream("GET", f"{server.url}/{sid}/{name}") as got:
        assert got.status_code == 200
        for chunk in got.iter_bytes():
            md5.update(chunk)
    assert md5.hexdigest() == digest
    assert time.monotonic() - started < 60


def test_upload_image_small_file_path(
    server: LiveServer, bucket: BucketCredentials, svc: ImageXService, tmp_path: Path
) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(png(4, 4))
    result = svc.upload_image({"ServiceId": bucket.bucket}, [str(path)])
    assert read(server, result["Results"][0]["Uri"]) == path.read_bytes()


def test_apply_and_commit_called_directly(
    server: LiveServer, bucket: BucketCredentials, svc: ImageXService
) -> None:
    resp = svc.apply_upload({"ServiceId": bucket.bucket, "SessionKey": "", "UploadNum": 2, "StoreKeys": []})
    assert "Error" not in resp["ResponseMetadata"]
    assert resp["ResponseMetadata"]["Action"] == "ApplyImageUpload"
    addr = resp["Result"]["UploadAddress"]
    assert resp["Result"]["RequestId"]
    assert addr["UploadHosts"] == [server.endpoint]
    assert len(addr["StoreInfos"]) == 2
    first, second = addr["StoreInfos"]
    data = png(9, 3)
    put = httpx.put(
        f"{server.url}/{first['StoreUri']}",
        content=data,
        headers={"Authorization": first["Auth"], "Content-CRC32": f"{zlib.crc32(data):08x}"},
    )
    assert put.status_code == 200 and put.json()["success"] == 0
    # nothing is visible before the commit
    sid, name = first["StoreUri"].removeprefix("tos-cn-i-").split("/", 1)
    assert httpx.get(f"{server.url}/{sid}/{name}").status_code == 404

    body = {
        "SessionKey": addr["SessionKey"],
        "SuccessOids": [first["StoreUri"]],
        "Functions": [],
        "OptionInfos": [],
    }
    done = svc.commit_upload({"ServiceId": bucket.bucket, "SkipMeta": False}, json.dumps(body))
    assert "Error" not in done["ResponseMetadata"]
    assert done["Result"]["Results"] == [{"Uri": first["StoreUri"], "UriStatus": 2000}]
    assert done["Result"]["PluginResult"][0]["ImageWidth"] == 9
    assert read(server, first["StoreUri"]) == data
    # the SessionKey commits once; the second StoreUri was dropped with it
    with pytest.raises(Exception, match="SessionKeyCommitted"):
        svc.commit_upload({"ServiceId": bucket.bucket}, json.dumps(body))
    retry = httpx.put(
        f"{server.url}/{second['StoreUri']}", content=b"late", headers={"Authorization": second["Auth"]}
    )
    assert retry.status_code == 409


def test_sts_credentials_from_assume_role_work_with_the_sdk(
    server: LiveServer, bucket: BucketCredentials, svc: ImageXService
) -> None:
    # AssumeRole is not in the ImageX SDK's api list; it is signed the SDK's way by our signer
    resp = signed(
        server,
        "GET",
        {"Action": "AssumeRole", "Version": "2018-01-01", "DurationSeconds": 900},
        ak=bucket.access_key_id,
        sk=bucket.secret_access_key,
    )
    assert resp.status_code == 200, resp.text
    c = resp.json()["Result"]["Credentials"]
    assert c["AccessKeyId"].startswith("AKTP")
    temp = sdk(server, c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
    data = png(3, 3)
    result = temp.upload_image_data({"ServiceId": bucket.bucket}, [data])
    assert read(server, result["Results"][0]["Uri"]) == data


def test_sts2_minted_offline_by_the_sdk_is_accepted(server: LiveServer, bucket: BucketCredentials) -> None:
    """``get_upload_auth`` signs STS2 credentials locally with the long-term key; they work here."""
    issuer = sdk(server, bucket.access_key_id, bucket.secret_access_key)
    sts2 = issuer.get_upload_auth([bucket.bucket], expire=600, key_ptn="", tag={})
    # minted before any other client exists: the SDK keeps credentials in module-level state
    other = issuer.get_upload_auth(["someoneelse"], expire=600, tag={})
    temp = sdk(server, sts2.access_key_id, sts2.secret_access_key, sts2.session_token)
    data = png(2, 6)
    result = temp.upload_image_data({"ServiceId": bucket.bucket}, [data])
    assert read(server, result["Results"][0]["Uri"]) == data
    # ... but only for the ServiceIds it names
    denied = sdk(server, other.access_key_id, other.secret_access_key, other.session_token)
    with pytest.raises(Exception, match="AccessDenied"):
        denied.upload_image_data({"ServiceId": bucket.bucket}, [data])


def _upload_tokens(svc: ImageXService, params: dict[str, str]) -> tuple[str, str]:
    """``get_upload_auth_token``: base64 JSON of two presigned query strings."""
    doc = json.loads(base64.b64decode(svc.get_upload_auth_token(params)))
    assert doc["Version"] == "v1"
    return doc["ApplyUploadToken"], doc["CommitUploadToken"]


def _upload_with_tokens(server: LiveServer, apply_token: str, commit_token: str, data: bytes) -> str:
    """What a browser holding the tokens does: apply (adding its own file size), upload, commit."""
    applied = httpx.get(f"{server.url}/?{apply_token}&UploadNum=1&FileSize={len(data)}")
    assert applied.status_code == 200, applied.text
    addr = applied.json()["Result"]["UploadAddress"]
    [info] = addr["StoreInfos"]
    put = httpx.put(
        f"{server.url}/{info['StoreUri']}",
        content=data,
        headers={"Authorization": info["Auth"], "Content-CRC32": f"{zlib.crc32(data):08x}"},
    )
    assert put.status_code == 200, put.text
    done = httpx.post(f"{server.url}/?{commit_token}", json={"SessionKey": addr["SessionKey"]})
    assert done.status_code == 200, done.text
    [result] = done.json()["Result"]["Results"]
    assert result["UriStatus"] == 2000
    uri: str = result["Uri"]
    return uri


def test_upload_auth_token_presigned_apply_and_commit(server: LiveServer, bucket: BucketCredentials) -> None:
    issuer = sdk(server, bucket.access_key_id, bucket.secret_access_key)
    apply_token, commit_token = _upload_tokens(issuer, {"ServiceId": bucket.bucket, "X-Expires": "600"})
    assert "X-Signature=" in apply_token and "Action=ApplyImageUpload" in apply_token
    data = png(6, 2)
    uri = _upload_with_tokens(server, apply_token, commit_token, data)
    assert read(server, uri) == data
    # a token is for its ServiceId only: a changed ServiceId breaks the signature
    other = apply_token.replace(f"ServiceId={bucket.bucket}", "ServiceId=someoneelse")
    refused = httpx.get(f"{server.url}/?{other}")
    assert refused.status_code == 403
    assert refused.json()["ResponseMetadata"]["Error"]["Code"] == "SignatureDoesNotMatch"


def test_upload_auth_token_from_temporary_credentials(server: LiveServer, bucket: BucketCredentials) -> None:
    """Tokens signed with STS2 credentials carry X-Security-Token; their scope still applies."""
    issuer = sdk(server, bucket.access_key_id, bucket.secret_access_key)
    # both minted before any other client exists: the SDK keeps credentials in module-level state
    sts2 = issuer.get_upload_auth([bucket.bucket], expire=600, key_ptn="", tag={})
    narrow = issuer.get_upload_auth(["someoneelse"], expire=600, tag={})
    temp = sdk(server, sts2.access_key_id, sts2.secret_access_key, sts2.session_token)
    try:
        apply_token, commit_token = _upload_tokens(temp, {"ServiceId": bucket.bucket})
        other = sdk(server, narrow.access_key_id, narrow.secret_access_key, narrow.session_token)
        denied_token, _ = _upload_tokens(other, {"ServiceId": bucket.bucket})
    finally:
        temp.set_session_token("")
    assert "X-Security-Token=" in apply_token
    data = png(3, 7)
    assert read(server, _upload_with_tokens(server, apply_token, commit_token, data)) == data
    denied = httpx.get(f"{server.url}/?{denied_token}")
    assert denied.status_code == 403
    assert denied.json()["ResponseMetadata"]["Error"]["Code"] == "AccessDenied"

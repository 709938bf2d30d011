"""The Wantu PHP SDK (ALIMEDIASDK_PHP 2.0.3, vendored) through its own code against a live
mediagate, only its hosts changed: single and block uploads (automatic and step by step), cancel,
and every file and folder management call it makes. Its media and moderation calls (scanPorn,
mediaEncode, snapshots) belong to the media-tasks issue.

PHP's curl sends ``Transfer-Encoding: chunked`` with ``Content-Length: 0`` on createDir and
renameFile (a POST without a body): those calls pass only because the HTTP layer serves that."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from mediagate.core.buckets import BucketCredentials
from tests.compat.wantu.sdk import PhpSdk, data, require_php, sdk_for
from tests.conftest import LiveServer

BLOCK = 102400
"""The SDK's smallest block size (Conf::BLOCK_MIN_SIZE); a smaller one falls back to 200 MB."""


@pytest.fixture(scope="module")
def sdk_root(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_php()
    return sdk_for(server.url, tmp_path_factory.mktemp("php"))


@pytest.fixture
def php(sdk_root: Path, bucket: BucketCredentials) -> Iterator[PhpSdk]:
    yield PhpSdk(sdk_root, bucket.access_key_id, bucket.secret_access_key, bucket.bucket)


def policy(sdk: PhpSdk, **fields: Any) -> dict[str, Any]:
    """What an application gives ``new UploadPolicy([...])``: namespace and expiry in ms."""
    return {"namespace": sdk.namespace, "expiration": int(time.time() * 1000) + 3600_000} | fields


def served(url: str) -> bytes:
    r = httpx.get(url)
    assert r.status_code == 200, (url, r.status_code)
    return r.content


def md5(raw: bytes) -> str:
    return hashlib.md5(raw).hexdigest()


def test_upload_a_small_file_and_data(php: PhpSdk, tmp_path: Path) -> None:
    photo = tmp_path / "photo.txt"
    photo.write_bytes(b"hello from php")
    by_file, by_data = php.run(
        {"op": "upload", "file": str(photo), "policy": policy(php), "option": {"dir": "sdk"}},
        {
            "op": "uploadData",
            "data_b64": data(b"raw bytes"),
            "policy": policy(php, dir="/data", name="raw.bin"),
            "option": {},
        },
    )
    assert by_file["isSuccess"] is True, by_file
    assert (by_file["dir"], by_file["name"], by_file["fileSize"]) == ("/sdk", "photo.txt", 14)
    assert by_file["eTag"] == md5(b"hello from php")
    assert served(by_file["url"]) == b"hello from php"
    assert by_data["isSuccess"] is True, by_data
    assert (by_data["dir"], by_data["name"]) == ("/data", "raw.bin")
    assert served(by_data["url"]) == b"raw bytes"


def test_a_large_file_goes_up_in_blocks(php: PhpSdk, tmp_path: Path) -> None:
    """Over blockSize, ``upload`` and ``uploadData`` run blockInit, blockUpload and blockComplete
    (with the whole file's md5) on their own."""
    big = os.urandom(2 * BLOCK + 12345)
    path = tmp_path / "big.bin"
    path.write_bytes(big)
    by_file, by_data = php.run(
        {
            "op": "upload",
            "file": str(path),
            "policy": policy(php, dir="/blocks"),
            "option": {"blockSize": BLOCK},
        },
        {
            "op": "uploadData",
            "data_b64": data(big[::-1]),
            "policy": policy(php, dir="/blocks", name="reversed.bin"),
            "option": {"blockSize": BLOCK},
        },
    )
    assert by_file["isSuccess"] is True, by_file
    assert (by_file["name"], by_file["fileSize"]) == ("big.bin", len(big))
    assert by_file["uploadId"] and by_file["id"]
    assert served(by_file["url"]) == big
    assert by_data["isSuccess"] is True, by_data
    assert served(by_data["url"]) == big[::-1]


def test_multipart_step_by_step_and_cancel(php: PhpSdk, tmp_path: Path) -> None:
    blocks = [os.urandom(BLOCK), os.urandom(BLOCK), os.urandom(777)]
    whole = b"".join(blocks)
    pol = policy(php, dir="/steps", name="manual.bin")
    init, second, third, done = php.run(
        {
            "op": "multipartInitByData",
            "data_b64": data(blocks[0]),
            "policy": pol,
            "option": {"blockSize": BLOCK},
            "keep": "up",
        },
        {
            "op": "multipartUploadByData",
            "data_b64": data(blocks[1]),
            "policy": pol,
            "use": "up",
            "option": {"partNumber": 2},
        },
        {
            "op": "multipartUploadByData",
            "data_b64": data(blocks[2]),
            "policy": pol,
            "use": "up",
            "option": {"partNumber": 3},
        },
        {"op": "multipartComplete", "policy": pol, "use": "up", "option": {"md5": md5(whole)}},
    )
    assert init["isSuccess"] is True and init["partNumber"] == 1, init
    assert second["eTag"] == md5(blocks[1]).upper() and third["partNumber"] == 3
    assert done["isSuccess"] is True, done
    assert (done["dir"], done["name"], done["fileSize"]) == ("/steps", "manual.bin", len(whole))
    assert served(done["url"]) == whole

    source = tmp_path / "cancelled.bin"
    source.write_bytes(os.urandom(BLOCK + 10))
    pol = policy(php, dir="/steps", name="cancelled.bin")
    started, cancelled, late = php.run(
        {
            "op": "multipartInit",
            "file": str(source),
            "policy": pol,
            "option": {"blockSize": BLOCK},
            "keep": "c",
        },
        {"op": "multipartCancel", "policy": pol, "use": "c"},
        {
            "op": "multipartUpload",
            "file": str(source),
            "policy": pol,
            "use": "c",
            "option": {"partNumber": 2},
        },
    )
    assert started["isSuccess"] is True, started
    assert cancelled["isSuccess"] is True, cancelled
    assert late["exception"].endswith("UploadException") and late["code"] == 404, late


def test_a_refused_upload_reaches_the_application_as_the_sdk_reports_it(php: PhpSdk) -> None:
    pol = policy(php, dir="/", name="once.txt", insertOnly=1)
    first, again = php.run(
        {"op": "uploadData", "data_b64": data(b"first"), "policy": pol, "option": {}},
        {"op": "uploadData", "data_b64": data(b"second"), "policy": pol, "option": {}},
    )
    assert first["isSuccess"] is True
    assert again["exception"].endswith("UploadException") and again["code"] == 400, again
    assert served(first["url"]) == b"first"


def test_every_management_call(php: PhpSdk) -> None:
    ns = php.namespace
    uploaded = php.one(
        {
            "op": "uploadData",
            "data_b64": data(b"managed"),
            "policy": policy(php, dir="/docs/2015", name="a.txt"),
        }
    )
    assert uploaded["isSuccess"] is True, uploaded
    results = php.run(
        {"op": "createDir", "namespace": ns, "dir": "/albums"},
        {"op": "existsFolder", "namespace": ns, "dir": "/albums"},
        {"op": "listDirs", "namespace": ns, "dir": "/", "page": 1, "pageSize": 100},
        {"op": "existsFile", "namespace": ns, "dir": "/docs/2015", "name": "a.txt"},
        {"op": "getFileInfo", "namespace": ns, "dir": "/docs/2015", "name": "a.txt"},
        {"op": "listFiles", "namespace": ns, "dir": "/docs/2015", "page": 1, "pageSize": 100},
        {
            "op": "renameFile",
            "namespace": ns,
            "dir": "/docs/2015",
            "name": "a.txt",
            "newDir": "/albums",
            "newName": "b.txt",
        },
        {"op": "existsFile", "namespace": ns, "dir": "/docs/2015", "name": "a.txt"},
        {"op": "getFileInfo", "namespace": ns, "dir": "/albums", "name": "b.txt"},
        {"op": "deleteDir", "namespace": ns, "dir": "/albums"},
        {"op": "deleteFile", "namespace": ns, "dir": "/albums", "name": "b.txt"},
        {"op": "deleteDir", "namespace": ns, "dir": "/albums"},
        {"op": "existsFolder", "namespace": ns, "dir": "/albums"},
        {"op": "createDir", "namespace": ns, "dir": "/docs"},
    )
    (
        created,
        exists,
        dirs,
        file_exists,
        info,
        files,
        renamed,
        old_gone,
        moved,
        busy,
        deleted,
        removed,
        gone,
        duplicate,
    ) = results
    assert created["isSuccess"] is True, created
    assert exists["isSuccess"] is True, exists
    assert dirs["isSuccess"] is True and sorted(d["name"] for d in dirs["result"]) == ["albums", "docs"], dirs
    assert file_exists["isSuccess"] is True, file_exists
    assert info["isSuccess"] is True and (info["name"], info["size"]) == ("a.txt", 7), info
    assert info["md5"] == md5(b"managed") and info["dir"] == "/docs/2015"
    assert files["isSuccess"] is True and [f["name"] for f in files["result"]] == ["a.txt"], files
    assert files["totalCount"] == 1
    assert renamed["isSuccess"] is True, renamed
    assert old_gone["isSuccess"] is False and old_gone["code"] == "ResourceNotFound", old_gone
    assert moved["isSuccess"] is True and moved["path"] == "/albums/b.txt", moved
    assert moved["md5"] == md5(b"managed") and moved["url"].endswith("/albums/b.txt")
    assert busy["isSuccess"] is False and busy["code"] == "NonEmpty", busy
    assert deleted["isSuccess"] is True, deleted
    assert removed["isSuccess"] is True, removed
    assert gone["isSuccess"] is False and gone["code"] == "ResourceNotFound", gone
    assert duplicate["isSuccess"] is False and duplicate["code"] == "NameDuplicated", duplicate

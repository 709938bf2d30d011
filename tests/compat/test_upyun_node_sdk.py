"""The UPYUN node SDK (npm ``upyun`` 3.4.x, MIT), installed from the npm registry, drives a live
mediagate through its own code: only the endpoint and the credentials are ours.

``upyun_node_sdk.js`` makes every call the SDK has that does not need UPYUN's cloud (``purge``
does) once, in an application's order, and prints what each returned; the tests below read those
results as the SDK's user would, then check the server's side. The SDK signs with ``X-Date``
only, wants ``204`` from multi-part initiate/upload and ``204``/``201`` from complete, sends
``PATCH ?metadata=…`` and computes a base64 upload's ``content-md5`` over the text it sends.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from mediagate.core.buckets import BucketCredentials
from mediagate.core.gateway import Gateway
from tests.compat.npm import installed
from tests.conftest import LiveServer

SCRIPT = Path(__file__).with_name("upyun_node_sdk.js")
RUN_TIMEOUT = 180


def pattern(size: int) -> bytes:
    """The script's deterministic file contents: byte i = (i * 7 + 3) % 251."""
    return bytes((i * 7 + 3) % 251 for i in range(size))


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 200)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def node_modules() -> Path:
    return installed("upyun", "3.4.")


@pytest.fixture(scope="module")
def creds(admin: Gateway) -> BucketCredentials:
    from mediagate.core.buckets import create_bucket

    return create_bucket(admin.catalog, admin.secrets, "nodesdk")


@pytest.fixture(scope="module")
def image() -> bytes:
    return png(40, 30)


@pytest.fixture(scope="module")
def results(
    server: LiveServer,
    creds: BucketCredentials,
    node_modules: Path,
    image: bytes,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    workdir = tmp_path_factory.mktemp("node-sdk")
    (workdir / "pixel.png").write_bytes(image)
    done = subprocess.run(
        ["node", str(SCRIPT), server.endpoint, creds.bucket, creds.operator, creds.password, str(workdir)],
        env={**os.environ, "NODE_PATH": str(node_modules)},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def test_rest_reads_and_writes_sign_with_x_date(results: dict[str, Any], image: bytes) -> None:
    assert results["usage_before"] == 0
    assert results["makeDir"] is True
    assert results["putFile_text"] is True
    assert results["putFile_chinese"] is True
    assert results["putFile_meta"] is True
    assert results["putFile_image"] == {"width": 40, "height": 30, "file-type": "PNG", "frames": 1}
    head = results["headFile"]
    assert head["type"] == "file" and head["size"] == len(b"hello from the node sdk")
    assert head["Content-Md5"] == hashlib.md5(b"hello from the node sdk").hexdigest()
    assert isinstance(head["date"], int) and head["date"] > 0
    assert results["headFile_dir"]["type"] == "folder"
    assert results["headFile_missing"] is False
    assert results["getFile"] == "hello from the node sdk"
    assert results["getFile_chinese"] == "中文测试"
    assert results["getFile_stream"] == hashlib.md5(image).hexdigest()
    assert results["getFile_missing"] is False


def test_list_dir_with_pages(results: dict[str, Any]) -> None:
    listing = results["listDir"]
    entries = {f["name"]: f for f in listing["files"]}
    assert set(entries) == {"dir", "hello.txt", "中文.txt", "meta.txt"}
    assert entries["dir"]["type"] == "F"
    assert entries["hello.txt"]["type"] == "N" and entries["hello.txt"]["size"] == 23
    pages = results["listDir_paged"]
    assert len(pages["first"]) == 2
    assert sorted(pages["first"] + pages["second"]) == sorted(entries)
    assert results["listDir_missing"] is False


def test_update_metadata_merge_replace_delete(results: dict[str, Any]) -> None:
    assert results["updateMetadata_merge"] is True
    assert results["getMetadata_merged"] == {"x-upyun-meta-owner": "alice", "x-upyun-meta-colour": "red"}
    assert results["updateMetadata_replace"] is True
    assert results["getMetadata_replaced"] == {"x-upyun-meta-size": "large"}
    assert results["updateMetadata_delete"] is True
    assert results["getMetadata_deleted"] == {}
    assert results["updateMetadata_missing"] is False  # 404


def test_copy_and_move(results: dict[str, Any]) -> None:
    assert results["copy"] is True
    assert results["copy_missing"] is False
    assert results["move"] is True
    assert results["getFile_moved"] == "hello from the node sdk"
    assert results["headFile_move_source"] is False


def test_parallel_multipart_upload(results: dict[str, Any], admin: Gateway, creds: BucketCredentials) -> None:
    multi = results["multipart"]
    size = 2 * 1024 * 1024 + 333
    assert (multi["partCount"], multi["fileSize"]) == (3, size)
    assert len(multi["uuid"]) == 36
    assert multi["parts"] == [True, True, True]  # every part answered 204
    assert multi["complete"] is True  # 204 or 201
    assert results["headFile_big"]["size"] == size
    obj = admin.catalog.get_object(admin.catalog.require_bucket(creds.bucket).id, "node/big.bin")
    assert obj is not None and obj.md5 == hashlib.md5(pattern(size)).hexdigest()


def test_sequential_block_upload_of_a_large_file(
    results: dict[str, Any], admin: Gateway, creds: BucketCredentials
) -> None:
    size = 3 * 1024 * 1024 + 1234
    assert results["blockUpload"] is True
    assert results["headFile_large"]["size"] == size
    assert results["headFile_large"]["Content-Md5"] == hashlib.md5(pattern(size)).hexdigest()
    obj = admin.catalog.get_object(admin.catalog.require_bucket(creds.bucket).id, "node/large.bin")
    assert obj is not None and obj.mime == "application/octet-stream"


def test_form_put_file_and_its_base64_upload(results: dict[str, Any]) -> None:
    form = results["formPutFile"]
    assert form["code"] == 200 and form["url"] == "/node/form.png"
    assert (form["image-width"], form["image-height"], form["image-type"]) == (40, 30, "PNG")
    assert "sign" not in form  # signed with authorization: the new scheme has no sign field
    b64 = results["formPutFile_b64"]
    assert b64["code"] == 200 and b64["file_size"] == len(b"test base64 upload")
    assert results["getFile_b64"] == "test base64 upload"


def test_delete_files_and_folders(results: dict[str, Any]) -> None:
    assert results["deleteFile"] is True
    assert results["headFile_deleted"] is False
    refused = results["deleteDir_not_empty"]
    assert "403" in refused["error"]
    assert results["deleteFile_in_dir"] is True
    assert results["deleteDir"] is True
    assert results["usage_after"] > 0

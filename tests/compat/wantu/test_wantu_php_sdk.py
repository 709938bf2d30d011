"""The Wantu PHP SDK (ALIMEDIASDK_PHP 2.0.3, vendored) through its own code against a live
mediagate, only its hosts changed: single and block uploads (automatic and step by step), cancel,
every file and folder management call it makes, and its media and moderation calls (mediaEncode
with the seed's presets, videoSnapshot, their queries, the policy's mediaEncode, scanPorn,
pornFeedback).

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


# -- media and moderation ------------------------------------------------------------------------


def _until_done(php: PhpSdk, op: str, task_id: str, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        result = php.one({"op": op, "taskId": task_id})
        assert result["isSuccess"] is True, result
        if result["status"] != "processing":
            return dict(result)
        assert time.monotonic() < deadline, result
        time.sleep(0.5)


def test_media_encode_and_snapshot(php: PhpSdk, tmp_path: Path) -> None:
    from mediagate.media.video import probe
    from tests.media.videos import make_video

    ns = php.namespace
    clip = make_video(tmp_path / "clip.mp4").read_bytes()
    up = php.one({"op": "uploadData", "data_b64": data(clip), "policy": policy(php, dir="/v", name="in.mp4")})
    assert up["isSuccess"] is True, up
    steps: list[dict[str, Any]] = [
        {
            "op": "mediaEncode",
            "input": [ns, "/v", "in.mp4"],
            "output": [ns, "/v", f"{preset}.out"],
            "encodeTemplate": preset,
            "usePreset": 1,
        }
        for preset in ("video-generic-AVC-320x240", "video-generic-AVC-480p-4_3", "video-HLS-150K")
    ]
    steps.append(
        {"op": "videoSnapshot", "input": [ns, "/v", "in.mp4"], "output": [ns, "/v", "s.png"], "time": 500}
    )
    started = php.run(*steps)
    assert all(r["isSuccess"] is True and len(r["taskId"]) == 32 for r in started), started
    expected = {
        "video-generic-AVC-320x240": (320, 240, "mp4"),
        "video-generic-AVC-480p-4_3": (640, 480, "mp4"),
        "video-HLS-150K": (320, 240, "mpegts"),
    }
    for step, answer in zip(steps[:3], started[:3], strict=True):
        result = _until_done(php, "mediaEncodeQuery", answer["taskId"])
        assert result["status"] == "success", result
        width, height, fmt = expected[step["encodeTemplate"]]
        media = result["outputs"][-1]  # the mp4, or the HLS playlist's last segment
        local = tmp_path / media["name"]
        local.write_bytes(served(media["url"]))
        info = probe(local)
        assert fmt in info.format.split(",") and info.video is not None and info.video.codec == "h264"
        assert (info.video.width, info.video.height) == (width, height)
        assert info.audio is not None and info.audio.codec == "aac"
    shot = _until_done(php, "vSnapshotQuery", started[3]["taskId"])
    assert shot["status"] == "success" and served(shot["outputs"][0]["url"])[:8] == b"\x89PNG\r\n\x1a\n"
    # the SDK's policy field: the encode is recorded with the upload
    encode = '{"encodeTemplate":"video-generic-AVC-320x240","usePreset":1}'
    up = php.one(
        {
            "op": "uploadData",
            "data_b64": data(clip),
            "policy": policy(php, dir="/v", name="p.mp4", mediaEncode=encode),
        }
    )
    assert up["isSuccess"] is True and up["taskId"], up
    assert _until_done(php, "mediaEncodeQuery", up["taskId"])["status"] == "success"


def test_scan_porn_and_feedback(php: PhpSdk, server: LiveServer, tmp_path: Path) -> None:
    import io

    from PIL import Image

    from mediagate.media import moderation

    if not moderation.available():
        pytest.skip("the moderation extra is not installed")
    ns = php.namespace
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (220, 170, 140)).save(buf, "JPEG")
    pic = buf.getvalue()
    assert php.one(
        {"op": "uploadData", "data_b64": data(pic), "policy": policy(php, dir="/s", name="a.jpg")}
    )["isSuccess"]
    answer = php.one({"op": "scanPorn", "resources": [[ns, "/s", "a.jpg"], [ns, "/s", "gone.jpg"]]})
    assert answer["isSuccess"] is True and answer["status"] == 0, answer
    scored, missing = answer["result"]
    (tmp_path / "a.jpg").write_bytes(pic)
    assert scored["status"] == 0 and scored["score"] == moderation.score_file(tmp_path / "a.jpg").score
    assert scored["type"] == (1 if scored["score"] >= 0.8 else 0)
    assert missing["status"] == 2 and "score" not in missing
    items = [
        {"namespace": ns, "dir": "/s", "name": "a.jpg", "type": 1, "wrong": True, "score": 0.9},
        {"namespace": ns, "dir": "s", "name": "b.jpg", "type": 0, "wrong": False},
    ]
    sent = php.one({"op": "pornFeedback", "items": items})
    assert sent["isSuccess"] is True and sent["status"] == 0, sent
    from tests.protocols.wantu.client import WantuClient

    client = WantuClient(server.url, php.ak, php.sk, ns)
    try:
        listed = client.manage("GET", "/3.0/feedback").json()
    finally:
        client.close()
    assert listed["totalCount"] == 2
    assert [(f["file"]["dir"], f["file"]["name"], f["type"], f["wrong"]) for f in listed["result"]] == [
        ("/s", "b.jpg", 0, False),
        ("/s", "a.jpg", 1, True),
    ]

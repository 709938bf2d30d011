"""The UPYUN python SDK (PyPI ``upyun`` 2.5.5) through the calls of its repository's own test suite.

Each test below is the python 3 equivalent of the test of the same name in github.com/upyun/python-sdk
``tests/test_upyun.py`` (v2.5.5; ``test_multi_list_uploaded_parts`` from master), making the same
SDK calls and asserting what they assert, against a live mediagate: only the endpoint and the
credentials differ. Upstream's tests are not copied: they are python 2 in places (``md5s =
range(0, 3)`` then item assignment) and read fixtures from their checkout. Left out are the tests
that need UPYUN's cloud or the internet (purge, pretreat/status, auth_server, ED_AUTO endpoint
probing, an httpbin stream) or no server at all (make_signature, the debug logger).

Where upstream pins exact answers, the real service's later ones are used: ``put`` answers
carry ``content-length`` (upstream's own ``test_move`` reads it) next to the image fields.
The SDK's resume.py uses ``collections.Callable`` (gone since Python 3.10); the resume tests put
that alias back (``collections.abc.Callable``) and otherwise run the SDK's own code.
"""

from __future__ import annotations

import collections
import collections.abc
import hashlib
import io
import os
import types
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import upyun
from PIL import Image
from upyun import FileStore

from mediagate.core.buckets import BucketCredentials
from tests.conftest import LiveServer
from tests.protocols.upyun.forms import Receiver, wait_until

PNG_SIZE = (1000, 410)


@pytest.fixture(scope="module")
def test_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Upstream's ``tests/test.png`` is a 1000x410 PNG; this one has its dimensions."""
    path = tmp_path_factory.mktemp("fixtures") / "test.png"
    image = Image.frombytes("RGB", PNG_SIZE, os.urandom(PNG_SIZE[0] * PNG_SIZE[1] * 3))
    image.save(path, "PNG", compress_level=1)
    return path


@pytest.fixture
def up(server: LiveServer, bucket: BucketCredentials) -> upyun.UpYun:
    return upyun.UpYun(bucket.bucket, bucket.operator, bucket.password, timeout=100, endpoint=server.endpoint)


@pytest.fixture
def root(up: upyun.UpYun) -> Iterator[str]:
    """Upstream's setUp/tearDown: a fresh folder per test, deleted after it (so it must be empty)."""
    path = f"/pysdk-{uuid.uuid4().hex}/"
    up.mkdir(path)
    yield path
    up.delete(path)


def status_of(call: Any, *args: Any) -> int:
    with pytest.raises(upyun.UpYunServiceException) as se:
        call(*args)
    return int(se.value.status)


def test_auth_failed(server: LiveServer) -> None:
    """An unknown service with made-up credentials is 401, as on UPYUN (not 404)."""
    assert (
        status_of(upyun.UpYun("service", "username", "password", endpoint=server.endpoint).getinfo, "/")
        == 401
    )


def test_root(up: upyun.UpYun) -> None:
    assert up.getinfo("/").get("file-type") == "folder"


def test_usage(up: upyun.UpYun, root: str) -> None:
    assert int(up.usage()) >= 0


def test_put_directly(up: upyun.UpYun, root: str) -> None:
    up.put(root + "test.txt", "abcdefghijklmnopqrstuvwxyz\n")
    assert up.get(root + "test.txt") == "abcdefghijklmnopqrstuvwxyz\n"
    up.delete(root + "test.txt")
    assert status_of(up.getinfo, root + "test.txt") == 404


def test_move(up: upyun.UpYun, root: str) -> None:
    res = up.put(root + "test-move.txt", "move")
    assert res["content-length"] == "4"
    assert up.get(root + "test-move.txt") == "move"
    res = up.move(root + "test-move.txt", root + "test-move1.txt")
    assert res["content-length"] == "4"
    assert up.get(root + "test-move1.txt") == "move"
    assert status_of(up.getinfo, root + "test-move.txt") == 404
    up.delete(root + "test-move1.txt")


def test_copy(up: upyun.UpYun, root: str) -> None:
    res = up.put(root + "test-copy.txt", "copy")
    assert res["content-length"] == "4"
    assert up.get(root + "test-copy.txt") == "copy"
    res = up.copy(root + "test-copy.txt", root + "test-copy1.txt")
    assert res["content-length"] == "4"
    assert up.get(root + "test-copy.txt") == "copy"
    assert up.get(root + "test-copy1.txt") == "copy"
    up.delete(root + "test-copy.txt")
    up.delete(root + "test-copy1.txt")


def test_put(up: upyun.UpYun, root: str, test_png: Path) -> None:
    with open(test_png, "rb") as f:
        res = up.put(root + "test.png", f, checksum=False)
    size = test_png.stat().st_size
    assert {k: res[k] for k in ("frames", "width", "file-type", "height")} == {
        "frames": "1",
        "width": "1000",
        "file-type": "PNG",
        "height": "410",
    }
    assert res["content-length"] == str(size)
    info = up.getinfo(root + "test.png")
    assert isinstance(info, dict)
    assert info["file-size"] == str(size)
    assert info["file-type"] == "file"
    up.delete(root + "test.png")
    assert status_of(up.getinfo, root + "test.png") == 404


def test_put_with_checksum(up: upyun.UpYun, root: str, test_png: Path, tmp_path: Path) -> None:
    with open(test_png, "rb") as f:
        before = upyun.make_content_md5(f)
        up.put(root + "test.png", f, checksum=True)
    with open(tmp_path / "get.png", "wb") as f:
        up.get(root + "test.png", f)
    with open(tmp_path / "get.png", "rb") as f:
        after = upyun.make_content_md5(f)
    assert before == after
    up.delete(root + "test.png")
    assert status_of(up.getinfo, root + "test.png") == 404


@pytest.fixture
def resume_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(collections, "Callable", collections.abc.Callable, raising=False)


def resume_round_trip(
    up: upyun.UpYun, root: str, tmp_path: Path, name: str, size: int, **kwargs: Any
) -> None:
    """Upstream's test_resume* body: a sparse file of ``size`` bytes plus a tail, put with
    ``need_resume`` (sequential multi-part), read back identical, then deleted."""
    source = tmp_path / name
    with open(source, "w") as f:
        f.seek(size)
        f.write(kwargs.pop("tail", uuid.uuid4().hex))
    with open(source, "rb") as f:
        before = upyun.make_content_md5(f)
        up.put(root + name, f, checksum=True, need_resume=True, **kwargs)
    with open(tmp_path / "get.txt", "wb") as f:
        up.get(root + name, f)
    with open(tmp_path / "get.txt", "rb") as f:
        after = upyun.make_content_md5(f)
    assert before == after
    up.delete(root + name)
    assert status_of(up.getinfo, root + name) == 404


@pytest.mark.usefixtures("resume_sdk")
def test_resume(up: upyun.UpYun, root: str, tmp_path: Path) -> None:
    resume_round_trip(up, root, tmp_path, "resume.txt", 15 * 1024 * 1024)


@pytest.mark.usefixtures("resume_sdk")
def test_resume_small(up: upyun.UpYun, root: str, tmp_path: Path) -> None:
    resume_round_trip(up, root, tmp_path, "small-resume.txt", 300 * 1024)


@pytest.mark.usefixtures("resume_sdk")
def test_resume_store(up: upyun.UpYun, root: str, tmp_path: Path) -> None:
    resume_round_trip(
        up,
        root,
        tmp_path,
        "resume_store.txt",
        15 * 1024 * 1024,
        tail="abcdefghijklmnopqrstuvwxyz",
        headers={"X-Upyun-Multi-Type": "text/plain"},
        store=FileStore(str(tmp_path / "records")),
    )


def test_multi(up: upyun.UpYun, root: str) -> None:
    uploader = up.init_multi_uploader(root + "multi")
    md5s = ["", "", ""]
    data = os.urandom(512 * 1024)
    md5s[2] = upyun.make_content_md5(data)
    uploader.upload(2, data)
    data = os.urandom(1024 * 1024)
    md5s[0] = upyun.make_content_md5(data)
    uploader.upload(0, data)
    data = os.urandom(1024 * 1024)
    md5s[1] = upyun.make_content_md5(data)
    uploader.upload(1, data)
    multi_md5 = upyun.make_content_md5("".join(md5s).encode())
    uploader.complete(multi_md5=multi_md5)
    up.delete(root + "multi")


def test_multi_list_uploaded_parts(up: upyun.UpYun, root: str) -> None:
    """master's test; 2.5.5 has no ``upload_id=``/``list_uploaded_parts`` yet, so their bodies
    (upyun/multi.py on master) are spelt with 2.5.5's own ``rest.do_http_request``."""
    import json

    uploader = up.init_multi_uploader(root + "multi")
    uploader.upload(2, os.urandom(512 * 1024))
    uploader.upload(0, os.urandom(1024 * 1024))
    upload_id = uploader.uuid
    assert isinstance(upload_id, str) and len(upload_id) == 36  # master refuses any other length
    # master: init_multi_uploader(key, upload_id=...) then list_uploaded_parts(), which is this
    body = up.up_rest.do_http_request(
        key=root + "multi", method="GET", headers={"X-Upyun-Multi-Uuid": upload_id}
    )
    parts = json.loads(body)["parts"]
    assert len(parts) == 2
    assert parts[0]["id"] == 0
    assert parts[1]["id"] == 2
    assert (parts[0]["size"], parts[1]["size"]) == (1024 * 1024, 512 * 1024)
    uploader.cancel()  # the folder must be empty for the teardown


def test_mkdir(up: upyun.UpYun, root: str) -> None:
    up.mkdir(root + "test")
    res = up.getinfo(root + "test")
    assert isinstance(res, dict)
    assert res["file-type"] == "folder"
    up.delete(root + "test")
    assert status_of(up.getinfo, root + "test") == 404


def test_getlist(up: upyun.UpYun, root: str, test_png: Path) -> None:
    up.mkdir(root + "test")
    with open(test_png, "rb") as f:
        up.put(root + "test.png", f, checksum=False)
    size = str(test_png.stat().st_size)
    res = up.getlist(root)
    assert isinstance(res, list)
    assert len(res) == 2
    a, b = (res[0], res[1]) if res[0]["type"] == "F" else (res[1], res[0])
    assert a == {"time": a["time"], "type": "F", "name": "test", "size": "0"}
    assert b == {"time": b["time"], "type": "N", "name": "test.png", "size": size}
    lines = up.iterlist(root)
    assert isinstance(lines, types.GeneratorType)
    for line in lines:
        if line["type"] == "F":
            assert (line["name"], line["size"]) == ("test", "0")
        else:
            assert (line["type"], line["name"], line["size"]) == ("N", "test.png", size)
    up.delete(root + "test")
    up.delete(root + "test.png")
    assert status_of(up.getlist, root + "test") == 404


def test_delete(up: upyun.UpYun, root: str, test_png: Path) -> None:
    up.mkdir(root + "test")
    with open(test_png, "rb") as f:
        up.put(root + "test/test.png", f, checksum=False)
    assert status_of(up.delete, root + "test") in (503, 403)
    up.delete(root + "test/test.png")
    up.delete(root + "test")
    assert status_of(up.getinfo, root + "test") == 404


def test_put_with_gmkerl(up: upyun.UpYun, root: str, test_png: Path) -> None:
    with open(test_png, "rb") as f:
        res = up.put(root + "test.png", f, checksum=False, headers={"x-gmkerl-rotate": "90"})
    assert {k: res[k] for k in ("frames", "width", "file-type", "height")} == {
        "frames": "1",
        "width": "410",
        "file-type": "PNG",
        "height": "1000",
    }
    up.delete(root + "test.png")
    assert status_of(up.getinfo, root + "test.png") == 404


def test_handler_progressbar(up: upyun.UpYun, root: str, tmp_path: Path) -> None:
    """A 13001-byte file (upstream's test.png size) in 4096-byte chunks: 3 updates, then finish,
    both ways; the download's total comes from Content-Length."""
    source = tmp_path / "test.png"
    source.write_bytes(os.urandom(13001))
    finished: list[int] = []

    class ProgressBarHandler:
        def __init__(self, totalsize: int, params: Any) -> None:
            assert totalsize == 13001
            self.readtimes = 0
            self.totalsize = totalsize

        def update(self, readsofar: int) -> None:
            self.readtimes += 1
            assert readsofar <= self.totalsize

        def finish(self) -> None:
            assert self.readtimes == 3
            finished.append(self.readtimes)

    up.up_rest.chunksize = 4096
    with open(source, "rb") as f:
        up.put(root + "test.png", f, handler=ProgressBarHandler, params=None)
    with open(tmp_path / "get.png", "wb") as f:
        up.get(root + "test.png", f, handler=ProgressBarHandler, params=None)
    assert finished == [3, 3]
    up.delete(root + "test.png")
    assert status_of(up.getinfo, root + "test.png") == 404


def test_filelike_object_flask(up: upyun.UpYun, root: str) -> None:
    class ProgressBarHandler:
        def __init__(self, totalsize: int, params: Any) -> None:
            assert totalsize == 13

        def finish(self) -> None:
            pass

    f = io.BytesIO(b"www.upyun.com")
    res = up.put(root + "test.txt", f, checksum=True, handler=ProgressBarHandler, params=None)
    assert not {"width", "height", "frames", "file-type"} & set(res)  # not an image
    assert res["content-md5"] == hashlib.md5(b"www.upyun.com").hexdigest()
    f.close()
    up.delete(root + "test.txt")


def test_filelike_object_django(up: upyun.UpYun, root: str) -> None:
    class DjangoFile(io.BytesIO):
        def __len__(self) -> int:
            return len(self.getvalue())

    f = DjangoFile(b"www.upyun.com")
    res = up.put(root + "test.txt", f, checksum=False)
    assert not {"width", "height", "frames", "file-type"} & set(res)
    f.close()
    assert up.get(root + "test.txt") == "www.upyun.com"
    up.delete(root + "test.txt")


def test_put_form(
    server: LiveServer, up: upyun.UpYun, bucket: BucketCredentials, root: str, test_png: Path
) -> None:
    size = str(test_png.stat().st_size)

    def put(client: upyun.UpYun, **kwargs: Any) -> None:
        with open(test_png, "rb") as f:
            res = client.put(root + "test.png", f, checksum=False, form=True, **kwargs)
        assert res["code"] == 200
        assert (res["image-height"], res["image-width"], res["image-frames"], res["image-type"]) == (
            410,
            1000,
            1,
            "PNG",
        )
        info = up.getinfo(root + "test.png")
        assert isinstance(info, dict)
        assert (info["file-size"], info["file-type"]) == (size, "file")
        up.delete(root + "test.png")
        assert status_of(up.getinfo, root + "test.png") == 404

    other = upyun.UpYun(
        bucket.bucket, bucket.operator, bucket.password, timeout=100, endpoint=server.endpoint
    )
    with Receiver() as receiver:
        put(up)
        put(up, **{"allow-file-type": "jpg,jpeg,png", "notify-url": receiver.url("/post")})
        assert wait_until(lambda: len(receiver.requests) == 1, timeout=10)
    put(other)


def test_put_form_placeholder(up: upyun.UpYun, root: str, test_png: Path) -> None:
    with open(test_png, "rb") as f:
        up.put(root + "{filename}{filename}.{suffix}{.suffix}", f, form=True)
    rname = "testtest.png.png"
    info = up.getinfo(root + rname)
    assert isinstance(info, dict)
    assert (info["file-size"], info["file-type"]) == (str(test_png.stat().st_size), "file")
    up.delete(root + rname)
    assert status_of(up.getinfo, root + rname) == 404

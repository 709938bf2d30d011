"""UPYUN multi-part uploads (spec §4) with the real SDK against a live server.

* ``multi.py`` (``init_multi_uploader``): parallel, out-of-order parts, complete with the whole
  file's MD5, cancel.
* ``resume.py`` (``put(..., need_resume=True)``): sequential parts. On Python 3.11 the SDK trips
  over ``collections.Callable`` (removed in 3.10) after every part; the ``resume_sdk`` fixture puts
  that one alias back (``collections.abc.Callable``) and otherwise runs the SDK's own code, so the
  requests are exactly resume.py's (same headers, same order, same error branches). Its resume
  record (``MemoryStore``) is edited to reach the error branches: an out-of-date part id, a uuid
  already completed, an unknown uuid; a file changed mid-upload gives ``file md5 not match``. On
  those last two the SDK has a second bug (see ``sdk_service_error``): a TypeError replaces the
  service error (which we find in its context) and the record it meant to drop stays stored.
"""

from __future__ import annotations

import collections
import collections.abc
import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
import upyun
from upyun.resume import MemoryStore

from mediagate.config import Settings
from mediagate.core.buckets import BucketCredentials
from mediagate.core.gateway import Gateway
from tests.conftest import LiveServer, staging_files
from tests.protocols.upyun.rest_client import object_uri, signed

MIB = 1024 * 1024
PART = 256 * 1024


@pytest.fixture
def up(server: LiveServer, bucket: BucketCredentials) -> upyun.UpYun:
    return upyun.UpYun(bucket.bucket, bucket.operator, bucket.password, endpoint=server.endpoint)


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


@pytest.fixture
def resume_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's one Python 3.11 incompatibility, undone (see the module docstring)."""
    monkeypatch.setattr(collections, "Callable", collections.abc.Callable, raising=False)


def read(up: upyun.UpYun, key: str) -> bytes:
    sink = io.BytesIO()
    up.get(key, sink)
    return sink.getvalue()


def visible(up: upyun.UpYun, key: str) -> bool:
    try:
        up.getinfo(key)
    except upyun.UpYunServiceException as exc:
        assert exc.status == 404
        return False
    return True


def headers_of(items: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in items}


# -- multi.py: parallel, out of order ----------------------------------------------------------------


def test_parts_out_of_order_complete_with_the_file_md5(up: upyun.UpYun, admin: Gateway) -> None:
    data = os.urandom(2 * MIB + 123_457)
    uploader = up.init_multi_uploader("/multi/big.bin", part_size=MIB, file_size=len(data))
    assert len(uploader.uuid) == 36  # a UUID, as the newer SDK requires when resuming by upload id
    for n in (2, 0, 1):
        uploader.upload(n, data[n * MIB : (n + 1) * MIB])
    assert not visible(up, "/multi/big.bin")
    assert up.getlist("/") == []  # not even its folder exists before complete
    answer = uploader.complete(multi_md5=hashlib.md5(data).hexdigest())
    assert answer["content-md5"] == hashlib.md5(data).hexdigest()
    assert read(up, "/multi/big.bin") == data
    assert admin.catalog.get_session(UUID(uploader.uuid).hex) is not None  # kept as "completed" ...
    assert admin.catalog.parts(UUID(uploader.uuid).hex) == []  # ... without its parts


def test_a_part_sent_twice_is_replaced(up: upyun.UpYun) -> None:
    data = os.urandom(MIB + 10)
    uploader = up.init_multi_uploader("/again.bin", part_size=MIB, file_size=len(data))
    uploader.upload(1, data[MIB:])
    uploader.upload(0, os.urandom(MIB))
    uploader.upload(0, data[:MIB])
    uploader.complete()
    assert read(up, "/again.bin") == data


def test_content_type_and_metadata_come_from_the_initiate(
    up: upyun.UpYun, admin: Gateway, bucket: BucketCredentials
) -> None:
    uploader = up.init_multi_uploader(
        "/typed.dat",
        headers={"X-Upyun-Multi-Type": "video/x-test", "x-upyun-meta-origin": "camera"},
        part_size=MIB,
    )
    uploader.upload(0, b"abc")
    assert uploader.complete()["meta-origin"] == "camera"
    obj = admin.catalog.get_object(admin.catalog.require_bucket(bucket.bucket).id, "typed.dat")
    assert obj is not None and obj.mime == "video/x-test" and obj.meta == {"origin": "camera"}


def test_wrong_multi_md5_is_refused_and_shows_nothing(up: upyun.UpYun, server_home: Settings) -> None:
    data = os.urandom(MIB + 5)
    uploader = up.init_multi_uploader("/md5.bin", part_size=MIB, file_size=len(data))
    uploader.upload(0, data[:MIB])
    uploader.upload(1, data[MIB:])
    with pytest.raises(upyun.UpYunServiceException) as err:
        uploader.complete(multi_md5=hashlib.md5(b"something else").hexdigest())
    assert err.value.status == 400
    assert '"msg":"file md5 not match"' in err.value.err
    assert not visible(up, "/md5.bin")
    assert staging_files(server_home.home) == []


def test_complete_with_the_md5_of_the_parts_md5s(up: upyun.UpYun) -> None:
    """The other reading of X-Upyun-Multi-MD5 (the SDK's own test_multi computes it)."""
    parts = [os.urandom(MIB), os.urandom(MIB), os.urandom(1000)]
    uploader = up.init_multi_uploader("/md5s.bin")
    for n in (2, 0, 1):
        uploader.upload(n, parts[n])
    joined = "".join(hashlib.md5(p).hexdigest() for p in parts)
    uploader.complete(multi_md5=hashlib.md5(joined.encode()).hexdigest())
    assert read(up, "/md5s.bin") == b"".join(parts)


def test_answers_are_204_with_a_uuid_and_parts_can_be_listed(
    client: httpx.Client, bucket: BucketCredentials
) -> None:
    """The node SDK takes only 204 from initiate and upload, 204/201 from complete; GET with the
    uuid lists the parts so far (python SDK master's list_uploaded_parts, go SDK's
    ListMultipartParts), from X-Upyun-Part-Id on when given."""
    uri = object_uri(bucket.bucket, "listed.bin")
    r = signed(
        client,
        bucket,
        "PUT",
        uri,
        headers={"X-Upyun-Multi-Stage": "initiate", "X-Upyun-Multi-Disorder": "true"},
    )
    assert (r.status_code, r.content) == (204, b"")
    upload_id = r.headers["x-upyun-multi-uuid"]
    assert str(UUID(upload_id)) == upload_id  # 36 characters, UUID form

    def put_part(n: int, data: bytes) -> httpx.Response:
        h = {"X-Upyun-Multi-Stage": "upload", "X-Upyun-Multi-Uuid": upload_id, "X-Upyun-Part-Id": str(n)}
        return signed(client, bucket, "PUT", uri, content=data, headers=h)

    def listed(**extra: str) -> httpx.Response:
        return signed(client, bucket, "GET", uri, headers={"X-Upyun-Multi-Uuid": upload_id, **extra})

    assert listed().json() == {"parts": []}
    assert put_part(2, b"c" * 10).status_code == 204
    assert put_part(0, b"a" * 20).status_code == 204
    r = listed()
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert r.json() == {
        "parts": [
            {"id": 0, "size": 20, "etag": hashlib.md5(b"a" * 20).hexdigest()},
            {"id": 2, "size": 10, "etag": hashlib.md5(b"c" * 10).hexdigest()},
        ]
    }
    assert [p["id"] for p in listed(**{"X-Upyun-Part-Id": "1"}).json()["parts"]] == [2]
    assert UUID(upload_id).hex == UUID(listed().headers["x-upyun-multi-uuid"]).hex
    hyphenless = signed(client, bucket, "GET", uri, headers={"X-Upyun-Multi-Uuid": UUID(upload_id).hex})
    assert len(hyphenless.json()["parts"]) == 2  # the 32-digit spelling names the same upload
    other = signed(
        client,
        bucket,
        "GET",
        object_uri(bucket.bucket, "other.bin"),
        headers={"X-Upyun-Multi-Uuid": upload_id},
    )
    assert other.status_code == 404 and other.json()["msg"] == "x-upyun-multi-uuid not found"
    assert put_part(1, b"b" * 5).status_code == 204
    done = signed(
        client,
        bucket,
        "PUT",
        uri,
        headers={"X-Upyun-Multi-Stage": "complete", "X-Upyun-Multi-Uuid": upload_id},
    )
    assert done.status_code == 204, done.text
    assert done.headers["x-upyun-content-length"] == "35"
    assert listed().json()["msg"] == "file already upload"


def test_complete_with_a_missing_part_is_refused(up: upyun.UpYun) -> None:
    uploader = up.init_multi_uploader("/holes.bin", part_size=MIB, file_size=3 * MIB)
    uploader.upload(0, b"\0" * MIB)
    uploader.upload(2, b"\2" * MIB)
    with pytest.raises(upyun.UpYunServiceException) as err:
        uploader.complete()
    assert err.value.status == 400
    assert "parts missing: 1" in err.value.err
    uploader.upload(1, b"\1" * MIB)
    uploader.complete()
    assert read(up, "/holes.bin") == b"\0" * MIB + b"\1" * MIB + b"\2" * MIB


def test_a_part_of_the_wrong_size_is_refused(up: upyun.UpYun, server_home: Settings) -> None:
    uploader = up.init_multi_uploader("/sizes.bin", part_size=MIB, file_size=MIB + 100)
    for n, body in ((0, b"x" * (MIB - 1)), (1, b"y" * 101), (2, b"z")):
        with pytest.raises(upyun.UpYunServiceException) as err:
            uploader.upload(n, body)
        assert err.value.status == 400, n
    assert staging_files(server_home.home) == []


def test_cancel_aborts_the_upload_and_keeps_the_existing_object(
    up: upyun.UpYun, admin: Gateway, client: httpx.Client, bucket: BucketCredentials
) -> None:
    up.put("/keep.txt", b"the original")
    uploader = up.init_multi_uploader("/keep.txt", part_size=MIB)
    uploader.upload(0, b"a replacement that never completes")
    uploader.cancel()
    assert up.get("/keep.txt") == "the original"
    assert admin.catalog.get_session(UUID(uploader.uuid).hex) is None
    with pytest.raises(upyun.UpYunServiceException) as err:
        uploader.upload(1, b"late part")
    assert err.value.status == 404
    assert '"msg":"x-upyun-multi-uuid not found"' in err.value.err
    # a plain DELETE still deletes
    r = signed(client, bucket, "DELETE", object_uri(bucket.bucket, "keep.txt"))
    assert r.status_code == 200
    assert not visible(up, "/keep.txt")


# -- resume.py: sequential ---------------------------------------------------------------------------------


def sample(tmp_path: Path, size: int, name: str = "sample.bin") -> tuple[Path, bytes]:
    data = os.urandom(size)
    path = tmp_path / name
    path.write_bytes(data)
    return path, data


@pytest.mark.usefixtures("resume_sdk")
def test_resume_upload_with_checksums(up: upyun.UpYun, tmp_path: Path) -> None:
    path, data = sample(tmp_path, 5 * PART + 1000)
    seen: list[tuple[int, int, bool]] = []
    with open(path, "rb") as f:
        answer = headers_of(
            up.put(
                "/resume/a.bin",
                f,
                checksum=True,
                need_resume=True,
                part_size=PART,
                store=MemoryStore(),
                reporter=lambda done, total, end: seen.append((done, total, end)),
            )
        )
    assert answer["x-upyun-next-part-id"] == "-1"
    assert answer["content-md5"] == hashlib.md5(data).hexdigest()
    # the SDK reports the next offset after each part, and the last part's start with done=True
    assert seen == [(PART * n, len(data), False) for n in range(1, 6)] + [(5 * PART, len(data), True)]
    assert read(up, "/resume/a.bin") == data


@pytest.mark.usefixtures("resume_sdk")
@pytest.mark.parametrize("size", [0, 1000, PART])
def test_resume_upload_of_a_single_part_file(up: upyun.UpYun, tmp_path: Path, size: int) -> None:
    path, data = sample(tmp_path, size)
    with open(path, "rb") as f:
        up.put("/single.bin", f, checksum=True, need_resume=True, part_size=PART, store=MemoryStore())
    assert read(up, "/single.bin") == data


@pytest.mark.usefixtures("resume_sdk")
def test_resume_upload_survives_a_server_restart(up: upyun.UpYun, server: LiveServer, tmp_path: Path) -> None:
    path, data = sample(tmp_path, 4 * PART + 7)
    restarted: list[int] = []

    def restart_after_two_parts(done: int, total: int, end: bool) -> None:
        if done == 2 * PART and not restarted:
            restarted.append(done)
            server.restart()

    with open(path, "rb") as f:
        up.put(
            "/restart.bin",
            f,
            checksum=True,
            need_resume=True,
            part_size=PART,
            store=MemoryStore(),
            reporter=restart_after_two_parts,
        )
    assert restarted == [2 * PART]
    assert read(up, "/restart.bin") == data


class Interrupt(Exception):
    pass


def interrupted_upload(up: upyun.UpYun, path: Path, store: MemoryStore, key: str, after: int) -> None:
    """Upload until ``after`` parts are acknowledged, then stop as a crashed client would; the
    SDK's record (next part, uuid) is left in ``store``."""

    def stop(done: int, total: int, end: bool) -> None:
        if done >= after * PART:
            raise Interrupt

    with open(path, "rb") as f, pytest.raises(Interrupt):
        up.put(key, f, checksum=True, need_resume=True, part_size=PART, store=store, reporter=stop)


def sdk_service_error(exc: BaseException) -> upyun.UpYunServiceException:
    """The service error behind the SDK's second bug: on the two "drop the record" answers it
    clears its copy of the record, then its ``__exit__`` formats ``None`` with ``{:>10}`` and raises
    TypeError while the UpYunServiceException it meant to raise is being handled."""
    context = exc.__context__
    assert isinstance(context, upyun.UpYunServiceException), repr(exc)
    return context


def only_record(store: MemoryStore) -> dict[str, Any]:
    assert len(store.dict) == 1
    record: dict[str, Any] = next(iter(store.dict.values()))
    return record


@pytest.mark.usefixtures("resume_sdk")
def test_an_interrupted_upload_resumes_where_it_stopped(up: upyun.UpYun, tmp_path: Path) -> None:
    path, data = sample(tmp_path, 4 * PART + 99)
    store = MemoryStore()
    interrupted_upload(up, path, store, "/later.bin", after=2)
    assert only_record(store)["next_id"] == 2
    assert not visible(up, "/later.bin")
    seen: list[int] = []
    with open(path, "rb") as f:
        up.put("/later.bin", f, checksum=True, need_resume=True, part_size=PART, store=store,
               reporter=lambda done, total, end: seen.append(done))  # fmt: skip
    assert seen == [3 * PART, 4 * PART, 4 * PART]  # parts 2, 3, 4: parts 0 and 1 were not sent again
    assert read(up, "/later.bin") == data
    assert store.dict == {}


@pytest.mark.usefixtures("resume_sdk")
def test_part_id_error_tells_the_sdk_where_to_resume(up: upyun.UpYun, tmp_path: Path) -> None:
    path, data = sample(tmp_path, 4 * PART + 1)
    store = MemoryStore()
    interrupted_upload(up, path, store, "/behind.bin", after=3)
    record = only_record(store)
    record.update(next_id=1, start=PART, end=2 * PART)  # the client believes part 1 is next
    with open(path, "rb") as f:
        up.put("/behind.bin", f, checksum=True, need_resume=True, part_size=PART, store=store)
    assert read(up, "/behind.bin") == data


@pytest.mark.usefixtures("resume_sdk")
def test_part_id_error_with_every_part_present_leads_to_complete(
    up: upyun.UpYun, tmp_path: Path, client: httpx.Client, bucket: BucketCredentials
) -> None:
    path, data = sample(tmp_path, 3 * PART)
    store = MemoryStore()
    interrupted_upload(up, path, store, "/all.bin", after=2)
    record = only_record(store)
    # the last part arrives (from elsewhere) without complete: every part is now present
    r = signed(
        client,
        bucket,
        "PUT",
        object_uri(bucket.bucket, "all.bin"),
        content=data[2 * PART :],
        headers={
            "X-Upyun-Multi-Stage": "upload",
            "X-Upyun-Multi-Uuid": record["multi_uuid"],
            "X-Upyun-Part-Id": "2",
        },
    )
    assert r.status_code == 204, r.text
    assert r.headers["x-upyun-next-part-id"] == "-1"
    assert not visible(up, "/all.bin")
    record.update(next_id=0, start=0, end=PART)  # the client believes part 0 is next
    with open(path, "rb") as f:
        up.put("/all.bin", f, checksum=True, need_resume=True, part_size=PART, store=store)
    assert read(up, "/all.bin") == data


@pytest.mark.usefixtures("resume_sdk")
def test_a_repeated_completion_is_file_already_upload(up: upyun.UpYun, tmp_path: Path) -> None:
    path, data = sample(tmp_path, 2 * PART + 5)
    store = MemoryStore()
    interrupted_upload(up, path, store, "/twice.bin", after=1)
    store_key, record = next(iter(store.dict.items()))
    stale = dict(record)
    with open(path, "rb") as f:
        up.put("/twice.bin", f, checksum=True, need_resume=True, part_size=PART, store=store)
    assert store.dict == {}
    store.set(store_key, stale)  # a client that never saw the answer to its completion
    with open(path, "rb") as f:
        answer = headers_of(
            up.put("/twice.bin", f, checksum=True, need_resume=True, part_size=PART, store=store)
        )
    assert answer["x-request-id"]  # the SDK returned the error's headers as its success
    assert read(up, "/twice.bin") == data


@pytest.mark.usefixtures("resume_sdk")
def test_an_unknown_uuid_is_x_upyun_multi_uuid_not_found(up: upyun.UpYun, tmp_path: Path) -> None:
    path, _ = sample(tmp_path, 3 * PART)
    store = MemoryStore()
    interrupted_upload(up, path, store, "/lost.bin", after=1)
    only_record(store)["multi_uuid"] = "0" * 32
    with open(path, "rb") as f, pytest.raises(TypeError) as err:
        up.put("/lost.bin", f, checksum=True, need_resume=True, part_size=PART, store=store)
    answer = sdk_service_error(err.value)
    assert answer.status == 404
    assert '"msg":"x-upyun-multi-uuid not found"' in answer.err
    assert not visible(up, "/lost.bin")


@pytest.mark.usefixtures("resume_sdk")
def test_a_file_changed_mid_upload_is_file_md5_not_match(
    up: upyun.UpYun, tmp_path: Path, server_home: Settings
) -> None:
    path, _ = sample(tmp_path, 3 * PART + 10)

    def tamper(done: int, total: int, end: bool) -> None:
        if done == PART:
            with open(path, "r+b") as f:
                f.seek(2 * PART)
                f.write(b"changed!")

    store = MemoryStore()
    with open(path, "rb") as f, pytest.raises(TypeError) as err:
        up.put(
            "/changed.bin", f, checksum=True, need_resume=True, part_size=PART, store=store, reporter=tamper
        )
    answer = sdk_service_error(err.value)
    assert answer.status == 400
    assert '"msg":"file md5 not match"' in answer.err
    assert not visible(up, "/changed.bin")
    assert staging_files(server_home.home) == []

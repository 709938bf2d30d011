"""Wantu block upload against live servers: a ~9 MiB file in 3 parts sent out of order, across a
restart and a second process on the same home; cancel; abandoned sessions collected."""

from __future__ import annotations

import hashlib
import os
import uuid

import httpx

from mediagate.config import Settings
from mediagate.core.buckets import BucketCredentials
from mediagate.core.gateway import Gateway
from tests.conftest import LiveServer
from tests.protocols.wantu.client import WantuClient, md5

MIB = 1024 * 1024


def _ids(r: httpx.Response) -> tuple[str, str]:
    body = r.json()
    return body["uploadId"], body["id"]


def test_three_parts_out_of_order_across_restart_and_processes(
    wantu: WantuClient, server: LiveServer, server_home: Settings
) -> None:
    data = os.urandom(9 * MIB + 12345)
    blocks = [data[: 3 * MIB], data[3 * MIB : 6 * MIB], data[6 * MIB :]]
    auth = wantu.authorization(wantu.policy(returnBody="${fileSize}:${name}"))
    init = wantu.block_init(blocks[0], auth, {"dir": "/big", "name": "file.bin", "meta-kind": "test"})
    assert init.status_code == 200, init.text
    body = init.json()
    upload_id, id_ = _ids(init)
    assert len(upload_id) == 32 and upload_id == upload_id.upper() and uuid.UUID(id_)
    assert body["partNumber"] == 1 and body["eTag"] == md5(blocks[0]).upper()
    assert (body["dir"], body["name"]) == ("/big", "file.bin")

    r3 = wantu.block_upload(blocks[2], auth, upload_id, id_, 3)
    assert r3.status_code == 200, r3.text
    assert r3.json()["eTag"] == md5(blocks[2]).upper() and r3.json()["partNumber"] == 3

    server.restart()
    other = LiveServer(server_home.home, env={"MEDIAGATE_ALLOW_PRIVATE_CALLBACKS": "1"}).start()
    try:
        second = WantuClient(other.url, wantu.ak, wantu.sk, wantu.namespace)
        r2 = second.block_upload(blocks[1], auth, upload_id, id_, 2)
        assert r2.status_code == 200, r2.text
        second.close()
    finally:
        other.stop()
    assert "Traceback" not in other.log()

    parts = [(n, md5(b).upper()) for n, b in ((3, blocks[2]), (1, blocks[0]), (2, blocks[1]))]
    done = wantu.block_complete(auth, upload_id, id_, parts, md5(data))
    assert done.status_code == 200, done.text
    result = done.json()
    assert (result["dir"], result["name"], result["uploadId"], result["id"]) == (
        "/big",
        "file.bin",
        upload_id,
        id_,
    )
    assert result["returnBody"] == f"{len(data)}:file.bin"
    assert result["url"] == f"{server.url}/{wantu.namespace}/big/file.bin"
    got = hashlib.md5()
    with httpx.stream("GET", result["url"]) as response:
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            got.update(chunk)
    assert got.hexdigest() == md5(data)
    # the session is over: completing again finds nothing
    again = wantu.block_complete(auth, upload_id, id_, parts, md5(data))
    assert again.status_code == 404 and again.json()["code"] == "ResourceNotFound"


def test_part_numbers_as_ints_and_a_replaced_part(wantu: WantuClient) -> None:
    auth = wantu.authorization(wantu.policy(name="r.bin"))
    init = wantu.block_init(b"AAAA", auth)
    upload_id, id_ = _ids(init)
    assert wantu.block_upload(b"wrong", auth, upload_id, id_, 2).status_code == 200
    assert wantu.block_upload(b"BBBB", auth, upload_id, id_, 2).status_code == 200  # replaces part 2
    import base64
    import json

    parts = base64.urlsafe_b64encode(
        json.dumps(
            [{"eTag": md5(b"AAAA"), "partNumber": 1}, {"eTag": md5(b"BBBB").upper(), "partNumber": 2}]
        ).encode()
    ).decode()
    done = wantu.block_complete(auth, upload_id, id_, parts, md5(b"AAAABBBB"))
    assert done.status_code == 200, done.text
    assert httpx.get(done.json()["url"]).content == b"AAAABBBB"


def test_cancel_removes_the_upload(wantu: WantuClient, admin: Gateway) -> None:
    auth = wantu.authorization(wantu.policy(name="c.bin"))
    upload_id, id_ = _ids(wantu.block_init(b"first", auth))
    assert wantu.block_upload(b"second", auth, upload_id, id_, 2).status_code == 200
    cancel = wantu.block_cancel(auth, upload_id, id_)
    assert cancel.status_code == 200 and cancel.content == b""
    assert admin.catalog.get_session(upload_id.lower()) is None
    assert admin.catalog.parts(upload_id.lower()) == []
    late = wantu.block_upload(b"third", auth, upload_id, id_, 3)
    assert late.status_code == 404 and late.json()["code"] == "ResourceNotFound"
    parts = [(1, md5(b"first")), (2, md5(b"second"))]
    assert wantu.block_complete(auth, upload_id, id_, parts, md5(b"firstsecond")).status_code == 404
    assert wantu.block_cancel(auth, upload_id, id_).status_code == 404


def test_abandoned_sessions_are_collected(
    wantu: WantuClient, admin: Gateway, server_home: Settings, bucket: BucketCredentials
) -> None:
    auth = wantu.authorization(wantu.policy(name="old.bin"))
    upload_id, id_ = _ids(wantu.block_init(b"abandoned", auth))
    impatient = Gateway(
        server_home.model_copy(update={"session_max_age_seconds": 0}),
        admin.catalog,
        admin.storage,
        admin.secrets,
    )
    impatient.collect_garbage()
    assert admin.catalog.get_session(upload_id.lower()) is None
    r = wantu.block_upload(b"more", auth, upload_id, id_, 2)
    assert r.status_code == 404 and r.json()["code"] == "ResourceNotFound"


def test_another_namespace_cannot_touch_the_upload(
    wantu: WantuClient, server: LiveServer, admin: Gateway
) -> None:
    from mediagate.core.buckets import create_bucket

    auth = wantu.authorization(wantu.policy(name="mine.bin"))
    upload_id, id_ = _ids(wantu.block_init(b"mine", auth))
    stranger_creds = create_bucket(admin.catalog, admin.secrets, f"s{uuid.uuid4().hex[:12]}")
    stranger = WantuClient(
        server.url, stranger_creds.access_key_id, stranger_creds.secret_access_key, stranger_creds.bucket
    )
    r = stranger.block_cancel(stranger.authorization(), upload_id, id_)
    assert r.status_code == 404 and r.json()["code"] == "ResourceNotFound"
    stranger.close()
    assert admin.catalog.get_session(upload_id.lower()) is not None

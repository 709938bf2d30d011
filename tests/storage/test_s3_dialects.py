"""Every dialect's large uploads on S3, through a live server: each body is more than three S3
parts (5 MiB parts here) and goes to one multipart upload while it arrives, so the tests check
the object that comes out, and that nothing is left behind: no open multipart upload, no staging
file. Refused uploads (a bad MD5, a body over the limit mid-stream, a client that goes away)
leave no object either. The requests are built by the tests' own dialect clients."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import time
import uuid
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import upyun

from mediagate.config import Settings
from mediagate.core.buckets import BucketCredentials, create_bucket
from mediagate.core.gateway import Gateway
from mediagate.services import build_gateway
from tests.conftest import LiveServer, make_home, staging_files
from tests.protocols.imagex.test_hostile import apply, commit
from tests.protocols.upyun import forms
from tests.protocols.upyun.rest_client import object_uri, sign, signed
from tests.protocols.wantu.client import WantuClient, md5
from tests.support.moto import MotoServer, new_bucket_name, s3_client

MIB = 1024 * 1024
PART = 5 * MIB
BIG = 4 * PART + 4321  # five S3 parts
LIMIT = 30 * MIB


@pytest.fixture(scope="module")
def home(s3_server: MotoServer, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    env = s3_server.env(new_bucket_name(), prefix="blobs")
    fields: dict[str, Any] = {k.removeprefix("MEDIAGATE_").lower(): v for k, v in env.items()}
    return make_home(tmp_path_factory.mktemp("s3home"), **fields, s3_part_size=PART, max_upload_size=LIMIT)


@pytest.fixture(scope="module")
def live(s3_server: MotoServer, home: Settings) -> Iterator[LiveServer]:
    env = s3_server.env(home.s3_bucket, prefix="blobs")
    env |= {"MEDIAGATE_S3_PART_SIZE": str(PART), "MEDIAGATE_MAX_UPLOAD_SIZE": str(LIMIT)}
    server = LiveServer(home.home, env=env).start()
    yield server
    server.stop()
    assert "Traceback" not in server.log(), server.log()[-5000:]


@pytest.fixture(scope="module")
def admin(home: Settings) -> Iterator[Gateway]:
    gw = build_gateway(home, migrate=False)
    yield gw
    gw.catalog.close()


@pytest.fixture
def creds(admin: Gateway) -> BucketCredentials:
    return create_bucket(admin.catalog, admin.secrets, f"d{uuid.uuid4().hex[:12]}")


def open_uploads(s3_server: MotoServer, home: Settings) -> list[str]:
    listing = s3_client(s3_server).list_multipart_uploads(Bucket=home.s3_bucket)
    return [u["Key"] for u in listing.get("Uploads", [])]


def blob_keys(s3_server: MotoServer, home: Settings) -> set[str]:
    listing = s3_client(s3_server).list_objects_v2(Bucket=home.s3_bucket)
    return {o["Key"] for o in listing.get("Contents", [])}


def assert_stored(live: LiveServer, admin: Gateway, creds: BucketCredentials, key: str, data: bytes) -> None:
    got = httpx.get(f"{live.url}/{creds.bucket}/{key}", timeout=60)
    assert got.status_code == 200
    assert hashlib.md5(got.content).hexdigest() == hashlib.md5(data).hexdigest()
    obj = admin.catalog.get_object(admin.catalog.get_bucket(creds.bucket).id, key)  # type: ignore[union-attr]
    assert obj is not None and obj.size == len(data) and obj.md5 == hashlib.md5(data).hexdigest()


def assert_nothing_left(s3_server: MotoServer, home: Settings) -> None:
    deadline = time.monotonic() + 10
    while open_uploads(s3_server, home) and time.monotonic() < deadline:
        time.sleep(0.1)  # a client gone is noticed on the server's next read
    assert open_uploads(s3_server, home) == []
    assert staging_files(home.home) == []


# -- each dialect ------------------------------------------------------------------------------------


def test_upyun_rest_put(
    live: LiveServer, admin: Gateway, creds: BucketCredentials, s3_server: MotoServer, home: Settings
) -> None:
    data = os.urandom(BIG)
    with httpx.Client(base_url=live.url, timeout=60) as client:
        r = signed(client, creds, "PUT", object_uri(creds.bucket, "/big/rest.bin"), content=data)
    assert r.status_code == 200, r.text
    assert_stored(live, admin, creds, "big/rest.bin", data)
    assert_nothing_left(s3_server, home)


@pytest.mark.parametrize("md5_ok", [True, False])
def test_upyun_form(
    live: LiveServer,
    admin: Gateway,
    creds: BucketCredentials,
    s3_server: MotoServer,
    home: Settings,
    md5_ok: bool,
) -> None:
    """Policy first, then the file: it streams to S3; a wrong ``content-md5`` in the policy is
    found after the last byte, and the upload is aborted."""
    data = os.urandom(BIG)
    before = blob_keys(s3_server, home)
    declared = hashlib.md5(data).hexdigest() if md5_ok else "0" * 32
    policy = forms.policy_of(creds, "/big/form.bin", content_md5=declared)
    body, ctype = forms.multipart(
        [("policy", policy), ("signature", forms.signature(creds, policy)), ("file", ("f.bin", data))]
    )
    r = httpx.post(f"{live.url}/{creds.bucket}", content=body, headers={"Content-Type": ctype}, timeout=60)
    if md5_ok:
        assert r.status_code == 200, r.text
        assert_stored(live, admin, creds, "big/form.bin", data)
    else:
        assert 400 <= r.status_code < 500, r.text
        assert blob_keys(s3_server, home) == before
    assert_nothing_left(s3_server, home)


def test_upyun_multipart(
    live: LiveServer, admin: Gateway, creds: BucketCredentials, s3_server: MotoServer, home: Settings
) -> None:
    data = os.urandom(BIG)
    up = upyun.UpYun(creds.bucket, creds.operator, creds.password, endpoint=live.endpoint, timeout=60)
    up.put("/big/multi.bin", io.BytesIO(data), multipart=True, part_size=MIB)
    assert_stored(live, admin, creds, "big/multi.bin", data)
    assert_nothing_left(s3_server, home)


def test_wantu_blocks(
    live: LiveServer, admin: Gateway, creds: BucketCredentials, s3_server: MotoServer, home: Settings
) -> None:
    data = os.urandom(BIG)
    blocks = [data[i : i + PART] for i in range(0, len(data), PART)]
    client = WantuClient(live.url, creds.access_key_id, creds.secret_access_key, creds.bucket)
    try:
        auth = client.authorization(client.policy(dir="/big", name="blocks.bin"))
        init = client.block_init(blocks[0], auth)
        assert init.status_code == 200, init.text
        upload_id, id_ = init.json()["uploadId"], init.json()["id"]
        for n, block in enumerate(blocks[1:], 2):
            r = client.block_upload(block, auth, upload_id, id_, n)
            assert r.status_code == 200, r.text
        parts = [(n, md5(b).upper()) for n, b in enumerate(blocks, 1)]
        done = client.block_complete(auth, upload_id, id_, parts, md5(data))
        assert done.status_code == 200, done.text
    finally:
        client.close()
    assert_stored(live, admin, creds, "big/blocks.bin", data)
    assert_nothing_left(s3_server, home)


def test_imagex_put_and_chunked_parts(
    live: LiveServer, admin: Gateway, creds: BucketCredentials, s3_server: MotoServer, home: Settings
) -> None:
    for chunked in (False, True):
        data = os.urandom(BIG)
        addr = apply(live, creds)
        [info] = addr["StoreInfos"]
        auth = {"Authorization": info["Auth"]}
        url = f"{live.url}/{info['StoreUri']}"
        if chunked:
            upload_id = httpx.put(f"{url}?uploads", headers=auth).json()["payload"]["uploadID"]
            chunks = [data[i : i + PART] for i in range(0, len(data), PART)]
            for n, chunk in enumerate(chunks):
                r = httpx.put(
                    f"{url}?partNumber={n}&uploadID={upload_id}", headers=auth, content=chunk, timeout=60
                )
                assert r.status_code == 200, r.text
            merge = ",".join(f"{n}:{zlib.crc32(c):08x}" for n, c in enumerate(chunks)).encode()
            merged = httpx.put(f"{url}?uploadID={upload_id}", headers=auth, content=merge, timeout=60)
            assert merged.json()["success"] == 0, merged.text
        else:
            headers = auth | {"Content-CRC32": f"{zlib.crc32(data):08x}"}
            r = httpx.put(url, headers=headers, content=data, timeout=60)
            assert r.status_code == 200, r.text
        assert commit(live, creds, addr["SessionKey"]).status_code == 200
        sid, name = info["StoreUri"].removeprefix("tos-cn-i-").split("/", 1)
        assert sid == creds.bucket
        assert_stored(live, admin, creds, name, data)
    assert_nothing_left(s3_server, home)


# -- refusals leave nothing ----------------------------------------------------------------------------


def test_a_bad_content_md5_leaves_no_object(
    live: LiveServer, creds: BucketCredentials, s3_server: MotoServer, home: Settings
) -> None:
    before = blob_keys(s3_server, home)
    with httpx.Client(base_url=live.url, timeout=60) as client:
        r = signed(
            client,
            creds,
            "PUT",
            object_uri(creds.bucket, "/bad.bin"),
            content=os.urandom(BIG),
            headers={"Content-MD5": "0" * 32},
        )
    assert 400 <= r.status_code < 500, r.text
    assert blob_keys(s3_server, home) == before
    assert_nothing_left(s3_server, home)


def test_a_body_over_the_limit_mid_stream_leaves_no_object(
    live: LiveServer, creds: BucketCredentials, s3_server: MotoServer, home: Settings
) -> None:
    before = blob_keys(s3_server, home)

    def body() -> Iterator[bytes]:  # chunked: no length to refuse up front
        for _ in range(LIMIT // MIB + 4):
            yield os.urandom(MIB)

    uri = object_uri(creds.bucket, "/huge.bin")
    with httpx.Client(base_url=live.url, timeout=60) as client:
        r = client.put(uri, content=body(), headers=sign(creds, "PUT", uri))
    assert r.status_code == 413, r.text
    assert blob_keys(s3_server, home) == before
    assert_nothing_left(s3_server, home)


def test_a_client_gone_mid_upload_leaves_no_object(
    live: LiveServer, creds: BucketCredentials, s3_server: MotoServer, home: Settings
) -> None:
    before = blob_keys(s3_server, home)
    uri = object_uri(creds.bucket, "/gone.bin")
    headers = sign(creds, "PUT", uri) | {"Host": live.endpoint, "Content-Length": str(4 * PART)}
    with socket.create_connection(("127.0.0.1", live.port)) as sock:
        head = f"PUT {uri} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        sock.sendall(head.encode())
        for _ in range(2 * PART // MIB + 2):  # past the first part: streaming to S3 by now
            sock.sendall(os.urandom(MIB))
        deadline = time.monotonic() + 10
        while not open_uploads(s3_server, home) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert open_uploads(s3_server, home) != []
    # hung up without the rest of the body
    assert_nothing_left(s3_server, home)
    assert blob_keys(s3_server, home) == before


def test_an_imagex_put_with_a_wrong_crc32_leaves_no_part(
    live: LiveServer, creds: BucketCredentials, s3_server: MotoServer, home: Settings
) -> None:
    before = blob_keys(s3_server, home)
    data = os.urandom(BIG)
    [info] = apply(live, creds)["StoreInfos"]
    headers = {"Authorization": info["Auth"], "Content-CRC32": f"{zlib.crc32(data) ^ 1:08x}"}
    r = httpx.put(f"{live.url}/{info['StoreUri']}", headers=headers, content=data, timeout=60)
    assert 400 <= r.status_code < 500, r.text
    assert blob_keys(s3_server, home) == before
    assert_nothing_left(s3_server, home)

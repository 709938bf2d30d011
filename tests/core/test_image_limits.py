"""An upload checked as an image (a width/height range, or only image types allowed) must fit the
image limits (``media_max_width``/``height``/``pixels``/``frames``), read from its header without
decoding: a 50000x50000 PNG is refused with the dialect's 4xx, and nothing is stored."""

from __future__ import annotations

import struct
import zlib
from functools import cache

import httpx

from mediagate.core.buckets import BucketCredentials
from mediagate.core.gateway import Gateway
from tests.conftest import LiveServer, staging_files
from tests.protocols.upyun.forms import keys_in, upload, wait_until
from tests.protocols.wantu.client import WantuClient

SIDE = 50000


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@cache
def huge_png() -> bytes:
    """A valid 50000x50000 1-bit greyscale PNG (2.5 gigapixels) of ~300 KB: all-zero rows."""
    ihdr = struct.pack(">IIBBBBB", SIDE, SIDE, 1, 0, 0, 0, 0)
    row = bytes(1 + (SIDE + 7) // 8)
    packer = zlib.compressobj(9)
    block = row * 1000
    idat = b"".join(packer.compress(block) for _ in range(SIDE // 1000)) + packer.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_upyun_form_refuses_a_huge_image_under_a_width_range(
    server: LiveServer, admin: Gateway, bucket: BucketCredentials
) -> None:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        r = upload(
            client, bucket, huge_png(), filename="bomb.png", key="/bomb.png", image_width_range="1,100000"
        )
        assert 400 <= r.status_code < 500, r.text
        body = r.json()
        assert body["code"] == r.status_code and "50000x50000" in body["message"]
        # an ordinary image under the same policy is stored: the range itself still works
        small = upload(
            client, bucket, small_png(), filename="ok.png", key="/ok.png", image_width_range="1,100000"
        )
        assert small.status_code == 200, small.text
    assert keys_in(admin, bucket.bucket) == ["ok.png"]
    assert wait_until(lambda: not staging_files(server.home))


def test_upyun_form_refuses_a_huge_image_when_only_image_extensions_are_allowed(
    server: LiveServer, admin: Gateway, bucket: BucketCredentials
) -> None:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        r = upload(
            client, bucket, huge_png(), filename="bomb.png", key="/bomb.png", allow_file_type="jpg,png"
        )
        assert 400 <= r.status_code < 500, r.text
        assert r.json()["code"] == r.status_code and "50000x50000" in r.json()["message"]
        any_file = upload(
            client, bucket, huge_png(), filename="bomb.png", key="/f.png", allow_file_type="png,pdf"
        )
        assert any_file.status_code == 200, any_file.text  # not images only: a file like any other
    assert keys_in(admin, bucket.bucket) == ["f.png"]


def test_upyun_form_stores_the_same_bytes_when_nothing_checks_them_as_an_image(
    server: LiveServer, admin: Gateway, bucket: BucketCredentials
) -> None:
    """The limit is about images we agreed to treat as images; a plain upload is a file."""
    with httpx.Client(base_url=server.url, timeout=60) as client:
        r = upload(client, bucket, huge_png(), filename="bomb.png", key="/plain.png")
        assert r.status_code == 200, r.text
        assert r.json()["image-width"] == SIDE  # reported from the header, never decoded
    assert keys_in(admin, bucket.bucket) == ["plain.png"]


def test_wantu_refuses_a_huge_image_when_only_images_are_allowed(
    server: LiveServer, admin: Gateway, bucket: BucketCredentials
) -> None:
    wantu = WantuClient(server.url, bucket.access_key_id, bucket.secret_access_key, bucket.bucket)
    try:
        r = wantu.upload(huge_png(), policy=wantu.policy(mimeLimit="image/*"), fields={"name": "bomb.png"})
        assert 400 <= r.status_code < 500, r.text
        assert "50000x50000" in r.json()["message"]
        ok = wantu.upload(small_png(), policy=wantu.policy(mimeLimit="image/*"), fields={"name": "ok.png"})
        assert ok.status_code == 200, ok.text
    finally:
        wantu.close()
    assert keys_in(admin, bucket.bucket) == ["ok.png"]


def small_png() -> bytes:
    ihdr = struct.pack(">IIBBBBB", 8, 8, 1, 0, 0, 0, 0)
    idat = zlib.compress(bytes(2) * 8)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")

"""The seed's own Python example (Dreamina skill), run unchanged but for its https URLs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from mediagate.core.buckets import BucketCredentials
from mediagate.core.gateway import Gateway
from tests.conftest import LiveServer
from tests.protocols.imagex.conftest import SEED_SERVICE_ID, png, web_session

SEED = Path(__file__).with_name("dreamina_seed.py")


def load_seed(base: str) -> dict[str, Any]:
    """The seed's code with its three https:// URLs pointed at ``base`` (http, loopback)."""
    text = SEED.read_text()
    rewrites = {
        "'https://jimeng.jianying.com/mweb/v1/get_upload_token'": f"'{base}/mweb/v1/get_upload_token'",
        "'https://imagex.bytedanceapi.com/'": f"'{base}/'",
        'f"https://{upload_addr': 'f"http://{upload_addr',
    }
    for old, new in rewrites.items():
        assert old in text, old
        text = text.replace(old, new)
    assert "https://" not in text
    namespace: dict[str, Any] = {"__name__": "dreamina_seed"}
    exec(compile(text, str(SEED), "exec"), namespace)
    return namespace


def test_seed_script_uploads_and_the_bytes_read_back(
    server: LiveServer, admin: Gateway, seed_bucket: BucketCredentials, tmp_path: Path
) -> None:
    seed = load_seed(server.url)
    data = png(5, 4)
    path = tmp_path / "cat.png"
    path.write_bytes(data)
    sessionid = web_session(admin, SEED_SERVICE_ID)

    image_uri = seed["upload_image"](sessionid, str(path))

    assert image_uri.startswith(f"tos-cn-i-{SEED_SERVICE_ID}/")
    name = image_uri.split("/", 1)[1]
    got = httpx.get(f"{server.url}/{SEED_SERVICE_ID}/{name}")
    assert got.status_code == 200
    assert got.content == data


def test_seed_script_crc_without_leading_zeros(
    server: LiveServer, admin: Gateway, seed_bucket: BucketCredentials, tmp_path: Path
) -> None:
    """The seed formats its CRC32 with '%x' (no zero padding): find bytes whose CRC is < 0x10000000."""
    import zlib

    data = b""
    for i in range(10000):
        data = b"hello %d" % i
        if zlib.crc32(data) < 0x10000000:
            break
    assert zlib.crc32(data) < 0x10000000
    path = tmp_path / "small.bin"
    path.write_bytes(data)
    seed = load_seed(server.url)
    image_uri = seed["upload_image"](web_session(admin, SEED_SERVICE_ID), str(path))
    name = image_uri.split("/", 1)[1]
    assert httpx.get(f"{server.url}/{SEED_SERVICE_ID}/{name}").content == data

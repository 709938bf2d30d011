"""libvips (pyvips, ~13 MB of RSS) is loaded only when an image needs it.

A fresh interpreter builds the app as the server does, takes UPYUN FORM uploads of a text file
through the whole ASGI stack (into a plain bucket and into one with a normalise-on-ingest policy,
which runs the processing step on every upload), and reports whether ``pyvips`` was imported;
then it uploads a PNG, which must load it (so the observation is a real one).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

SCRIPT = r"""
import asyncio, base64, hashlib, io, json, sys, time
from pathlib import Path

import httpx
from PIL import Image

from mediagate.app import create_app
from mediagate.config import Settings
from mediagate.core.buckets import create_bucket
from mediagate.services import init_home

settings = Settings(home=Path(sys.argv[1]))
init_home(settings)
app = create_app(settings)
gw = app.state.gateway
plain = create_bucket(gw.catalog, gw.secrets, "plain")
normalised = create_bucket(gw.catalog, gw.secrets, "normalised")
gw.catalog.update_bucket_settings("normalised", {"normalise": {"strip": True}})
seen = {"imported_at_start": "pyvips" in sys.modules}


async def upload(creds, key, data):
    policy = base64.b64encode(json.dumps(
        {"bucket": creds.bucket, "save-key": key, "expiration": int(time.time()) + 600}
    ).encode()).decode()
    fields = {"policy": policy,
              "signature": hashlib.md5(f"{policy}&{creds.form_api_secret}".encode()).hexdigest()}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://mediagate") as client:
        r = await client.post(f"/{creds.bucket}", data=fields, files={"file": (key[1:], data)})
    assert r.status_code == 200, r.text
    return r.json()


async def main():
    for creds in (plain, normalised):
        answer = await upload(creds, "/notes.txt", b"plain text, not an image\n" * 100)
        assert "image-width" not in answer, answer
    seen["after_text"] = "pyvips" in sys.modules
    png = io.BytesIO()
    Image.new("RGB", (40, 30), "red").save(png, "PNG")
    answer = await upload(plain, "/red.png", png.getvalue())
    assert answer["image-width"] == 40, answer
    seen["after_image"] = "pyvips" in sys.modules
    gw.catalog.close()


asyncio.run(main())
print(json.dumps(seen))
"""


def run_fresh(script: str, arg: Path) -> Any:
    """Run ``script`` in a fresh interpreter (nothing imported yet); its last line of JSON."""
    done = subprocess.run(
        [sys.executable, "-c", script, str(arg)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_non_image_uploads_do_not_load_libvips(tmp_path: Path) -> None:
    seen = run_fresh(SCRIPT, tmp_path / "home")
    assert seen == {"imported_at_start": False, "after_text": False, "after_image": True}


JPEG_SCRIPT = r"""
import io, json, sys
from pathlib import Path

from PIL import Image

from mediagate.core.errors import UnsupportedMedia
from mediagate.media.limits import ImageLimits
from mediagate.media.process import process_file
from mediagate.media.spec import parse_thumb

work = Path(sys.argv[1])
src = work / "a.jpg"
Image.new("RGB", (400, 300), "red").save(src, "JPEG")
made = process_file(src, parse_thumb("/fw/64"), work / "out.jpg", limits=ImageLimits())
data = bytearray(src.read_bytes())
dht = data.index(b"\xff\xc4")
data[dht + 5 : dht + 21] = b"\xff" * 16  # a bogus Huffman table: only the decode finds out
bad = work / "bad.jpg"
bad.write_bytes(bytes(data))
try:
    process_file(bad, parse_thumb("/fw/64"), work / "bad-out.jpg", limits=ImageLimits())
    refused = False
except UnsupportedMedia:
    refused = True
print(json.dumps({"size": [made.width, made.height], "refused": refused, "pyvips": "pyvips" in sys.modules}))
"""


def test_jpeg_thumbnails_on_pillows_path_do_not_load_libvips(tmp_path: Path) -> None:
    """JPEG -> JPEG downscales (the common on-the-fly case) take Pillow's draft path, header read
    included; a decoder error there does not load libvips just to be classified either."""
    seen = run_fresh(JPEG_SCRIPT, tmp_path)
    assert seen == {"size": [64, 48], "refused": True, "pyvips": False}

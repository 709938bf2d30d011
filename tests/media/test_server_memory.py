"""The live server's memory stays bounded while 20 large images are processed at once.

Half the requests are on-the-fly reads (``GET key!/spec``), half UPYUN FORM uploads with
``x-gmkerl-thumb``; the specs mix Pillow's JPEG draft path, libvips shrink-on-load and full decodes
(crop + rotate, PNG output) of 4000x3000 JPEGs (36 MB decoded each). Decodes are bounded by
``media_max_concurrent``; glibc arenas and freed heap are bounded by ``mediagate.media._vips``.
Measured on the server process with psutil: before those, the peak grew ~125 MB and ~80 MB stayed
resident afterwards; now ~80 MB and ~20 MB.
"""

from __future__ import annotations

import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import psutil
import pytest
from PIL import Image

from mediagate.core.buckets import BucketCredentials
from tests.conftest import LiveServer
from tests.protocols.upyun.forms import upload

MiB = 1024 * 1024
SPECS = ("/fw/256", "/fw/256/format/webp", "/crop/3000x2000a10a10/rotate/90", "/fw/1000/format/png")
PEAK_GROWTH_MB = 120
SETTLED_GROWTH_MB = 50


def large_jpegs(count: int) -> list[bytes]:
    """Distinct 4000x3000 JPEGs of ~6 MB (noise: nothing compresses away)."""
    base = Image.effect_noise((4000, 3000), 40).convert("RGB")
    out = []
    for i in range(count):
        base.paste((i * 12, 255 - i * 12, 0), (0, 0, 64, 64))
        buf = io.BytesIO()
        base.save(buf, "JPEG", quality=85)
        out.append(buf.getvalue())
    return out


class PeakRss:
    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.mark.slow
def test_twenty_large_images_in_parallel_through_the_server(
    server: LiveServer, bucket: BucketCredentials
) -> None:
    images = large_jpegs(20)
    with httpx.Client(base_url=server.url, timeout=120) as client:
        for i in range(10):
            r = upload(client, bucket, images[i], key=f"/src{i}.jpg", filename=f"src{i}.jpg")
            assert r.status_code == 200, r.text
        # warm up both decoders once, so imports and code pages are not counted as growth
        assert client.get(f"/{bucket.bucket}/src0.jpg!/fw/64").status_code == 200
        assert client.get(f"/{bucket.bucket}/src0.jpg!/fw/64/format/webp").status_code == 200
    proc = psutil.Process(server.process.pid if server.process else 0)
    time.sleep(0.5)
    before = proc.memory_info().rss

    def job(i: int) -> tuple[int, tuple[int, int]]:
        spec = SPECS[i % len(SPECS)]
        with httpx.Client(base_url=server.url, timeout=300) as c:
            if i < 10:
                r = c.get(f"/{bucket.bucket}/src{i}.jpg!{spec}")
                with Image.open(io.BytesIO(r.content)) as im:
                    return r.status_code, im.size
            r = upload(c, bucket, images[i], key=f"/up{i}.jpg", filename=f"up{i}.jpg", x_gmkerl_thumb=spec)
            body = r.json()
            return r.status_code, (body.get("image-width"), body.get("image-height"))

    with PeakRss(proc.pid) as rss, ThreadPoolExecutor(20) as pool:
        results = list(pool.map(job, range(20)))
    expected = {SPECS[0]: (256, 192), SPECS[1]: (256, 192), SPECS[2]: (2000, 3000), SPECS[3]: (1000, 750)}
    for i, (status, size) in enumerate(results):
        assert status == 200, (i, status)
        assert size == expected[SPECS[i % len(SPECS)]], (i, size)
    time.sleep(1.0)
    peak = (rss.peak - before) / MiB
    settled = (proc.memory_info().rss - before) / MiB
    print(f"server RSS growth: peak {peak:.0f} MB, settled {settled:.0f} MB")
    assert peak < PEAK_GROWTH_MB, f"server RSS grew {peak:.0f} MB at the peak"
    assert settled < SETTLED_GROWTH_MB, f"server kept {settled:.0f} MB after the burst"

"""Processor: 20 large images at once stay within a bounded memory, at most max_concurrent decodes."""

from __future__ import annotations

import gc
from pathlib import Path

import anyio
import psutil
from PIL import Image

from mediagate.media.limits import ImageLimits
from mediagate.media.process import Processor
from mediagate.media.spec import parse_thumb


def test_twenty_large_images_in_parallel_memory_bounded(tmp_path: Path) -> None:
    src = tmp_path / "big.png"
    # 3000x2000 RGB: ~18 MB decoded each; 20 at once unbounded would be ~360 MB
    Image.effect_noise((3000, 2000), 64).convert("RGB").save(src, compress_level=1)
    processor = Processor(ImageLimits(max_concurrent=2))
    spec = parse_thumb("/crop/2800x1800a10a10/rotate/90/format/png")  # full decode, no shrink-on-load
    proc = psutil.Process()
    gc.collect()
    before = proc.memory_info().rss
    peak = before

    async def main() -> None:
        nonlocal peak
        done = anyio.Event()

        async def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, proc.memory_info().rss)
                await anyio.sleep(0.01)

        async with anyio.create_task_group() as tg:
            tg.start_soon(sample)
            async with anyio.create_task_group() as work:
                for i in range(20):
                    work.start_soon(processor.process, src, spec, tmp_path / f"out{i}.png")
            done.set()

    anyio.run(main)
    for i in range(20):
        assert Image.open(tmp_path / f"out{i}.png").size == (1800, 2800)
    growth = (peak - before) / 1024**2
    # unbounded, 20 decodes of 18 MB each plus their rotate buffers would need ~700 MB; measured ~200
    assert growth < 300, f"RSS grew {growth:.0f} MB"

"""Thumbnail benchmark: a 4000x3000 JPEG to a 256-px thumbnail, in-process, by each engine.

Prints the median ms per image for mediagate's process_file, pyvips ``thumbnail`` and Pillow
``draft()+thumbnail()``, and ``vipsthumbnail`` when installed; the HTTP and thumbor parts say
why they are skipped. Figures, not a timed test.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyvips
from PIL import Image

from mediagate.media.limits import ImageLimits
from mediagate.media.process import process_file
from mediagate.media.spec import parse_thumb

RUNS = 7


def timed(fn: Callable[[], object]) -> float:
    fn()  # warm-up
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="thumbs-"))
    src = work / "big.jpg"
    Image.effect_mandelbrot((4000, 3000), (-2.0, -1.2, 1.0, 1.2), 80).convert("RGB").save(src, quality=90)
    out = work / "out.jpg"
    spec = parse_thumb("/max/256/quality/85")
    limits = ImageLimits()

    def pillow() -> None:
        with Image.open(src) as im:
            im.draft("RGB", (256, 256))
            im.thumbnail((256, 256))
            im.save(out, quality=85)

    results = {
        "mediagate process_file": timed(lambda: process_file(src, spec, out, limits=limits)),
        "pyvips thumbnail": timed(lambda: pyvips.Image.thumbnail(str(src), 256).jpegsave(str(out), Q=85)),
        "Pillow draft+thumbnail": timed(pillow),
    }
    cli = shutil.which("vipsthumbnail")
    if cli:
        results["vipsthumbnail CLI"] = timed(
            lambda: subprocess.run([cli, str(src), "-s", "256", "-o", str(out)], check=True)
        )
    else:
        print("vipsthumbnail: skipped: not installed (Debian libvips-tools)")
    best = min(results["pyvips thumbnail"], results["Pillow draft+thumbnail"])
    for name, ms in results.items():
        print(f"{name:28s} {ms:8.1f} ms   {ms / best:5.2f}x the faster of pyvips/Pillow")
    ratio = results["mediagate process_file"] / best
    print(f"{'PASS' if ratio <= 1.1 else 'FAIL'}: in-process <= 1.1x ({ratio:.2f}x)")
    print("HTTP on-the-fly: skipped: on-the-fly path not available in this bench yet")
    print("thumbor: skipped: not attempted (needs its own service and Python deps; see issue 6)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

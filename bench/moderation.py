"""Moderation benchmark: per-image time through mediagate's ``score_file`` vs a bare onnxruntime
session on the same model file, in one run, candidates interleaved (the machine is shared).

Per picture (a 640x480 and a 4000x3000 photo-like JPEG, a 1000x1000 PNG; drawn here), median ms:

* ``mediagate score_file``: size check, header probe and bomb guard, libvips shrink-on-load
  decode, Pillow 256x256 resize, crop, JPEG round trip, inference;
* ``bare: Pillow + session``: the model's reference preprocessing written out with Pillow and
  numpy (full decode, no checks) into its own ``onnxruntime.InferenceSession``;
* ``bare: session.run only``: that session on a tensor made once (inference alone, the floor).

Target (issue 11): mediagate <= 1.2x the bare Pillow + session pipeline. The ratio to inference
alone is printed too.

    .venv/bin/python bench/moderation.py [--runs 15] [--strict]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
from _common import load_average
from PIL import Image

from mediagate.media.moderation import _run, _session, model_path, score_file

TARGET = 1.2
MEAN_BGR = np.array([104, 117, 123], dtype=np.float32)


def photo(path: Path, width: int, height: int, seed: int) -> Path:
    """A smooth random colour field plus grain: compresses and decodes like a photograph."""
    rng = np.random.default_rng(seed)
    field = rng.normal(size=(height // 40 + 2, width // 40 + 2, 3))
    small = ((field - field.min()) / np.ptp(field) * 255).astype(np.uint8)
    big = np.asarray(Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC), dtype=np.int16)
    grain = rng.integers(-12, 13, size=big.shape, dtype=np.int16)
    Image.fromarray(np.clip(big + grain, 0, 255).astype(np.uint8)).save(path, quality=90)
    return path


def bare_tensor(path: Path) -> np.ndarray[Any, np.dtype[np.float32]]:
    """The reference preprocessing, as a user of bare onnxruntime would write it."""
    with Image.open(path) as im:
        pic = im.convert("RGB").resize((256, 256), resample=Image.Resampling.BILINEAR)
    crop = pic.crop((16, 16, 240, 240))
    buf = io.BytesIO()
    crop.save(buf, format="JPEG")
    buf.seek(0)
    pixels = np.asarray(Image.open(buf), dtype=np.float32)
    return np.ascontiguousarray(pixels[:, :, ::-1] - MEAN_BGR)


def timed(candidates: dict[str, Callable[[], object]], runs: int) -> dict[str, float]:
    for fn in candidates.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in candidates}
    names = list(candidates)
    for r in range(runs):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            start = time.perf_counter()
            candidates[name]()
            times[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args()

    print(load_average())
    print(f"onnxruntime {onnxruntime.__version__}, model {model_path()}")
    bare = onnxruntime.InferenceSession(str(model_path()), providers=["CPUExecutionProvider"])
    name = bare.get_inputs()[0].name
    ours = _session()

    missed = False
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        pictures = {
            "640x480 jpeg": photo(work / "small.jpg", 640, 480, 1),
            "4000x3000 jpeg": photo(work / "large.jpg", 4000, 3000, 2),
            "1000x1000 png": photo(work / "square.png", 1000, 1000, 3),
        }
        header = ("picture", "mediagate", "bare Pillow", "run only", "ratio", "/run")
        print("{:<16} {:>10} {:>12} {:>9} {:>6} {:>5}".format(*header))
        for label, path in pictures.items():
            ready = bare_tensor(path)[None, ...]
            ms = timed(
                {
                    "ours": lambda p=path: score_file(p),
                    "bare": lambda p=path: bare.run(None, {name: bare_tensor(p)[None, ...]}),
                    "run": lambda t=ready: bare.run(None, {name: t}),
                },
                args.runs,
            )
            ratio = ms["ours"] / ms["bare"]
            print(
                f"{label:<16} {ms['ours']:>8.1f}ms {ms['bare']:>10.1f}ms {ms['run']:>7.1f}ms "
                f"{ratio:>5.2f}x {ms['ours'] / ms['run']:>4.2f}x"
            )
            reference = _run(ours, bare_tensor(path))
            print(
                " " * 17
                + f"score: mediagate {score_file(path).score:.4f}, reference pipeline {reference:.4f}"
            )
            ok = ratio <= TARGET
            missed |= not ok
            verdict = "PASS" if ok else "FAIL"
            print(f"{verdict}: {label}: mediagate {ratio:.2f}x the bare pipeline (target <= {TARGET}x)")
    return 1 if missed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())

"""Task benchmark (issue 11), started with the media layer: one figure so far.

* transcode: mediagate's :func:`mediagate.media.video.transcode` to Wantu's
  ``video-generic-AVC-320x240`` preset vs the very same ffmpeg argv (from
  :func:`transcode_command`) run bare with ``subprocess.run``. mediagate's run also probes the
  source, stages and publishes the output: that overhead is what the ratio measures.
  Target: <= 1.1x. Runs are interleaved; the table gives the median seconds.

Still to add by the task queue (issue 11): thumb tasks/s vs the processing function in a loop
(>= 0.9x), imgaudit per image vs a bare onnxruntime session (<= 1.2x), queue overhead per no-op
task on the embedded default (<= 2 ms), server RSS with 4 transcodes and 8 audits queued.

    .venv/bin/python bench/tasks.py [--seconds 10] [--size 640x480] [--runs 5] [--strict]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mediagate.media.video import VideoLimits, ffmpeg_exe, probe, transcode, transcode_command
from mediagate.media.wantu_presets import encode_spec

PRESET = "video-generic-AVC-320x240"


def make_source(path: Path, size: str, seconds: float) -> Path:
    """A grainy test pattern with a tone, H.264/AAC: the encoder has real work to do."""
    args = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y"]
    args += ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate=30:duration={seconds},noise=alls=8:allf=t"]
    args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}"]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", "-pix_fmt", "yuv420p", "-c:a", "aac"]
    subprocess.run([*args, str(path)], check=True)
    return path


def bench_transcode(work: Path, seconds: float, size: str, runs: int) -> float:
    src = make_source(work / "source.mp4", size, seconds)
    spec = encode_spec(PRESET, use_preset=True)
    limits = VideoLimits()
    bare_stage = work / "bare"
    bare_stage.mkdir()
    argv = transcode_command(spec, src, probe(src), bare_stage, "out", threads=limits.threads)
    ours: list[float] = []
    bare: list[float] = []
    for i in range(runs):
        for which in ("ours", "bare") if i % 2 == 0 else ("bare", "ours"):  # alternate who goes first
            t0 = time.perf_counter()
            if which == "ours":
                outputs = transcode(spec, src, work / "ours", name="out", limits=limits)
                ours.append(time.perf_counter() - t0)
                assert outputs[0].stat().st_size > 0
                shutil.rmtree(work / "ours")
            else:
                subprocess.run(argv, check=True)
                bare.append(time.perf_counter() - t0)
    m_ours, m_bare = statistics.median(ours), statistics.median(bare)
    ratio = m_ours / m_bare
    print(f"source {size} {seconds:g} s -> {PRESET}, {runs} interleaved runs, load {os.getloadavg()[0]:.2f}")
    print(f"{'':24}{'median s':>10}{'min s':>10}")
    print(f"{'mediagate transcode()':24}{m_ours:10.3f}{min(ours):10.3f}")
    print(f"{'bare ffmpeg, same argv':24}{m_bare:10.3f}{min(bare):10.3f}")
    print(f"ratio {ratio:.3f}x  target <= 1.1x: {'PASS' if ratio <= 1.1 else 'FAIL'}")
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--strict", action="store_true", help="exit non-zero when a target is missed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mediagate-bench-tasks-") as tmp:
        ratio = bench_transcode(Path(tmp), args.seconds, args.size, args.runs)
    return 1 if args.strict and ratio > 1.1 else 0


if __name__ == "__main__":
    sys.exit(main())

"""Task benchmark (issue 11): transcode overhead and server memory under queued media tasks.

* transcode: mediagate's :func:`mediagate.media.video.transcode` to Wantu's
  ``video-generic-AVC-320x240`` preset vs the very same ffmpeg argv (from
  :func:`transcode_command`) run bare with ``subprocess.run``. mediagate's run also probes the
  source, stages and publishes the output: that overhead is what the ratio measures.
  Target: <= 1.1x. Runs are interleaved; the table gives the median seconds.
* server RSS: ``mediagate serve`` (its own in-process task workers, default settings) gets one
  FORM upload of a video with 4 ``naga`` transcodes in its ``apps`` and one of a 12-megapixel
  JPEG with 8 ``imgaudit`` tasks, all queued at once; psutil samples the server process every
  50 ms until all 12 are done: peak RSS of the server alone (target < 300 MB) and with its ffmpeg
  children.

The other #11 figures live beside the code they measure: ``bench/taskqueue.py`` (queue overhead
per no-op task, thumb tasks vs a process_file loop), ``bench/moderation.py`` (imgaudit vs a bare
onnxruntime session).

    .venv/bin/python bench/tasks.py [--seconds 10] [--size 640x480] [--runs 5] [--strict] [--skip-rss]
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


def bench_rss(work: Path, size: str, seconds: float) -> int:
    """Peak server RSS (bytes) while 4 transcodes and 8 audits queued at once run."""
    import io
    import threading

    import httpx
    import psutil
    from _common import Mediagate, form_fields, load_average
    from PIL import Image
    from sqlalchemy import create_engine, func, select

    from mediagate.catalog.models import Task
    from mediagate.config import Settings

    video = make_source(work / "rss.mp4", size, seconds).read_bytes()
    buf = io.BytesIO()
    Image.effect_noise((4000, 3000), 40).convert("RGB").save(buf, "JPEG", quality=90)
    photo = buf.getvalue()
    server = Mediagate(work).start()
    engine = create_engine(Settings(home=server.home).catalog_url)
    try:
        proc = psutil.Process(server.pid)
        idle = proc.memory_info().rss
        peaks = {"server": idle, "tree": idle}
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.05):
                try:
                    own = proc.memory_info().rss
                    tree = own + sum(c.memory_info().rss for c in proc.children(recursive=True))
                except psutil.Error:
                    continue
                peaks["server"], peaks["tree"] = max(peaks["server"], own), max(peaks["tree"], tree)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        transcodes = [
            {"name": "naga", "type": "video", "avopts": "/s/240p(4:3)/vb/300", "save_as": f"/out/v{n}.mp4"}
            for n in range(4)
        ]
        audits = [{"name": "imgaudit"} for _ in range(8)]
        started = time.perf_counter()
        with httpx.Client(base_url=server.url, timeout=120) as client:
            for key, data, apps in (("in/rss.mp4", video, transcodes), ("in/rss.jpg", photo, audits)):
                fields = form_fields(server.creds, key, apps=apps)
                answer = client.post(f"/{server.creds.bucket}", data=fields, files={"file": (key, data)})
                answer.raise_for_status()
        finished = select(func.count()).where(Task.status.in_(("done", "failed")))
        with engine.connect() as conn:
            while conn.execute(finished).scalar_one() < 12:
                time.sleep(0.2)
                conn.rollback()
            failed = conn.execute(select(Task.kind, Task.reason).where(Task.status == "failed")).all()
        elapsed = time.perf_counter() - started
        stop.set()
        sampler.join()
    finally:
        engine.dispose()
        server.stop()
    if failed or server.tracebacks():
        raise RuntimeError(f"tasks failed: {failed}; see {server.log}")
    mb = 1024 * 1024
    print(
        f"server RSS, 4 transcodes ({size} {seconds:g} s -> 240p(4:3)) + 8 imgaudit (12 MP JPEG) queued "
        f"at once, done in {elapsed:.1f} s, {load_average()}"
    )
    print(
        f"  idle {idle / mb:.1f} MB, peak {peaks['server'] / mb:.1f} MB "
        f"(with ffmpeg children {peaks['tree'] / mb:.1f} MB); target < 300 MB: "
        f"{'PASS' if peaks['server'] < 300 * mb else 'FAIL'}"
    )
    return peaks["server"]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--strict", action="store_true", help="exit non-zero when a target is missed")
    parser.add_argument("--skip-rss", action="store_true", help="only the transcode ratio")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mediagate-bench-tasks-") as tmp:
        ratio = bench_transcode(Path(tmp), args.seconds, args.size, args.runs)
        peak = 0 if args.skip_rss else bench_rss(Path(tmp), args.size, args.seconds)
    missed = ratio > 1.1 or peak >= 300 * 1024 * 1024
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())

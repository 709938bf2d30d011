"""Small test videos made by ffmpeg itself: each spec builds exactly the clip it reasons about."""

from __future__ import annotations

import subprocess
from pathlib import Path

from mediagate.media.video import ffmpeg_exe


def make_video(
    path: Path,
    *,
    size: str = "320x240",
    seconds: float = 2,
    rate: int = 30,
    noise: bool = True,
    audio: bool = True,
    extra: tuple[str, ...] = (),
) -> Path:
    """testsrc2 (+ grain, so encoders must spend their bitrate) and a 440 Hz sine, H.264/AAC in MP4."""
    video = f"testsrc2=size={size}:rate={rate}:duration={seconds}"
    if noise:
        video += ",noise=alls=8:allf=t"
    args = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", video]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}"]
        args += ["-c:a", "aac", "-b:a", "128k"]
    args += [
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-crf",
        "18",
        "-pix_fmt",
        "yuv420p",
        *extra,
        str(path),
    ]
    subprocess.run(args, check=True, timeout=120)
    return path

"""UPYUN ``videoaudit``: frames grabbed from the uploaded video every ``interval`` seconds, each
scored by the offline moderation model (:mod:`mediagate.media.moderation`) and saved as an object
(spec shared/specs/upyun-apps.md §1 table, §3.4, §6.15).

Parameters: ``interval`` (seconds, default 10, 1 to 3600), ``save_as`` (must contain ``{index}``,
the frame's number from 0, and end ``.jpg``/``.jpeg``/``.png``; default
``<folder>/<stem>_<task id>_{index}.jpg``), ``resize`` (``WxH``, each 16 to 4096). The callback
is imgaudit's plus ``filelist``: ``[{"result": {"porn": …}, "shot_time": s, "save_as": path}…]``
in play order (``shot_time`` = index × interval); its top-level ``result`` is the verdict of the
frame that scored highest, so a video is as bad as its worst frame.

Failures, with the callback's ``status_code``: the model not installed → 503 and how to install
it, before any frame is grabbed (never a made-up score); bad parameters → 400; not a video → 415;
ffmpeg failing → 500; past the deadline → 504 (retried). One ffmpeg pass decodes the video (a
transcoding slot, as naga's); frames are scored one at a time under imgaudit's decode bound.
"""

from __future__ import annotations

import re
import time
from pathlib import PurePosixPath
from typing import Any, Literal

from mediagate.core.errors import MediagateError
from mediagate.media.averrors import TranscodeTimeout
from mediagate.media.moderation import ModerationUnavailable, model_path
from mediagate.protocols.upyun.apps import output_key
from mediagate.protocols.upyun.imgaudit import moderator
from mediagate.protocols.upyun.naga import transcoding
from mediagate.tasks.registry import TaskContext, TaskFailed, TaskResult

KIND = "videoaudit"
DEFAULT_INTERVAL = 10.0
MAX_FRAMES = 500
_FORMATS: dict[str, Literal["jpg", "png"]] = {"jpg": "jpg", "jpeg": "jpg", "png": "png"}


def run_videoaudit(ctx: TaskContext) -> TaskResult:
    try:
        model_path()  # say so before decoding anything
    except ModerationUnavailable as exc:
        raise TaskFailed(exc.message, status=503) from None
    params = ctx.task.params
    interval = _interval(params.get("interval"))
    size = _resize(params.get("resize"))
    template, fmt = _save_as(ctx, params.get("save_as"))
    with transcoding(ctx):
        frames = _grab(ctx, interval, size, fmt)
    judge = moderator(ctx)
    outputs, filelist, worst = [], [], None
    for index, (shot, path) in enumerate(frames):
        try:
            verdict = judge.score(path)
        except ModerationUnavailable as exc:  # a damaged model shows only when it is loaded
            raise TaskFailed(exc.message, status=503) from None
        key = template.replace("{index}", str(index))
        outputs.append((key, path))
        filelist.append({"result": verdict.upyun(), "shot_time": shot, "save_as": "/" + key})
        if worst is None or verdict.score > worst.score:
            worst = verdict
    if worst is None:
        raise TaskFailed("no frame could be decoded from the video", status=415)
    return TaskResult(outputs=outputs, result={"result": worst.upyun(), "filelist": filelist})


def _grab(
    ctx: TaskContext, interval: float, size: tuple[int, int] | None, fmt: Literal["jpg", "png"]
) -> list[tuple[float, Any]]:
    from mediagate.media import video

    remaining = ctx.deadline - time.monotonic()
    if remaining <= 1:
        raise TranscodeTimeout("the task's time limit was reached before ffmpeg could start")
    threads = max(1, ctx.gateway.settings.task_transcode_threads)
    limits = video.VideoLimits(timeout=remaining, threads=threads)
    source = ctx.fetch_source()
    return video.grab_every(
        source,
        ctx.workdir / "frames",
        interval=interval,
        size=size,
        fmt=fmt,
        max_frames=MAX_FRAMES,
        name="frame",
        limits=limits,
    )


def _interval(value: Any) -> float:
    if value is None or value == "":
        return DEFAULT_INTERVAL
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = float("nan")
    if not 1 <= seconds <= 3600:  # NaN fails too
        raise TaskFailed(
            f"interval must be a number of seconds from 1 to 3600, not {str(value)[:30]!r}", status=400
        )
    return seconds


def _resize(value: Any) -> tuple[int, int] | None:
    if value is None or value == "":
        return None
    match = re.fullmatch(r"\s*(\d{1,5})x(\d{1,5})\s*", str(value))
    if match is None or not all(16 <= int(n) <= 4096 for n in match.groups()):
        raise TaskFailed(f"resize must be WxH, each 16 to 4096, not {str(value)[:30]!r}", status=400)
    return int(match.group(1)), int(match.group(2))


def _save_as(ctx: TaskContext, value: Any) -> tuple[str, Literal["jpg", "png"]]:
    """The key template (with ``{index}``) and the image format its suffix picks."""
    if not value:
        folder, name = ctx.task.source.rpartition("/")[::2]
        stem = PurePosixPath(name).stem or name
        value = f"{'/' + folder if folder else ''}/{stem}_{ctx.task.id}_{{index}}.jpg"
    text = str(value)
    if "{index}" not in text:
        raise TaskFailed("save_as must contain {index} (the frame's number, from 0)", status=400)
    fmt = _FORMATS.get(PurePosixPath(text).suffix.lstrip(".").lower())
    if fmt is None:
        raise TaskFailed("save_as must end in .jpg or .png", status=400)
    try:
        key = output_key(text, ctx.task.source)  # {filepath} … filled in, {index} kept
    except MediagateError as exc:
        raise TaskFailed(exc.message, status=400) from None
    return str(key), fmt

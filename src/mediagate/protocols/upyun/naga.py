"""UPYUN ``naga``: audio/video tasks (transcode, HLS, frame grabs, probe) of FORM ``apps`` and of
the pretreatment API, run with ffmpeg (:mod:`mediagate.media.video`).

Spec: shared/specs/upyun-apps.md §2 (``type`` + ``avopts``), §3.2 (callback), §6.10-11 (naming).

* Output keys are a function of the task, never random, so a retried attempt rewrites the same
  keys and leaves exactly one set of outputs: ``save_as`` (with ``{filepath}``/``{filename}``/
  ``{suffix}``), else ``<folder>/<stem>_<task id>.<suffix>`` beside the source. HLS: the playlist
  at that key and its segments ``<stem>-00000.ts`` … next to it. Several frame grabs:
  ``/p/img.png`` → ``/p/img1.png``, ``/p/img2.png`` … (§2.5).
* Outputs go through the gateway (``TaskResult.outputs`` → ``Gateway.publish_outputs``), committed
  with the task's ``done``; a failed ffmpeg run leaves nothing (media.video stages its files).
* At most ``settings.task_max_transcodes`` ffmpeg runs at once per process (a slot is waited for
  within the task's deadline), each with ``settings.task_transcode_threads`` threads and the time
  the task has left as its timeout.
* Concatenation (``/h/`` + source + ``/i/``, ``vconcat``/``aconcat``) and ``chain`` (each step on
  the previous step's file, in the task's work folder; only the last step's output is published).
  Files the avopts name (``/i/``, ``/h/``, ``/wmImg/``) must be objects of the same bucket: else
  the task fails with status 404 naming the path; each is copied into the work folder and bounded
  like the source (size here, duration and frame size by media.video).
* Bad ``type``/``avopts``/``save_as``: the task fails at once, status 400, with a reason naming
  the key (§6.17); a source that is not media: 415; ffmpeg failing: 500; past the deadline: 504
  (retried, like any timeout).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from mediagate.core.errors import MediagateError
from mediagate.core.keys import normalise_key, split_key
from mediagate.media.averrors import MediaTaskError, TranscodeTimeout
from mediagate.media.avopts import parse_avopts
from mediagate.media.avspec import AvJob, ChainSpec, ConcatSpec, ProbeSpec, StepJob, ThumbnailSpec
from mediagate.protocols.upyun.apps import default_key, output_key
from mediagate.tasks.registry import TaskContext, TaskFailed, TaskResult

if TYPE_CHECKING:
    from mediagate.media.video import VideoLimits

KIND = "naga"
LOCAL_NAME = "output"
"""ffmpeg's file names in the work directory; renamed to the task's keys when published."""

_slots_lock = threading.Lock()
_slots: dict[int, threading.BoundedSemaphore] = {}


def transcode_slots(count: int) -> threading.BoundedSemaphore:
    """The process-wide bound on ffmpeg runs (one semaphore per configured size)."""
    with _slots_lock:
        return _slots.setdefault(max(1, count), threading.BoundedSemaphore(max(1, count)))


def truthy(value: Any) -> bool:
    """``return_info`` as the SDKs send it: a JSON bool, 1/0, or "true"/"1"."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def run_naga(ctx: TaskContext) -> TaskResult:
    """One ``naga`` task: parse, wait for an ffmpeg slot, run, name the outputs."""
    params = ctx.task.params
    type_ = str(params.get("type") or "").strip()
    if not type_:
        raise TaskFailed(
            "'type' is required for a naga task (video, hls, audio, thumbnail, probe …)", status=400
        )
    try:
        key = output_key(params.get("save_as"), ctx.task.source)
    except MediagateError as exc:
        raise TaskFailed(exc.message, status=400) from None
    return_info = truthy(params.get("return_info"))
    try:
        job = parse_avopts(type_, str(params.get("avopts") or ""), save_as=key, return_info=return_info)
    except MediaTaskError as exc:
        raise TaskFailed(f"avopts: {exc.reason}", status=exc.status) from None
    with transcoding(ctx):
        return _run(ctx, job, key, return_info)


@contextmanager
def transcoding(ctx: TaskContext) -> Iterator[None]:
    """Hold one of the process's ffmpeg slots (waited for within the task's deadline, else 504,
    retried) while media.video runs, its failures turned into the task's: a timeout 504 and
    retried, another its own status."""
    slots = transcode_slots(ctx.gateway.settings.task_max_transcodes)
    if not slots.acquire(timeout=max(0.0, ctx.deadline - time.monotonic())):
        raise TaskFailed(
            "no transcoding slot became free within the task's time limit", status=504, retry=True
        )
    try:
        yield
    except TranscodeTimeout as exc:
        raise TaskFailed(exc.reason, status=exc.status, retry=True) from None
    except MediaTaskError as exc:
        raise TaskFailed(exc.reason, status=exc.status) from None
    finally:
        slots.release()


def _run(ctx: TaskContext, job: AvJob, key: str | None, return_info: bool) -> TaskResult:
    from mediagate.media import video

    source = ctx.fetch_source()
    if isinstance(job, ProbeSpec):  # metadata only: no file, ``info`` always (§2.2)
        return TaskResult(result={"info": video.probe(source, limits=_limits(ctx)).to_upyun()})
    extras = {path: _fetch_extra(ctx, path) for path in job.extra_paths}
    if sum(p.stat().st_size for p in extras.values()) > ctx.gateway.settings.max_upload_size:
        raise TaskFailed("the files named in avopts are larger in all than one upload may be", status=413)
    steps = job.steps if isinstance(job, ChainSpec) else (job,)
    for n, step in enumerate(steps, start=1):  # a chain: each step works on the last one's output
        last = n == len(steps)
        out = ctx.workdir / ("out" if last else f"step-{n}")
        files = _step(ctx, step, source, out, extras)
        source = files[0]
    if isinstance(step, ThumbnailSpec):
        return TaskResult(outputs=grab_keys(files, key, ctx.task.source, ctx.task.id, step.format))
    result: dict[str, Any] = {}
    if return_info:
        result["info"] = video.probe(files[0], limits=_limits(ctx), own_playlist=step.is_hls).to_upyun()
    base = key if key is not None else default_key(ctx.task.source, ctx.task.id, step.container.suffix)
    outputs = [(base, files[0])]
    if step.is_hls:  # the segments are outputs too, but the callback's ``path`` names the playlist
        outputs = hls_keys(files, base)
        result["path"] = ["/" + base]
    return TaskResult(outputs=outputs, result=result)


def _limits(ctx: TaskContext) -> VideoLimits:
    """The time the task has left, for the next ffmpeg run."""
    from mediagate.media.video import VideoLimits

    remaining = ctx.deadline - time.monotonic()
    if remaining <= 1:
        raise TranscodeTimeout("the task's time limit was reached before ffmpeg could start")
    return VideoLimits(timeout=remaining, threads=max(1, ctx.gateway.settings.task_transcode_threads))


def _step(ctx: TaskContext, step: StepJob, source: Path, out: Path, extras: dict[str, Path]) -> list[Path]:
    from mediagate.media import video

    limits = _limits(ctx)
    if isinstance(step, ThumbnailSpec):
        return video.snapshot(step, source, out, name=LOCAL_NAME, limits=limits)
    if isinstance(step, ConcatSpec):
        return video.concat(step, source, out, name=LOCAL_NAME, limits=limits, files=extras)
    return video.transcode(step, source, out, name=LOCAL_NAME, limits=limits, files=extras)


def hls_keys(files: list[Path], base: str) -> list[tuple[str, Path]]:
    """Playlist at ``base``, segments ``<stem>-NNNNN.ts`` beside it; the playlist's segment lines
    are rewritten to those names (relative, so the playlist plays from wherever it is served)."""
    folder, name = split_key(base)
    stem = PurePosixPath(name).stem or name
    playlist, segments = files[0], files[1:]
    renamed: dict[str, str] = {}
    outputs: list[tuple[str, Path]] = [(base, playlist)]
    for seg in segments:
        final = stem + seg.name.removeprefix(LOCAL_NAME)
        renamed[seg.name] = quote(final)
        outputs.append((normalise_key(f"{folder}/{final}"), seg))
    lines = playlist.read_text("utf-8").splitlines()
    playlist.write_text("\n".join(renamed.get(line.strip(), line) for line in lines) + "\n", "utf-8")
    return outputs


def grab_keys(
    files: list[Path], key: str | None, source: str, task_id: str, fmt: str
) -> list[tuple[str, Path]]:
    """One grab: exactly ``save_as``; several: ``<stem><k><suffix>`` (k from 1, §2.5)."""
    base = key if key is not None else default_key(source, task_id, fmt)
    if len(files) == 1:
        return [(base, files[0])]
    folder, name = split_key(base)
    pure = PurePosixPath(name)
    suffix = pure.suffix or f".{fmt}"
    return [(normalise_key(f"{folder}/{pure.stem}{k}{suffix}"), f) for k, f in enumerate(files, start=1)]


def _fetch_extra(ctx: TaskContext, path: str) -> Path:
    """A file the avopts name besides the source (``/wmImg/``, ``/i/``, ``/h/``), from this bucket,
    copied into the work folder: ffmpeg only ever sees our own local copies."""
    try:
        key = normalise_key(path)
    except MediagateError as exc:
        raise TaskFailed(f"{path}: {exc.message}", status=400) from None
    return ctx.fetch_object(key, "named in avopts")

"""Wantu media tasks: ``/3.0/mediaEncode``, ``/3.0/snapshot``, their results, and the upload
policy's ``mediaEncode`` field.

Sources: the seed's preset table and preset parameters (shared/seeds/wantu-media-api.txt), the
PHP SDK's request fields (shared/specs/upyun-apps.md §4.2) and the choices of §6.12 there.

* ``POST /3.0/mediaEncode``: ``input``, ``output`` (file rids), ``encodeTemplate``, ``usePreset``
  0/1, ``force`` 0/1, ``notifyUrl``, ``seek``/``duration`` (seconds) -> 200 ``{"taskId", "requestId"}``
* ``POST /3.0/snapshot``: ``input``, ``output``, ``time`` (ms), ``notifyUrl`` -> the same
* ``GET /3.0/mediaEncodeResult/<taskId>``, ``GET /3.0/snapshotResult/<taskId>`` -> :func:`result_body`

The task is recorded (catalog ``tasks``) before the answer, in one transaction; a bad template,
a missing input or another namespace is a 400/404/401 at once, nothing recorded. The result is
``{"taskId", "type", "status": "processing|success|failed", "progress": 0|100, "code", "message",
"input": {namespace,dir,name}, "output": {…}, "outputs": [{namespace,dir,name,url}…]}`` (an HLS
output lists its playlist first, then its segments in play order) plus what was made (``format``,
``duration``, ``width``, ``height``); ``code`` is 200 on success, the failure's status (400 bad
template, 404 input gone, 415 not a video, 500/504 encoder) on failure, 202 while processing. The
same JSON (without ``requestId``) is POSTed to ``notifyUrl`` when the task ends (unsigned, as
Wantu documents no signature), through the durable delivery loop. A task id of another namespace
is 404 ResourceNotFound, like an unknown one.

Outputs are named by the request, never at random: the output rid's key, HLS segments beside it
as ``<stem>-00000.ts``…; a task that runs twice (a worker killed mid-way) publishes the same
keys once. ``force=0`` and an existing output: the task succeeds without transcoding, its result
says so (``skipped``), as the SDK documents.

``watermark=<rid of a png/webp>`` lays that image over the output; ``watermarkTemplate=NAME``
places it by the bucket's template NAME (Wantu's templates are console objects with no
documented grammar; here an operator defines them: ``mediagate bucket watermark add B NAME
--gravity southeast --dx 10 --dy 10 [--scale 0.2] [--opacity 0.8]``). No template: the image
at its own size, 10 px in from the top-right corner. An unknown template, a template without
an image, or an image that is not .png/.webp: 400 InvalidArgument; a missing image: 404. The
policy's ``mediaEncode`` takes the same two fields.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mediagate.core import notify
from mediagate.core.errors import BadRequest, NotFound, Unauthorized
from mediagate.core.keys import normalise_key, split_key
from mediagate.core.outbox import NewTask, Notification
from mediagate.http import request_id
from mediagate.media.averrors import MediaTaskError, TranscodeTimeout
from mediagate.protocols.wantu.signing import key_of, parse_resource_id, path_to_dir
from mediagate.tasks.registry import Registry, TaskContext, TaskFailed, TaskResult

if TYPE_CHECKING:
    from mediagate.core.gateway import Gateway, Stored
    from mediagate.core.values import Bucket, Task
    from mediagate.media.avspec import TranscodeSpec

DIALECT = "wantu"
ENCODE = "wantu.mediaEncode"
SNAPSHOT = "wantu.snapshot"
KINDS = {"mediaEncodeResult": ENCODE, "snapshotResult": SNAPSHOT}
_SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")


def form(body: bytes) -> dict[str, str]:
    """An urlencoded body (the SDK's), the first value of each field."""
    fields: dict[str, str] = {}
    for k, v in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
        fields.setdefault(k, v)
    return fields


def _flag(fields: dict[str, str], name: str) -> bool:
    value = fields.get(name, "0").strip() or "0"
    if value not in ("0", "1"):
        raise BadRequest(f"{name} must be 0 or 1", code="invalid_argument")
    return value == "1"


def _seconds(fields: dict[str, str], name: str) -> float | None:
    raw = fields.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a number of seconds", code="invalid_argument") from None
    if not 0 <= value < 1e7:
        raise BadRequest(f"{name} must be a non-negative number of seconds", code="invalid_argument")
    return value


def _file(bucket: Bucket, fields: dict[str, str], name: str) -> str:
    raw = fields.get(name, "").strip()
    if not raw:
        raise BadRequest(f"{name} (a file resourceId) is required", code="invalid_argument")
    rid = parse_resource_id(raw, file=True)
    if rid.namespace not in ("", bucket.name):
        raise Unauthorized(f"the {name} namespace does not belong to this access key", code="bucket_mismatch")
    return key_of(rid, existing=name != "output")


async def _notify_url(gw: Gateway, fields: dict[str, str]) -> str | None:
    url = fields.get("notifyUrl", "").strip()
    if url:
        await notify.check_url(url, allow_private=gw.settings.allow_private_callbacks)
    return url or None


def encode_params(fields: dict[str, Any]) -> dict[str, Any]:
    """The checked transcode parameters of a request or a policy (BadRequest when wrong)."""
    from mediagate.media.wantu_presets import encode_spec

    template = str(fields.get("encodeTemplate") or "").strip()
    if not template:
        raise BadRequest("encodeTemplate is required", code="invalid_argument")
    strs = {k: str(v) for k, v in fields.items() if v is not None}
    use_preset, seek, duration = _flag(strs, "usePreset"), _seconds(strs, "seek"), _seconds(strs, "duration")
    params: dict[str, Any] = {
        "encodeTemplate": template,
        "usePreset": use_preset,
        "force": _flag(strs, "force"),
    }
    params |= {"seek": seek, "duration": duration}
    try:
        spec = encode_spec(template, use_preset=use_preset, seek=seek, duration=duration)
    except MediaTaskError as exc:
        raise BadRequest(exc.reason, code="invalid_argument") from None
    params["suffix"] = spec.container.suffix
    return params


def watermark_params(bucket: Bucket, fields: dict[str, Any]) -> dict[str, Any] | None:
    """``watermark`` (a png/webp file rid) placed by the bucket's ``watermarkTemplate``
    (``mediagate bucket watermark add``), else by ``bucketconf.DEFAULT_WATERMARK``; resolved
    now, so the task keeps the placement it was submitted with."""
    from mediagate.bucketconf import DEFAULT_WATERMARK, watermark_templates

    raw = str(fields.get("watermark") or "").strip()
    name = str(fields.get("watermarkTemplate") or "").strip()
    if not raw:
        if name:
            raise BadRequest(
                "watermarkTemplate needs watermark (the resourceId of a png or webp image)",
                code="invalid_argument",
            )
        return None
    key = _file(bucket, {"watermark": raw}, "watermark")
    if not key.lower().endswith((".png", ".webp")):
        raise BadRequest("watermark must name a .png or .webp image", code="invalid_argument")
    template = DEFAULT_WATERMARK
    if name:
        templates = watermark_templates(bucket.settings)
        if name not in templates:
            known = ", ".join(sorted(templates)) or "none defined"
            raise BadRequest(
                f"unknown watermarkTemplate {name[:64]!r} (this namespace has: {known}); an operator "
                f"defines one with `mediagate bucket watermark add {bucket.name} NAME --gravity …`",
                code="invalid_argument",
            )
        template = templates[name]
    return {"key": key, "template": name or None} | template.as_setting()


async def submit_encode(request: Request, gw: Gateway, bucket: Bucket, body: bytes) -> Response:
    fields = form(body)
    params = encode_params(fields)
    mark = watermark_params(bucket, fields)
    source = _file(bucket, fields, "input")
    params["output"] = _file(bucket, fields, "output")
    await gw.get_object(bucket, source)  # 404 now, not a task that fails later
    if mark is not None:
        await gw.get_object(bucket, mark["key"])
        params["watermark"] = mark
    return await _submit(request, gw, bucket, ENCODE, source, params, await _notify_url(gw, fields))


async def submit_snapshot(request: Request, gw: Gateway, bucket: Bucket, body: bytes) -> Response:
    fields = form(body)
    raw = fields.get("time", "").strip()
    if not re.fullmatch(r"\d{1,12}", raw):
        raise BadRequest("time (milliseconds, a whole number) is required", code="invalid_argument")
    source = _file(bucket, fields, "input")
    params: dict[str, Any] = {"time": int(raw), "output": _file(bucket, fields, "output")}
    await gw.get_object(bucket, source)
    return await _submit(request, gw, bucket, SNAPSHOT, source, params, await _notify_url(gw, fields))


async def _submit(
    request: Request,
    gw: Gateway,
    bucket: Bucket,
    kind: str,
    source: str,
    params: dict[str, Any],
    notify_url: str | None,
) -> Response:
    task = NewTask(
        id=uuid.uuid4().hex,
        kind=kind,
        dialect=DIALECT,
        bucket_id=bucket.id,
        source=source,
        params=params,
        notify_url=notify_url,
        max_attempts=gw.settings.task_max_attempts,
    )
    await gw.submit_tasks([task])
    rid = request_id(request)
    return JSONResponse({"taskId": task.id, "requestId": rid}, headers={"taskId": task.id, "requestId": rid})


def policy_task(
    gw: Gateway, bucket: Bucket, source: str, params: dict[str, Any], notify_url: str | None
) -> NewTask:
    """The encode task of an upload whose policy has ``mediaEncode`` (committed with the file).
    Without an ``output`` the result goes beside the source, ``<stem>_<taskId>.<suffix>``."""
    task_id = uuid.uuid4().hex
    output = params.get("output")
    if not output:
        folder, name = split_key(source)
        output = normalise_key(f"{folder}/{PurePosixPath(name).stem or name}_{task_id}.{params['suffix']}")
    return NewTask(
        id=task_id,
        kind=ENCODE,
        dialect=DIALECT,
        bucket_id=bucket.id,
        source=source,
        params=params | {"output": output},
        notify_url=notify_url,
        max_attempts=gw.settings.task_max_attempts,
    )


def policy_params(bucket: Bucket, value: Any) -> tuple[dict[str, Any], str | None]:
    """Check a policy's ``mediaEncode`` (a JSON object, or a string of one, with the
    ``/3.0/mediaEncode`` fields; ``output`` a file resourceId, optional) before the upload is read."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise BadRequest("policy mediaEncode must be a JSON object", code="invalid_policy") from None
    if not isinstance(value, dict):
        raise BadRequest("policy mediaEncode must be a JSON object", code="invalid_policy")
    params = encode_params(value)
    mark = watermark_params(bucket, value)
    if mark is not None:
        params["watermark"] = mark
    if value.get("output"):
        params["output"] = _file(bucket, {"output": str(value["output"])}, "output")
    url = str(value.get("notifyUrl") or "").strip() or None
    if url is not None and not notify.is_http_url(url):
        raise BadRequest("policy mediaEncode notifyUrl must be an http(s) URL", code="invalid_policy")
    return params, url


class PolicyEncode:
    """An upload policy's ``mediaEncode``, checked before the upload is read; as the upload's
    notifier it records the encode task in the upload's own transaction (``task_id`` then
    names it, for the answer)."""

    def __init__(self, gw: Gateway, bucket: Bucket, value: Any) -> None:
        self.gw, self.bucket = gw, bucket
        self.params, self.notify_url = policy_params(bucket, value)
        self.task_id: str | None = None

    async def check(self) -> None:
        if self.notify_url:
            await notify.check_url(self.notify_url, allow_private=self.gw.settings.allow_private_callbacks)

    def __call__(self, stored: Stored) -> list[NewTask]:
        task = policy_task(self.gw, self.bucket, stored.object.key, self.params, self.notify_url)
        self.task_id = task.id
        return [task]


# -- results ---------------------------------------------------------------------------------------


async def result(request: Request, gw: Gateway, bucket: Bucket, which: str, task_id: str) -> Response:
    task = await gw.task_of(bucket, task_id, DIALECT)
    if task is None or task.kind != KINDS[which]:
        raise NotFound(f"no {which[:-6]} task {task_id[:64]!r} in this namespace", code="task_not_found")
    base = (gw.settings.public_url or str(request.base_url)).rstrip("/")
    body = result_body(task, bucket, _outcome(task), base) | {"requestId": request_id(request)}
    return JSONResponse(body)


def _outcome(task: Task) -> dict[str, Any]:
    if task.status == "done":
        return {"status": 200, "outputs": task.outputs, "result": task.result, "reason": None}
    if task.status == "failed":
        status = int((task.result or {}).get("status") or 500)
        return {"status": status, "outputs": [], "result": {}, "reason": task.reason}
    return {"status": 202, "outputs": [], "result": {}, "reason": None}


def _file_json(bucket: Bucket, key: str, base: str | None) -> dict[str, Any]:
    folder, name = split_key(key)
    item: dict[str, Any] = {"namespace": bucket.name, "dir": path_to_dir(folder), "name": name}
    if base:
        item["url"] = f"{base}/{bucket.name}/{quote(key, safe='/')}"
    return item


def result_body(task: Task, bucket: Bucket, outcome: dict[str, Any], base: str | None) -> dict[str, Any]:
    """The result JSON (the GET answer and the notifyUrl body) of a task as ``outcome`` says."""
    status = int(outcome["status"])
    state = "success" if status == 200 else "processing" if status == 202 else "failed"
    info = dict(outcome.get("result") or {})
    body: dict[str, Any] = {
        "taskId": task.id,
        "type": "mediaEncode" if task.kind == ENCODE else "snapshot",
        "status": state,
        "progress": 0 if state == "processing" else 100,
        "code": status,
        "message": {"success": "success", "processing": "processing"}.get(state, outcome.get("reason") or ""),
        "input": _file_json(bucket, task.source, None),
        "output": _file_json(bucket, str(task.params.get("output") or ""), None),
        "outputs": [_file_json(bucket, k, base) for k in outcome.get("outputs") or []],
    }
    return body | {k: v for k, v in info.items() if k not in body}


def notification(gw: Gateway, task: Task, bucket: Bucket, outcome: dict[str, Any]) -> Notification | None:
    """The JSON POST to the task's ``notifyUrl`` (unsigned: Wantu documents no signature)."""
    if not task.notify_url:
        return None
    body = result_body(task, bucket, outcome, (gw.settings.public_url or "").rstrip("/") or None)
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return Notification(task.notify_url, text, {"Content-Type": "application/json"}, bucket_id=task.bucket_id)


# -- handlers (run by the task workers) ------------------------------------------------------------


def _exists(ctx: TaskContext, key: str) -> bool:
    return ctx.gateway.catalog.get_object(ctx.bucket.id, key) is not None


def _limits(ctx: TaskContext) -> Any:
    from mediagate.media.video import VideoLimits

    return VideoLimits(timeout=max(1.0, ctx.deadline - time.monotonic()))


def _failed(exc: MediaTaskError) -> TaskFailed:
    return TaskFailed(exc.reason, status=exc.status, retry=isinstance(exc, TranscodeTimeout))


def _name(output: str, task_id: str) -> str:
    """The ffmpeg output name: the output's stem when it is a plain name, else the task id (HLS
    segments are ``<name>-NNNNN.ts`` beside the playlist, which refers to them by that name)."""
    stem = PurePosixPath(output).stem
    return stem if _SAFE_NAME.fullmatch(stem) else task_id


def run_encode(ctx: TaskContext) -> TaskResult:
    """Transcode the source with the preset/template into the output key (HLS: + segments)."""
    from mediagate.media import video
    from mediagate.media.wantu_presets import encode_spec

    p = ctx.task.params
    output = str(p["output"])
    if not p.get("force") and _exists(ctx, output):
        return TaskResult(
            result={"skipped": True, "reason": "the output exists and force is 0: not transcoded"}
        )
    try:
        spec = encode_spec(
            str(p["encodeTemplate"]),
            use_preset=bool(p.get("usePreset")),
            seek=p.get("seek"),
            duration=p.get("duration"),
        )
        extras: dict[str, Path] = {}
        if p.get("watermark"):
            spec, extras = _with_watermark(ctx, spec, p["watermark"])
        source = ctx.fetch_source()
        limits = _limits(ctx)
        files = video.transcode(
            spec, source, ctx.workdir / "out", name=_name(output, ctx.task.id), limits=limits, files=extras
        )
        made = video.probe(files[0], limits=limits, own_playlist=spec.is_hls)
    except MediaTaskError as exc:
        raise _failed(exc) from None
    folder, _ = split_key(output)
    outputs = [(output, files[0])] + [(normalise_key(f"{folder}/{f.name}"), f) for f in files[1:]]
    v = made.video
    info = {
        "format": spec.container.suffix,
        "duration": made.duration,
        "width": v.width if v else None,
        "height": v.height if v else None,
    }
    return TaskResult(outputs=outputs, result=info)


def _with_watermark(
    ctx: TaskContext, spec: TranscodeSpec, mark: dict[str, Any]
) -> tuple[TranscodeSpec, dict[str, Path]]:
    """The spec with the recorded watermark placement, and the image's local copy (404 when the
    image is gone since the task was submitted)."""
    from mediagate.bucketconf import WatermarkTemplate

    key = str(mark["key"])
    template = WatermarkTemplate(**{k: mark[k] for k in ("gravity", "dx", "dy", "scale", "opacity")})
    local = ctx.fetch_object(key, "as watermark")
    return replace(spec, watermark=template.watermark("/" + key)), {"/" + key: local}


def run_snapshot(ctx: TaskContext) -> TaskResult:
    """One frame at ``time`` ms into the output key (PNG when it ends ``.png``, else JPEG)."""
    from mediagate.media import video
    from mediagate.media.wantu_presets import snapshot_spec

    p = ctx.task.params
    output = str(p["output"])
    try:
        spec = snapshot_spec(int(p["time"]), output=output)
        source = ctx.fetch_source()
        files = video.snapshot(
            spec, source, ctx.workdir / "out", name=_name(output, ctx.task.id), limits=_limits(ctx)
        )
    except MediaTaskError as exc:
        raise _failed(exc) from None
    return TaskResult(outputs=[(output, files[0])], result={"format": spec.format, "time": int(p["time"])})


def register(registry: Registry) -> None:
    registry.register(ENCODE, run_encode)
    registry.register(SNAPSHOT, run_snapshot)
    registry.register_notifier(DIALECT, notification)

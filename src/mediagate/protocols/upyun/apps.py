"""UPYUN asynchronous ``apps``: the tasks a FORM policy asks for, and their result callbacks.

Spec: shared/specs/upyun-apps.md §1 (apps), §3 (callbacks). The upload records one task per
``apps`` element in its own transaction (:func:`new_tasks`); its answer and notify-url body carry
``task_ids`` (unsigned). Each task's result is POSTed as JSON to the element's ``notify_url``, else
the policy's ``notify-url``, through the durable delivery loop, signed like a REST request
(``Authorization: UPYUN <operator>:<sig>``, ``Date``, ``Content-MD5``) with the operator who
signed the upload, or for an old-``signature`` upload the bucket's newest operator (none: unsigned).

Kinds: ``thumb`` runs here (:func:`run_thumb`: the image-processing grammar of ``x-gmkerl-thumb``
or a thumbnail version's name, ``save_as``, ``x-gmkerl-split`` tiles). ``naga``, ``imgaudit``,
``videoaudit`` and ``textjudge`` are recorded like any task; their handlers register from their
own modules, and without one the task fails with a reason that says so (callback ``status_code``
501), never with a made-up result.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
import uuid
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from mediagate.core.buckets import UPYUN
from mediagate.core.errors import BadRequest, InvalidKey, MediagateError, PayloadTooLarge, UnsupportedMedia
from mediagate.core.keys import normalise_key, split_key
from mediagate.core.notify import is_http_url
from mediagate.core.outbox import NewTask, Notification
from mediagate.protocols.upyun import signing
from mediagate.tasks.registry import Registry, TaskContext, TaskFailed, TaskResult

if TYPE_CHECKING:
    from mediagate.core.gateway import Gateway
    from mediagate.core.values import Bucket, Task

DIALECT = "upyun"
THUMB = "x-gmkerl-thumb"
SPLIT = "x-gmkerl-split"
_SAVE_AS_FORMATS = {"jpg": "jpg", "jpeg": "jpg", "png": "png", "webp": "webp", "gif": "gif", "avif": "avif"}
_OUTPUT_EXT = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "AVIF": "avif"}


def check_apps(apps: list[dict[str, Any]]) -> None:
    """Refuse, before anything is stored, an element whose fields have the wrong JSON types or a
    ``notify_url`` that is not an http(s) URL. Values that are well-formed but wrong (a bad
    ``x-gmkerl-thumb``) are the task's failure, reported by its callback (spec §6.17)."""
    for n, app in enumerate(apps, 1):
        name = app.get("name")
        for key in ("notify_url", "save_as", THUMB, SPLIT, "type", "avopts"):
            if key in app and not isinstance(app[key], str):
                raise BadRequest(f"apps[{n}] ({name}): '{key}' must be a string", code="invalid_policy")
        url = app.get("notify_url")
        if url and not is_http_url(url):
            raise BadRequest(
                f"apps[{n}] ({name}): 'notify_url' must be an absolute http:// or https:// URL",
                code="invalid_policy",
            )
        if "return_info" in app and not isinstance(app["return_info"], bool | int | str):
            raise BadRequest(f"apps[{n}] ({name}): 'return_info' must be a boolean", code="invalid_policy")


def new_task_ids(apps: list[dict[str, Any]]) -> list[str]:
    """One task id per element, in array order (32 lower-case hex, as UPYUN's examples)."""
    return [uuid.uuid4().hex for _ in apps]


def new_tasks(
    apps: list[dict[str, Any]],
    task_ids: list[str],
    *,
    bucket_id: int,
    source: str,
    operator: str | None,
    notify_url: str | None,
    max_attempts: int,
) -> list[NewTask]:
    """The task rows of an upload's ``apps`` (committed with the object, see core.outbox)."""
    tasks = []
    for app, task_id in zip(apps, task_ids, strict=True):
        params = {k: v for k, v in app.items() if k not in ("name", "notify_url")}
        params["operator"] = operator
        tasks.append(
            NewTask(
                id=task_id,
                kind=str(app["name"]),
                dialect=DIALECT,
                bucket_id=bucket_id,
                source=source,
                params=params,
                notify_url=app.get("notify_url") or notify_url,
                max_attempts=max_attempts,
            )
        )
    return tasks


# -- thumb ----------------------------------------------------------------------------------------


def run_thumb(ctx: TaskContext) -> TaskResult:
    """``thumb``: process the source with ``x-gmkerl-thumb`` and save it at ``save_as``."""
    from mediagate.core.preprocess import versions_of
    from mediagate.media.process import process_file
    from mediagate.media.spec import parse_thumb

    params = ctx.task.params
    text = str(params.get(THUMB) or "").strip()
    if not text:
        raise TaskFailed(f"'{THUMB}' is required for a thumb task", status=400)
    split = _split_size(params.get(SPLIT))
    text = versions_of(ctx.bucket.settings).get(text, text)  # a thumbnail version's name, or a spec
    try:
        spec = parse_thumb(text)
    except MediagateError as exc:
        raise TaskFailed(f"{THUMB}: {exc.message}", status=400) from None
    try:
        key = output_key(params.get("save_as"), ctx.task.source)
    except MediagateError as exc:
        raise TaskFailed(exc.message, status=400) from None
    suffix = PurePosixPath(key or "").suffix.lstrip(".").lower()
    if spec.format is None and suffix in _SAVE_AS_FORMATS:  # save_as /a/b.webp without /format/
        spec = dataclasses.replace(spec, format=_SAVE_AS_FORMATS[suffix])
    source = ctx.fetch_source()
    dest = ctx.workdir / "output"
    try:
        image = process_file(source, spec, dest, limits=ctx.gateway.image_limits)
    except PayloadTooLarge as exc:
        raise TaskFailed(exc.message, status=413) from None
    except UnsupportedMedia as exc:
        raise TaskFailed(exc.message, status=415) from None
    except BadRequest as exc:
        raise TaskFailed(exc.message, status=400) from None
    ext = _OUTPUT_EXT.get(image.format, "jpg")
    base = key if key is not None else default_key(ctx.task.source, ctx.task.id, ext)
    if split is not None:
        return _tiles(ctx, dest, split, base, ext)
    info = {
        "path": "/" + base,
        "type": ext,
        "width": image.width,
        "height": image.height,
        "frames": image.frames,
    }
    return TaskResult(outputs=[(base, dest)], result={"imginfo": info})


def _split_size(value: Any) -> tuple[int, int] | None:
    if value is None or value == "":
        return None
    match = re.fullmatch(r"\s*(\d{1,5})x(\d{1,5})\s*", str(value))
    if match is None or int(match.group(1)) == 0 or int(match.group(2)) == 0:
        raise TaskFailed(f"{SPLIT} must be a tile size such as 200x200, not {str(value)[:50]!r}", status=400)
    return int(match.group(1)), int(match.group(2))


def _tiles(ctx: TaskContext, image: Path, size: tuple[int, int], base: str, ext: str) -> TaskResult:
    """``x-gmkerl-split``: the processed image cut into tiles, each an output. ``save_as`` with
    ``{row}``/``{column}``/``{seq}`` (from 0) names each tile; else ``<save_as>-<n>.<ext>`` (n from
    1, spec §1). ``imginfos`` lists them in order."""
    from mediagate.media.tiles import split_image

    folder = ctx.workdir / "tiles"
    folder.mkdir()
    try:
        tiles = split_image(image, size[0], size[1], folder, ext)
    except BadRequest as exc:
        raise TaskFailed(f"{SPLIT}: {exc.message}", status=400) from None
    templated = any(v in base for v in ("{row}", "{column}", "{seq}"))
    outputs, infos = [], []
    for seq, tile in enumerate(tiles):
        if templated:
            name = base.replace("{row}", str(tile.row)).replace("{column}", str(tile.column))
            key = normalise_key(name.replace("{seq}", str(seq)))
        else:
            key = normalise_key(f"{base}-{seq + 1}.{ext}")
        outputs.append((key, tile.path))
        infos.append(
            {
                "path": "/" + key,
                "type": ext,
                "width": tile.width,
                "height": tile.height,
                "frames": 1,
                "row": tile.row,
                "column": tile.column,
            }
        )
    return TaskResult(outputs=outputs, result={"imginfos": infos})


def output_key(save_as: Any, source: str) -> str | None:
    """``save_as`` with ``{filepath}`` (the source's folder), ``{filename}`` (its name without
    suffix) and ``{suffix}`` (its suffix) filled in; None when there is no ``save_as``. Never
    random: a task run twice writes the same key (spec §6.16)."""
    if not save_as:
        return None
    folder, name = split_key(source)
    pure = PurePosixPath(name)
    filled = (
        str(save_as)
        .replace("{filepath}", "/" + folder if folder else "")
        .replace("{filename}", pure.stem)
        .replace("{suffix}", pure.suffix.lstrip("."))
    )
    try:
        return normalise_key(filled)
    except InvalidKey as exc:
        raise InvalidKey(f"save_as: {exc.message}") from None


def default_key(source: str, task_id: str, ext: str) -> str:
    """``<folder>/<stem>_<task id>.<ext>`` beside the source (spec §6.16)."""
    folder, name = split_key(source)
    stem = PurePosixPath(name).stem or name
    return normalise_key(f"{folder}/{stem}_{task_id}.{ext}")


# -- result callbacks -----------------------------------------------------------------------------


def result_body(task: Task, bucket: Bucket, outcome: dict[str, Any]) -> dict[str, Any]:
    """The callback JSON of a finished task, per kind (spec §3.2-3.4)."""
    status = int(outcome["status"])
    body: dict[str, Any] = {"task_id": task.id, "service": bucket.name, "status_code": status}
    reason = outcome.get("reason") or ""
    if task.kind == "naga":
        listed = outcome.get("result", {}).get("path")  # HLS: the playlist only (spec §3.2)
        body |= {
            "path": listed if isinstance(listed, list) else ["/" + k for k in outcome.get("outputs", [])],
            "description": "OK" if status == 200 else reason,
        }
        body |= {k: v for k, v in outcome.get("result", {}).items() if k == "info"}
        return body
    if task.kind in ("imgaudit", "textjudge", "videoaudit"):
        body["source"] = task.source
    body |= outcome.get("result", {}) if status == 200 else {}
    body["error"] = "" if status == 200 else reason
    return body


def notification(gw: Gateway, task: Task, bucket: Bucket, outcome: dict[str, Any]) -> Notification | None:
    """The signed JSON POST to the task's notify URL."""
    if not task.notify_url:
        return None
    signer = _signer(gw, bucket, task.params.get("operator"))
    body = result_body(task, bucket, outcome)
    if task.kind == "naga" and signer is not None:  # legacy in-body signature (spec §3.1)
        moment = int(time.time())
        digest = signing.md5hex(f"{signer[0]}{signer[1]}{task.id}{moment}")
        body |= {"timestamp": moment, "signature": digest[8:24]}
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    headers = {"Content-Type": "application/json"}
    if signer is not None:
        import httpx

        date, md5 = signing.format_http_date(), signing.md5hex(text)
        uri = httpx.URL(task.notify_url).raw_path.decode("ascii")
        message = signing.string_to_sign("POST", uri, date, "", md5)
        headers |= {
            "Date": date,
            "Content-MD5": md5,
            "Authorization": signing.authorization(signer[0], signer[1], message),
        }
    return Notification(task.notify_url, text, headers, bucket_id=task.bucket_id)


def _signer(gw: Gateway, bucket: Bucket, operator: Any) -> tuple[str, str] | None:
    """(operator, md5(password)) that signs the callbacks: the upload's operator if it is still
    active, else the bucket's newest operator; None if the bucket has none."""
    keys = [(op, gw.secrets.open(sealed)) for op, sealed in gw.catalog.active_secrets(bucket.id, UPYUN)]
    chosen = next(((op, key) for op, key in keys if op == operator), None)
    return chosen or (keys[0] if keys else None)


def register(registry: Registry) -> None:
    """The UPYUN kinds that run in this build, and the callback shape of every UPYUN task."""
    registry.register("thumb", run_thumb)
    registry.register_notifier(DIALECT, notification)

"""UPYUN's pretreatment API on our port: submit media tasks for a file already stored, and ask
how they are doing (spec shared/specs/upyun-apps.md §3.7; python SDK ``av.py``, go-sdk
``process.go``).

| request                                         | answer                                       |
| ----------------------------------------------- | -------------------------------------------- |
| ``POST /pretreatment/`` form ``service``,       | ``["<task id>", …]`` (one per task, in order)|
| ``source``, ``notify_url``, ``tasks`` (base64   |                                              |
| JSON array, ≤ 10), ``accept=json``, ``app_name``|                                              |
| ``GET /status/?service=&task_ids=a,b`` (≤ 20)   | ``{"tasks": {"<id>": 100 | -1 | 0 | null}}`` |
| ``GET /result/?service=&task_ids=a,b`` (≤ 20)   | ``{"tasks": {"<id>": <callback body>|null}}``|
|                                                 | plus each ``"<id>": …`` at the top level     |

Every request is signed like a REST call by an UPYUN operator of ``service`` (the bucket):
``Authorization: UPYUN <operator>:<sig>`` over ``METHOD&URI&Date[&Content-MD5]`` (URI with its
query); a POST's ``Content-MD5``, when sent (the python SDK does), must be the body's. The tasks
are recorded in one transaction (all or none) and run on the task queue like FORM ``apps``: the
same handlers (``naga`` by default; ``app_name`` picks ``imgaudit``, ``thumb``, ``textjudge`` or
``videoaudit``), the same signed callbacks to ``notify_url``, signed by the operator who submitted
them.

Status: done 100, failed -1, running 0 (no finer progress is known), not started ``null``. A task
id of another bucket, or none at all, is ``null`` in both queries, exactly like one not started, so
an operator learns nothing about other buckets' tasks. ``/result/`` gives the callback body of a
finished task (without the legacy in-body signature, which belongs to the POST); the docs show
the bare ``{"<id>": …}`` map and the go-sdk reads ``{"tasks": {…}}``, so the answer holds both.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from mediagate.core.errors import BadRequest, MediagateError, PayloadTooLarge
from mediagate.core.gateway import Gateway
from mediagate.core.keys import existing_key
from mediagate.core.notify import is_http_url
from mediagate.core.values import Bucket, Task
from mediagate.http import body_stream, drain_body, gateway, request_id
from mediagate.protocols.upyun import apps, signing
from mediagate.protocols.upyun.errors import rest_error
from mediagate.protocols.upyun.rest import authenticate

MAX_BODY = 256 * 1024
"""A pretreatment form is a few fields and ≤ 10 tasks: anything bigger is refused unread."""
MAX_TASKS = 10
MAX_QUERY_IDS = 20
APP_KINDS = {k: k for k in ("naga", "imgaudit", "thumb", "textjudge", "videoaudit")}
"""``app_name`` → task kind (absent: ``naga``)."""


class TasksError(BadRequest):
    code = "decode_tasks"
    default_message = "tasks must be the base64 of a JSON array of task objects"


class TasksNumber(BadRequest):
    code = "tasks_number"
    default_message = f"tasks must hold 1 to {MAX_TASKS} task objects"


async def submit(request: Request) -> Response:
    """``POST /pretreatment/``: record the tasks, answer their ids."""
    gw = gateway(request)
    body = body_stream(request)
    try:
        raw = await _read(body)
        fields = _form(raw)
        bucket = await authenticate(request, gw, fields.get("service", ""))
        declared = request.headers.get("content-md5")
        if declared is not None and declared.lower() != hashlib.md5(raw).hexdigest():
            raise BadRequest("Content-MD5 is not the MD5 of the body", code="checksum_mismatch")
        operator, _ = signing.parse_authorization(request.headers["authorization"])
        ids = await _record(gw, bucket, operator, fields)
        return JSONResponse(ids)
    except MediagateError as exc:
        await drain_body(body)
        return rest_error(exc, request_id(request), headers=getattr(exc, "headers", None))


async def status(request: Request) -> Response:
    """``GET /status/``: each task's progress in percent."""
    return await _query(request, _progress)


async def result(request: Request) -> Response:
    """``GET /result/``: each finished task's callback body."""
    return await _query(request, _result, bare_too=True)


# -- submit ---------------------------------------------------------------------------------------


async def _read(body: Any) -> bytes:
    data = bytearray()
    async for chunk in body:
        data += chunk
        if len(data) > MAX_BODY:
            raise PayloadTooLarge(f"a pretreatment request body is at most {MAX_BODY} bytes")
    return bytes(data)


def _form(raw: bytes) -> dict[str, str]:
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(raw))
    except (UnicodeDecodeError, ValueError):
        raise BadRequest(
            "the body must be an application/x-www-form-urlencoded form", code="malformed_body"
        ) from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise BadRequest(f"the form field {name!r} is given twice", code="duplicate_field")
        fields[name] = value
    return fields


def parse_tasks(text: str) -> list[dict[str, Any]]:
    """``tasks``: base64 (standard or URL-safe, padding optional) of a JSON array of objects."""
    if not text:
        raise BadRequest("the form field 'tasks' is required", code="missing_field")
    cleaned = text.strip().replace("-", "+").replace("_", "/")
    try:
        decoded = base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
        tasks = json.loads(decoded.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise TasksError() from None
    if not isinstance(tasks, list) or not all(isinstance(t, dict) for t in tasks):
        raise TasksError()
    if not 1 <= len(tasks) <= MAX_TASKS:
        raise TasksNumber()
    return tasks


async def _record(gw: Gateway, bucket: Bucket, operator: str, fields: dict[str, str]) -> list[str]:

    app_name = fields.get("app_name") or "naga"
    kind = APP_KINDS.get(app_name)
    if kind is None:
        raise BadRequest(
            f"app_name {app_name[:50]!r} is not served here (one of: {', '.join(APP_KINDS)})",
            code="not_supported",
        )
    source = fields.get("source", "")
    if not source:
        raise BadRequest("the form field 'source' (the file to process) is required", code="missing_field")
    try:
        key = existing_key(source)
    except MediagateError as exc:
        raise BadRequest(f"source: {exc.message}", code="invalid_key") from None
    notify_url = fields.get("notify_url") or None
    if notify_url is not None and not is_http_url(notify_url):
        raise BadRequest("notify_url must be an absolute http:// or https:// URL", code="invalid_url")
    tasks = [
        {k: v for k, v in t.items() if k != "name"} | {"name": kind}
        for t in parse_tasks(fields.get("tasks", ""))
    ]
    apps.check_apps(tasks)
    ids = apps.new_task_ids(tasks)
    rows = apps.new_tasks(
        tasks,
        ids,
        bucket_id=bucket.id,
        source=key,
        operator=operator,
        notify_url=notify_url,
        max_attempts=gw.settings.task_max_attempts,
    )
    await gw.submit_tasks(rows)
    return ids


# -- queries --------------------------------------------------------------------------------------


async def _query(request: Request, answer: Any, *, bare_too: bool = False) -> Response:
    gw = gateway(request)
    try:
        bucket = await authenticate(request, gw, request.query_params.get("service", ""))
        ids = _task_ids(request.query_params.get("task_ids", ""))
        from anyio import to_thread

        found = await to_thread.run_sync(_tasks_of, gw, bucket, ids)
        per_task = {i: answer(found.get(i), bucket) for i in ids}
        doc: dict[str, Any] = {"tasks": per_task}
        if bare_too:
            doc |= per_task
        return JSONResponse(doc)
    except MediagateError as exc:
        return rest_error(exc, request_id(request), headers=getattr(exc, "headers", None))


def _task_ids(text: str) -> list[str]:
    ids = list(dict.fromkeys(i.strip() for i in text.split(",") if i.strip()))
    if not ids:
        raise BadRequest("task_ids (comma-separated task ids) is required", code="missing_field")
    if len(ids) > MAX_QUERY_IDS:
        raise BadRequest(f"at most {MAX_QUERY_IDS} task ids per query", code="tasks_number")
    return ids


def _tasks_of(gw: Gateway, bucket: Bucket, ids: list[str]) -> dict[str, Task]:
    """The tasks among ``ids`` that belong to ``bucket`` (others are as if unknown)."""
    found = {}
    for task_id in ids:
        task = gw.catalog.get_task(task_id) if len(task_id) <= 64 else None
        if task is not None and task.bucket_id == bucket.id and task.dialect == apps.DIALECT:
            found[task_id] = Task.of(task)
    return found


def _progress(task: Task | None, bucket: Bucket) -> int | None:
    if task is None or (task.status == "pending" and task.attempts == 0):
        return None
    return {"done": 100, "failed": -1}.get(task.status, 0)


def _result(task: Task | None, bucket: Bucket) -> dict[str, Any] | None:
    if task is None or task.status not in ("done", "failed"):
        return None
    ok = task.status == "done"
    outcome = {
        "status": 200 if ok else int((task.result or {}).get("status", 500)),
        "outputs": list(task.outputs or []),
        "result": dict(task.result or {}) if ok else {},
        "reason": task.reason,
    }
    return apps.result_body(task, bucket, outcome)

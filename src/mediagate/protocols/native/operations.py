"""/v1 tasks and notifications: list, show, retry a task, redeliver a notification. A bucket key
sees its bucket's only; another bucket's task or notification is as unknown as a made-up id."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from starlette.requests import Request

from mediagate.core import admin
from mediagate.core.apikeys import ADMIN, READ, ApiKey, require
from mediagate.core.deliveryview import delivery_json
from mediagate.core.errors import NotFound
from mediagate.core.gateway import Gateway
from mediagate.core.values import Bucket, Delivery, Task
from mediagate.http import gateway
from mediagate.protocols.native import schemas
from mediagate.protocols.native.auth import Caller, bucket_for
from mediagate.tasks.view import task_json

router = APIRouter(tags=["tasks and notifications"])

TaskStatus = Literal["pending", "running", "done", "failed"]
DeliveryStatus = Literal["pending", "delivered", "failed"]
Limit = Annotated[int, Query(ge=1, le=1000)]
BucketFilter = Annotated[str | None, Query(max_length=63, description="Only this bucket's.")]


async def _scope(request: Request, key: ApiKey, bucket: str | None, scope: str) -> Bucket | None:
    """The bucket a listing is limited to: the one asked for, else the key's own (None: all)."""
    wanted = bucket if bucket is not None else key.bucket
    if wanted is None:
        require(key, scope, None)
        return None
    return await bucket_for(request, key, wanted, scope)


async def _task(request: Request, key: ApiKey, task_id: str, scope: str) -> tuple[Task, str]:
    gw = gateway(request)
    names = await admin.bucket_names(gw)
    try:
        found = await admin.task(gw, task_id)
    except NotFound:
        found = None
    name = names.get(found.bucket_id, "?") if found is not None else None
    if found is None or name is None or not (key.bucket is None or key.bucket == name):
        require(key, READ, key.bucket)
        raise NotFound(f"task {task_id!r} does not exist", code="task_not_found")
    require(key, scope, name)
    return found, name


def _task_out(task: Task, bucket: str) -> schemas.TaskOut:
    return schemas.TaskOut.model_validate(task_json(task, bucket))


@router.get("/v1/tasks", response_model=schemas.TaskList, summary="List tasks")
async def list_tasks(
    request: Request,
    key: Caller,
    bucket: BucketFilter = None,
    status: TaskStatus | None = None,
    limit: Limit = 100,
) -> schemas.TaskList:
    """Asynchronous media tasks, newest first."""
    gw = gateway(request)
    target = await _scope(request, key, bucket, READ)
    names = await admin.bucket_names(gw)
    found = await admin.tasks(gw, bucket=target, status=status, limit=limit)
    return schemas.TaskList(tasks=[_task_out(t, names.get(t.bucket_id, "?")) for t in found])


@router.get("/v1/tasks/{task_id}", response_model=schemas.TaskOut, summary="A task")
async def get_task(
    request: Request, key: Caller, task_id: Annotated[str, Path(max_length=64)]
) -> schemas.TaskOut:
    return _task_out(*await _task(request, key, task_id, READ))


@router.post("/v1/tasks/{task_id}/retry", response_model=schemas.TaskOut, summary="Retry a task")
async def retry_task(
    request: Request, key: Caller, task_id: Annotated[str, Path(max_length=64)]
) -> schemas.TaskOut:
    """Run a failed (or waiting) task again now; 409 for one running or done. Needs ``admin``."""
    _, name = await _task(request, key, task_id, ADMIN)
    return _task_out(await admin.retry_task(gateway(request), task_id), name)


async def _delivery(
    request: Request, key: ApiKey, delivery_id: int, scope: str
) -> tuple[Delivery, str | None]:
    gw: Gateway = gateway(request)
    names = await admin.bucket_names(gw)
    try:
        found = await admin.delivery(gw, delivery_id)
    except NotFound:
        found = None
    name = names.get(found.bucket_id) if found is not None and found.bucket_id is not None else None
    if found is None or not (key.bucket is None or key.bucket == name):
        require(key, READ, key.bucket)
        raise NotFound(f"notification {delivery_id} does not exist", code="delivery_not_found")
    require(key, scope, name)
    return found, name


@router.get("/v1/deliveries", response_model=schemas.DeliveryList, summary="List notifications")
async def list_deliveries(
    request: Request,
    key: Caller,
    bucket: BucketFilter = None,
    status: DeliveryStatus | None = None,
    limit: Limit = 100,
) -> schemas.DeliveryList:
    """Outgoing notifications (notify-url, task results), newest first: where each goes and how
    it went, never its body or header values."""
    gw = gateway(request)
    target = await _scope(request, key, bucket, READ)
    names = await admin.bucket_names(gw)
    found = await admin.deliveries(gw, bucket=target, status=status, limit=limit)
    rows = [delivery_json(d, names.get(d.bucket_id) if d.bucket_id is not None else None) for d in found]
    return schemas.DeliveryList(deliveries=[schemas.DeliveryOut.model_validate(r) for r in rows])


DeliveryId = Annotated[int, Path(ge=1, le=2**31 - 1)]
"""A notification's id: the catalog's INTEGER key (a larger number would fail in PostgreSQL)."""


@router.get("/v1/deliveries/{delivery_id}", response_model=schemas.DeliveryOut, summary="A notification")
async def get_delivery(request: Request, key: Caller, delivery_id: DeliveryId) -> schemas.DeliveryOut:
    """One notification, with ``history``: its kept tries (newest first, at most 20), each with
    its time, HTTP status or error."""
    found, name = await _delivery(request, key, delivery_id, READ)
    history = await admin.delivery_attempts(gateway(request), delivery_id)
    return schemas.DeliveryOut.model_validate(delivery_json(found, name, history))


@router.post(
    "/v1/deliveries/{delivery_id}/redeliver", response_model=schemas.DeliveryOut, summary="Send again"
)
async def redeliver(request: Request, key: Caller, delivery_id: DeliveryId) -> schemas.DeliveryOut:
    """Queue a delivered or failed notification again; 409 while it is still pending. Needs
    ``admin``."""
    _, name = await _delivery(request, key, delivery_id, ADMIN)
    again = await admin.redeliver_now(gateway(request), delivery_id)
    return schemas.DeliveryOut.model_validate(delivery_json(again, name))

"""A task as the CLI (and later an HTTP API) shows it: plain JSON, keys as ``/``-paths."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mediagate.core.values import Task


def task_json(task: Task, bucket: str) -> dict[str, Any]:
    def when(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": task.id,
        "status": task.status,
        "kind": task.kind,
        "dialect": task.dialect,
        "bucket": bucket,
        "source": "/" + task.source,
        "outputs": ["/" + key for key in task.outputs or []],
        "attempts": task.attempts,
        "max_attempts": task.max_attempts,
        "reason": task.reason,
        "params": task.params,
        "result": task.result,
        "notify_url": task.notify_url,
        "created_at": when(task.created_at),
        "updated_at": when(task.updated_at),
        "next_run_at": when(task.next_run_at) if task.status == "pending" else None,
        "finished_at": when(task.finished_at),
    }

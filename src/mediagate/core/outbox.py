"""Notifications committed in the same catalog transaction as the object they tell about.

A notification written after the object's commit is lost by a crash between the two; one written
before it tells about an object that may never exist. So the dialect describes the notification
(:class:`Notification`) while the object is being published, and the catalog inserts it into the
``deliveries`` outbox in the object's own transaction: both exist or neither does. The delivery
loop (core.notify) then sends it, at least once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Notification:
    """One outgoing call owed once an object is committed (a notify-url POST)."""

    url: str
    body: str
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "POST"
    bucket_id: int | None = None
    """The bucket it is about, so that an operator can list a bucket's notifications."""
    signing: str | None = None
    """Signed at each attempt rather than once (``"webhook"``, see core.webhooks)."""


@dataclass(frozen=True)
class NewTask:
    """An asynchronous task an upload asks for (UPYUN ``apps`` …), inserted in the upload's own
    transaction: if the object commits the task exists, else neither does (``mediagate.tasks``)."""

    id: str
    kind: str
    dialect: str
    bucket_id: int
    source: str
    params: dict[str, Any]
    notify_url: str | None
    max_attempts: int


@dataclass(frozen=True)
class TaskDone:
    """A task attempt's success, committed with its output objects: the outputs and ``done``
    exist together or not at all. ``attempt`` fences the write: a worker whose lease lapsed (and
    whose task another worker has since claimed) cannot finish it (the whole commit is refused)."""

    id: str
    attempt: int
    outputs: list[str]
    result: dict[str, Any]


Outgoing = Notification | NewTask | TaskDone
"""What may be committed with an object (see ``Catalog.commit_object(outbox=…)``)."""

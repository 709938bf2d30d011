"""Notifications committed in the same catalog transaction as the object they tell about.

A notification written after the object's commit is lost by a crash between the two; one written
before it tells about an object that may never exist. So the dialect describes the notification
(:class:`Notification`) while the object is being published, and the catalog inserts it into the
``deliveries`` outbox in the object's own transaction: both exist or neither does. The delivery
loop (core.notify) then sends it, at least once.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Notification:
    """One outgoing call owed once an object is committed (a notify-url POST)."""

    url: str
    body: str
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "POST"

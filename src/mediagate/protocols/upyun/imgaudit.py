"""UPYUN ``imgaudit``: the uploaded image's porn classification, by the offline model of
:mod:`mediagate.media.moderation` (spec shared/specs/upyun-apps.md §3.4, §6.15).

The callback's ``result`` is ``{"porn": {"label", "rate", "review"}}`` as the model computed it.
Failures are the task's, with the callback's ``status_code``: the model not installed → 503 and a
description saying how to install it (never a made-up score); not an image → 415; over 10 MB or
an image too large to decode → 413. None of them is retried: the same file fails the same way.
"""

from __future__ import annotations

import threading

from mediagate.core.errors import PayloadTooLarge, UnsupportedMedia
from mediagate.media.moderation import ModerationUnavailable, Moderator
from mediagate.tasks.registry import TaskContext, TaskFailed, TaskResult

KIND = "imgaudit"

_lock = threading.Lock()
_moderator: Moderator | None = None


def moderator(ctx: TaskContext) -> Moderator:
    """One per process: its semaphore bounds the decodes running at once (``media_max_concurrent``)."""
    global _moderator
    with _lock:
        if _moderator is None:
            _moderator = Moderator(ctx.gateway.image_limits)
        return _moderator


def run_imgaudit(ctx: TaskContext) -> TaskResult:
    source = ctx.fetch_source()
    try:
        verdict = moderator(ctx).score(source)
    except ModerationUnavailable as exc:
        raise TaskFailed(exc.message, status=503) from None
    except PayloadTooLarge as exc:
        raise TaskFailed(exc.message, status=413) from None
    except UnsupportedMedia as exc:
        raise TaskFailed(exc.message, status=415) from None
    return TaskResult(result={"result": verdict.upyun()})

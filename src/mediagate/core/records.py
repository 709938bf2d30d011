"""What API calls record besides objects: tasks they submit, Wantu scan feedback, and request
signatures seen (replay protection shared by every node)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from anyio import to_thread

from mediagate.catalog import models
from mediagate.core.outbox import NewTask
from mediagate.core.sessions import Sessions
from mediagate.core.uploads import wake_tasks
from mediagate.core.values import Bucket, Feedback, Task


class Records(Sessions):
    # -- signatures seen -------------------------------------------------------------------------

    async def claim_signature(self, digest: str, method: str, expires_at: datetime) -> str:
        """The method signature ``digest`` was first used with (recording ``method`` if it is new),
        shared by every node through the catalog; see ``Catalog.claim_signature``."""
        return await to_thread.run_sync(self.catalog.claim_signature, digest, method, expires_at)

    # -- tasks submitted by an API call, and Wantu feedback ---------------------------------------

    async def submit_tasks(self, tasks: Sequence[NewTask]) -> None:
        """Record tasks an API call submits (UPYUN pretreatment, ``/3.0/mediaEncode`` …), all in one
        transaction, then wake this process's relay: answered only once they are durable."""
        await to_thread.run_sync(self.catalog.queue, list(tasks))
        wake_tasks()

    async def task_of(self, bucket: Bucket, task_id: str, dialect: str) -> Task | None:
        """The task ``task_id`` if it belongs to ``bucket`` and ``dialect`` (else None: another
        namespace's task is as unknown as a made-up id)."""
        task = await to_thread.run_sync(self.catalog.get_task, task_id)
        if task is None or task.bucket_id != bucket.id or task.dialect != dialect:
            return None
        return Task.of(task)

    async def add_feedback(
        self, bucket: Bucket, items: Sequence[tuple[str, int, bool, float | None]]
    ) -> None:
        """Store ``(key, type, wrong, score)`` verdicts on scan results, all or none."""
        now = datetime.now(UTC)
        rows = [
            models.Feedback(bucket_id=bucket.id, key=key, type=kind, wrong=wrong, score=score, created_at=now)
            for key, kind, wrong, score in items
        ]
        await to_thread.run_sync(self.catalog.add_feedback, rows)

    async def list_feedback(self, bucket: Bucket, *, offset: int, limit: int) -> tuple[int, list[Feedback]]:
        total, rows = await to_thread.run_sync(
            lambda: self.catalog.list_feedback(bucket.id, offset=offset, limit=limit)
        )
        return total, [Feedback.of(row) for row in rows]

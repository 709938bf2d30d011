"""Maintenance: the collector (unreferenced blobs, stale sessions, expired objects, old records)
and the sweep of staging left by processes that ended."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mediagate.core.records import Records
from mediagate.core.staging import sweep


class Maintenance(Records):
    # -- maintenance -----------------------------------------------------------------------------

    def collect_garbage(self, *, grace: timedelta | None = None, as_of: datetime | None = None) -> int:
        """Delete blobs nothing refers to, stale sessions, expired objects and old finished
        notifications, and staging left by processes that ended. Blocking.

        A replaced or deleted version goes once ``grace`` (default ``garbage_grace_seconds``) has
        passed; an upload's reserved blob only once its lease is over, whatever the grace. Blob
        leases are judged as of ``as_of`` (default now; a later moment shows what the collector
        will do then)."""
        now = datetime.now(UTC)
        if grace is None:
            grace = timedelta(seconds=self.settings.garbage_grace_seconds)
        self.clean_staging()
        self.catalog.prune_deliveries(now - timedelta(seconds=self.settings.delivery_retention_seconds))
        self.catalog.prune_signatures(now)
        self.catalog.prune_tasks(now - timedelta(seconds=self.settings.task_retention_seconds))
        # every batch, not one per round: a backlog larger than a batch (sessions and expired
        # objects come at the upload rate) would otherwise grow for as long as the load lasts
        # (a batch with nothing new in it ends the round: no row can keep it going for ever)
        stale_before = now - timedelta(seconds=self.settings.session_max_age_seconds)
        ended: set[str] = set()
        while stale := set(self.catalog.stale_sessions(stale_before, now=now)) - ended:
            for session_id in stale:
                self.catalog.end_session(session_id)
            ended |= stale
        deleted: set[int] = set()
        while expired := [o for o in self.catalog.expired_objects(now) if o.id not in deleted]:
            for obj in expired:
                self.catalog.delete_object(obj.bucket_id, obj.key, only_blob=obj.blob_id)
                deleted.add(obj.id)
        self.storage.abort_stale_writes(now - timedelta(seconds=self.settings.s3_stale_upload_seconds))
        removed = 0
        while batch := self.catalog.garbage(now - grace, now=as_of or now):
            for blob_id in batch:
                self.storage.delete(blob_id)
            self.catalog.forget_garbage(batch)
            removed += len(batch)
        return removed

    def clean_staging(self, older_than: timedelta = timedelta(hours=6)) -> int:
        """Staging left by processes that ended: every directory no live process owns (see
        core.staging), whatever its age, and loose files from older versions once older than
        ``older_than``. Another process's uploads in flight are never touched."""
        return sweep(self.settings.staging_dir, keep=self.staging.claimed, loose_older_than=older_than)

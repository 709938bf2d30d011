"""Single uploads, once for every dialect: receive -> check -> store -> commit (the publishing order
is in ``core.gateway``'s docstring), and task outputs published the same way."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from anyio import to_thread

from mediagate.catalog import models
from mediagate.core.checks import MediaInfo, check_received, sniff
from mediagate.core.errors import ChecksumMismatch, Conflict, NotFound, PayloadTooLarge, PolicyViolation
from mediagate.core.gatewaybase import new_blob_id, quietly
from mediagate.core.grant import UploadGrant
from mediagate.core.ingest import Received, Spill, discard, hash_file, receive, receive_then
from mediagate.core.namespace import Namespace, wake_delivery
from mediagate.core.outbox import NewTask, Notification, Outgoing
from mediagate.core.preprocess import preprocess, wants_processing
from mediagate.core.savekey import FileFacts
from mediagate.core.streaming import spill_for
from mediagate.core.values import Bucket, Object
from mediagate.logs import note_upload, note_upload_failure


@dataclass(frozen=True)
class Stored:
    """A committed object, as the dialects report it."""

    object: Object
    info: MediaInfo
    replaced: bool
    processed: bool = False
    """The stored bytes are the result of upload-time processing, not what the client sent."""
    extra: dict[str, Any] = field(default_factory=dict)
    """What processing found for the answer (``meta``, ``theme_color``; see core.preprocess)."""


Notifier = Callable[[Stored], Sequence[Notification] | Sequence[Outgoing]]
"""What a dialect owes its customer about a stored object (see :meth:`Gateway.commit`):
notifications, and asynchronous tasks on the object (core.outbox ``NewTask``)."""


@dataclass(frozen=True)
class _Publication:
    """What :meth:`Gateway.commit` hands to its blocking half."""

    grant: UploadGrant
    bucket_id: int
    blob_id: str
    received: Received
    """The file to publish (the processed one, if upload-time processing changed it)."""
    sent: Received
    """The file the client sent."""
    filename: str | None
    info: MediaInfo | None
    """What ``received`` is, if already sniffed."""
    processed: bool
    created_at: datetime


class Uploads(Namespace):
    # -- single uploads ---------------------------------------------------------------------------

    def _limit(self, grant: UploadGrant) -> int:
        limits = [self.settings.max_upload_size]
        if grant.max_size is not None:
            limits.append(grant.max_size)
        if grant.size_range is not None:
            limits.append(grant.size_range[1])
        if grant.exact_size is not None:
            limits.append(grant.exact_size)
        return min(limits)

    def _too_large(self, grant: UploadGrant) -> tuple[int, Callable[[], Exception]]:
        """The grant's size limit, and the error passing it is."""
        limit = self._limit(grant)

        def too_large() -> Exception:
            if grant.exact_size is not None and limit == grant.exact_size:
                return ChecksumMismatch(f"file is longer than the declared {grant.exact_size} bytes")
            if grant.size_range is not None and limit == grant.size_range[1]:
                return PolicyViolation(
                    f"file size exceeds the allowed maximum of {limit} bytes", code="size_out_of_range"
                )
            return PayloadTooLarge(f"file exceeds the maximum upload size of {limit} bytes")

        return limit, too_large

    async def receive(self, grant: UploadGrant, chunks: AsyncIterable[bytes]) -> Received:
        """Stream a file into staging, refusing it the moment it passes the grant's size limit."""
        limit, too_large = self._too_large(grant)
        try:
            await self.quotas.admit_grant(grant)
            return await receive(
                chunks,
                self.staging_dir,
                max_size=limit,
                too_large=too_large,
                base64_encoded=grant.base64_encoded,
                spill=await self._spill(grant),
            )
        except BaseException as exc:
            note_upload_failure(exc, 0)
            raise

    async def _spill(self, grant: UploadGrant, bucket: Bucket | None = None) -> Spill | None:
        """Where a large body under ``grant`` streams to (None: staged whole; core.streaming)."""
        if self.storage.stream_from is None:
            return None
        if bucket is None:
            bucket = await self.find_bucket(grant.bucket)
        return spill_for(self.storage, grant, bucket.settings if bucket else None, new_blob_id)

    async def restage(self, grant: UploadGrant, staged: Received) -> Received:
        """Run a file staged before its grant was known (a form that sent its file before its
        policy) through ``receive`` again, so the grant's size limit and base64 decoding apply as
        if it had streamed in now. The old staging file is consumed either way."""
        try:
            return await self.receive(grant, _file_chunks(staged.path))
        finally:
            staged.discard()

    async def upload(
        self,
        grant: UploadGrant,
        chunks: AsyncIterable[bytes],
        *,
        filename: str | None,
        notify: Notifier | None = None,
    ) -> Stored:
        bucket = await self.bucket(grant.bucket)
        if grant.prebuffered or wants_processing(grant.processing, bucket.settings):
            received = await self.receive(grant, chunks)
            return await self.commit(grant, received, filename=filename, notify=notify)
        return await self._upload_as_sent(bucket, grant, chunks, filename=filename, notify=notify)

    async def _upload_as_sent(
        self,
        bucket: Bucket,
        grant: UploadGrant,
        chunks: AsyncIterable[bytes],
        *,
        filename: str | None,
        notify: Notifier | None,
    ) -> Stored:
        """:meth:`commit` for an upload stored as it was sent (no upload-time processing), with the
        file's last write and fsync, the checks and the move into storage in one worker-thread
        hop (``ingest.receive_then``): the hops, not the steps, were most of a small upload's
        cost. The blob is reserved the moment the body is complete, so that the reservation is
        durable by the time the file is moved; same order, same guarantees as :meth:`commit`
        (quota admission before the first byte, a large body streamed on to storage, the outcome
        noted for the metrics)."""
        blob_id = new_blob_id()
        reserved: Future[None] | None = None
        commit: Future[bool] | None = None
        size = 0

        def reserve() -> None:
            nonlocal reserved
            reserved = self.catalog.submit_reserve(blob_id, lease=self.upload_lease)

        def check_and_store(received: Received) -> tuple[models.Object, MediaInfo]:
            nonlocal size
            assert reserved is not None
            size = received.size
            publish = _Publication(
                grant=grant,
                bucket_id=bucket.id,
                blob_id=blob_id,
                received=received,
                sent=received,
                filename=filename,
                info=None,
                processed=False,
                created_at=datetime.now(UTC),
            )
            return self._check_and_store(publish, reserved)

        limit, too_large = self._too_large(grant)
        try:
            await self.quotas.admit_grant(grant)
            spill = None
            if self.storage.stream_from is not None:  # streamed bodies are written to ``blob_id``
                spill = spill_for(self.storage, grant, bucket.settings, lambda: blob_id)
            obj, found = await receive_then(
                chunks,
                self.staging_dir,
                check_and_store,
                max_size=limit,
                too_large=too_large,
                base64_encoded=grant.base64_encoded,
                complete=reserve,
                spill=spill,
            )
            stored = Stored(object=Object.of(obj), info=found, replaced=False)
            outbox = notify(stored) if notify is not None else ()
            commit = self.catalog.submit_commit(obj, insert_only=grant.insert_only, outbox=outbox)
            replaced = await asyncio.wrap_future(commit)
            note_upload("stored", size)
            _wake_for(outbox)
            return replace(stored, object=Object.of(obj), replaced=replaced)
        except BaseException as exc:
            note_upload_failure(exc, size)
            if reserved is not None and _never_committed(commit):
                with contextlib.suppress(Exception):
                    await asyncio.wrap_future(reserved)
                await quietly(self._drop_blob, blob_id)
            raise

    async def commit(
        self,
        grant: UploadGrant,
        received: Received,
        *,
        filename: str | None,
        created_at: datetime | None = None,
        notify: Notifier | None = None,
    ) -> Stored:
        """Check a received file against the grant and publish it; the staging file is consumed.

        Upload-time processing (the grant's ``processing``, the bucket's ``normalise`` policy)
        runs here, once for every dialect: see :mod:`mediagate.core.preprocess`. Then the
        transport checks (Content-MD5, exact length) apply to the bytes the client sent and every
        other grant check to the processed result, which is what gets published.

        ``notify`` describes the notifications the stored object is owed; they are committed in
        the object's own transaction (see core.outbox). It is called before that commit, so the
        ``Stored`` it gets has ``replaced=False`` whatever the commit finds."""
        blob_id = received.blob_id or new_blob_id()
        # Reserving the blob is a durable catalog write; it goes first so that it runs while the
        # checks do, instead of adding its latency to every upload.
        reserved = self.catalog.submit_reserve(blob_id, lease=self.upload_lease)
        commit: Future[bool] | None = None
        original = received
        try:
            bucket = await self.bucket(grant.bucket)
            await self.quotas.admit_grant(grant, size=received.size, bucket=bucket)
            checked = grant
            info: MediaInfo | None = None
            processed = False
            extra: dict[str, Any] = {}
            if wants_processing(grant.processing, bucket.settings):
                info = await to_thread.run_sync(sniff, received.path, filename)
                transport = UploadGrant(
                    bucket=grant.bucket,
                    render_key=grant.render_key,
                    exact_size=grant.exact_size,
                    content_md5=grant.content_md5,
                )
                check_received(transport, received, info, filename)
                pre = await preprocess(
                    self.settings, self.processor, grant.processing, bucket.settings, received
                )
                received, processed, extra = pre.received, pre.processed, pre.extra
                if processed:
                    info = None  # describe what gets published, not what was sent
                checked = replace(grant, exact_size=None, content_md5=None)
            publish = _Publication(
                grant=checked,
                bucket_id=bucket.id,
                blob_id=blob_id,
                received=received,
                sent=original,
                filename=filename,
                info=info,
                processed=processed,
                created_at=created_at or datetime.now(UTC),
            )
            obj, found = await to_thread.run_sync(self._check_and_store, publish, reserved)
            stored = Stored(
                object=Object.of(obj), info=found, replaced=False, processed=processed, extra=extra
            )
            outbox = notify(stored) if notify is not None else ()
            commit = self.catalog.submit_commit(obj, insert_only=grant.insert_only, outbox=outbox)
            replaced = await asyncio.wrap_future(commit)
            note_upload("stored", original.size)
            if original.path != received.path:  # storage consumed ``received``; a processed
                original.discard()  # upload's original remains (a system call saved otherwise)
            _wake_for(outbox)
            return replace(stored, object=Object.of(obj), replaced=replaced)
        except BaseException as exc:
            note_upload_failure(exc, original.size)
            await discard(received, original)
            if _never_committed(commit):
                # reserved as garbage; remove now rather than waiting for the collector (after the
                # reservation, so that it cannot land behind the removal)
                with contextlib.suppress(Exception):
                    await asyncio.wrap_future(reserved)
                await quietly(self._drop_blob, blob_id)
            raise

    def _check_and_store(
        self, publish: _Publication, reserved: Future[None]
    ) -> tuple[models.Object, MediaInfo]:
        """The blocking half of :meth:`commit`, in one worker-thread hop (each hop costs more than
        most of these steps): sniff, check, name, then move the file into storage once its
        reservation is durable. Returns the row to commit and what the file is."""
        grant, received = publish.grant, publish.received
        info = publish.info or sniff(received.path, publish.filename)
        check_received(grant, received, info, publish.filename, limits=self.image_limits)
        mime = info.mime if publish.processed else grant.content_type or info.mime
        key = grant.render_key(
            FileFacts(
                filename=publish.filename,
                md5=received.md5,
                size=received.size,
                mime=mime,
                width=info.width,
                height=info.height,
                path=publish.sent.path,  # EXIF placeholders read what the client sent
            )
        )
        if grant.insert_only and self.catalog.get_object(publish.bucket_id, key) is not None:
            raise Conflict("an object with this key already exists", code="key_exists")
        now = publish.created_at
        obj = models.Object(
            bucket_id=publish.bucket_id,
            key=key,
            blob_id=publish.blob_id,
            size=received.size,
            md5=received.md5,
            sha256=received.sha256,
            crc32=received.crc32,
            mime=mime,
            width=info.width,
            height=info.height,
            frames=info.frames,
            image_type=info.image_type,
            meta=dict(grant.meta),
            content_secret=grant.content_secret,
            created_at=now,
            expires_at=now + timedelta(seconds=grant.ttl_seconds) if grant.ttl_seconds else None,
        )
        reserved.result()
        received.store(self.storage, publish.blob_id)
        return obj, info

    # -- task outputs ----------------------------------------------------------------------------

    def publish_outputs(
        self, bucket_id: int, files: Sequence[tuple[str, Path]], *, outbox: Sequence[Outgoing] = ()
    ) -> list[Object]:
        """Store task outputs (``(key, file)`` each; the files are consumed) and commit them with
        ``outbox`` (the task's ``done`` and its notification) in one catalog transaction. Blocking.

        Same order as an upload: reserve, move into storage, commit; a failure or a refused
        commit (the attempt lost its lease: ``LeaseLost``, a Conflict) leaves no object. Blobs are
        dropped at once when the commit certainly did not happen (not tried, or refused); after
        an outage during the commit they are left to the collector, which removes them once
        their reservation lapses only if no committed row took them. Every output's bytes are
        synced to the disk before its row commits; the reservations (one group commit for all
        the outputs) are written while the files are hashed and synced, so their latencies
        overlap instead of adding up."""
        blob_ids = [new_blob_id() for _ in files]
        reserved = [self.catalog.submit_reserve(b, lease=self.upload_lease) for b in blob_ids]
        objs: list[models.Object] = []
        committing = False
        try:
            for (key, path), blob_id in zip(files, blob_ids, strict=True):
                info = sniff(path, key)
                size, md5, sha256, crc32 = hash_file(path, sync=True)
                obj = models.Object(
                    bucket_id=bucket_id,
                    key=key,
                    blob_id=blob_id,
                    size=size,
                    md5=md5,
                    sha256=sha256,
                    crc32=crc32,
                    mime=info.mime,
                    width=info.width,
                    height=info.height,
                    frames=info.frames,
                    image_type=info.image_type,
                    meta={},
                    created_at=datetime.now(UTC),
                )
                objs.append(obj)
            for future in reserved:
                future.result()
            for obj, (_, path) in zip(objs, files, strict=True):
                self.storage.put(obj.blob_id, path)
            committing = True
            self.catalog.commit_objects(objs, outbox=outbox)
        except BaseException as exc:
            for path in (p for _, p in files):
                path.unlink(missing_ok=True)
            if not committing or isinstance(exc, Conflict | NotFound):
                for future in reserved:  # none may be written after the blobs are dropped
                    with contextlib.suppress(BaseException):
                        future.result()
                for blob_id in blob_ids:
                    with contextlib.suppress(Exception):
                        self._drop_blob(blob_id)
            raise
        return [Object.of(obj) for obj in objs]


def _wake_for(outbox: Sequence[Notification] | Sequence[Outgoing]) -> None:
    """Wake what delivers ``outbox`` (just committed) in this process."""
    if outbox:
        wake_delivery()
    if any(isinstance(item, NewTask) for item in outbox):
        wake_tasks()


def wake_tasks() -> None:
    from mediagate.tasks import relay  # it imports this module

    relay.wake()


def _never_committed(commit: Future[bool] | None) -> bool:
    """True when a commit certainly did not happen, so its blob may be dropped at once.

    A commit still running when its caller was cancelled may yet succeed: its blob is left to the
    collector, which removes it only if the reservation is never cleared by that commit."""
    if commit is None or commit.cancelled():
        return True
    return commit.done() and commit.exception() is not None


async def _file_chunks(path: Path, size: int = 1024 * 1024) -> AsyncIterator[bytes]:
    """A local file as an async byte stream, read in a worker thread."""
    f = await to_thread.run_sync(open, path, "rb")
    try:
        while chunk := await to_thread.run_sync(f.read, size):
            yield chunk
    finally:
        await to_thread.run_sync(f.close)

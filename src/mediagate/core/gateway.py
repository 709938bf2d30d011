"""The core pipeline, once: authorise (done by the dialect) -> receive -> check -> commit.

Dialects call :class:`Gateway`; it owns the catalog, the storage and the staging area, so protocol
code never touches SQL or files. Blocking work (catalog, storage, hashing) runs in worker threads.

Publishing order, which is what makes a crash safe:
1. bytes land in a fsynced staging file (``ingest.receive``);
2. checks run on the staging file; a failure deletes it and nothing else exists;
3. the blob id is recorded as garbage under a lease (``upload_lease_seconds``), then the file is
   moved into storage;
4. one catalog transaction inserts the row and un-records the blob (old version -> garbage,
   deleted after ``garbage_grace_seconds``).
A crash before 4 leaves only garbage the collector removes; after 4 the object is whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anyio import to_thread

from mediagate.catalog import Catalog
from mediagate.catalog.models import Bucket, Feedback, Folder, Object, Task, UploadPart, UploadSession
from mediagate.catalog.repo import DirEntry
from mediagate.config import Settings
from mediagate.core import threads
from mediagate.core.checks import MediaInfo, check_received, sniff
from mediagate.core.errors import (
    BadRequest,
    ChecksumMismatch,
    Conflict,
    NotFound,
    PayloadTooLarge,
    PolicyViolation,
)
from mediagate.core.grant import UploadGrant
from mediagate.core.ids import unique_hex
from mediagate.core.ingest import Received, hash_file, new_staging_path, receive, receive_then
from mediagate.core.outbox import NewTask, Notification, Outgoing
from mediagate.core.preprocess import preprocess, wants_processing
from mediagate.core.savekey import FileFacts
from mediagate.core.secrets import SecretBox
from mediagate.core.staging import StagingArea, sweep
from mediagate.logs import describe, is_outage, note_bucket
from mediagate.media.limits import ImageLimits
from mediagate.storage.base import BlobNotFound, Storage

if TYPE_CHECKING:
    from mediagate.media.process import Processor

log = logging.getLogger("mediagate")

BUCKET_TTL = 1.0
"""Seconds a bucket row is remembered by :meth:`Gateway.find_bucket`."""


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


def new_blob_id() -> str:
    return unique_hex()


class Gateway:
    def __init__(self, settings: Settings, catalog: Catalog, storage: Storage, secrets: SecretBox) -> None:
        self.settings = settings
        self.catalog = catalog
        self.storage = storage
        self.secrets = secrets
        self.staging = StagingArea(settings.staging_dir)
        self.image_limits = ImageLimits.from_settings(settings)
        self._processor: Processor | None = None
        self._buckets: dict[str, tuple[float, Bucket | None]] = {}

    @property
    def staging_dir(self) -> Path:
        """This process's own staging directory (see core.staging), claimed on first use."""
        return self.staging.path

    @property
    def processor(self) -> Processor:
        """The process-wide image processor (bounded concurrent decodes), made on first use so
        that a gateway that never touches an image never loads libvips."""
        if self._processor is None:
            from mediagate.media.process import Processor

            self._processor = Processor(self.image_limits)
        return self._processor

    # -- buckets and credentials -----------------------------------------------------------------

    async def bucket(self, name: str) -> Bucket:
        found = await self.find_bucket(name)
        if found is None:
            raise NotFound(f"bucket {name!r} does not exist", code="bucket_not_found")
        return found

    async def find_bucket(self, name: str) -> Bucket | None:
        """The bucket row, remembered for ``BUCKET_TTL``: every request looks its bucket up (often
        twice) and buckets change rarely. Staleness is harmless: the commit re-checks that the
        bucket still exists, and credentials are never cached (revocation is immediate)."""
        now = time.monotonic()
        cached = self._buckets.get(name)
        if cached is not None and now - cached[0] < BUCKET_TTL:
            return cached[1]
        found = await threads.run_sync(self.catalog.get_bucket, name)
        if len(self._buckets) > 10_000:  # unknown names from hostile clients must not grow it
            self._buckets.clear()
        self._buckets[name] = (now, found)
        return found

    async def secrets_of(self, bucket: Bucket, kind: str) -> list[tuple[str, str]]:
        """(key_id, plaintext secret) of every active credential of ``kind``, newest first."""
        sealed = await threads.run_sync(self.catalog.active_secrets, bucket.id, kind)
        return [(key_id, self.secrets.open(secret)) for key_id, secret in sealed]

    async def find_key(self, kind: str, key_id: str) -> tuple[Bucket, str] | None:
        """Bucket and plaintext secret for an access key id (ImageX/Wantu AK lookup)."""
        found = await to_thread.run_sync(self.catalog.find_credential, kind, key_id)
        if found is None:
            return None
        cred, bucket = found
        note_bucket(bucket.name)  # the access line names the bucket the key belongs to
        return bucket, self.secrets.open(cred.sealed_secret)

    async def add_key(self, bucket: Bucket, kind: str, key_id: str, secret: str) -> None:
        """Record one more credential of ``kind`` for a bucket (sealed at rest), e.g. a dialect's
        revocable session id; it is found by :meth:`find_key` until :meth:`revoke_key`."""
        sealed = self.secrets.seal(secret)
        await to_thread.run_sync(self.catalog.add_credential, bucket.id, kind, key_id, sealed)

    async def revoke_key(self, kind: str, key_id: str) -> bool:
        """Revoke the active credential ``key_id`` of ``kind``; False if there was none."""
        found = await to_thread.run_sync(self.catalog.find_credential, kind, key_id)
        if found is None:
            return False
        await to_thread.run_sync(self.catalog.revoke_credential, found[0].id)
        return True

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
        return await receive(
            chunks,
            self.staging_dir,
            max_size=limit,
            too_large=too_large,
            base64_encoded=grant.base64_encoded,
        )

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
        if wants_processing(grant.processing, bucket.settings):
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
        durable by the time the file is moved; same order, same guarantees as :meth:`commit`."""
        blob_id = new_blob_id()
        reserved: Future[None] | None = None
        commit: Future[bool] | None = None

        def reserve() -> None:
            nonlocal reserved
            reserved = self.catalog.submit_reserve(blob_id, lease=self.upload_lease)

        def check_and_store(received: Received) -> tuple[Object, MediaInfo]:
            assert reserved is not None
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
            obj, found = await receive_then(
                chunks,
                self.staging_dir,
                check_and_store,
                max_size=limit,
                too_large=too_large,
                base64_encoded=grant.base64_encoded,
                complete=reserve,
            )
            stored = Stored(object=obj, info=found, replaced=False)
            outbox = notify(stored) if notify is not None else ()
            commit = self.catalog.submit_commit(obj, insert_only=grant.insert_only, outbox=outbox)
            replaced = await asyncio.wrap_future(commit)
            _wake_for(outbox)
            return replace(stored, replaced=replaced)
        except BaseException:
            if reserved is not None and _never_committed(commit):
                with contextlib.suppress(Exception):
                    await asyncio.wrap_future(reserved)
                await _quietly(self._drop_blob, blob_id)
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
        blob_id = new_blob_id()
        # Reserving the blob is a durable catalog write; it goes first so that it runs while the
        # checks do, instead of adding its latency to every upload.
        reserved = self.catalog.submit_reserve(blob_id, lease=self.upload_lease)
        commit: Future[bool] | None = None
        original = received
        try:
            bucket = await self.bucket(grant.bucket)
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
            stored = Stored(object=obj, info=found, replaced=False, processed=processed, extra=extra)
            outbox = notify(stored) if notify is not None else ()
            commit = self.catalog.submit_commit(obj, insert_only=grant.insert_only, outbox=outbox)
            replaced = await asyncio.wrap_future(commit)
            if original.path != received.path:  # storage consumed ``received``; a processed
                original.discard()  # upload's original remains (a system call saved otherwise)
            _wake_for(outbox)
            return replace(stored, replaced=replaced)
        except BaseException:
            received.discard()
            original.discard()
            if _never_committed(commit):
                # reserved as garbage; remove now rather than waiting for the collector (after the
                # reservation, so that it cannot land behind the removal)
                with contextlib.suppress(Exception):
                    await asyncio.wrap_future(reserved)
                await _quietly(self._drop_blob, blob_id)
            raise

    def _check_and_store(self, publish: _Publication, reserved: Future[None]) -> tuple[Object, MediaInfo]:
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
        obj = Object(
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
        self.storage.put(publish.blob_id, received.path)
        return obj, info

    # -- reading ----------------------------------------------------------------------------------

    async def get_object(self, bucket: Bucket, key: str) -> Object:
        obj = await to_thread.run_sync(self.catalog.get_object, bucket.id, key)
        if obj is None or is_expired(obj):
            raise NotFound("file not found", code="file_not_found")
        return obj

    def read(self, obj: Object, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """A blocking iterator over the object's bytes (iterate it in a worker thread)."""
        return self.storage.open(obj.blob_id, start, end)

    @contextlib.asynccontextmanager
    async def local_copy(self, obj: Object) -> AsyncIterator[Path]:
        """A filesystem path holding the object's bytes for the length of the block (for work
        that needs a file, like image decoding): the blob itself when storage is local, else a
        staging copy removed afterwards. Never write to it. A missing blob is NotFound."""
        direct = await to_thread.run_sync(self._existing_local_path, obj.blob_id)
        if direct is not None:
            yield direct
            return
        staged = new_staging_path(self.staging_dir)
        try:
            try:
                await to_thread.run_sync(self.storage.assemble, [obj.blob_id], staged)
            except BlobNotFound as exc:
                raise NotFound("file not found", code="file_not_found") from exc
            yield staged
        finally:
            staged.unlink(missing_ok=True)

    def _existing_local_path(self, blob_id: str) -> Path | None:
        path = self.storage.local_path(blob_id)
        return path if path is not None and path.exists() else None

    async def delete_object(self, bucket: Bucket, key: str) -> None:
        if not await to_thread.run_sync(self.catalog.delete_object, bucket.id, key):
            raise NotFound("file not found", code="file_not_found")

    # -- folders and listings --------------------------------------------------------------------

    async def folder_exists(self, bucket: Bucket, path: str) -> bool:
        """Whether folder ``path`` (normalised, '' = the root, which always exists) exists."""
        if not path:
            return True
        return await to_thread.run_sync(self.catalog.get_folder, bucket.id, path) is not None

    async def make_folder(self, bucket: Bucket, path: str, *, exist_ok: bool = True) -> bool:
        """Create folder ``path`` and its parents; False if it existed (Conflict unless exist_ok)."""
        return await to_thread.run_sync(
            lambda: self.catalog.create_folder(bucket.id, path, exist_ok=exist_ok)
        )

    async def delete_folder(self, bucket: Bucket, path: str) -> None:
        """Remove an empty folder (NotFound if absent, Conflict if it holds anything)."""
        await to_thread.run_sync(self.catalog.delete_folder, bucket.id, path)

    async def list_objects(
        self, bucket: Bucket, dir_path: str, *, offset: int = 0, limit: int = 100
    ) -> tuple[int, list[Object]]:
        """(how many objects are directly in ``dir_path``, one page of them by name)."""
        total = await to_thread.run_sync(self.catalog.count_objects_in, bucket.id, dir_path)
        page = await to_thread.run_sync(
            lambda: self.catalog.objects_in(bucket.id, dir_path, offset=offset, limit=limit)
        )
        return total, page

    async def list_folders(
        self, bucket: Bucket, dir_path: str, *, offset: int = 0, limit: int = 100
    ) -> tuple[int, list[Folder]]:
        """(how many folders are directly in ``dir_path``, one page of them by name)."""
        total = await to_thread.run_sync(self.catalog.count_folders_in, bucket.id, dir_path)
        page = await to_thread.run_sync(
            lambda: self.catalog.folders_in(bucket.id, dir_path, offset=offset, limit=limit)
        )
        return total, page

    # -- multi-part sessions -------------------------------------------------------------------

    async def start_session(
        self,
        bucket: Bucket,
        dialect: str,
        key: str,
        *,
        total_size: int | None = None,
        part_size: int | None = None,
        data: dict[str, Any] | None = None,
    ) -> UploadSession:
        session_id = uuid.uuid4().hex
        return await to_thread.run_sync(
            lambda: self.catalog.create_session(
                session_id,
                bucket.id,
                dialect,
                key,
                total_size=total_size,
                part_size=part_size,
                data=data,
            )
        )

    async def session(self, session_id: str, *, bucket: Bucket | None = None) -> UploadSession:
        found = await to_thread.run_sync(self.catalog.get_session, session_id)
        if found is None or (bucket is not None and found.bucket_id != bucket.id):
            raise NotFound("upload session not found", code="session_not_found")
        return found

    async def put_part(
        self,
        session: UploadSession,
        part_number: int,
        chunks: AsyncIterable[bytes],
        *,
        max_size: int | None = None,
        expected_md5: str | None = None,
        expected_size: int | None = None,
        expected_crc32: int | None = None,
    ) -> UploadPart:
        """Store one part; a part of the same number is replaced. Returns its record.

        A part whose bytes do not match ``expected_md5``/``expected_size`` is refused and not
        stored (a longer one is cut off while streaming)."""
        limit = min(self.settings.max_upload_size, max_size or self.settings.max_upload_size)
        too_long = None
        if expected_size is not None and expected_size < limit:
            limit = expected_size

            def too_long() -> Exception:
                return ChecksumMismatch(f"the part is longer than the declared {expected_size} bytes")

        received = await receive(chunks, self.staging_dir, max_size=limit, too_large=too_long)
        blob_id = new_blob_id()
        try:
            if expected_md5 is not None and expected_md5.lower() != received.md5:
                raise ChecksumMismatch("Content-MD5 does not match the part")
            if expected_size is not None and expected_size != received.size:
                raise ChecksumMismatch(
                    f"the part has {received.size} bytes, not the declared {expected_size}"
                )
            if expected_crc32 is not None and expected_crc32 != received.crc32:
                raise ChecksumMismatch("the CRC32 declared for the part does not match its bytes")
            await to_thread.run_sync(self._reserve, blob_id)
            await to_thread.run_sync(self.storage.put, blob_id, received.path)
            await to_thread.run_sync(
                self.catalog.add_part,
                session.id,
                part_number,
                blob_id,
                received.size,
                received.md5,
                received.crc32,
            )
        except BaseException:
            received.discard()
            await _quietly(self._drop_blob, blob_id)
            raise
        return UploadPart(
            session_id=session.id,
            part_number=part_number,
            blob_id=blob_id,
            size=received.size,
            md5=received.md5,
            crc32=received.crc32,
        )

    async def claim_session(self, session: UploadSession, *, expect: str, state: str) -> bool:
        """Move a session from state ``expect`` to ``state`` atomically; False if another request
        moved it first (so a step that must happen once, like a commit, happens once)."""
        return await to_thread.run_sync(self.catalog.transition_session, session.id, expect, state)

    async def update_session_data(self, session: UploadSession, data: dict[str, Any]) -> None:
        """Replace the session's dialect-specific state (e.g. the part order a merge fixed)."""
        await to_thread.run_sync(lambda: self.catalog.update_session(session.id, data=dict(data)))

    async def parts(self, session: UploadSession) -> list[UploadPart]:
        return await to_thread.run_sync(self.catalog.parts, session.id)

    async def complete_session(
        self,
        session: UploadSession,
        grant: UploadGrant,
        *,
        part_numbers: list[int] | None = None,
        filename: str | None = None,
        keep_record: bool = False,
        notify: Notifier | None = None,
    ) -> Stored:
        """Assemble the parts (all, or exactly ``part_numbers`` in that order) and publish them
        through the same checks as a single upload. The session ends only on success; with
        ``keep_record`` its row stays as ``completed`` (see ``Catalog.finish_session``)."""
        parts = {p.part_number: p for p in await self.parts(session)}
        order = part_numbers if part_numbers is not None else sorted(parts)
        missing = [n for n in order if n not in parts]
        if missing or not order:
            raise BadRequest(f"missing parts: {missing or 'all'}", code="missing_parts")
        dest = new_staging_path(self.staging_dir)
        try:
            await to_thread.run_sync(self.storage.assemble, [parts[n].blob_id for n in order], dest)
            size, md5, sha256, crc32 = await to_thread.run_sync(hash_file, dest)
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
        stored = await self.commit(
            grant, Received(dest, size, md5, sha256, crc32), filename=filename, notify=notify
        )
        end = self.catalog.finish_session if keep_record else self.catalog.end_session
        await to_thread.run_sync(end, session.id)
        return stored

    async def abort_session(self, session: UploadSession) -> None:
        await to_thread.run_sync(self.catalog.end_session, session.id)

    # -- paths: what a name is, listings, usage, copy and move ----------------------------------

    async def stat_path(self, bucket: Bucket, path: str) -> Object | Folder | None:
        """What a normalised path names: a live object, a folder ('' is the bucket root, which
        always exists), or None. The catalog never holds an object and a folder of one name."""
        if not path:
            return Folder(bucket_id=bucket.id, path="", dir="", name="", created_at=bucket.created_at)
        obj = await to_thread.run_sync(self.catalog.get_object, bucket.id, path)
        if obj is not None and not is_expired(obj):
            return obj
        return await to_thread.run_sync(self.catalog.get_folder, bucket.id, path)

    async def list_dir(
        self,
        bucket: Bucket,
        dir_path: str,
        *,
        limit: int,
        after: str | None = None,
        descending: bool = False,
    ) -> list[DirEntry]:
        """Folders and objects directly in ``dir_path``, merged by name; paged by the last name
        seen (``after``), which stays correct while other clients add or remove entries."""
        return await to_thread.run_sync(
            lambda: self.catalog.list_dir(
                bucket.id, dir_path, limit=limit, after=after, descending=descending
            )
        )

    async def usage(self, bucket: Bucket, prefix: str = "") -> int:
        """Bytes held by the bucket's objects, or by those under folder ``prefix``."""
        return await to_thread.run_sync(lambda: self.catalog.usage(bucket.id, prefix))

    async def copy_object(self, bucket: Bucket, source_key: str, dest_key: str) -> Object:
        """A new object at ``dest_key`` with the source's bytes and metadata (replacing what was
        there). Storage copies the bytes into a new blob (kernel-side for local files), so every
        object owns its blob and deleting one never affects the other."""
        src = await self.get_object(bucket, source_key)
        staged = new_staging_path(self.staging_dir)
        blob_id: str | None = None
        try:
            try:
                await to_thread.run_sync(self.storage.assemble, [src.blob_id], staged)
            except BlobNotFound as exc:
                raise NotFound("file not found", code="file_not_found") from exc
            obj = Object(
                bucket_id=bucket.id,
                key=dest_key,
                blob_id=new_blob_id(),
                size=src.size,
                md5=src.md5,
                sha256=src.sha256,
                crc32=src.crc32,
                mime=src.mime,
                width=src.width,
                height=src.height,
                frames=src.frames,
                image_type=src.image_type,
                meta=dict(src.meta or {}),
                content_secret=src.content_secret,
                created_at=datetime.now(UTC),
                expires_at=src.expires_at,
            )
            blob_id = obj.blob_id
            await to_thread.run_sync(self._reserve, blob_id)
            await to_thread.run_sync(self.storage.put, blob_id, staged)
            await to_thread.run_sync(self.catalog.commit_object, obj)
            return obj
        except BaseException:
            staged.unlink(missing_ok=True)
            if blob_id is not None:
                await _quietly(self._drop_blob, blob_id)
            raise

    async def move_object(
        self, bucket: Bucket, source_key: str, dest_key: str, *, replace: bool = True
    ) -> Object:
        """Rename an object in one catalog transaction; its bytes are not touched. With
        ``replace=False`` an object already at ``dest_key`` is a Conflict (``key_exists``)."""
        await self.get_object(bucket, source_key)
        return await to_thread.run_sync(
            lambda: self.catalog.rename_object(bucket.id, source_key, dest_key, replace=replace)
        )

    # -- signatures seen -------------------------------------------------------------------------

    async def claim_signature(self, digest: str, method: str, expires_at: datetime) -> str:
        """The method signature ``digest`` was first used with (recording ``method`` if it is new),
        shared by every node through the catalog; see ``Catalog.claim_signature``."""
        return await to_thread.run_sync(self.catalog.claim_signature, digest, method, expires_at)

    async def edit_meta(
        self,
        bucket: Bucket,
        key: str,
        edit: Callable[[dict[str, Any]], dict[str, Any]],
        *,
        set_expiry: bool = False,
        expires_in: int | None = None,
    ) -> Object:
        """Replace a live object's metadata with ``edit(current metadata)``, atomically (the bytes
        are untouched). With ``set_expiry`` its expiry becomes ``expires_in`` seconds from now
        (None: never). NotFound for a missing or expired object."""
        now = datetime.now(UTC)

        def apply(obj: Object) -> None:
            if is_expired(obj):
                raise NotFound("file not found", code="file_not_found")
            obj.meta = edit(dict(obj.meta or {}))
            if set_expiry:
                obj.expires_at = now + timedelta(seconds=expires_in) if expires_in is not None else None

        return await to_thread.run_sync(self.catalog.edit_object, bucket.id, key, apply)

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
        their reservation lapses only if no committed row took them."""
        objs: list[Object] = []
        committing = False
        try:
            for key, path in files:
                info = sniff(path, key)
                size, md5, sha256, crc32 = hash_file(path)
                obj = Object(
                    bucket_id=bucket_id,
                    key=key,
                    blob_id=new_blob_id(),
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
                self._reserve(obj.blob_id)
                self.storage.put(obj.blob_id, path)
            committing = True
            self.catalog.commit_objects(objs, outbox=outbox)
        except BaseException as exc:
            for path in (p for _, p in files):
                path.unlink(missing_ok=True)
            if not committing or isinstance(exc, Conflict | NotFound):
                for obj in objs:
                    with contextlib.suppress(Exception):
                        self._drop_blob(obj.blob_id)
            raise
        return objs

    # -- tasks submitted by an API call, and Wantu feedback ---------------------------------------

    async def submit_tasks(self, tasks: Sequence[NewTask]) -> None:
        """Record tasks an API call submits (UPYUN pretreatment, ``/3.0/mediaEncode`` …), all in one
        transaction, then wake this process's relay: answered only once they are durable."""
        await to_thread.run_sync(self.catalog.queue, list(tasks))
        _wake_tasks()

    async def task_of(self, bucket: Bucket, task_id: str, dialect: str) -> Task | None:
        """The task ``task_id`` if it belongs to ``bucket`` and ``dialect`` (else None: another
        namespace's task is as unknown as a made-up id)."""
        task = await to_thread.run_sync(self.catalog.get_task, task_id)
        if task is None or task.bucket_id != bucket.id or task.dialect != dialect:
            return None
        return task

    async def add_feedback(
        self, bucket: Bucket, items: Sequence[tuple[str, int, bool, float | None]]
    ) -> None:
        """Store ``(key, type, wrong, score)`` verdicts on scan results, all or none."""
        now = datetime.now(UTC)
        rows = [
            Feedback(bucket_id=bucket.id, key=key, type=kind, wrong=wrong, score=score, created_at=now)
            for key, kind, wrong, score in items
        ]
        await to_thread.run_sync(self.catalog.add_feedback, rows)

    async def list_feedback(self, bucket: Bucket, *, offset: int, limit: int) -> tuple[int, list[Feedback]]:
        return await to_thread.run_sync(
            lambda: self.catalog.list_feedback(bucket.id, offset=offset, limit=limit)
        )

    # -- maintenance -----------------------------------------------------------------------------

    @property
    def upload_lease(self) -> timedelta:
        return timedelta(seconds=self.settings.upload_lease_seconds)

    def _reserve(self, blob_id: str) -> None:
        self.catalog.reserve_blob(blob_id, lease=self.upload_lease)

    def _drop_blob(self, blob_id: str) -> None:
        self.storage.delete(blob_id)
        self.catalog.forget_garbage([blob_id])

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
        for session_id in self.catalog.stale_sessions(
            now - timedelta(seconds=self.settings.session_max_age_seconds)
        ):
            self.catalog.end_session(session_id)
        for obj in self.catalog.expired_objects(now):
            self.catalog.delete_object(obj.bucket_id, obj.key)
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


def _wake_for(outbox: Sequence[Notification] | Sequence[Outgoing]) -> None:
    """Wake what delivers ``outbox`` (just committed) in this process."""
    if outbox:
        _wake_delivery()
    if any(isinstance(item, NewTask) for item in outbox):
        _wake_tasks()


def _wake_delivery() -> None:
    from mediagate.core import notify  # it imports this module

    notify.wake()


def _wake_tasks() -> None:
    from mediagate.tasks import relay  # it imports this module

    relay.wake()


def _never_committed(commit: Future[bool] | None) -> bool:
    """True when a commit certainly did not happen, so its blob may be dropped at once.

    A commit still running when its caller was cancelled may yet succeed: its blob is left to the
    collector, which removes it only if the reservation is never cleared by that commit."""
    if commit is None or commit.cancelled():
        return True
    return commit.done() and commit.exception() is not None


def is_expired(obj: Object) -> bool:
    """Whether the object's ttl has passed: it is gone for clients, though its row may remain
    until the collector runs."""
    if obj.expires_at is None:
        return False
    expires = obj.expires_at if obj.expires_at.tzinfo else obj.expires_at.replace(tzinfo=UTC)
    return expires <= datetime.now(UTC)


async def _file_chunks(path: Path, size: int = 1024 * 1024) -> AsyncIterator[bytes]:
    """A local file as an async byte stream, read in a worker thread."""
    f = await to_thread.run_sync(open, path, "rb")
    try:
        while chunk := await to_thread.run_sync(f.read, size):
            yield chunk
    finally:
        await to_thread.run_sync(f.close)


async def _quietly(fn: Any, *args: Any) -> None:
    try:
        await to_thread.run_sync(fn, *args)
    except Exception as exc:  # cleanup must not hide the original error
        if is_outage(exc):  # the request's own access line already names the outage
            log.debug("cleanup failed during an outage: %s", describe(exc))
        else:
            log.exception("cleanup failed")

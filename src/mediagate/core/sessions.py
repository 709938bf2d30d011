"""Multi-part sessions (UPYUN multi-part, Wantu blocks, ImageX chunks): state in the catalog, parts
in storage, so that the next part may land on any process; completion publishes through
``core.uploads``."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterable, AsyncIterator
from datetime import datetime, timedelta
from typing import Any

from anyio import to_thread

from mediagate.catalog import Cap
from mediagate.core.errors import BadRequest, ChecksumMismatch, LimitExceeded, NotFound
from mediagate.core.gatewaybase import new_blob_id, quietly
from mediagate.core.grant import UploadGrant
from mediagate.core.ingest import Received, discard, hash_file, new_staging_path, receive
from mediagate.core.streaming import part_spill
from mediagate.core.uploads import Notifier, Stored, Uploads
from mediagate.core.values import Bucket, UploadPart, UploadSession
from mediagate.logs import note_upload_failure
from mediagate.storage.base import Storage


class Sessions(Uploads):
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
        max_open: int | None = None,
        replacing: str | None = None,
        expires_at: datetime | None = None,
    ) -> UploadSession:
        """A new session of ``dialect`` for ``key``. ``max_open``: refused (LimitExceeded) when
        the bucket already has that many unfinished sessions of the dialect (abandoned ones count
        until ``session_max_age_seconds`` have passed since they were last touched). ``replacing``:
        the key, when the upload may replace it (its quota admission frees the old object).
        ``expires_at``: when the dialect's own credentials for it expire (the collector ends it
        then, else once idle for ``session_max_age_seconds``)."""
        try:
            await self.quotas.admit(bucket, total_size, replacing=replacing)
        except BaseException as exc:
            note_upload_failure(exc, 0)
            raise
        session_id = uuid.uuid4().hex
        cap = None
        if max_open is not None:
            refusal = LimitExceeded(
                f"bucket {bucket.name!r} already has {max_open} unfinished uploads, the most the server "
                "allows one bucket: finish or terminate some first"
            )
            cap = Cap(max_open, refusal, window=timedelta(seconds=self.settings.session_max_age_seconds))
        made = await to_thread.run_sync(
            lambda: self.catalog.create_session(
                session_id,
                bucket.id,
                dialect,
                key,
                total_size=total_size,
                part_size=part_size,
                data=data,
                cap=cap,
                expires_at=expires_at,
            )
        )
        return UploadSession.of(made)

    async def session(self, session_id: str, *, bucket: Bucket | None = None) -> UploadSession:
        found = await to_thread.run_sync(self.catalog.get_session, session_id)
        if found is None or (bucket is not None and found.bucket_id != bucket.id):
            raise NotFound("upload session not found", code="session_not_found")
        return UploadSession.of(found)

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
        holder: str | None = None,
    ) -> UploadPart:
        """Store one part; a part of the same number is replaced. Returns its record.

        A part whose bytes do not match ``expected_md5``/``expected_size`` is refused and not
        stored (a longer one is cut off while streaming). With ``holder`` the part is recorded
        only while the session's state is still that lease (see :meth:`claim_session`), in the
        recording transaction itself: a writer that lost its lease stores nothing (Conflict)."""
        limit = min(self.settings.max_upload_size, max_size or self.settings.max_upload_size)
        too_long = None
        if expected_size is not None and expected_size < limit:
            limit = expected_size

            def too_long() -> Exception:
                return ChecksumMismatch(f"the part is longer than the declared {expected_size} bytes")

        received = await receive(
            chunks,
            self.staging_dir,
            max_size=limit,
            too_large=too_long,
            spill=part_spill(self.storage, new_blob_id),
        )
        blob_id = received.blob_id or new_blob_id()
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
            await to_thread.run_sync(received.store, self.storage, blob_id)
            await to_thread.run_sync(
                lambda: self.catalog.add_part(
                    session.id,
                    part_number,
                    blob_id,
                    received.size,
                    received.md5,
                    received.crc32,
                    holder=holder,
                )
            )
        except BaseException:
            await discard(received)
            await quietly(self._drop_blob, blob_id)
            raise
        return UploadPart(
            session_id=session.id,
            part_number=part_number,
            blob_id=blob_id,
            size=received.size,
            md5=received.md5,
            crc32=received.crc32,
            created_at=None,
        )

    async def claim_session(self, session: UploadSession, *, expect: str, state: str) -> bool:
        """Move a session from state ``expect`` to ``state`` atomically; False if another request
        moved it first (so a step that must happen once, like a commit, happens once)."""
        return await to_thread.run_sync(self.catalog.transition_session, session.id, expect, state)

    async def touch_session(self, session: UploadSession, *, holder: str) -> bool:
        """Keep a lease taken with :meth:`claim_session` alive (its ``updated_at`` is how others
        judge it stale); False when it was lost or the session is gone."""
        return await to_thread.run_sync(self.catalog.touch_session, session.id, holder)

    async def set_session_size(self, session: UploadSession, total_size: int) -> None:
        """Fix a session's total size once it is known (an upload that deferred its length)."""
        await to_thread.run_sync(lambda: self.catalog.update_session(session.id, total_size=total_size))

    async def update_session_data(self, session: UploadSession, data: dict[str, Any]) -> None:
        """Replace the session's dialect-specific state (e.g. the part order a merge fixed)."""
        await to_thread.run_sync(lambda: self.catalog.update_session(session.id, data=dict(data)))

    async def parts(self, session: UploadSession) -> list[UploadPart]:
        return [UploadPart.of(part) for part in await to_thread.run_sync(self.catalog.parts, session.id)]

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
        self.quotas.admitted_before()  # at start_session; the commit still checks the storage quota
        parts = {p.part_number: p for p in await self.parts(session)}
        order = part_numbers if part_numbers is not None else sorted(parts)
        missing = [n for n in order if n not in parts]
        if missing or not order:
            raise BadRequest(f"missing parts: {missing or 'all'}", code="missing_parts")
        stored = await self.commit(
            grant,
            await self._assemble(grant, [parts[n].blob_id for n in order], sum(parts[n].size for n in order)),
            filename=filename,
            notify=notify,
        )
        end = self.catalog.finish_session if keep_record else self.catalog.end_session
        await to_thread.run_sync(end, session.id)
        return stored

    async def _assemble(self, grant: UploadGrant, blob_ids: list[str], size: int) -> Received:
        """The parts as one received body: on a backend that streams, read back part by part
        and fed to a new upload (nothing whole on local disk); else concatenated into a staging
        file by ``Storage.assemble`` (kernel-side for local files) and hashed."""
        spill = await self._spill(grant)
        if spill is not None:
            return await receive(
                _blob_chunks(self.storage, blob_ids),
                self.staging_dir,
                max_size=size,
                spill=spill,
            )
        dest = new_staging_path(self.staging_dir)
        try:
            await to_thread.run_sync(self.storage.assemble, blob_ids, dest)
            size, md5, sha256, crc32 = await to_thread.run_sync(hash_file, dest)
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
        return Received(dest, size, md5, sha256, crc32)

    async def abort_session(self, session: UploadSession) -> None:
        await to_thread.run_sync(self.catalog.end_session, session.id)


async def _blob_chunks(storage: Storage, blob_ids: list[str]) -> AsyncIterator[bytes]:
    """Blobs one after the other as an async byte stream, read in a worker thread."""
    for blob_id in blob_ids:
        chunks = await to_thread.run_sync(storage.open, blob_id)
        try:
            while (chunk := await to_thread.run_sync(next, chunks, None)) is not None:
                yield chunk
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                await to_thread.run_sync(close)

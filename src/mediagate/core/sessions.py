"""Multi-part sessions (UPYUN multi-part, Wantu blocks, ImageX chunks): state in the catalog, parts
in storage, so that the next part may land on any process; completion publishes through
``core.uploads``."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterable
from typing import Any

from anyio import to_thread

from mediagate.core.errors import BadRequest, ChecksumMismatch, NotFound
from mediagate.core.gatewaybase import new_blob_id, quietly
from mediagate.core.grant import UploadGrant
from mediagate.core.ingest import Received, hash_file, new_staging_path, receive
from mediagate.core.uploads import Notifier, Stored, Uploads
from mediagate.core.values import Bucket, UploadPart, UploadSession


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
    ) -> UploadSession:
        session_id = uuid.uuid4().hex
        made = await to_thread.run_sync(
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

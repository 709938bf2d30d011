"""The bucket's namespace: what a path names (object, folder, nothing), reading and deleting objects,
folders and listings, usage, copy, move and metadata edits. No upload here (``core.uploads``)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from anyio import to_thread

from mediagate.catalog import models
from mediagate.core.access import BucketAccess
from mediagate.core.errors import NotFound
from mediagate.core.gatewaybase import is_expired, new_blob_id, quietly
from mediagate.core.ingest import new_staging_path
from mediagate.core.outbox import Notification
from mediagate.core.usermeta import check_user_meta
from mediagate.core.values import Bucket, DirEntry, Folder, Object
from mediagate.storage.base import BlobNotFound


class Namespace(BucketAccess):
    # -- reading ----------------------------------------------------------------------------------

    async def get_object(self, bucket: Bucket, key: str) -> Object:
        obj = await to_thread.run_sync(self.catalog.get_object, bucket.id, key)
        if obj is None or is_expired(obj):
            raise NotFound("file not found", code="file_not_found")
        return Object.of(obj)

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

    async def delete_object(
        self, bucket: Bucket, key: str, *, notify: Callable[[Object], Sequence[Notification]] | None = None
    ) -> None:
        """Delete the object at ``key``; ``notify`` makes the notifications owed about the deleted
        object, committed in the same transaction (core.outbox)."""
        outbox = None if notify is None else _of_row(notify)
        if not await to_thread.run_sync(lambda: self.catalog.delete_object(bucket.id, key, outbox=outbox)):
            raise NotFound("file not found", code="file_not_found")
        if notify is not None:
            wake_delivery()

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
        return total, [Object.of(row) for row in page]

    async def list_folders(
        self, bucket: Bucket, dir_path: str, *, offset: int = 0, limit: int = 100
    ) -> tuple[int, list[Folder]]:
        """(how many folders are directly in ``dir_path``, one page of them by name)."""
        total = await to_thread.run_sync(self.catalog.count_folders_in, bucket.id, dir_path)
        page = await to_thread.run_sync(
            lambda: self.catalog.folders_in(bucket.id, dir_path, offset=offset, limit=limit)
        )
        return total, [Folder.of(row) for row in page]

    # -- paths: what a name is, listings, usage, copy and move ----------------------------------

    async def stat_path(self, bucket: Bucket, path: str) -> Object | Folder | None:
        """What a normalised path names: a live object, a folder ('' is the bucket root, which
        always exists), or None. The catalog never holds an object and a folder of one name."""
        if not path:
            return Folder(
                id=None, bucket_id=bucket.id, path="", dir="", name="", created_at=bucket.created_at
            )
        obj = await to_thread.run_sync(self.catalog.get_object, bucket.id, path)
        if obj is not None and not is_expired(obj):
            return Object.of(obj)
        folder = await to_thread.run_sync(self.catalog.get_folder, bucket.id, path)
        return None if folder is None else Folder.of(folder)

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
        there). Storage copies the bytes into a new blob (kernel-side for local files, server-side
        on S3), so every object owns its blob and deleting one never affects the other."""
        src = await self.get_object(bucket, source_key)
        obj = models.Object(
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
        try:
            await to_thread.run_sync(self._reserve, obj.blob_id)
            try:
                await to_thread.run_sync(self.storage.copy, src.blob_id, obj.blob_id)
            except BlobNotFound as exc:
                raise NotFound("file not found", code="file_not_found") from exc
            await to_thread.run_sync(self.catalog.commit_object, obj)
            return Object.of(obj)
        except BaseException:
            await quietly(self._drop_blob, obj.blob_id)
            raise

    async def move_object(
        self, bucket: Bucket, source_key: str, dest_key: str, *, replace: bool = True
    ) -> Object:
        """Rename an object in one catalog transaction; its bytes are not touched. With
        ``replace=False`` an object already at ``dest_key`` is a Conflict (``key_exists``)."""
        await self.get_object(bucket, source_key)
        moved = await to_thread.run_sync(
            lambda: self.catalog.rename_object(bucket.id, source_key, dest_key, replace=replace)
        )
        return Object.of(moved)

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
        (None: never). NotFound for a missing or expired object; BadRequest
        ``metadata_too_large`` for a result no client could read back (core.usermeta)."""
        now = datetime.now(UTC)

        def apply(obj: models.Object) -> None:
            if is_expired(obj):
                raise NotFound("file not found", code="file_not_found")
            meta = edit(dict(obj.meta or {}))
            check_user_meta(meta)
            obj.meta = meta
            if set_expiry:
                obj.expires_at = now + timedelta(seconds=expires_in) if expires_in is not None else None

        return Object.of(await to_thread.run_sync(self.catalog.edit_object, bucket.id, key, apply))


def _of_row(
    notify: Callable[[Object], Sequence[Notification]],
) -> Callable[[models.Object], Sequence[Notification]]:
    """``notify`` (which a dialect writes for a value) as the catalog calls it (with its row)."""
    return lambda row: notify(Object.of(row))


def wake_delivery() -> None:
    """Wake this process's delivery of notifications just committed."""
    from mediagate.core import notify  # it imports the gateway

    notify.wake()

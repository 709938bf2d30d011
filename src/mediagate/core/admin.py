"""What an operator does through the /v1 API, in core terms: buckets and their settings, prefix
listings with a cursor, usage, tasks and notifications. Async wrappers over the catalog (run in a
worker thread) that return ``core.values``, so that protocol code never touches the catalog, its
rows or SQL itself; the CLI does the
same things through the same catalog methods."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from anyio import to_thread

from mediagate.core.buckets import BucketCredentials, create_bucket
from mediagate.core.errors import Conflict, NotFound
from mediagate.core.gateway import Gateway, is_expired
from mediagate.core.notify import redeliver
from mediagate.core.values import Bucket, Delivery, DeliveryAttempt, Object, Task


async def new_bucket(gw: Gateway, name: str, settings: dict[str, Any]) -> tuple[Bucket, BucketCredentials]:
    """Create a bucket with fresh dialect credentials (returned once) and ``settings``."""
    creds = await to_thread.run_sync(lambda: create_bucket(gw.catalog, gw.secrets, name))
    if settings:
        return await change_settings(gw, name, settings), creds
    return Bucket.of(await to_thread.run_sync(gw.catalog.require_bucket, name)), creds


async def bucket(gw: Gateway, name: str) -> Bucket:
    """The bucket as stored now (not the gateway's short-lived cache: an API that just changed or
    deleted a bucket must not answer from before the change). NotFound ``bucket_not_found``."""
    return Bucket.of(await to_thread.run_sync(gw.catalog.require_bucket, name))


async def buckets(gw: Gateway) -> list[Bucket]:
    return [Bucket.of(row) for row in await to_thread.run_sync(gw.catalog.list_buckets)]


async def change_settings(gw: Gateway, name: str, changes: dict[str, Any]) -> Bucket:
    return Bucket.of(await to_thread.run_sync(gw.catalog.update_bucket_settings, name, changes))


async def delete_bucket(gw: Gateway, bucket: Bucket, *, force: bool) -> None:
    """Delete a bucket; one that holds objects only with ``force``. Its blobs go to the garbage
    list, which the server's collector empties."""
    if not force and await object_count(gw, bucket):
        raise Conflict(
            f"bucket {bucket.name!r} is not empty; delete its objects first or pass force=true",
            code="bucket_not_empty",
        )
    await to_thread.run_sync(gw.catalog.delete_bucket, bucket.name)


async def object_count(gw: Gateway, bucket: Bucket) -> int:
    return await to_thread.run_sync(gw.catalog.count_objects, bucket.id)


async def usage(gw: Gateway, bucket: Bucket) -> tuple[int, int]:
    """(bytes, objects) held by the bucket's live objects."""
    return await gw.usage(bucket), await object_count(gw, bucket)


async def objects_page(
    gw: Gateway, bucket: Bucket, prefix: str, *, after: str | None, limit: int
) -> tuple[list[Object], bool]:
    """Live objects whose key starts with ``prefix``, by key, after key ``after``; and whether
    more follow. Keyset paging: correct while other clients add or remove objects."""
    rows = await to_thread.run_sync(
        lambda: gw.catalog.objects_from(bucket.id, prefix, after=after, limit=limit + 1)
    )
    matching = [Object.of(o) for o in rows if o.key.startswith(prefix) and not is_expired(o)]
    more = len(rows) > limit and rows[limit].key.startswith(prefix)
    return matching[:limit], more


async def recent_page(
    gw: Gateway, bucket: Bucket, *, before: tuple[datetime, int] | None, limit: int
) -> tuple[list[Object], bool]:
    """Live objects newest first, after the (created_at, id) ``before``; and whether more follow.
    Keyset paging like :func:`objects_page`: an upload made meanwhile shifts no page."""
    rows = await to_thread.run_sync(
        lambda: gw.catalog.recent_objects(bucket.id, before=before, limit=limit + 1)
    )
    fresh = [Object.of(o) for o in rows[:limit] if not is_expired(o)]
    return fresh, len(rows) > limit


async def folder_page(
    gw: Gateway, bucket: Bucket, dir_path: str, *, after: str | None, limit: int
) -> tuple[list[str], list[Object], str | None]:
    """What is directly in folder ``dir_path`` ('' = the root), merged by name after the name
    ``after``: the subfolders (as paths), the live objects, and the name to continue after (None at
    the end). Keyset paging, like :func:`objects_page`."""
    entries = await gw.list_dir(bucket, dir_path, limit=limit + 1, after=after)
    more = len(entries) > limit
    entries = entries[:limit]

    def path(name: str) -> str:
        return f"{dir_path}/{name}" if dir_path else name

    def rows() -> list[Object]:  # one worker-thread hop for the page
        found = [gw.catalog.get_object(bucket.id, path(e.name)) for e in entries if not e.is_folder]
        return [Object.of(o) for o in found if o is not None and not is_expired(o)]

    objects = await to_thread.run_sync(rows)
    folders = [path(e.name) for e in entries if e.is_folder]
    return folders, objects, entries[-1].name if more and entries else None


async def tasks(gw: Gateway, *, bucket: Bucket | None, status: str | None, limit: int) -> list[Task]:
    bucket_id = bucket.id if bucket is not None else None
    rows = await to_thread.run_sync(
        lambda: gw.catalog.list_tasks(bucket_id=bucket_id, status=status, limit=limit)
    )
    return [Task.of(row) for row in rows]


async def task(gw: Gateway, task_id: str) -> Task:
    found = await to_thread.run_sync(gw.catalog.get_task, task_id)
    if found is None:
        raise NotFound(f"task {task_id!r} does not exist", code="task_not_found")
    return Task.of(found)


async def retry_task(gw: Gateway, task_id: str) -> Task:
    return Task.of(await to_thread.run_sync(gw.catalog.retry_task, task_id))


async def deliveries(gw: Gateway, *, bucket: Bucket | None, status: str | None, limit: int) -> list[Delivery]:
    bucket_id = bucket.id if bucket is not None else None
    rows = await to_thread.run_sync(
        lambda: gw.catalog.list_deliveries(bucket_id=bucket_id, state=status, limit=limit)
    )
    return [Delivery.of(row) for row in rows]


async def delivery(gw: Gateway, delivery_id: int) -> Delivery:
    found = await to_thread.run_sync(gw.catalog.get_delivery, delivery_id)
    if found is None:
        raise NotFound(f"notification {delivery_id} does not exist", code="delivery_not_found")
    return Delivery.of(found)


async def delivery_attempts(gw: Gateway, delivery_id: int) -> list[DeliveryAttempt]:
    """A delivery's kept tries, newest first."""
    rows = await to_thread.run_sync(gw.catalog.delivery_attempts, delivery_id)
    return [DeliveryAttempt.of(row) for row in rows]


async def redeliver_now(gw: Gateway, delivery_id: int) -> Delivery:
    await to_thread.run_sync(redeliver, gw, delivery_id)
    return await delivery(gw, delivery_id)


async def bucket_names(gw: Gateway) -> dict[int, str]:
    return {b.id: b.name for b in await buckets(gw)}

"""`mediagate task list|show|retry` and `mediagate worker`: asynchronous tasks (mediagate.tasks)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mediagate.cli.common import (
    State,
    app,
    check_status,
    console,
    fail,
    on_home,
    open_gateway,
    print_fields,
    print_listing,
    require_bucket,
)

if TYPE_CHECKING:
    from mediagate.core.gateway import Gateway

task_app = typer.Typer(help="Asynchronous tasks (UPYUN apps …): list, show, retry.", no_args_is_help=True)
app.add_typer(task_app, name="task")

STATUSES = ("pending", "running", "done", "failed")


@task_app.command("list")
def list_tasks(
    bucket: Annotated[str | None, typer.Option(help="Only this bucket's tasks.")] = None,
    status: Annotated[
        str | None, typer.Option(help="Only tasks in this status: " + ", ".join(STATUSES))
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="A JSON array of task objects.")] = False,
) -> None:
    """Tasks, newest first."""
    from mediagate.core import admin
    from mediagate.tasks.view import task_json

    check_status(status, STATUSES)

    async def rows(gw: Gateway) -> list[dict[str, Any]]:
        scope = require_bucket(gw, bucket) if bucket is not None else None
        names = await admin.bucket_names(gw)
        found = await admin.tasks(gw, bucket=scope, status=status, limit=limit)
        return [task_json(t, names.get(t.bucket_id, "?")) for t in found]

    def cells(row: dict[str, Any]) -> list[str]:
        detail = ", ".join(row["outputs"]) if row["status"] == "done" else (row["reason"] or "")
        return [
            row["id"],
            row["status"],
            row["kind"],
            row["bucket"],
            row["source"],
            f"{row['attempts']}/{row['max_attempts']}",
            detail,
        ]

    shown = on_home(rows)
    columns = ("id", "status", "kind", "bucket", "source", "attempts", "outputs / reason")
    print_listing(shown, as_json, title=f"{len(shown)} task(s)", columns=columns, cells=cells)


@task_app.command("show")
def show(
    task_id: Annotated[str, typer.Argument(help="The task id (as in the upload's task_ids).")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """One task: status, attempts, outputs, the reason it failed."""
    from mediagate.core import admin
    from mediagate.core.errors import NotFound
    from mediagate.tasks.view import task_json

    async def row(gw: Gateway) -> dict[str, Any]:
        try:
            task = await admin.task(gw, task_id)
        except NotFound as exc:
            raise fail(exc.message, "see `mediagate task list`") from None
        return task_json(task, (await admin.bucket_names(gw)).get(task.bucket_id, "?"))

    shown = on_home(row)
    if as_json:
        typer.echo(json.dumps(shown, ensure_ascii=False))
        return
    print_fields(shown, title=f"task {task_id}")


@task_app.command("retry")
def retry(task_id: Annotated[str, typer.Argument(help="A failed (or waiting) task's id.")]) -> None:
    """Run a failed task again now, with a fresh count of attempts (a worker picks it up)."""
    from mediagate.core.errors import Conflict, NotFound

    gw = open_gateway()
    try:
        gw.catalog.retry_task(task_id)
    except NotFound:
        raise fail(f"task {task_id!r} does not exist", "see `mediagate task list`") from None
    except Conflict as exc:
        raise fail(exc.message) from None
    finally:
        gw.catalog.close()
    console.print(f"task {task_id} queued again")


@app.command()
def worker(
    workers: Annotated[
        int | None, typer.Option(help="Tasks run at once (default: the home's task_workers).")
    ] = None,
) -> None:
    """Run task workers (and notification delivery) standalone, on the same home and settings as
    `serve`; with MEDIAGATE_REDIS_URL any number of these share one queue. Stops on SIGTERM/SIGINT."""
    import asyncio
    import signal

    from mediagate import logs
    from mediagate.core import notify
    from mediagate.services import task_registry
    from mediagate.tasks.engine import TaskEngine, engine_name

    settings = State.settings()
    logs.configure(settings.log_format, settings.log_level)
    gw = open_gateway()
    engine = TaskEngine(gw, task_registry(), workers=workers)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        engine.start(loop)
        delivery = asyncio.create_task(notify.delivery_loop(gw))
        console.print(
            f"mediagate worker on {settings.home}: {engine.workers} worker(s), {engine_name(settings)}"
        )
        try:
            await stop.wait()
        finally:
            await asyncio.to_thread(engine.stop)
            delivery.cancel()
            await asyncio.gather(delivery, return_exceptions=True)
            await notify.close()

    try:
        asyncio.run(main())
    finally:
        gw.catalog.close()

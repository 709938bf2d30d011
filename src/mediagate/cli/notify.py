"""`mediagate notify list|show|redeliver`: the outgoing notifications (core.notify) an operator
sees and replays. Never prints a body or a header value: they carry signatures."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from mediagate.cli.common import app, bucket_names, console, fail, open_gateway, require_bucket
from mediagate.core.deliveryview import delivery_json

notify_app = typer.Typer(
    help="Outgoing notifications (notify-url, task results): list, show, redeliver.", no_args_is_help=True
)
app.add_typer(notify_app, name="notify")

STATUSES = ("pending", "delivered", "failed")


def _id(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise fail(f"{value!r} is not a notification id", "see `mediagate notify list`") from None


@notify_app.command("list")
def list_notifications(
    bucket: Annotated[str | None, typer.Option(help="Only this bucket's notifications.")] = None,
    status: Annotated[
        str | None, typer.Option(help="Only notifications in this status: " + ", ".join(STATUSES))
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="A JSON array of notification objects.")] = False,
) -> None:
    """Notifications, newest first."""
    if status is not None and status not in STATUSES:
        raise fail(f"unknown status {status!r}", f"one of {', '.join(STATUSES)}")
    gw = open_gateway()
    try:
        bucket_id = require_bucket(gw, bucket).id if bucket is not None else None
        names = bucket_names(gw)
        rows = [
            delivery_json(d, names.get(d.bucket_id) if d.bucket_id is not None else None)
            for d in gw.catalog.list_deliveries(bucket_id=bucket_id, state=status, limit=limit)
        ]
    finally:
        gw.catalog.close()
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False))
        return
    table = Table(title=f"{len(rows)} notification(s)")
    for column in ("id", "status", "bucket", "url", "attempts", "last answer", "created"):
        table.add_column(column)
    for row in rows:
        answer = row["last_error"] or (str(row["last_status_code"]) if row["last_status_code"] else "")
        table.add_row(
            str(row["id"]),
            row["status"],
            row["bucket"] or "",
            row["url"],
            str(row["attempts"]),
            answer,
            row["created_at"] or "",
        )
    console.print(table)


@notify_app.command("show")
def show(
    delivery_id: Annotated[str, typer.Argument(help="The notification id (see `notify list`).")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """One notification: URL, status, attempts, last answer or error, next attempt, times
    (header names only: their values carry signatures)."""
    number = _id(delivery_id)
    gw = open_gateway()
    try:
        d = gw.catalog.get_delivery(number)
        if d is None:
            raise fail(f"notification {number} does not exist", "see `mediagate notify list`")
        history = gw.catalog.delivery_attempts(number)
        bucket = bucket_names(gw).get(d.bucket_id) if d.bucket_id is not None else None
        row = delivery_json(d, bucket, history)
    finally:
        gw.catalog.close()
    if as_json:
        typer.echo(json.dumps(row, ensure_ascii=False))
        return
    table = Table(show_header=False, title=f"notification {number}")
    for name, value in row.items():
        if name == "history":
            continue
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        table.add_row(name, shown)
    console.print(table)
    tries = Table(title="attempts (newest first)")
    for column in ("#", "at", "HTTP", "error"):
        tries.add_column(column)
    for a in row["history"]:
        status = str(a["status_code"]) if a["status_code"] is not None else "—"
        tries.add_row(str(a["attempt"]), a["at"], status, a["error"] or ("ok" if a["ok"] else "—"))
    console.print(tries if row["history"] else "no attempt yet")


@notify_app.command("redeliver")
def redeliver(
    delivery_id: Annotated[str, typer.Argument(help="A delivered or failed notification's id.")],
) -> None:
    """Send a notification again (a running server's delivery loop or `mediagate worker` sends it
    within a second or so), with a fresh count of attempts."""
    from mediagate.core import notify
    from mediagate.core.errors import Conflict, NotFound

    number = _id(delivery_id)
    gw = open_gateway()
    try:
        notify.redeliver(gw, number)
    except NotFound:
        raise fail(f"notification {number} does not exist", "see `mediagate notify list`") from None
    except Conflict as exc:
        raise fail(exc.message) from None
    finally:
        gw.catalog.close()
    console.print(f"notification {number} queued again")

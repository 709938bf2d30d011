"""`mediagate notify list|show|redeliver`: the outgoing notifications (core.notify) an operator
sees and replays. Never prints a body or a header value: they carry signatures."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from mediagate.cli.common import (
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
from mediagate.core.deliveryview import delivery_json

if TYPE_CHECKING:
    from mediagate.core.gateway import Gateway

notify_app = typer.Typer(
    help="Outgoing notifications (notify-url, task results): list, show, redeliver.", no_args_is_help=True
)
app.add_typer(notify_app, name="notify")

STATUSES = ("pending", "delivered", "failed")


MAX_ID = 2**31 - 1
"""The largest notification id: the catalog's INTEGER key (a larger one fails in the database)."""


def _id(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 0 < number <= MAX_ID:
        raise fail(f"{value!r} is not a notification id", "see `mediagate notify list`")
    return number


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
    from mediagate.core import admin

    check_status(status, STATUSES)

    async def rows(gw: Gateway) -> list[dict[str, Any]]:
        scope = require_bucket(gw, bucket) if bucket is not None else None
        names = await admin.bucket_names(gw)
        found = await admin.deliveries(gw, bucket=scope, status=status, limit=limit)
        return [delivery_json(d, names.get(d.bucket_id) if d.bucket_id is not None else None) for d in found]

    def cells(row: dict[str, Any]) -> list[str]:
        answer = row["last_error"] or (str(row["last_status_code"]) if row["last_status_code"] else "")
        return [
            str(row["id"]),
            row["status"],
            row["bucket"] or "",
            row["url"],
            str(row["attempts"]),
            answer,
            row["created_at"] or "",
        ]

    shown = on_home(rows)
    columns = ("id", "status", "bucket", "url", "attempts", "last answer", "created")
    print_listing(shown, as_json, title=f"{len(shown)} notification(s)", columns=columns, cells=cells)


@notify_app.command("show")
def show(
    delivery_id: Annotated[str, typer.Argument(help="The notification id (see `notify list`).")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
) -> None:
    """One notification: URL, status, attempts, last answer or error, next attempt, times
    (header names only: their values carry signatures)."""
    from mediagate.core import admin
    from mediagate.core.errors import NotFound

    number = _id(delivery_id)

    async def row(gw: Gateway) -> dict[str, Any]:
        try:
            d = await admin.delivery(gw, number)
        except NotFound as exc:
            raise fail(exc.message, "see `mediagate notify list`") from None
        history = await admin.delivery_attempts(gw, number)
        names = await admin.bucket_names(gw)
        return delivery_json(d, names.get(d.bucket_id) if d.bucket_id is not None else None, history)

    shown = on_home(row)
    if as_json:
        typer.echo(json.dumps(shown, ensure_ascii=False))
        return
    print_fields(shown, title=f"notification {number}", skip=("history",))
    tries = Table(title="attempts (newest first)")
    for column in ("#", "at", "HTTP", "error"):
        tries.add_column(column)
    for a in shown["history"]:
        status = str(a["status_code"]) if a["status_code"] is not None else "—"
        tries.add_row(str(a["attempt"]), a["at"], status, a["error"] or ("ok" if a["ok"] else "—"))
    console.print(tries if shown["history"] else "no attempt yet")


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

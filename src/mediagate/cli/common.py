"""What every command module shares: the Typer app, consoles, the home, error output."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Collection, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from mediagate.config import Settings, default_home
from mediagate.core.errors import MediagateError
from mediagate.core.values import Bucket

if TYPE_CHECKING:
    from mediagate.core.gateway import Gateway

app = typer.Typer(
    help="mediagate: a self-hosted media upload gateway (UPYUN, Wantu and ImageX dialects).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

console = Console()
err_console = Console(stderr=True)


class State:
    home: Path = default_home()

    @classmethod
    def settings(cls) -> Settings:
        return Settings(home=cls.home)


def fail(message: str, hint: str | None = None) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}")
    if hint:
        err_console.print(f"[yellow]hint:[/] {hint}")
    return typer.Exit(code=1)


def open_gateway() -> Gateway:
    from mediagate.services import build_gateway

    settings = State.settings()
    try:
        return build_gateway(settings)
    except FileNotFoundError as exc:
        raise fail(str(exc)) from None


T = TypeVar("T")


def on_home(work: Callable[[Gateway], Coroutine[Any, Any, T]]) -> T:
    """Run ``work`` on a gateway opened on the home, then close it; a refusal (MediagateError)
    exits with its message."""
    gw = open_gateway()
    try:
        return asyncio.run(work(gw))
    except MediagateError as exc:
        raise fail(exc.message) from None
    finally:
        gw.catalog.close()


def require_bucket(gw: Gateway, name: str) -> Bucket:
    """The bucket called ``name``, or exit with a hint."""
    found = gw.catalog.get_bucket(name)
    if found is None:
        raise fail(f"bucket {name!r} does not exist", "see `mediagate bucket list`")
    return Bucket.of(found)


def check_status(status: str | None, statuses: Sequence[str]) -> None:
    """Exit with the choices unless ``status`` (a listing's filter) is one of them or None."""
    if status is not None and status not in statuses:
        raise fail(f"unknown status {status!r}", f"one of {', '.join(statuses)}")


def print_listing(
    rows: list[dict[str, Any]],
    as_json: bool,
    *,
    title: str,
    columns: Sequence[str],
    cells: Callable[[dict[str, Any]], Sequence[str]],
) -> None:
    """A listing: the rows as one JSON array, or a table of ``columns`` filled by ``cells``."""
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False))
        return
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*cells(row))
    console.print(table)


def print_fields(row: dict[str, Any], *, title: str, skip: Collection[str] = ()) -> None:
    """One object as a table of its fields: strings as they are, other values as JSON."""
    table = Table(show_header=False, title=title)
    for name, value in row.items():
        if name not in skip:
            table.add_row(name, value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))
    console.print(table)


def bucket_settings(name: str) -> dict[str, Any]:
    """A copy of the bucket's settings, or exit with a hint when there is no such bucket."""
    gw = open_gateway()
    try:
        bucket = gw.catalog.get_bucket(name)
    finally:
        gw.catalog.close()
    if bucket is None:
        raise fail(f"bucket {name!r} does not exist", "see `mediagate bucket list`")
    return dict(bucket.settings or {})


def _print_version(asked: bool) -> None:
    if asked:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"mediagate {version('mediagate')}")
        except PackageNotFoundError:  # running from a source tree that was never installed
            typer.echo("mediagate (not installed: version unknown)")
        raise typer.Exit()


@app.callback()
def main_options(
    home: Annotated[
        Path | None,
        typer.Option(
            "--home", help="Home directory (default: $MEDIAGATE_HOME, else ./data).", envvar="MEDIAGATE_HOME"
        ),
    ] = None,
    show_version: Annotated[
        bool,
        typer.Option("--version", help="Print the version and exit.", callback=_print_version, is_eager=True),
    ] = False,
) -> None:
    State.home = home or default_home()


def print_credentials(creds: dict[str, str], as_json: bool, *, title: str) -> None:
    if as_json:
        typer.echo(json.dumps(creds))
        return
    table = Table(title=title, show_header=False)
    for name, value in creds.items():
        table.add_row(name, value)
    console.print(table)
    console.print("[yellow]These secrets are shown once; mediagate keeps only sealed copies.[/]")

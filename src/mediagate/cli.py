"""The ``mediagate`` command (Typer + Rich): parse flags, call the factories, print results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from mediagate.config import Settings, default_home
from mediagate.core.errors import MediagateError

app = typer.Typer(
    help="mediagate: a self-hosted media upload gateway (UPYUN, Wantu and ImageX dialects).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
bucket_app = typer.Typer(help="Create, list and delete buckets.", no_args_is_help=True)
app.add_typer(bucket_app, name="bucket")

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


def open_gateway() -> Any:
    from mediagate.services import build_gateway

    settings = State.settings()
    try:
        return build_gateway(settings)
    except FileNotFoundError as exc:
        raise fail(str(exc)) from None


@app.callback()
def main_options(
    home: Annotated[
        Path | None,
        typer.Option(
            "--home", help="Home directory (default: $MEDIAGATE_HOME, else ./data).", envvar="MEDIAGATE_HOME"
        ),
    ] = None,
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


@app.command()
def init(
    demo: Annotated[
        bool, typer.Option(help="Also create a 'demo' bucket (once) and print its keys.")
    ] = False,
) -> None:
    """Create (or upgrade) a home: config file, secret key, catalog schema. Idempotent."""
    from mediagate.services import build_gateway, init_home

    settings = State.settings()
    fresh = init_home(settings)
    console.print(
        f"{'Initialised' if fresh else 'Home already initialised at'} [bold]{settings.home}[/]"
        + (f" (catalog {settings.catalog_url.split('://')[0]})" if fresh else "")
    )
    if demo:
        from mediagate.core.buckets import create_bucket

        gw = build_gateway(settings, migrate=False)
        try:
            if gw.catalog.get_bucket("demo") is None:
                creds = create_bucket(gw.catalog, gw.secrets, "demo", operator="demo-op")
                print_credentials(creds.as_dict(), False, title="demo bucket")
            else:
                console.print("Bucket [bold]demo[/] exists (its secrets were printed when it was made).")
        finally:
            gw.catalog.close()


@bucket_app.command("create")
def bucket_create(
    name: Annotated[str, typer.Argument(help="Bucket name: also the Wantu namespace and ImageX ServiceId.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the credentials as JSON.")] = False,
    operator: Annotated[str | None, typer.Option(help="UPYUN operator name.")] = None,
    password: Annotated[str | None, typer.Option(help="UPYUN operator password.")] = None,
    form_api_secret: Annotated[str | None, typer.Option(help="UPYUN form API secret.")] = None,
    access_key_id: Annotated[str | None, typer.Option(help="Wantu/ImageX access key id.")] = None,
    secret_access_key: Annotated[str | None, typer.Option(help="Wantu/ImageX secret access key.")] = None,
) -> None:
    """Create a bucket and print its credentials (generated where not given)."""
    from mediagate.core.buckets import create_bucket

    gw = open_gateway()
    try:
        creds = create_bucket(
            gw.catalog,
            gw.secrets,
            name,
            operator=operator,
            password=password,
            form_api_secret=form_api_secret,
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
        )
    except MediagateError as exc:
        raise fail(exc.message) from None
    finally:
        gw.catalog.close()
    print_credentials(creds.as_dict(), as_json, title=f"bucket {name}")


@bucket_app.command("list")
def bucket_list(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List buckets with their object counts and sizes."""
    gw = open_gateway()
    try:
        rows = [
            {
                "bucket": b.name,
                "created": b.created_at.isoformat(timespec="seconds"),
                "bytes": gw.catalog.usage(b.id),
            }
            for b in gw.catalog.list_buckets()
        ]
    finally:
        gw.catalog.close()
    if as_json:
        typer.echo(json.dumps(rows))
        return
    table = Table("bucket", "created", "bytes")
    for row in rows:
        table.add_row(row["bucket"], row["created"], str(row["bytes"]))
    console.print(table)


@bucket_app.command("delete")
def bucket_delete(
    name: str,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a bucket and every object in it."""
    gw = open_gateway()
    try:
        bucket = gw.catalog.get_bucket(name)
        if bucket is None:
            raise fail(f"bucket {name!r} does not exist", "see `mediagate bucket list`")
        if not yes:
            typer.confirm(f"Delete bucket {name!r} and all its objects?", abort=True)
        gw.catalog.delete_bucket(name)
        gw.collect_garbage(grace=__import__("datetime").timedelta(0))
    finally:
        gw.catalog.close()
    console.print(f"Deleted bucket [bold]{name}[/]")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    workers: Annotated[int, typer.Option(help="Worker processes sharing the home.")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve every dialect on one port."""
    import os

    import uvicorn

    settings = State.settings()
    if not settings.key_file.exists():
        raise fail(f"{settings.home} is not a mediagate home", f"run `mediagate --home {settings.home} init`")
    os.environ["MEDIAGATE_HOME"] = str(settings.home)
    console.print(f"mediagate serving {settings.home} on http://{host}:{port}")
    uvicorn.run(
        "mediagate.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        proxy_headers=False,
        server_header=False,
        h11_max_incomplete_event_size=settings.max_header_size * 4,
    )


def main() -> None:
    app()

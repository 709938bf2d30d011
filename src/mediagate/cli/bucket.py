"""`mediagate bucket …`: create, list and delete buckets."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from mediagate.cli.common import app, console, fail, open_gateway, print_credentials
from mediagate.core.errors import MediagateError

bucket_app = typer.Typer(help="Create, list and delete buckets.", no_args_is_help=True)
app.add_typer(bucket_app, name="bucket")


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

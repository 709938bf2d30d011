"""`mediagate ls BUCKET [PREFIX]` and `mediagate rm BUCKET KEY...`: a bucket's objects, from its home.

Both work on the home directly, as `bucket …` does (no server or credentials needed), and go
through the same catalog and gateway calls the dialects use, so a deletion here is what a
dialect's DELETE does.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from mediagate.cli.common import app, console, err_console, fail, open_gateway, require_bucket
from mediagate.core.errors import MediagateError
from mediagate.core.values import Bucket, Object

if TYPE_CHECKING:
    from mediagate.core.gateway import Gateway

PAGE = 1000
BucketArg = Annotated[str, typer.Argument(help="Bucket name.", show_default=False)]


async def walk(gw: Gateway, bucket: Bucket, prefix: str) -> AsyncGenerator[Object, None]:
    """Every live object whose key starts with ``prefix``, by key, a page at a time."""
    from mediagate.core import admin

    after: str | None = None
    while True:
        page, more = await admin.objects_page(gw, bucket, prefix, after=after, limit=PAGE)
        for obj in page:
            yield obj
        if not more or not page:
            return
        after = page[-1].key


async def _first(gw: Gateway, bucket: Bucket, prefix: str, limit: int) -> tuple[list[Object], bool]:
    """The first ``limit`` objects under ``prefix`` (0: all), and whether more follow."""
    found: list[Object] = []
    async with aclosing(walk(gw, bucket, prefix)) as objects:
        async for obj in objects:
            if limit and len(found) >= limit:
                return found, True
            found.append(obj)
    return found, False


async def _keys_under(gw: Gateway, bucket: Bucket, prefixes: list[str]) -> list[str]:
    return [obj.key for prefix in prefixes async for obj in walk(gw, bucket, prefix)]


def _row(obj: Object) -> dict[str, Any]:
    return {
        "key": obj.key,
        "size": obj.size,
        "mime": obj.mime,
        "md5": obj.md5,
        "created": obj.created_at.isoformat(timespec="seconds"),
    }


@app.command("ls")
def ls(
    bucket: BucketArg,
    prefix: Annotated[str, typer.Argument(help="Only keys starting with this, e.g. img/ or img/2024-.")] = "",
    limit: Annotated[int, typer.Option(min=0, help="Show at most this many (0: all).")] = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """List a bucket's objects (all, or those whose key starts with PREFIX), by key."""
    prefix = prefix.lstrip("/")
    gw = open_gateway()
    try:
        found = require_bucket(gw, bucket)
        with err_console.status(f"listing {bucket}/{prefix}…", spinner="dots"):
            objects, more = asyncio.run(_first(gw, found, prefix, limit))
    finally:
        gw.catalog.close()
    rows = [_row(obj) for obj in objects]
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False))
        return
    if not rows:
        console.print(f"no objects in {bucket}" + (f" under {prefix!r}" if prefix else ""))
        return
    table = Table(title=f"{bucket}/{prefix}")
    table.add_column("key", overflow="fold")
    table.add_column("size", justify="right")
    table.add_column("type")
    table.add_column("uploaded (UTC)", no_wrap=True)
    for row in rows:
        uploaded = row["created"][:19].replace("T", " ")
        table.add_row(row["key"], f"{row['size']:,}", row["mime"], uploaded)
    console.print(table)
    total = sum(r["size"] for r in rows)
    tail = "; more not shown (--limit 0 lists all)" if more else ""
    console.print(f"{len(rows)} objects, {total:,} bytes{tail}")


@app.command("rm")
def rm(
    bucket: BucketArg,
    keys: Annotated[
        list[str], typer.Argument(help="Object keys (with -r: key prefixes).", show_default=False)
    ],
    recursive: Annotated[
        bool, typer.Option("--recursive", "-r", help="Treat each KEY as a prefix: delete every key under it.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before deleting by prefix.")] = False,
) -> None:
    """Delete objects. Exit code 1 if a KEY named no object."""
    from mediagate.core.keys import existing_key

    gw = open_gateway()
    try:
        found = require_bucket(gw, bucket)
        try:
            if recursive:
                targets = asyncio.run(_keys_under(gw, found, [p.lstrip("/") for p in keys]))
                if not targets:
                    raise fail(f"no objects in {bucket} under {', '.join(map(repr, keys))}")
                if not yes:
                    typer.confirm(f"Delete {len(targets)} objects from {bucket}?", abort=True)
            else:
                targets = [existing_key(k) for k in keys]
        except MediagateError as exc:
            raise fail(exc.message) from None
        missing = asyncio.run(_delete(gw, found, list(dict.fromkeys(targets))))
    finally:
        gw.catalog.close()
    for key in missing:
        err_console.print(f"[red]✗[/] {bucket}/{key}: no such object")
    if missing:
        raise typer.Exit(code=1)


async def _delete(gw: Gateway, bucket: Bucket, keys: list[str]) -> list[str]:
    """Delete ``keys`` (a progress bar when there are many); the keys that were not there."""
    from mediagate.core.errors import NotFound

    missing: list[str] = []
    many = len(keys) >= 20
    columns = (TextColumn("deleting"), BarColumn(), MofNCompleteColumn())
    live = many and err_console.is_terminal
    with Progress(*columns, console=err_console, disable=not live) as bars:
        task = bars.add_task("rm", total=len(keys))
        for key in keys:
            try:
                await gw.delete_object(bucket, key)
                if not many:
                    console.print(f"deleted {bucket.name}/{key}", highlight=False, markup=False)
            except NotFound:
                missing.append(key)
            bars.advance(task)
    if many:
        console.print(f"deleted {len(keys) - len(missing)} objects from {bucket.name}", highlight=False)
    return missing

"""`mediagate bucket quota …`: a bucket's storage quota and upload rate limits (core.quotas)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from mediagate.cli.bucket import bucket_app
from mediagate.cli.common import console, fail, open_gateway, require_bucket
from mediagate.core.errors import MediagateError

quota_app = typer.Typer(
    help="A bucket's storage quota and upload rate limits, enforced on every dialect.", no_args_is_help=True
)
bucket_app.add_typer(quota_app, name="quota")

_LIMIT_HELP = "'none' removes the limit; unchanged when not given."


def _report(name: str, quota: Any) -> dict[str, Any]:
    from mediagate.core.quotas import LIMITS

    return {
        "bucket": name,
        "limits": {limit: getattr(quota, limit) for limit in LIMITS},
        "usage": {"bytes": quota.bytes_used, "objects": quota.objects_used},
    }


def _print(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(report))
        return
    limits, usage = report["limits"], report["usage"]

    def limit(value: int | None, unit: str = "") -> str:
        return "no limit" if value is None else f"{value:,}{unit}"

    table = Table("", "used", "limit", title=f"bucket {report['bucket']}")
    table.add_row("storage", f"{usage['bytes']:,} bytes", limit(limits["max_bytes"], " bytes"))
    table.add_row("objects", f"{usage['objects']:,}", limit(limits["max_objects"]))
    table.add_row("uploads per minute", "", limit(limits["uploads_per_minute"]))
    table.add_row("  per API key", "", limit(limits["key_uploads_per_minute"]))
    table.add_row("  per upload token", "", limit(limits["token_uploads_per_minute"]))
    console.print(table)


@quota_app.command("set")
def quota_set(
    name: Annotated[str, typer.Argument(help="Bucket name.")],
    max_bytes: Annotated[
        str | None, typer.Option(help=f"Storage quota: bytes, or 10G, 500M, 1.5T (K = 1024). {_LIMIT_HELP}")
    ] = None,
    max_objects: Annotated[
        str | None, typer.Option(help=f"Most objects the bucket holds. {_LIMIT_HELP}")
    ] = None,
    uploads_per_minute: Annotated[
        str | None, typer.Option(help=f"Uploads begun per minute in the bucket. {_LIMIT_HELP}")
    ] = None,
    key_uploads_per_minute: Annotated[
        str | None, typer.Option(help=f"Uploads per minute with any one API key (/v1). {_LIMIT_HELP}")
    ] = None,
    token_uploads_per_minute: Annotated[
        str | None,
        typer.Option(help=f"Uploads per minute with any one upload token (/v1, tus). {_LIMIT_HELP}"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Set a bucket's quota and rate limits (a running server applies them within a second)."""
    from mediagate.core.quotas import parse_limit

    given = {
        "max_bytes": max_bytes,
        "max_objects": max_objects,
        "uploads_per_minute": uploads_per_minute,
        "key_uploads_per_minute": key_uploads_per_minute,
        "token_uploads_per_minute": token_uploads_per_minute,
    }
    try:
        limits = {k: parse_limit(v, sizes=k == "max_bytes") for k, v in given.items() if v is not None}
    except MediagateError as exc:
        raise fail(exc.message) from None
    if not limits:
        raise fail("nothing to set", "give --max-bytes, --max-objects or an --…-per-minute limit")
    gw = open_gateway()
    try:
        bucket = require_bucket(gw, name)
        quota = gw.catalog.set_quota(bucket.id, limits)
    finally:
        gw.catalog.close()
    _print(_report(name, quota), as_json)


@quota_app.command("show")
def quota_show(
    name: Annotated[str, typer.Argument(help="Bucket name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Show a bucket's usage against its quota and rate limits."""
    gw = open_gateway()
    try:
        bucket = require_bucket(gw, name)
        quota = gw.catalog.get_quota(bucket.id) or gw.catalog.set_quota(bucket.id, {})
    finally:
        gw.catalog.close()
    _print(_report(name, quota), as_json)

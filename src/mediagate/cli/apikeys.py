"""`mediagate key create|list|revoke`: keys for mediagate's own /v1 API (core.apikeys).

Not the dialects' bucket credentials: those are `mediagate bucket key …`. A secret is printed once;
the home keeps only its hash.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from mediagate.cli.common import app, console, err_console, fail, open_gateway
from mediagate.core.errors import MediagateError

api_key_app = typer.Typer(
    help="API keys for the /v1 JSON API (Authorization: Bearer). "
    "For a bucket's UPYUN/Wantu/ImageX credentials see `mediagate bucket key`.",
    no_args_is_help=True,
)
app.add_typer(api_key_app, name="key")


def _row(key: Any) -> dict[str, Any]:
    return {
        "key_id": key.key_id,
        "bucket": key.bucket,
        "scopes": key.sorted_scopes(),
        "label": key.label,
        "created_at": key.created_at.isoformat(timespec="seconds"),
        "revoked_at": key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else None,
    }


@api_key_app.command("create")
def create(
    bucket: Annotated[str | None, typer.Option(help="The bucket the key is bound to.")] = None,
    scope: Annotated[str, typer.Option(help="Comma-separated scopes: read, write, admin.")] = "read,write",
    admin: Annotated[
        bool,
        typer.Option("--admin", help="A server-wide key with every scope (creates buckets, reaches all)."),
    ] = False,
    label: Annotated[str, typer.Option(help="A note for listings (who or what uses the key).")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print the key and its secret as JSON.")] = False,
) -> None:
    """Create an API key and print its secret once."""
    from mediagate.core.apikeys import SCOPES, create_key

    if admin == (bucket is not None):
        example = "`mediagate key create --bucket photos --scope read,write`"
        raise fail("give either --bucket B or --admin", f"e.g. {example}")
    gw = open_gateway()
    try:
        key, secret = create_key(
            gw.catalog,
            bucket=bucket,
            scopes=SCOPES if admin else [scope],
            label=label,
            max_per_bucket=gw.settings.max_api_keys_per_bucket,
        )
    except MediagateError as exc:
        hint = "see `mediagate bucket list`" if exc.code == "bucket_not_found" else None
        raise fail(exc.message, hint) from None
    finally:
        gw.catalog.close()
    made = {"key_id": key.key_id, "secret": secret, "bucket": key.bucket, "scopes": key.sorted_scopes()}
    if as_json:
        typer.echo(json.dumps(made))
        return
    table = Table(title="API key", show_header=False)
    table.add_row("key_id", key.key_id)
    table.add_row("secret", secret)
    table.add_row("bucket", key.bucket or "(every bucket)")
    table.add_row("scopes", ",".join(key.sorted_scopes()))
    console.print(table)
    console.print("[yellow]The secret is shown once; mediagate keeps only its hash.[/]")
    console.print("Use it as: Authorization: Bearer <secret>")


@api_key_app.command("list")
def list_(
    bucket: Annotated[str | None, typer.Option(help="Only this bucket's keys.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="A JSON array of keys.")] = False,
) -> None:
    """List API keys, newest first (ids, buckets, scopes; never a secret)."""
    from mediagate.core.apikeys import list_keys

    gw = open_gateway()
    try:
        keys = list_keys(gw.catalog, bucket=bucket)
    except MediagateError as exc:
        raise fail(exc.message, "see `mediagate bucket list`") from None
    finally:
        gw.catalog.close()
    rows = [_row(k) for k in keys]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    table = Table(title="API keys")
    for name in ("key id", "bucket", "scopes", "label", "created", "state"):
        table.add_column(name, no_wrap=name != "label")
    for row in rows:
        state = "[red]revoked[/]" if row["revoked_at"] else "[green]active[/]"
        created = str(row["created_at"])[:10]
        scopes = ",".join(row["scopes"])
        table.add_row(row["key_id"], row["bucket"] or "*", scopes, row["label"], created, state)
    console.print(table)


@api_key_app.command("revoke")
def revoke(
    key_ids: Annotated[list[str], typer.Argument(help="Key ids, as `mediagate key list` shows them.")],
) -> None:
    """Revoke API keys now; the upload tokens they issued stop working with them."""
    from mediagate.core.apikeys import revoke_key

    gw = open_gateway()
    try:
        for key_id in key_ids:
            try:
                gone = revoke_key(gw.catalog, key_id)
            except MediagateError as exc:
                raise fail(exc.message, "see `mediagate key list`") from None
            console.print(f"revoked {gone.key_id} ({gone.bucket or 'server-wide'})")
    finally:
        gw.catalog.close()
    err_console.print("Upload tokens issued by these keys are refused from now on.")

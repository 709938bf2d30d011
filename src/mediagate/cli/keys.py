"""`mediagate bucket key list|rotate|revoke`: a bucket's credentials after `bucket create`.

New secrets are printed once, like `bucket create`; the home keeps only sealed copies. A running
server sees a rotation or revocation on its next request (credentials are never cached).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from mediagate.cli.bucket import bucket_app
from mediagate.cli.common import (
    console,
    err_console,
    fail,
    open_gateway,
    print_credentials,
    require_bucket,
)
from mediagate.core.errors import MediagateError

key_app = typer.Typer(
    help="List, rotate and revoke a bucket's dialect credentials (UPYUN operator, form secret, access "
    "key). For /v1 API keys see `mediagate key`.",
    no_args_is_help=True,
)
bucket_app.add_typer(key_app, name="key")

BucketArg = Annotated[str, typer.Argument(help="Bucket name.")]
_WHAT = {"upyun": "upyun operator", "form": "upyun form secret", "aksk": "access key"}
"""How `bucket key list` names each kind (the access key serves Wantu and ImageX)."""


@key_app.command("list")
def key_list(name: BucketArg, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List the bucket's credentials (ids, kinds, key ids, dates; never a secret)."""
    from mediagate.core.credentials import list_keys

    gw = open_gateway()
    try:
        keys = list_keys(gw.catalog, require_bucket(gw, name))
    finally:
        gw.catalog.close()
    rows = [
        {
            "id": k.id,
            "kind": k.kind,
            "key_id": k.key_id,
            "created": k.created_at.isoformat(timespec="seconds"),
            "revoked": k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else None,
        }
        for k in keys
    ]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    table = Table("id", "kind", "key id", "created", "state", title=f"bucket {name} credentials")
    for row in rows:
        state = "[red]revoked[/]" if row["revoked"] else "[green]active[/]"
        kind, key_id = _WHAT[str(row["kind"])], str(row["key_id"]) or "-"
        created = str(row["created"])[:16].replace("T", " ")
        table.add_row(str(row["id"]), kind, key_id, created, state)
    console.print(table)


@key_app.command("rotate")
def key_rotate(
    name: BucketArg,
    kinds: Annotated[
        list[str] | None,
        typer.Option("--kind", help="upyun, form or aksk (repeat); default all three."),
    ] = None,
    keep_old: Annotated[
        bool, typer.Option("--keep-old", help="Keep the old credentials working (revoke them later).")
    ] = False,
    operator: Annotated[
        str | None, typer.Option(help="New UPYUN operator name (required with --keep-old).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the new credentials as JSON.")] = False,
) -> None:
    """Make new credentials, print their secrets once, and revoke the old ones (unless --keep-old)."""
    from mediagate.core.credentials import KINDS, rotate

    gw = open_gateway()
    try:
        made = rotate(
            gw.catalog,
            gw.secrets,
            require_bucket(gw, name),
            tuple(dict.fromkeys(kinds or KINDS)),
            keep_old=keep_old,
            operator=operator,
        )
    except MediagateError as exc:
        raise fail(exc.message, f"see `mediagate bucket key list {name}`") from None
    finally:
        gw.catalog.close()
    print_credentials(made, as_json, title=f"bucket {name}: new credentials")
    if not as_json:
        old = "still work: revoke them with `mediagate bucket key revoke`" if keep_old else "are revoked"
        err_console.print(f"The credentials they replace {old}.")


@key_app.command("revoke")
def key_revoke(
    name: BucketArg,
    ids: Annotated[list[int], typer.Argument(help="Credential ids, as `bucket key list` shows them.")],
) -> None:
    """Revoke credentials now: requests signed with them (and STS minted from them) are refused."""
    from mediagate.core.credentials import list_keys, revoke

    gw = open_gateway()
    try:
        bucket = require_bucket(gw, name)
        for credential_id in ids:
            try:
                gone = revoke(gw.catalog, bucket, credential_id)
            except MediagateError as exc:
                raise fail(exc.message, f"see `mediagate bucket key list {name}`") from None
            console.print(f"revoked #{gone.id} {_WHAT[gone.kind]} {gone.key_id}".rstrip())
        left = {k.kind for k in list_keys(gw.catalog, bucket) if k.active}
    finally:
        gw.catalog.close()
    for kind in ("upyun", "form", "aksk"):
        if kind not in left:
            err_console.print(
                f"[yellow]warning:[/] bucket {name} has no active {_WHAT[kind]} now; "
                f"`mediagate bucket key rotate {name} --kind {kind}` makes one"
            )

"""`mediagate sts create`: temporary ImageX credentials (STS2) for a bucket, from its home."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from mediagate.cli.common import app, on_home, print_credentials

if TYPE_CHECKING:
    from mediagate.core.gateway import Gateway

sts_app = typer.Typer(help="Temporary (STS) credentials for the ImageX dialect.", no_args_is_help=True)
app.add_typer(sts_app, name="sts")


@sts_app.command("create")
def sts_create(
    bucket: Annotated[str, typer.Option("--bucket", "-b", help="The bucket (ImageX ServiceId).")],
    ttl: Annotated[int, typer.Option(help="Lifetime in seconds (60 … 43200).")] = 3600,
    actions: Annotated[
        list[str] | None, typer.Option("--action", help="Allowed action (repeat); default Apply and Commit.")
    ] = None,
    key_prefix: Annotated[str | None, typer.Option(help="Only StoreKeys starting with this prefix.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the credentials as JSON.")] = False,
) -> None:
    """Mint AKTP… credentials vouched for by the bucket's newest access key (rotating it revokes them)."""
    from mediagate.protocols.imagex import sts

    async def run(gw: Gateway) -> dict[str, str]:
        b = await gw.bucket(bucket)
        scope = sts.make_scope(b.name, actions=actions or None, key_prefix=key_prefix)
        return (await sts.mint(gw, b, ttl=ttl, scope=scope)).as_dict()

    creds = on_home(run)
    print_credentials(creds, as_json, title=f"temporary credentials for {bucket}")

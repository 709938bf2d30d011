"""`mediagate token create/revoke`: Dreamina-style web sessions (cookie ``sessionid``) that
``POST /mweb/v1/get_upload_token`` exchanges for temporary ImageX credentials."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Annotated

import typer

from mediagate.cli.common import app, console, fail, on_home, open_gateway

if TYPE_CHECKING:
    from mediagate.core.gateway import Gateway

token_app = typer.Typer(help="Web sessions for the ImageX token endpoint.", no_args_is_help=True)
app.add_typer(token_app, name="token")


@token_app.command("create")
def token_create(
    bucket: Annotated[str, typer.Option("--bucket", "-b", help="The bucket (ImageX ServiceId).")],
    ttl: Annotated[int, typer.Option(help="Lifetime of the session in seconds.")] = 30 * 24 * 3600,
    as_json: Annotated[bool, typer.Option("--json", help='Print {"sessionid": …}.')] = False,
) -> None:
    """Create a revocable sessionid for a bucket."""
    from mediagate.protocols.imagex import sts

    async def run(gw: Gateway) -> str:
        return await sts.create_web_session(gw, await gw.bucket(bucket), ttl=ttl)

    sessionid = on_home(run)
    if as_json:
        typer.echo(json.dumps({"sessionid": sessionid}))
    else:
        console.print(f"sessionid={sessionid}")


@token_app.command("revoke")
def token_revoke(sessionid: Annotated[str, typer.Argument(help="The sessionid to revoke.")]) -> None:
    """Revoke a sessionid; credentials minted from it stop working too."""
    from mediagate.protocols.imagex import sts

    gw = open_gateway()
    try:
        revoked = asyncio.run(sts.revoke_web_session(gw, sessionid))
    finally:
        gw.catalog.close()
    if not revoked:
        raise fail("no active session with that id")
    console.print("[green]revoked[/]")

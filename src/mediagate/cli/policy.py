"""`mediagate policy explain`: why would this policy or token be accepted or refused?"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from rich.table import Table

from mediagate.cli.common import app, console, fail, open_gateway

policy_app = typer.Typer(help="Inspect upload policies and tokens.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")

_STYLE = {"ok": "green", "info": "cyan", "warning": "yellow", "error": "bold red"}


@policy_app.command("explain")
def policy_explain(
    token: Annotated[
        str,
        typer.Argument(
            help="The policy or token: an UPYUN base64 policy, an 'UPYUN op:sig' Authorization header …",
            show_default=False,
        ),
    ],
    bucket: Annotated[str, typer.Option("--bucket", "-b", help="Bucket the request is sent to.")],
    signature: Annotated[
        str | None, typer.Option("--signature", help="UPYUN FORM: the old md5 `signature` field.")
    ] = None,
    authorization: Annotated[
        str | None, typer.Option("--authorization", help="UPYUN FORM: the `authorization` field.")
    ] = None,
    uri: Annotated[
        str | None, typer.Option("--uri", help="Request-target as sent, e.g. /bucket/ or /bucket/a.jpg.")
    ] = None,
    method: Annotated[str | None, typer.Option("--method", help="HTTP method (REST checks).")] = None,
    date: Annotated[str | None, typer.Option("--date", help="The Date header sent (REST checks).")] = None,
    content_md5: Annotated[
        str | None, typer.Option("--content-md5", help="The Content-MD5 header sent, if any.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Decode a policy/token, check its signature and expiry with the bucket's keys, and say what
    it allows and why a request with it would fail. Exit code 0 if it would be accepted, else 1."""
    from mediagate.explain import ExplainContext, Explanation, explain

    if signature and authorization:
        raise fail("give --signature or --authorization, not both")
    gw = open_gateway()
    try:

        async def run() -> Explanation:
            found = await gw.find_bucket(bucket)
            context = ExplainContext(
                gateway=gw,
                bucket_name=bucket,
                bucket=found,
                signature=signature,
                authorization=authorization,
                method=method,
                uri=uri,
                date=date,
                content_md5=content_md5,
            )
            return await explain(token, context)

        result = asyncio.run(run())
    finally:
        gw.catalog.close()

    if as_json:
        typer.echo(json.dumps(result.as_dict(), ensure_ascii=False, default=str))
    else:
        verdict = "[bold green]OK[/]" if result.accepted else "[bold red]WILL FAIL[/]"
        console.print(f"{verdict}  {result.dialect} for bucket [bold]{bucket}[/]")
        table = Table("", "topic", "finding", show_lines=False)
        for finding in result.findings:
            style = _STYLE.get(finding.severity, "")
            table.add_row(f"[{style}]{finding.severity}[/]", finding.topic, finding.message)
        console.print(table)
        if result.allows:
            console.print("[bold]It allows:[/]")
            for line in result.allows:
                console.print(f"  • {line}", markup=False, highlight=False)
    raise typer.Exit(code=0 if result.accepted else 1)

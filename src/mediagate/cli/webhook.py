"""`mediagate bucket webhook …`: the bucket's default webhook for /v1 and tus uploads, and the
secret that signs its events (core.webhooks)."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer
from rich.table import Table

from mediagate.cli.bucket import bucket_app
from mediagate.cli.common import console, fail, open_gateway, require_bucket
from mediagate.core.errors import MediagateError

webhook_app = typer.Typer(
    help="The bucket's webhook: signed JSON events for /v1 and tus uploads and /v1 deletes.",
    no_args_is_help=True,
)
bucket_app.add_typer(webhook_app, name="webhook")

Bucket = Annotated[str, typer.Argument(help="Bucket name.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _print(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(data))
        return
    table = Table(title=f"bucket {data['bucket']} webhook", show_header=False)
    table.add_row("url", data["url"] or "(none: /v1 and tus uploads notify nobody, unless a token says)")
    table.add_row("secret", "set" if data["has_secret"] else "(none)")
    if data.get("previous_valid_until"):
        table.add_row("old secret", f"still signs until {data['previous_valid_until']}")
    console.print(table)
    if data.get("secret"):
        console.print("webhook secret (shown once: keep it in your app's config):", style="bold")
        console.print(data["secret"], soft_wrap=True, highlight=False)


@webhook_app.command("set")
def webhook_set(
    name: Bucket, url: Annotated[str, typer.Argument(help="http(s) URL")], as_json: AsJson = False
) -> None:
    """Send the bucket's /v1 and tus upload events (and /v1 deletes) to URL. Creates the bucket's
    webhook secret, printed once, if it has none. A running server applies it within seconds."""
    from mediagate.bucketconf import update_settings
    from mediagate.core import webhooks

    gw = open_gateway()
    try:
        bucket = require_bucket(gw, name)
        try:
            clean = asyncio.run(webhooks.check_url(url, allow_private=gw.settings.allow_private_callbacks))
        except MediagateError as exc:
            private = exc.code == "url_not_allowed"
            hint = (
                "a receiver on a private network needs MEDIAGATE_ALLOW_PRIVATE_CALLBACKS=1"
                if private
                else None
            )
            raise fail(exc.message, hint) from None
        secret = None
        if not webhooks.has_secret(gw.catalog, bucket.id):
            secret, _ = webhooks.rotate_secret(gw.catalog, gw.secrets, bucket)
        update_settings(gw, name, {webhooks.SETTING: clean})
    finally:
        gw.catalog.close()
    _print({"bucket": name, "url": clean, "has_secret": True, "secret": secret}, as_json)


@webhook_app.command("clear")
def webhook_clear(name: Bucket, as_json: AsJson = False) -> None:
    """Stop the bucket's default webhook (tokens with their own notify_url still notify)."""
    from mediagate.bucketconf import update_settings
    from mediagate.core import webhooks

    gw = open_gateway()
    try:
        bucket = require_bucket(gw, name)
        update_settings(gw, name, {webhooks.SETTING: None})
        has = webhooks.has_secret(gw.catalog, bucket.id)
    finally:
        gw.catalog.close()
    _print({"bucket": name, "url": None, "has_secret": has}, as_json)


@webhook_app.command("show")
def webhook_show(name: Bucket, as_json: AsJson = False) -> None:
    """The bucket's webhook URL and whether it has a secret (never the secret)."""
    from mediagate.core import webhooks

    gw = open_gateway()
    try:
        bucket = require_bucket(gw, name)
        has = webhooks.has_secret(gw.catalog, bucket.id)
    finally:
        gw.catalog.close()
    _print({"bucket": name, "url": webhooks.target(bucket), "has_secret": has}, as_json)


@webhook_app.command("secret")
def webhook_secret(name: Bucket, as_json: AsJson = False) -> None:
    """Create or rotate the bucket's webhook secret and print it once. The old one keeps signing
    alongside (a second v1= in X-Mediagate-Signature) for 24 hours."""
    from mediagate.core import webhooks

    gw = open_gateway()
    try:
        bucket = require_bucket(gw, name)
        secret, until = webhooks.rotate_secret(gw.catalog, gw.secrets, bucket)
    finally:
        gw.catalog.close()
    _print(
        {
            "bucket": name,
            "url": webhooks.target(bucket),
            "has_secret": True,
            "secret": secret,
            "previous_valid_until": until.isoformat(timespec="seconds") if until else None,
        },
        as_json,
    )

"""`mediagate bucket …`: create, list and delete buckets."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from mediagate.cli.common import (
    app,
    bucket_settings,
    console,
    err_console,
    fail,
    open_gateway,
    print_credentials,
)
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
    """List buckets with their creation times and sizes in bytes."""
    gw = open_gateway()
    try:
        rows: list[dict[str, Any]] = [
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
        with err_console.status(f"deleting bucket {name} and its objects…"):  # long for a big bucket
            gw.catalog.delete_bucket(name)
            gw.collect_garbage(grace=__import__("datetime").timedelta(0))
    finally:
        gw.catalog.close()
    console.print(f"Deleted bucket [bold]{name}[/]")


# -- serving settings: public reads and CORS (see mediagate.bucketconf) ------------------------------

cors_app = typer.Typer(help="Which browser origins may call a bucket (CORS).", no_args_is_help=True)
bucket_app.add_typer(cors_app, name="cors")


def _change_settings(name: str, changes: dict[str, object]) -> dict[str, object]:
    from mediagate.bucketconf import update_settings

    gw = open_gateway()
    try:
        return dict(update_settings(gw, name, changes).settings)
    except MediagateError as exc:
        raise fail(exc.message, "see `mediagate bucket list`") from None
    finally:
        gw.catalog.close()


def _print_cors(name: str, settings: dict[str, object] | None, as_json: bool) -> None:
    from mediagate.bucketconf import BucketConf

    conf = BucketConf.of(settings)
    data = {
        "bucket": name,
        "origins": list(conf.cors_origins),
        "max_age": conf.cors_max_age,
        "public": conf.public,
        "default": not settings or "cors_origins" not in settings,
    }
    if as_json:
        typer.echo(json.dumps(data))
        return
    table = Table(title=f"bucket {name}", show_header=False)
    origins = ", ".join(conf.cors_origins) or "(none: browsers may not call this bucket)"
    table.add_row("cors origins", origins + (" (default)" if data["default"] else ""))
    table.add_row("cors max-age", f"{conf.cors_max_age} s")
    table.add_row("public reads", "on" if conf.public else "off")
    console.print(table)


@cors_app.command("set")
def cors_set(
    name: Annotated[str, typer.Argument(help="Bucket name.")],
    origins: Annotated[
        list[str],
        typer.Option(
            "--origin",
            help="Allowed origin: '*', https://host[:port] or https://*.example.com; repeat for more.",
        ),
    ],
    max_age: Annotated[
        int | None, typer.Option("--max-age", min=0, help="Seconds browsers may cache a preflight.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Replace the bucket's allowed CORS origins (a running server applies it within seconds)."""
    from mediagate.bucketconf import normalise_origin

    try:
        clean = list(dict.fromkeys(normalise_origin(o) for o in origins))
    except MediagateError as exc:
        raise fail(exc.message) from None
    changes: dict[str, object] = {"cors_origins": clean}
    if max_age is not None:
        changes["cors_max_age"] = max_age
    _print_cors(name, _change_settings(name, changes), as_json)


@cors_app.command("show")
def cors_show(
    name: Annotated[str, typer.Argument(help="Bucket name.")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Show the bucket's CORS origins, preflight max-age and public-read switch."""
    _print_cors(name, bucket_settings(name), as_json)


@bucket_app.command("public")
def bucket_public(
    name: Annotated[str, typer.Argument(help="Bucket name.")],
    on: Annotated[bool, typer.Option("--on/--off", help="Allow anonymous GET/HEAD of objects (default on).")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Switch anonymous reads of a bucket's objects on or off."""
    _print_cors(name, _change_settings(name, {"public": on}), as_json)


@bucket_app.command("inline-active")
def bucket_inline_active(
    name: Annotated[str, typer.Argument(help="Bucket name.")],
    on: Annotated[
        bool,
        typer.Option(
            "--on/--off",
            help="Serve HTML/SVG/XML/JS objects inline as they are (default off: sandboxed downloads).",
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Let a bucket's active content (HTML, SVG, XML, JS) render inline. Only safe when its objects
    are read from a separate content origin (README: TLS and a content origin)."""
    settings = _change_settings(name, {"inline_active": on})
    if as_json:
        typer.echo(json.dumps({"bucket": name, "inline_active": settings.get("inline_active") is True}))
    else:
        console.print(f"bucket {name}: active content served {'inline' if on else 'as sandboxed downloads'}")

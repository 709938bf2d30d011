"""`mediagate bucket watermark add|list|rm`: named watermark templates for Wantu ``mediaEncode``.

``/3.0/mediaEncode`` with ``watermark=<rid of a png/webp>`` and ``watermarkTemplate=NAME`` lays the
image over the output where the bucket's template NAME says (``bucketconf.WatermarkTemplate``);
Wantu defines these templates in its console, so here they are bucket settings.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from mediagate.cli.bucket import bucket_app
from mediagate.cli.common import bucket_settings, console, fail, open_gateway
from mediagate.core.errors import MediagateError

watermark_app = typer.Typer(help="Watermark templates for Wantu mediaEncode.", no_args_is_help=True)
bucket_app.add_typer(watermark_app, name="watermark")

BucketArg = Annotated[str, typer.Argument(help="Bucket name.")]
NameArg = Annotated[str, typer.Argument(help="Template name (the request's watermarkTemplate).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _save(name: str, templates: dict[str, Any]) -> dict[str, Any]:
    from mediagate.bucketconf import update_settings

    gw = open_gateway()
    try:
        return dict(update_settings(gw, name, {"watermarks": templates}).settings or {})
    except MediagateError as exc:
        raise fail(exc.message, "see `mediagate bucket list`") from None
    finally:
        gw.catalog.close()


def _print(name: str, settings: dict[str, Any], as_json: bool) -> None:
    from mediagate.bucketconf import watermark_templates

    templates = {k: t.as_setting() for k, t in sorted(watermark_templates(settings).items())}
    if as_json:
        typer.echo(json.dumps({"bucket": name, "watermarks": templates}))
        return
    if not templates:
        console.print(f"bucket {name} has no watermark templates")
        return
    table = Table("template", "gravity", "dx", "dy", "scale", "opacity", title=f"bucket {name}")
    for key, t in templates.items():
        table.add_row(key, t["gravity"], str(t["dx"]), str(t["dy"]), *(
            "-" if t[k] is None else f"{t[k]:g}" for k in ("scale", "opacity")))  # fmt: skip
    console.print(table)


@watermark_app.command("add")
def watermark_add(
    name: BucketArg,
    template: NameArg,
    gravity: Annotated[
        str, typer.Option(help="northwest north northeast west center east southwest south southeast.")
    ] = "northeast",
    dx: Annotated[int, typer.Option(help="Margin in pixels from the corner, inwards (x).")] = 10,
    dy: Annotated[int, typer.Option(help="Margin in pixels from the corner, inwards (y).")] = 10,
    scale: Annotated[
        float | None, typer.Option(help="Width as a fraction of the video's width (default: own size).")
    ] = None,
    opacity: Annotated[float | None, typer.Option(help="0 (invisible) to 1 (as drawn).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Define (or replace) a watermark template."""
    from mediagate.bucketconf import check_watermark_template

    try:
        t = check_watermark_template(template, gravity=gravity, dx=dx, dy=dy, scale=scale, opacity=opacity)
    except MediagateError as exc:
        raise fail(exc.message) from None
    templates = dict(bucket_settings(name).get("watermarks") or {})
    templates[template] = t.as_setting()
    _print(name, _save(name, templates), as_json)


@watermark_app.command("list")
def watermark_list(name: BucketArg, as_json: JsonOpt = False) -> None:
    """List the bucket's watermark templates."""
    _print(name, bucket_settings(name), as_json)


@watermark_app.command("rm")
def watermark_rm(name: BucketArg, template: NameArg, as_json: JsonOpt = False) -> None:
    """Remove a template (requests naming it are refused from then on)."""
    templates = dict(bucket_settings(name).get("watermarks") or {})
    if template not in templates:
        raise fail(
            f"bucket {name!r} has no watermark template {template!r}",
            f"see `mediagate bucket watermark list {name}`",
        )
    del templates[template]
    _print(name, _save(name, templates), as_json)

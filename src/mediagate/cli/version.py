"""`mediagate bucket version|normalise|autoformat …`: a bucket's image-processing settings.

* ``version set B NAME "/fw/300/quality/80"`` / ``version list B`` / ``version delete B NAME``:
  named thumbnail versions, served at ``/<bucket>/<key>!NAME`` and usable on upload as
  ``x-gmkerl-thumbnail: NAME``;
* ``normalise set B [--strip] [--max-side N] [--format webp|avif|jpg] [--quality Q]
  [--heic-to jpg|avif] [--no-auto-orient]`` / ``normalise show B`` / ``normalise off B``: what
  every upload to the bucket becomes, whichever dialect sent it (``core.preprocess.Normalise``);
* ``autoformat B --on/--off [--avif]``: processed variants without an explicit format are WebP
  (or AVIF) for browsers that accept it.

A running server sees a change within a few seconds (``bucketconf.BucketCache``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from mediagate.cli.bucket import bucket_app
from mediagate.cli.common import bucket_settings, console, fail, open_gateway
from mediagate.core.errors import MediagateError

version_app = typer.Typer(help="Named thumbnail versions (key!NAME).", no_args_is_help=True)
bucket_app.add_typer(version_app, name="version")
normalise_app = typer.Typer(help="Normalise every upload to a bucket (orient, strip, convert, cap).")
bucket_app.add_typer(normalise_app, name="normalise", no_args_is_help=True)

BucketArg = Annotated[str, typer.Argument(help="Bucket name.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _change(name: str, changes: dict[str, Any]) -> dict[str, Any]:
    from mediagate.bucketconf import update_settings

    gw = open_gateway()
    try:
        return dict(update_settings(gw, name, changes).settings or {})
    except MediagateError as exc:
        raise fail(exc.message, "see `mediagate bucket list`") from None
    finally:
        gw.catalog.close()


def _print_versions(name: str, settings: dict[str, Any], as_json: bool) -> None:
    from mediagate.core.preprocess import versions_of

    versions = versions_of(settings)
    if as_json:
        typer.echo(json.dumps({"bucket": name, "versions": versions}))
        return
    table = Table("version", "processing", title=f"bucket {name}")
    for version, spec in sorted(versions.items()):
        table.add_row(version, spec)
    console.print(table if versions else f"bucket {name} has no thumbnail versions")


@version_app.command("set")
def version_set(
    name: BucketArg,
    version: Annotated[str, typer.Argument(help="Version name, used as key!NAME.")],
    spec: Annotated[str, typer.Argument(help='Processing parameters, e.g. "/fw/300/quality/80".')],
    as_json: JsonOpt = False,
) -> None:
    """Define (or replace) a named thumbnail version."""
    from mediagate.bucketconf import check_version

    try:
        version, spec = check_version(version, spec)
    except MediagateError as exc:
        raise fail(exc.message) from None
    versions = dict(bucket_settings(name).get("versions") or {})
    versions[version] = spec
    _print_versions(name, _change(name, {"versions": versions}), as_json)


@version_app.command("list")
def version_list(name: BucketArg, as_json: JsonOpt = False) -> None:
    """List the bucket's thumbnail versions."""
    _print_versions(name, bucket_settings(name), as_json)


@version_app.command("delete")
def version_delete(
    name: BucketArg,
    version: Annotated[str, typer.Argument(help="Version name.")],
    as_json: JsonOpt = False,
) -> None:
    """Remove a thumbnail version (its URLs answer 404 from then on)."""
    versions = dict(bucket_settings(name).get("versions") or {})
    if version not in versions:
        raise fail(
            f"bucket {name!r} has no version {version!r}", f"see `mediagate bucket version list {name}`"
        )
    del versions[version]
    _print_versions(name, _change(name, {"versions": versions}), as_json)


def _print_normalise(name: str, settings: dict[str, Any], as_json: bool) -> None:
    from mediagate.core.preprocess import Normalise

    conf = Normalise.of(settings.get("normalise"))
    data = {"bucket": name, "normalise": conf.as_setting() if conf else None}
    if as_json:
        typer.echo(json.dumps(data))
        return
    if conf is None:
        console.print(f"bucket {name}: uploads are stored as sent (no normalisation)")
        return
    table = Table(title=f"bucket {name}: normalise on ingest", show_header=False)
    for key, value in conf.as_setting().items():
        table.add_row(key, "-" if value is None else str(value))
    console.print(table)


@normalise_app.command("set")
def normalise_set(
    name: BucketArg,
    strip: Annotated[bool, typer.Option("--strip/--keep-metadata", help="Remove EXIF/GPS/XMP.")] = True,
    auto_orient: Annotated[
        bool, typer.Option("--auto-orient/--no-auto-orient", help="Turn pixels upright by EXIF.")
    ] = True,
    max_side: Annotated[
        int | None, typer.Option("--max-side", min=1, max=10000, help="Cap the longest side.")
    ] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="Convert every image: webp, avif or jpg.")
    ] = None,
    quality: Annotated[int | None, typer.Option("--quality", min=1, max=100, help="Encoder quality.")] = None,
    heic_to: Annotated[
        str | None, typer.Option("--heic-to", help="Convert HEIC/HEIF to jpg or avif.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Normalise every image uploaded to the bucket, through any dialect (replaces the policy)."""
    from mediagate.core.preprocess import HEIC_TARGETS, NORMALISE_FORMATS, Normalise

    if fmt is not None and fmt.lower() not in NORMALISE_FORMATS:
        raise fail(f"--format must be one of {', '.join(NORMALISE_FORMATS)}")
    if heic_to is not None and heic_to.lower() not in HEIC_TARGETS:
        raise fail(f"--heic-to must be one of {', '.join(HEIC_TARGETS)}")
    conf = Normalise(
        auto_orient=auto_orient,
        strip=strip,
        heic_to=heic_to.lower() if heic_to else None,
        format=fmt.lower() if fmt else None,
        quality=quality,
        max_side=max_side,
    )
    if not conf.active:
        raise fail("nothing to normalise", "give --strip, --max-side, --format, --quality or --heic-to")
    _print_normalise(name, _change(name, {"normalise": conf.as_setting()}), as_json)


@normalise_app.command("show")
def normalise_show(name: BucketArg, as_json: JsonOpt = False) -> None:
    """Show the bucket's normalise-on-ingest policy."""
    _print_normalise(name, bucket_settings(name), as_json)


@normalise_app.command("off")
def normalise_off(name: BucketArg, as_json: JsonOpt = False) -> None:
    """Store uploads as sent again."""
    _print_normalise(name, _change(name, {"normalise": None}), as_json)


@bucket_app.command("autoformat")
def bucket_autoformat(
    name: BucketArg,
    on: Annotated[bool, typer.Option("--on/--off", help="WebP/AVIF variants by the Accept header.")],
    avif: Annotated[bool, typer.Option("--avif", help="Prefer AVIF when accepted (slower to make).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Serve processed variants without an explicit format as WebP (or AVIF) when accepted."""
    value: str | bool = ("avif" if avif else "webp") if on else False
    settings = _change(name, {"autoformat": value})
    if as_json:
        typer.echo(json.dumps({"bucket": name, "autoformat": settings.get("autoformat")}))
    else:
        console.print(f"bucket {name}: autoformat {value or 'off'}")

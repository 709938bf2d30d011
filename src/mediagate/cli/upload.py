"""`mediagate upload SOURCE... --bucket B [--protocol upyun|wantu|imagex]`: upload files, URLs or
data: URIs to a running mediagate (or the real cloud) through ``mediagate.client``.

Credentials, first found wins:
1. options: ``--operator/--password`` (upyun), ``--access-key-id/--secret`` (wantu, imagex),
   ``--session-token`` (imagex STS);
2. environment: ``MEDIAGATE_UPLOAD_OPERATOR``, ``…_PASSWORD``, ``…_ACCESS_KEY_ID``, ``…_SECRET``,
   ``…_SESSION_TOKEN`` (and ``MEDIAGATE_UPLOAD_ENDPOINT`` for ``--endpoint``);
3. the home (``--home``, when uploading to the server's own home): imagex gets freshly minted
   1-hour STS credentials, wantu the bucket's newest access key, upyun its operator (signing
   with the stored md5 of the password).
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from mediagate.cli.common import State, app, console, err_console, fail

PROTOCOLS = ("upyun", "wantu", "imagex")


@dataclass
class Keys:
    operator: str | None = None
    password: str | None = None
    password_md5: str | None = None
    access_key_id: str | None = None
    secret: str | None = None
    session_token: str | None = None


def _env(name: str) -> str | None:
    return os.environ.get(f"MEDIAGATE_UPLOAD_{name}") or None


def _from_home(protocol: str, bucket: str) -> Keys:
    """Keys taken (or, for imagex, minted) from the local home's catalog."""
    from mediagate.core.buckets import AKSK, UPYUN
    from mediagate.protocols.imagex import sts
    from mediagate.services import build_gateway, is_home

    settings = State.settings()
    if not is_home(settings):
        raise fail(
            f"no credentials for {protocol}: pass them as options or MEDIAGATE_UPLOAD_* variables",
            hint=f"or run on the server's home (--home); {settings.home} is not one",
        )
    gw = build_gateway(settings, migrate=False)

    async def run() -> Keys:
        b = await gw.bucket(bucket)
        if protocol == "imagex":
            c = await sts.mint(gw, b, ttl=3600)
            return Keys(
                access_key_id=c.access_key_id, secret=c.secret_access_key, session_token=c.session_token
            )
        kind = UPYUN if protocol == "upyun" else AKSK
        found = await gw.secrets_of(b, kind)
        if not found:
            raise fail(f"bucket {bucket} has no active {kind} credential")
        key_id, secret = found[0]
        if protocol == "upyun":
            return Keys(operator=key_id, password_md5=secret)
        return Keys(access_key_id=key_id, secret=secret)

    try:
        return asyncio.run(run())
    except Exception as exc:
        from mediagate.core.errors import MediagateError

        if isinstance(exc, MediagateError):
            raise fail(exc.message) from None
        raise
    finally:
        gw.catalog.close()


def _client(protocol: str, endpoint: str, bucket: str, keys: Keys) -> Any:
    from mediagate.client import ImageXClient, UpyunClient, WantuClient

    if protocol == "upyun":
        assert keys.operator is not None
        client = UpyunClient(endpoint, bucket, keys.operator, keys.password or "")
        if keys.password_md5 and not keys.password:
            client.password_md5 = keys.password_md5
        return client
    assert keys.access_key_id is not None and keys.secret is not None
    if protocol == "wantu":
        return WantuClient(endpoint, bucket, keys.access_key_id, keys.secret)
    return ImageXClient(endpoint, bucket, keys.access_key_id, keys.secret, session_token=keys.session_token)


def _keys(protocol: str, bucket: str, given: Keys) -> Keys:
    if protocol == "upyun" and given.operator and given.password:
        return given
    if protocol != "upyun" and given.access_key_id and given.secret:
        return given
    return _from_home(protocol, bucket)


@app.command("upload")
def upload(
    sources: Annotated[list[str], typer.Argument(help="Local paths, http(s) URLs or data: URIs.")],
    bucket: Annotated[str, typer.Option("--bucket", "-b", help="Bucket / namespace / ServiceId.")],
    protocol: Annotated[str, typer.Option("--protocol", "-p", help="upyun, wantu or imagex.")] = "imagex",
    endpoint: Annotated[str | None, typer.Option(help="Server URL (env MEDIAGATE_UPLOAD_ENDPOINT).")] = None,
    key: Annotated[
        str | None, typer.Option(help="Object key; with several sources a prefix ending in '/'.")
    ] = None,
    operator: Annotated[str | None, typer.Option(help="UPYUN operator.")] = None,
    password: Annotated[str | None, typer.Option(help="UPYUN operator password.")] = None,
    access_key_id: Annotated[str | None, typer.Option(help="Wantu/ImageX access key id.")] = None,
    secret: Annotated[str | None, typer.Option(help="Wantu/ImageX secret key.")] = None,
    session_token: Annotated[str | None, typer.Option(help="ImageX STS session token.")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing object with the same key.")] = False,
    allow_private: Annotated[
        bool, typer.Option(help="Allow URL sources on loopback/private addresses (refused by default).")
    ] = False,
    max_fetch: Annotated[int, typer.Option(help="Largest URL/data: source in bytes.")] = 512 * 1024 * 1024,
    as_json: Annotated[bool, typer.Option("--json", help="Print results as JSON.")] = False,
) -> None:
    """Upload each SOURCE and print where it landed."""
    from mediagate.client import SourceError, UploadError, open_source

    if protocol not in PROTOCOLS:
        raise fail(f"unknown protocol {protocol!r}", hint="choose upyun, wantu or imagex")
    if key and len(sources) > 1 and not key.endswith("/"):
        raise fail("--key names one object; with several sources give a prefix ending in '/'")
    endpoint = endpoint or _env("ENDPOINT") or State.settings().public_url or "http://127.0.0.1:8080"
    given = Keys(
        operator=operator or _env("OPERATOR"),
        password=password or _env("PASSWORD"),
        access_key_id=access_key_id or _env("ACCESS_KEY_ID"),
        secret=secret or _env("SECRET"),
        session_token=session_token or _env("SESSION_TOKEN"),
    )
    client = _client(protocol, endpoint, bucket, _keys(protocol, bucket, given))
    results: list[dict[str, Any]] = []
    failed = 0
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=err_console, transient=as_json) as bars:
        for raw in sources:
            label = raw if len(raw) <= 60 else raw[:57] + "…"
            try:
                source = open_source(raw, allow_private=allow_private, max_size=max_fetch)
            except SourceError as exc:
                failed += 1
                results.append({"source": label, "error": str(exc)})
                err_console.print(f"[red]✗[/] {exc}")
                continue
            task = bars.add_task(label, total=source.size)
            object_key = key + source.filename if key and key.endswith("/") else key
            try:
                done = client.upload(
                    source,
                    key=object_key,
                    overwrite=overwrite,
                    progress=lambda n, t=task: bars.advance(t, n),
                )
                results.append(done.as_dict())
                if not as_json:
                    bars.console.print(f"[green]✓[/] {label} → {done.uri}  {done.url}")
            except (UploadError, OSError) as exc:
                failed += 1
                results.append({"source": label, "error": str(exc)})
                err_console.print(f"[red]✗[/] {label}: {exc}")
            except Exception as exc:  # httpx transport errors
                failed += 1
                results.append({"source": label, "error": f"{type(exc).__name__}: {exc}"})
                err_console.print(f"[red]✗[/] {label}: {type(exc).__name__}: {exc}")
            finally:
                source.cleanup()
    if as_json:
        typer.echo(json.dumps(results[0] if len(results) == 1 else results))
    if failed:
        raise typer.Exit(code=1)
    if not as_json:
        console.print(f"{len(results)} uploaded")

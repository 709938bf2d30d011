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

Whatever the protocol, an existing object is kept unless ``--overwrite`` is given (the refusal
names that flag); a file over the home's ``max_upload_size`` is refused before a byte is sent
(away from the home, ImageX's Apply declares FileSize and the server refuses first); and a host
that cannot be reached is named together with the setting it came from (``--endpoint``,
``MEDIAGATE_UPLOAD_ENDPOINT``, the home's ``public_url``, or the upload host the server named).
"""

from __future__ import annotations

import asyncio
import dataclasses
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


def _from_home(protocol: str, bucket: str, *, overwrite: bool) -> Keys:
    """Keys taken (or, for imagex, minted: allowed to overwrite only when asked) from the home."""
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
            scope = dataclasses.replace(sts.make_scope(b.name), overwrite=overwrite)
            c = await sts.mint(gw, b, ttl=3600, scope=scope)
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


def _endpoint(given: str | None) -> tuple[str, str]:
    """The server URL and where it came from (named in errors: a wrong public_url is a common slip)."""
    if given:
        return given, "--endpoint"
    if env := _env("ENDPOINT"):
        return env, "MEDIAGATE_UPLOAD_ENDPOINT"
    settings = State.settings()
    if settings.public_url:
        return settings.public_url, f"public_url of the home {settings.home}"
    return "http://127.0.0.1:8080", "the default endpoint"


def _size_limit() -> tuple[int, str] | None:
    """The server's upload limit and where it is set, when uploading on the server's home (else the
    server itself refuses a declared size that is too large, and ImageX's Apply checks FileSize)."""
    settings = State.settings()
    if not settings.key_file.exists():
        return None
    return settings.max_upload_size, f"{settings.home / 'mediagate.toml'} (or MEDIAGATE_MAX_UPLOAD_SIZE)"


def unreachable(exc: Exception, endpoint: str, origin: str) -> str:
    """'could not reach http://host:port/… (…)': the URL tried, and the setting it came from."""
    import httpx

    try:
        url = str(exc.request.url) if isinstance(exc, httpx.RequestError) else endpoint
    except RuntimeError:  # an error raised before a request existed
        url = endpoint
    where = url.split("?", 1)[0]
    source = origin if where.startswith(endpoint.rstrip("/")) else "the upload host the server named"
    reason = str(exc) or type(exc).__name__
    return f"could not reach {where} ({source}): {type(exc).__name__}: {reason}"


def _failure(exc: Exception, endpoint: str, origin: str) -> tuple[str, str | None]:
    """What to say about a failed upload, and a hint when there is an obvious next step."""
    import httpx

    from mediagate.client import ObjectExists, UploadError

    if isinstance(exc, ObjectExists):
        return str(exc), "pass --overwrite to replace it, or choose another --key"
    if isinstance(exc, httpx.HTTPError):  # could not reach a host: name it, and where it came from
        return unreachable(exc, endpoint, origin), None
    if isinstance(exc, UploadError | OSError):
        return str(exc), None
    return f"{type(exc).__name__}: {exc}", None


def _complete(protocol: str, given: Keys) -> bool:
    """Whether the options/environment hold the keys (else they come from the home)."""
    if protocol == "upyun":
        return bool(given.operator and given.password)
    return bool(given.access_key_id and given.secret)


def _keys(protocol: str, bucket: str, given: Keys, *, overwrite: bool) -> Keys:
    return given if _complete(protocol, given) else _from_home(protocol, bucket, overwrite=overwrite)


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
    from mediagate.client import SourceError, open_source

    if protocol not in PROTOCOLS:
        raise fail(f"unknown protocol {protocol!r}", hint="choose upyun, wantu or imagex")
    if key and len(sources) > 1 and not key.endswith("/"):
        raise fail("--key names one object; with several sources give a prefix ending in '/'")
    endpoint, origin = _endpoint(endpoint)
    if not endpoint.lower().startswith(("http://", "https://")):
        raise fail(
            f"the endpoint {endpoint!r} ({origin}) is not a URL",
            hint="give the server's URL with its scheme, e.g. http://127.0.0.1:8080",
        )
    given = Keys(
        operator=operator or _env("OPERATOR"),
        password=password or _env("PASSWORD"),
        access_key_id=access_key_id or _env("ACCESS_KEY_ID"),
        secret=secret or _env("SECRET"),
        session_token=session_token or _env("SESSION_TOKEN"),
    )
    # the home's limit is the server's when the home is the server's: its keys, or its public_url
    on_home = not _complete(protocol, given) or origin.startswith("public_url")
    limit = _size_limit() if on_home else None
    client = _client(protocol, endpoint, bucket, _keys(protocol, bucket, given, overwrite=overwrite))
    results: list[dict[str, Any]] = []
    failed = 0
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    live = err_console.is_terminal  # bars for a person watching, not in logs; the ✓ lines stay
    with Progress(*columns, console=err_console, disable=not live) as bars:
        for raw in sources:
            label = raw if len(raw) <= 60 else raw[:57] + "…"
            try:
                source = open_source(raw, allow_private=allow_private, max_size=max_fetch)
            except SourceError as exc:
                failed += 1
                results.append({"source": label, "error": str(exc)})
                err_console.print(f"[red]✗[/] {exc}")
                continue
            object_key = key + source.filename if key and key.endswith("/") else key
            if limit is not None and source.size > limit[0]:
                failed += 1
                message = f"{label} is {source.size} bytes, over the server's limit of {limit[0]} bytes"
                results.append({"source": label, "error": message})
                err_console.print(f"[red]✗[/] {message}; not sent")
                err_console.print(f"[yellow]hint:[/] the limit is max_upload_size in {limit[1]}")
                source.cleanup()
                continue
            task = bars.add_task(label, total=source.size)
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
            except Exception as exc:  # one source failing must not stop the others
                bars.remove_task(task)
                failed += 1
                message, hint = _failure(exc, endpoint, origin)
                results.append({"source": label, "error": message})
                err_console.print(f"[red]✗[/] {label}: {message}", highlight=False)
                if hint:
                    err_console.print(f"[yellow]hint:[/] {hint}")
            finally:
                source.cleanup()
    if as_json:
        typer.echo(json.dumps(results[0] if len(results) == 1 else results))
    if failed:
        raise typer.Exit(code=1)
    if not as_json:
        console.print(f"{len(results)} uploaded")

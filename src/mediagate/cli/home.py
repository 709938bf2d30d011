"""`mediagate init` and `mediagate serve`: the home and the server."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, cast

import typer

from mediagate import logs
from mediagate.cli.common import State, app, console, fail, print_credentials
from mediagate.logs import LogFormat


@app.command()
def init(
    demo: Annotated[
        bool, typer.Option(help="Also create a 'demo' bucket (once) and print its keys.")
    ] = False,
) -> None:
    """Create (or upgrade) a home: config file, secret key, catalog schema. Idempotent."""
    from mediagate.services import build_gateway, init_home

    settings = State.settings()
    fresh = init_home(settings)
    console.print(
        f"{'Initialised' if fresh else 'Home already initialised at'} [bold]{settings.home}[/]"
        + (f" (catalog {settings.catalog_url.split('://')[0]})" if fresh else "")
    )
    if demo:
        from mediagate.core.buckets import create_bucket
        from mediagate.core.errors import Conflict

        gw = build_gateway(settings, migrate=False)
        try:
            creds = None
            if gw.catalog.get_bucket("demo") is None:
                with contextlib.suppress(Conflict):  # another node made it first (unique name)
                    creds = create_bucket(gw.catalog, gw.secrets, "demo", operator="demo-op")
            if creds is not None:
                print_credentials(creds.as_dict(), False, title="demo bucket")
            else:
                console.print("Bucket [bold]demo[/] exists (its secrets were printed when it was made).")
        finally:
            gw.catalog.close()


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    workers: Annotated[int, typer.Option(help="Worker processes sharing the home.")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    ssl_certfile: Annotated[
        Path | None, typer.Option(help="Serve HTTPS with this PEM certificate (chain); needs --ssl-keyfile.")
    ] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(help="The PEM private key of --ssl-certfile.")] = None,
    log_format: Annotated[
        str | None, typer.Option(help="Server log lines: text, or json (one object per line).")
    ] = None,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="Run no task workers here (run `mediagate worker`).")
    ] = False,
) -> None:
    """Serve every dialect on one port (and run asynchronous task workers unless --no-worker)."""
    import os

    import uvicorn

    from mediagate.services import is_home

    settings = State.settings()
    if not is_home(settings):
        raise fail(f"{settings.home} is not a mediagate home", f"run `mediagate --home {settings.home} init`")
    check_tls(ssl_certfile, ssl_keyfile)
    os.environ["MEDIAGATE_HOME"] = str(settings.home)
    if no_worker:
        os.environ["MEDIAGATE_RUN_WORKERS"] = "0"
    _log_settings(log_format, log_level)
    if workers > 1:  # one process serves its own registry: no shared files, no lock, no getpid per count
        metrics_dir(settings.home)
    from mediagate.startup import preflight

    preflight(settings)  # a wrong database_url, an unreachable database or S3: one line, exit 1
    if settings_log_format(log_format) != "json":  # a JSON log stays JSON: uvicorn says where it listens
        scheme = "https" if ssl_certfile else "http"
        console.print(f"mediagate serving {settings.home} on {scheme}://{host}:{port}")
    uvicorn.run(
        "mediagate.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        proxy_headers=False,
        server_header=False,
        access_log=False,  # mediagate.logs writes one access line per request instead
        log_config=logs.uvicorn_log_config(settings_log_format(log_format)),
        h11_max_incomplete_event_size=settings.max_header_size * 4,
        http="mediagate.httpserver:HTTPProtocol",
        ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
        ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
    )


def metrics_dir(home: Path) -> Path:
    """Empty ``<home>/metrics`` and point ``PROMETHEUS_MULTIPROC_DIR`` at it, for the worker
    processes about to start (mediagate.metrics): each writes its counters there and a scrape sums
    them all. Emptied at each start, so counters begin at zero with the server, as Prometheus
    expects of a restarted target. Set before anything imports prometheus-client (which reads the
    variable once, on import): this module does not."""
    import os
    import shutil

    path = (home / "metrics").resolve()
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    return path


def check_tls(certfile: Path | None, keyfile: Path | None) -> None:
    """Both TLS files or neither, and they must load as a pair: one clear line, not a traceback
    from inside the server."""
    import ssl

    if certfile is None and keyfile is None:
        return
    if certfile is None or keyfile is None:
        raise fail("--ssl-certfile and --ssl-keyfile go together", "give both, or neither for plain HTTP")
    for path in (certfile, keyfile):
        if not path.is_file():
            raise fail(f"{path} does not exist or is not a file", "see the README: TLS and a content origin")
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(certfile, keyfile)
    except (ssl.SSLError, OSError) as exc:
        raise fail(
            f"cannot use {certfile} with {keyfile}: {exc.strerror or exc}",
            "the certificate and key must be PEM files that belong together",
        ) from None


def _log_settings(log_format: str | None, log_level: str) -> None:
    """Hand the log flags to the workers (they read their settings from the environment)."""
    import os

    if log_format is not None:
        if log_format not in ("text", "json"):
            raise fail(f"--log-format must be text or json, not {log_format!r}")
        os.environ["MEDIAGATE_LOG_FORMAT"] = log_format
    os.environ["MEDIAGATE_LOG_LEVEL"] = log_level


def settings_log_format(flag: str | None) -> LogFormat:
    """The log format in force: the flag, else the home's setting (environment, mediagate.toml)."""
    return cast(LogFormat, flag) if flag is not None else State.settings().log_format

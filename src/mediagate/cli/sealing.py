"""`mediagate secrets …`: the sealing key of the secrets stored in the catalog, and its rotation.

See the README ("Several nodes: one sealing key" and "Rotating the sealing key").
"""

from __future__ import annotations

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mediagate.cli.common import app, console, fail, open_gateway

secrets_app = typer.Typer(
    help="The sealing key of stored secrets: make one, re-seal everything with the current one.",
    no_args_is_help=True,
)
app.add_typer(secrets_app, name="secrets")


@secrets_app.command("new-key")
def new_key() -> None:
    """Print a fresh sealing key (for MEDIAGATE_SECRET_KEY); stores nothing."""
    from mediagate.core.secrets import new_key as make

    typer.echo(make())


@secrets_app.command("rotate")
def rotate() -> None:
    """Re-seal every stored secret with the current key: the first of MEDIAGATE_SECRET_KEY
    (comma-separated, new key first, old keys after it) or of the home's secret.key.

    Run it once every node lists the new key first; afterwards the old keys can be removed.
    Safe while the nodes serve, and safe to run again."""
    from mediagate.core.rotation import reseal_all

    gw = open_gateway()
    try:
        total = gw.catalog.count_credentials()
        columns = (
            TextColumn("re-sealing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task("secrets", total=total)
            result = reseal_all(gw.catalog, gw.secrets, lambda n: progress.advance(task, n))
    finally:
        gw.catalog.close()
    console.print(
        f"{result.resealed} secret(s) re-sealed with the current key, "
        f"{result.current} already were ({gw.secrets.key_count} key(s) configured)."
    )
    if result.unreadable:
        ids = ", ".join(str(i) for i in result.unreadable[:20])
        raise fail(
            f"{len(result.unreadable)} secret(s) open with none of the configured keys "
            f"(credential ids {ids}{'…' if len(result.unreadable) > 20 else ''})",
            "add the key they were sealed with to MEDIAGATE_SECRET_KEY (after the current one) and run again",
        )

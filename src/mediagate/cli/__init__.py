"""The ``mediagate`` command (Typer + Rich): parse flags, call the factories, print results.

Each command group lives in its own module and registers itself on ``app`` when imported.
"""

from __future__ import annotations

import mediagate.cli.apikeys
import mediagate.cli.notify
import mediagate.cli.sealing
import mediagate.cli.task
import mediagate.cli.textjudge
import mediagate.cli.webhook  # noqa: F401 - registers `bucket textjudge`, `bucket webhook`
from mediagate.cli import bucket, home, keys, objects, policy, quota, sts, token, upload, version  # noqa: F401 - registers the commands
from mediagate.cli.common import app


def main() -> None:
    try:
        app()
    except Exception as exc:
        # a wrong database_url, an unreachable database or S3: one line, not a traceback
        from pydantic import ValidationError

        from mediagate.cli.common import State, err_console
        from mediagate.startup import explain

        try:
            settings = State.settings()
        except ValidationError:
            settings = None
        problem = explain(exc, settings)
        if problem is None:
            raise
        err_console.print(f"[bold red]error:[/] {problem}", highlight=False, soft_wrap=True)
        raise SystemExit(1) from None

"""The ``mediagate`` command (Typer + Rich): parse flags, call the factories, print results.

Each command group lives in its own module and registers itself on ``app`` when imported.
"""

from __future__ import annotations

from mediagate.cli import bucket, home, keys, objects, policy, sts, token, upload, version  # noqa: F401 - registers the commands  # noqa: F401 - registers `bucket key …`, `ls`, `rm`
from mediagate.cli.common import app


def main() -> None:
    app()

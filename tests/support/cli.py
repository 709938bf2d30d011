"""Run the ``mediagate`` command as a user would: a fresh process on a given home."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_mediagate(
    home: Path, *args: str, input: str | None = None, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``mediagate --home HOME ARGS…``; the test runner's own ``MEDIAGATE_*`` settings are left out,
    so only the home (and ``env``) decide what the command sees."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MEDIAGATE_")}
    return subprocess.run(
        [sys.executable, "-m", "mediagate", "--home", str(home), *args],
        capture_output=True,
        text=True,
        input=input,
        env={**clean, **(env or {})},
        timeout=timeout,
        check=False,
    )

"""`mediagate task`: what an operator gets for ids, buckets and statuses that do not exist, and the
JSON shape on an empty home (the full life of a task is in tests/tasks/test_engine.py)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import make_home
from tests.support.cli import run_mediagate


def test_task_commands_on_unknown_names_say_so(tmp_path: Path) -> None:
    home = make_home(tmp_path / "home").home
    listed = run_mediagate(home, "task", "list", "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []

    for args, fragment in [
        (("task", "show", "f" * 32, "--json"), "does not exist"),
        (("task", "retry", "f" * 32), "does not exist"),
        (("task", "list", "--bucket", "nosuch"), "bucket 'nosuch' does not exist"),
        (("task", "list", "--status", "lost"), "unknown status 'lost'"),
    ]:
        done = run_mediagate(home, *args)
        assert done.returncode == 1, args
        assert fragment in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr

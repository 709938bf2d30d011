"""Start-up problems are one line that names them: a wrong ``database_url`` (unknown kind, not a URL,
driver missing), a database or an S3 endpoint that cannot be reached. From every command, from
``serve`` before it listens, and from the server factory under plain uvicorn."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import LiveServer, free_port
from tests.support.cli import run_mediagate

WRONG_URLS = [
    ("postgres://app:hunter2@127.0.0.1/db", "unknown database kind 'postgres'"),
    ("not a url", "is not a database URL"),
    ("mysql://app:hunter2@127.0.0.1/db", "database driver is not installed"),
    (f"postgresql+psycopg://app:hunter2@127.0.0.1:{free_port()}/db", "cannot use the catalog database"),
]


def one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.mark.parametrize(
    ("command", "url", "problem"),
    [(["bucket", "list"], url, problem) for url, problem in WRONG_URLS]
    + [(["init"], *WRONG_URLS[0]), (["serve", "--port", "0"], *WRONG_URLS[3])],
)
def test_a_wrong_database_url_is_one_line(tmp_path: Path, command: list[str], url: str, problem: str) -> None:
    if command[0] != "init":
        assert run_mediagate(tmp_path, "init").returncode == 0
    done = run_mediagate(tmp_path, *command, env={"MEDIAGATE_DATABASE_URL": url, "COLUMNS": "80"})
    assert done.returncode == 1
    line = one_error_line(done.stderr)
    assert line.startswith("error: ") and problem in line, line
    assert "hunter2" not in done.stderr  # the password is masked


def test_serve_with_s3_out_of_reach_is_one_line(tmp_path: Path) -> None:
    assert run_mediagate(tmp_path, "init").returncode == 0
    endpoint = f"http://127.0.0.1:{free_port()}"
    env = {
        "MEDIAGATE_STORAGE": "s3",
        "MEDIAGATE_S3_ENDPOINT_URL": endpoint,
        "MEDIAGATE_S3_ACCESS_KEY_ID": "k",
        "MEDIAGATE_S3_SECRET_ACCESS_KEY": "s3-secret-value",
    }
    done = run_mediagate(tmp_path, "serve", "--port", "0", env=env)
    assert done.returncode == 1
    line = one_error_line(done.stderr)
    assert line.startswith("error: cannot use S3 bucket 'mediagate' at " + endpoint), line
    assert "s3-secret-value" not in done.stderr


def test_the_server_factory_logs_one_line_and_exits(tmp_path: Path) -> None:
    """``uvicorn --factory mediagate.app:app_from_env`` (how containers often run it) says the same."""
    assert run_mediagate(tmp_path, "init").returncode == 0
    live = LiveServer(tmp_path, env={"MEDIAGATE_DATABASE_URL": "postgres://app:hunter2@127.0.0.1/db"})
    with pytest.raises(RuntimeError, match="server exited"):
        live.start(timeout=20)
    log = live.log()
    assert "cannot start: database_url 'postgres://app:***@127.0.0.1/db': unknown database kind" in log
    assert "Traceback" not in log and "hunter2" not in log


def test_invalid_settings_are_one_line(tmp_path: Path) -> None:
    assert run_mediagate(tmp_path, "init").returncode == 0
    done = run_mediagate(tmp_path, "bucket", "list", env={"MEDIAGATE_STORAGE": "s4"})
    assert done.returncode == 1
    line = one_error_line(done.stderr)
    assert line.startswith("error: invalid settings") and "storage: Input should be 'local' or 's3'" in line

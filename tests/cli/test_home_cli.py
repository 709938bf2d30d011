"""`mediagate init`, `bucket create/list/delete`: the real command in a subprocess."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx

from tests.conftest import LiveServer
from tests.support.cli import run_mediagate


def mediagate(home: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return run_mediagate(home, *args, input=input, env={"COLUMNS": "200"})  # tables unwrapped


def test_init_is_idempotent_and_the_demo_bucket_is_made_once(tmp_path: Path) -> None:
    first = mediagate(tmp_path, "init", "--demo")
    assert first.returncode == 0, first.stderr
    assert "Initialised" in first.stdout and "secret_access_key" in first.stdout
    assert (tmp_path / "mediagate.toml").exists() and (tmp_path / "secret.key").exists()
    assert oct((tmp_path / "secret.key").stat().st_mode & 0o777) == "0o600"
    key = (tmp_path / "secret.key").read_bytes()
    second = mediagate(tmp_path, "init", "--demo")
    assert second.returncode == 0, second.stderr
    assert "already initialised" in second.stdout
    assert "secret_access_key" not in second.stdout  # secrets are printed once only
    assert (tmp_path / "secret.key").read_bytes() == key


def test_bucket_create_list_delete(tmp_path: Path) -> None:
    assert mediagate(tmp_path, "init").returncode == 0
    made = mediagate(
        tmp_path,
        "bucket",
        "create",
        "photos",
        "--json",
        "--operator",
        "alice",
        "--password",
        "s3cret",
        "--access-key-id",
        "AKPHOTOS",
    )
    assert made.returncode == 0, made.stderr
    creds = json.loads(made.stdout)
    assert set(creds) == {
        "bucket",
        "operator",
        "password",
        "form_api_secret",
        "access_key_id",
        "secret_access_key",
    }
    assert (creds["bucket"], creds["operator"], creds["password"], creds["access_key_id"]) == (
        "photos",
        "alice",
        "s3cret",
        "AKPHOTOS",
    )

    listed = mediagate(tmp_path, "bucket", "list", "--json")
    assert [row["bucket"] for row in json.loads(listed.stdout)] == ["photos"]

    dup = mediagate(tmp_path, "bucket", "create", "photos")
    assert dup.returncode == 1 and "already exists" in dup.stderr

    bad = mediagate(tmp_path, "bucket", "create", "Bad_Name")
    assert bad.returncode == 1 and "lowercase" in bad.stderr

    gone = mediagate(tmp_path, "bucket", "delete", "photos", "--yes")
    assert gone.returncode == 0, gone.stderr
    assert json.loads(mediagate(tmp_path, "bucket", "list", "--json").stdout) == []
    missing = mediagate(tmp_path, "bucket", "delete", "photos", "--yes")
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def test_commands_on_a_directory_that_is_not_a_home_say_what_to_do(tmp_path: Path) -> None:
    result = mediagate(tmp_path / "nowhere", "bucket", "list")
    assert result.returncode == 1
    assert "mediagate --home" in result.stderr and "init" in result.stderr


def test_every_command_has_help(tmp_path: Path) -> None:
    for args in (
        ["--help"],
        ["init", "--help"],
        ["serve", "--help"],
        ["bucket", "--help"],
        ["bucket", "create", "--help"],
        ["bucket", "list", "--help"],
        ["bucket", "delete", "--help"],
    ):
        result = mediagate(tmp_path, *args)
        assert result.returncode == 0, (args, result.stderr)
        assert "Usage" in result.stdout


def test_serve_answers_healthz(tmp_path: Path) -> None:
    assert mediagate(tmp_path, "init").returncode == 0
    server = LiveServer(tmp_path).start()
    try:
        response = httpx.get(f"{server.url}/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "catalog": "ok", "storage": "ok", "disk": "ok"}
        assert response.headers["x-request-id"]
    finally:
        server.stop()

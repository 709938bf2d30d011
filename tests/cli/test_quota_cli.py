"""`mediagate bucket quota set/show`: an operator sets a bucket's limits and sees usage against them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mediagate.config import Settings
from mediagate.core.buckets import create_bucket
from mediagate.services import build_gateway
from tests.conftest import make_home
from tests.support.cli import run_mediagate


@pytest.fixture
def home(tmp_path: Path) -> Settings:
    settings = make_home(tmp_path / "home")
    gw = build_gateway(settings, migrate=False)
    try:
        create_bucket(gw.catalog, gw.secrets, "photos")
    finally:
        gw.catalog.close()
    return settings


def test_set_then_show_reports_limits_and_usage(home: Settings) -> None:
    done = run_mediagate(
        home.home, "bucket", "quota", "set", "photos",
        "--max-bytes", "10G", "--max-objects", "5000", "--uploads-per-minute", "120",
        "--key-uploads-per-minute", "30", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    limits = json.loads(done.stdout)["limits"]
    assert limits == {
        "max_bytes": 10 * 1024**3,
        "max_objects": 5000,
        "uploads_per_minute": 120,
        "key_uploads_per_minute": 30,
        "token_uploads_per_minute": None,
    }
    run_mediagate(home.home, "bucket", "quota", "set", "photos", "--max-objects", "none")
    shown = run_mediagate(home.home, "bucket", "quota", "show", "photos", "--json")
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    assert report["bucket"] == "photos"
    assert report["limits"]["max_objects"] is None and report["limits"]["max_bytes"] == 10 * 1024**3
    assert report["usage"] == {"bytes": 0, "objects": 0}
    table = run_mediagate(home.home, "bucket", "quota", "show", "photos")
    assert "10,737,418,240 bytes" in table.stdout and "no limit" in table.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["photos", "--max-bytes", "lots"], "'lots' is not a limit"),
        (["photos", "--uploads-per-minute", "1.5"], "'1.5' is not a limit"),
        (["photos"], "nothing to set"),
        (["nosuch", "--max-objects", "3"], "bucket 'nosuch' does not exist"),
    ],
)
def test_mistakes_are_one_clear_line(home: Settings, args: list[str], message: str) -> None:
    done = run_mediagate(home.home, "bucket", "quota", "set", *args)
    assert done.returncode == 1
    assert message in done.stderr and "Traceback" not in done.stderr


def test_help_names_every_limit(home: Settings) -> None:
    done = run_mediagate(home.home, "bucket", "quota", "set", "--help")
    for option in ("--max-bytes", "--max-objects", "--uploads-per-minute", "--key-uploads-per-minute"):
        assert option in done.stdout

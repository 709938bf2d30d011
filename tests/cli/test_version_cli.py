"""`mediagate bucket version|normalise|autoformat`: the real command in a subprocess."""

from __future__ import annotations

import json

import pytest

from mediagate.config import Settings
from mediagate.core.buckets import create_bucket
from mediagate.services import build_gateway
from tests.conftest import make_home
from tests.support.cli import run_mediagate


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = make_home(tmp_path_factory.mktemp("cli"))
    gw = build_gateway(settings, migrate=False)
    try:
        create_bucket(gw.catalog, gw.secrets, "photos")
    finally:
        gw.catalog.close()
    return settings


def settings_of(home: Settings) -> dict[str, object]:
    gw = build_gateway(home, migrate=False)
    try:
        return dict(gw.catalog.require_bucket("photos").settings or {})
    finally:
        gw.catalog.close()


def test_versions_set_list_delete(home: Settings) -> None:
    ok = run_mediagate(
        home.home, "bucket", "version", "set", "photos", "small", "fw/300/quality/80", "--json"
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["versions"] == {"small": "/fw/300/quality/80"}
    assert run_mediagate(home.home, "bucket", "version", "set", "photos", "sq", "/sq/64").returncode == 0
    listed = json.loads(run_mediagate(home.home, "bucket", "version", "list", "photos", "--json").stdout)
    assert listed["versions"] == {"small": "/fw/300/quality/80", "sq": "/sq/64"}
    assert run_mediagate(home.home, "bucket", "version", "delete", "photos", "sq").returncode == 0
    assert settings_of(home)["versions"] == {"small": "/fw/300/quality/80"}


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("version", "set", "photos", "/bad", "/fw/1"), "version name"),
        (("version", "set", "photos", "ok", "/fw/abc"), "fw"),
        (("version", "set", "nobucket", "ok", "/fw/10"), "does not exist"),
        (("version", "delete", "photos", "never"), "no version"),
        (("normalise", "set", "photos", "--format", "bmp"), "--format"),
        (("normalise", "set", "photos", "--keep-metadata"), "nothing to normalise"),
    ],
)
def test_refusals_say_why(home: Settings, args: tuple[str, ...], words: str) -> None:
    done = run_mediagate(home.home, "bucket", *args)
    assert done.returncode != 0
    assert words in done.stderr, done.stderr


def test_normalise_set_show_off(home: Settings) -> None:
    done = run_mediagate(
        home.home, "bucket", "normalise", "set", "photos", "--max-side", "2048", "--format", "webp",
        "--quality", "80", "--heic-to", "jpg", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    expected = {
        "auto_orient": True,
        "strip": True,
        "heic_to": "jpg",
        "format": "webp",
        "quality": 80,
        "max_side": 2048,
    }
    assert json.loads(done.stdout)["normalise"] == expected
    shown = run_mediagate(home.home, "bucket", "normalise", "show", "photos", "--json")
    assert json.loads(shown.stdout)["normalise"] == expected
    off = run_mediagate(home.home, "bucket", "normalise", "off", "photos", "--json")
    assert json.loads(off.stdout)["normalise"] is None


def test_autoformat_on_off(home: Settings) -> None:
    assert run_mediagate(home.home, "bucket", "autoformat", "photos", "--on", "--avif").returncode == 0
    assert settings_of(home)["autoformat"] == "avif"
    assert run_mediagate(home.home, "bucket", "autoformat", "photos", "--off").returncode == 0
    assert settings_of(home)["autoformat"] is False

"""Settings: defaults, the home's TOML file, and the environment, in that order of strength."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from mediagate.config import Settings


def test_defaults_put_everything_under_the_home(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    assert settings.catalog_url == f"sqlite:///{tmp_path.resolve() / 'catalog.sqlite3'}"
    assert settings.staging_dir == tmp_path / "staging"
    assert settings.storage == "local"
    assert settings.allow_private_callbacks is False


def test_home_toml_file_is_read(tmp_path: Path) -> None:
    (tmp_path / "mediagate.toml").write_text('date_skew_seconds = 60\nstorage = "s3"\n')
    settings = Settings(home=tmp_path)
    assert settings.date_skew_seconds == 60
    assert settings.storage == "s3"


def test_environment_beats_the_toml_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mediagate.toml").write_text("date_skew_seconds = 60\n")
    monkeypatch.setenv("MEDIAGATE_DATE_SKEW_SECONDS", "90")
    monkeypatch.setenv("MEDIAGATE_ALLOW_PRIVATE_CALLBACKS", "1")
    settings = Settings(home=tmp_path)
    assert settings.date_skew_seconds == 90
    assert settings.allow_private_callbacks is True


def test_home_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mediagate.toml").write_text("notify_retries = 2\n")
    monkeypatch.setenv("MEDIAGATE_HOME", str(tmp_path))
    settings = Settings()
    assert settings.home == tmp_path
    assert settings.notify_retries == 2


def test_invalid_values_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIAGATE_STORAGE", "floppy")
    with pytest.raises(ValueError, match="storage"):
        Settings(home=tmp_path)


def test_s3_parts_must_hold_the_largest_upload(tmp_path: Path) -> None:
    """S3 takes at most 10,000 parts: a part size that cannot carry max_upload_size is refused at
    start-up, not by S3 at the 10,001st part of somebody's upload."""
    assert Settings(home=tmp_path, storage="s3", max_upload_size=50 * 1024**3).s3_part_size == 8 * 1024**2
    with pytest.raises(ValidationError, match="s3_part_size"):
        Settings(home=tmp_path, storage="s3", max_upload_size=100 * 1024**3)
    with pytest.raises(ValidationError):
        Settings(home=tmp_path, s3_part_size=1024**2)  # under S3's 5 MiB
    assert Settings(home=tmp_path, max_upload_size=100 * 1024**3).storage == "local"  # no parts

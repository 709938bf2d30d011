"""Headless Chromium for the page's tests: Debian's ``chromium`` driven by Playwright for Python.

No browser is downloaded (``playwright install`` is never run): Playwright launches the system's
executable. Without chromium or playwright the browser tests skip, saying why, except where
``MEDIAGATE_COMPAT_REQUIRED`` is set (``.ci/run`` sets it after ``apt-get install chromium``):
there a missing browser is a failure, as for the compatibility suites.

Screenshots are kept as test artefacts under ``tests/artifacts/screenshots/`` (gitignored).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "tests" / "artifacts" / "screenshots"
CANDIDATES = ("chromium", "chromium-browser")
TAKEN: list[Path] = []
"""Screenshots taken in this run (the terminal summary names where they are)."""


def _missing(reason: str) -> None:
    if os.environ.get("MEDIAGATE_COMPAT_REQUIRED"):
        pytest.fail(reason)
    pytest.skip(reason)


def chromium_executable() -> str:
    """The system Chromium's path (``$MEDIAGATE_CHROMIUM`` overrides), or skip/fail."""
    override = os.environ.get("MEDIAGATE_CHROMIUM")
    if override:
        if os.access(override, os.X_OK):
            return override
        _missing(f"MEDIAGATE_CHROMIUM={override} is not an executable")
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    _missing("chromium not installed (apt-get install chromium)")
    raise AssertionError("unreachable")


def playwright_module() -> Any:
    """``playwright.sync_api``, or skip/fail when the package is missing."""
    try:
        from playwright import sync_api
    except ImportError:
        _missing("playwright not installed (pip install -e '.[dev]')")
    return sync_api


def screenshot(page: Any, name: str) -> Path:
    """A full-page PNG named ``name`` under the artefacts folder; its path is printed."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    TAKEN.append(path)
    return path

"""A headless Chromium (``tests.support.browser``) per module, a fresh context per test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.browser import SCREENSHOTS, TAKEN, chromium_executable, playwright_module


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    executable = chromium_executable()
    sync_api = playwright_module()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield browser
        browser.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TAKEN:
        terminalreporter.write_line(f"web page screenshots ({len(TAKEN)}): {SCREENSHOTS}")

"""Runs the vendored Wantu PHP SDK (``tests/compat/vendor/wantu-sdk``) against a live mediagate.

The SDK's hosts are class constants (``AliMedia\\Conf\\Conf``), so the one change a user makes, and
the only one made here, is those two constants, in a temporary copy of the SDK. ``driver.php``
runs a list of SDK calls in one PHP process (a multi-part upload keeps its state in an
``UploadOption`` between calls) and prints what each returned.

Without ``php`` (and its curl extension) the suite skips, saying why, except where
``MEDIAGATE_COMPAT_REQUIRED`` is set (``.ci/run`` sets it after installing PHP from Debian): there
a missing tool is a failure.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

VENDOR = Path(__file__).resolve().parent.parent / "vendor" / "wantu-sdk"
DRIVER = Path(__file__).resolve().parent / "driver.php"
HOSTS = ("https://upload.media.aliyun.com", "https://rs.media.aliyun.com")
RUN_TIMEOUT = 120


def require_php() -> None:
    """Skip (or, in CI, fail) unless php with the curl extension is on PATH."""
    problem = None
    if shutil.which("php") is None:
        problem = "php is not installed (apt-get install php-cli php-curl)"
    else:
        modules = subprocess.run(["php", "-m"], capture_output=True, text=True, timeout=30).stdout.split()
        if "curl" not in modules:
            problem = "php has no curl extension (apt-get install php-curl)"
    if problem is None:
        return
    if os.environ.get("MEDIAGATE_COMPAT_REQUIRED"):
        pytest.fail(problem)
    pytest.skip(problem)


def sdk_for(base_url: str, where: Path) -> Path:
    """A copy of the SDK whose two host constants point at ``base_url``."""
    root = where / "wantu-sdk"
    shutil.copytree(VENDOR, root)
    conf = root / "src" / "Conf" / "Conf.php"
    text = conf.read_text()
    for host in HOSTS:
        assert f'"{host}"' in text, f"{host} not found in the SDK's Conf.php"
        text = text.replace(f'"{host}"', f'"{base_url}"')
    conf.write_text(text)
    return root


def data(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


class PhpSdk:
    """One namespace's AK/SK, as an application hands them to ``new AlibabaImage(ak, sk, ns)``."""

    def __init__(self, root: Path, ak: str, sk: str, namespace: str) -> None:
        self.root, self.ak, self.sk, self.namespace = root, ak, sk, namespace

    def run(self, *steps: dict[str, Any]) -> list[Any]:
        request = {"ak": self.ak, "sk": self.sk, "namespace": self.namespace, "steps": list(steps)}
        done = subprocess.run(
            ["php", str(DRIVER), str(self.root)],
            input=json.dumps(request).encode(),
            capture_output=True,
            timeout=RUN_TIMEOUT,
        )
        assert done.returncode == 0, done.stderr.decode(errors="replace") + done.stdout.decode(
            errors="replace"
        )
        results = json.loads(done.stdout)
        assert isinstance(results, list) and len(results) == len(steps), done.stdout[:2000]
        return results

    def one(self, step: dict[str, Any]) -> Any:
        return self.run(step)[0]

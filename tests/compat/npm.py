"""Official npm packages for the compatibility suites, installed once into a cache outside the
repository (``$MEDIAGATE_COMPAT_CACHE``, default ``~/.cache/mediagate-compat``) with npm itself, so
that ``make test`` pays for the registry only the first time.

Without node and npm the suites skip, saying why, except where ``MEDIAGATE_COMPAT_REQUIRED`` is set
(``.ci/run`` sets it after installing them from Debian): there a missing tool is a failure.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

INSTALL_TIMEOUT = 300


def cache_root() -> Path:
    default = Path.home() / ".cache" / "mediagate-compat"
    return Path(os.environ.get("MEDIAGATE_COMPAT_CACHE") or default)


def require_tools(*names: str) -> None:
    """Skip (or, in CI, fail) unless every tool in ``names`` is on PATH."""
    missing = [n for n in names if shutil.which(n) is None]
    if not missing:
        return
    reason = f"{', '.join(missing)} not installed (apt-get install nodejs npm)"
    if os.environ.get("MEDIAGATE_COMPAT_REQUIRED"):
        pytest.fail(reason)
    pytest.skip(reason)


def installed(package: str, version_prefix: str) -> Path:
    """The ``node_modules`` directory holding ``package`` at a version starting with
    ``version_prefix`` (e.g. ``upyun``, ``3.4.``); installs ``package@<prefix>`` on first use.
    A lock file keeps concurrent test runs from installing over each other."""
    require_tools("node", "npm")
    root = cache_root() / "npm" / f"{package}-{version_prefix.rstrip('.')}"
    root.mkdir(parents=True, exist_ok=True)
    modules = root / "node_modules"
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _version(modules, package).startswith(version_prefix):
            return modules
        manifest = root / "package.json"
        if not manifest.exists():  # anchors npm here instead of a parent project
            manifest.write_text(json.dumps({"name": "mediagate-compat", "private": True}))
        spec = f"{package}@{version_prefix.rstrip('.')}"
        done = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--omit=dev", spec],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            check=False,
        )
        version = _version(modules, package)
        if done.returncode != 0 or not version.startswith(version_prefix):
            pytest.fail(f"npm install {spec} failed ({version or 'not installed'}):\n{done.stderr[-2000:]}")
        return modules


def _version(modules: Path, package: str) -> str:
    try:
        return str(json.loads((modules / package / "package.json").read_text())["version"])
    except (OSError, ValueError, KeyError):
        return ""

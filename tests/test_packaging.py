"""pyproject declares exactly what src/ imports, and .ci/run starts only services a test uses."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

RUNTIME_ONLY = {
    "psycopg": "the PostgreSQL driver SQLAlchemy loads from database_url",
    "pyvips-binary": "libvips",
}
"""Declared distributions that src/ uses without importing them by name."""
EXTRAS = {"mypy-boto3-s3": "boto3-stubs"}
"""Distributions that come with a declared one's extra (``boto3-stubs[s3]``)."""


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _imported(root: Path) -> set[str]:
    """Top-level modules imported anywhere under ``root`` (type-checking-only imports included)."""
    found: set[str] = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"mediagate", "__future__"}


def _distributions(modules: set[str]) -> dict[str, set[str]]:
    owners = packages_distributions()
    return {m: {d.lower().replace("_", "-") for d in owners.get(m, [])} for m in modules}


def test_every_import_in_src_is_declared_and_every_dependency_is_used() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {_name(r) for r in project["dependencies"]}
    optional = project["optional-dependencies"]
    dev = {_name(r) for r in optional["dev"]}
    # runtime extras (video, moderation): imported lazily, with a clear error when absent
    extras = {_name(r) for name, reqs in optional.items() if name != "dev" for r in reqs}
    owners = {
        m: {EXTRAS.get(d, d) for d in found} for m, found in _distributions(_imported(ROOT / "src")).items()
    }
    undeclared = {m: d for m, d in owners.items() if not d & (declared | dev | extras)}
    assert not undeclared, f"imported by src/ but not declared in pyproject: {undeclared}"
    dev_only = {m: d for m, d in owners.items() if not d & (declared | extras)}
    # type stubs may be dev-only: they are imported under TYPE_CHECKING
    assert all(m.startswith("mypy_") for m in dev_only), f"src/ imports dev-only packages: {dev_only}"
    used = set().union(*owners.values())
    unused = declared - used - set(RUNTIME_ONLY)
    assert not unused, f"declared in pyproject but never imported by src/: {unused}"


def test_ci_starts_only_services_some_test_uses() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    tests = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("*.py") if p.name != Path(__file__).name)
    services = {"redis-server": ("redis", "6379"), "pg_ctlcluster": ("postgresql", "5432")}
    for command, (module, port) in services.items():
        starts = re.search(rf"^\s*{command}\b", script, re.M) is not None
        used = re.search(rf"\bimport {module}\b|:{port}\b", tests) is not None
        assert not starts or used, f".ci/run starts {command} but no test uses it"

"""The seams the handbook draws, checked on the source: protocol code and the CLI never import the
catalog (the core hands them ``core.values``), and the core never imports a dialect. Every import
counts, also one inside a function or under ``TYPE_CHECKING``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "mediagate"


def imported_modules(source: str, package: str) -> list[tuple[int, str]]:
    """(line, module) of every import in ``source``, a module of ``package`` (relative imports are
    resolved against it); ``from a import b`` counts as both ``a`` and ``a.b``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def is_within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def offenders(package: str, forbidden: str) -> list[str]:
    found = []
    for path in sorted((SRC / package).rglob("*.py")):
        owner = ".".join(path.relative_to(SRC.parent).with_suffix("").parts[:-1])
        for line, module in imported_modules(path.read_text(), owner):
            if is_within(module, forbidden):
                found.append(f"{path.relative_to(SRC.parent)}:{line} imports {module}")
    return found


def test_protocol_code_never_imports_the_catalog() -> None:
    assert offenders("protocols", "mediagate.catalog") == []


def test_the_cli_never_imports_the_catalog() -> None:
    """Its commands type what they print with ``core.values`` and get it from core functions
    (``core.admin``, ``core.credentials``), so a change of the catalog's rows is not a change of
    the CLI."""
    assert offenders("cli", "mediagate.catalog") == []


def test_the_core_never_imports_a_dialect() -> None:
    assert offenders("core", "mediagate.protocols") == []


@pytest.mark.parametrize(
    ("source", "caught"),
    [
        ("from mediagate.catalog.models import Bucket\n", True),
        ("def f():\n    from mediagate.catalog import repo\n", True),
        ("import mediagate.catalog.models as m\n", True),
        ("if TYPE_CHECKING:\n    from mediagate.catalog.models import Task\n", True),
        ("from ...catalog import models\n", True),
        ("from mediagate.core.values import Bucket\n", False),
        ("from mediagate.catalogue import x\n", False),
        ("from .. import catalog_names\n", False),
    ],
)
def test_the_check_sees_every_form_of_import(source: str, caught: bool) -> None:
    modules = [m for _, m in imported_modules(source, "mediagate.protocols.upyun")]
    assert any(is_within(m, "mediagate.catalog") for m in modules) is caught

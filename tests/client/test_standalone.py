"""The Python SDK stands alone: ``mediagate.client`` imports nothing of the server.

Read from the source (every import statement, however nested, relative ones resolved), and
followed through the shared modules it may use, so that a server import cannot come in by way of
``mediagate.signing`` either. Then checked for real: importing the SDK in a fresh interpreter
loads no server module."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import mediagate

PACKAGE = Path(mediagate.__file__).parent
SHARED = ("mediagate.client", "mediagate.signing", "mediagate.urlguard")
"""What the SDK may import of mediagate: itself and the modules made to be shared with it."""


def _module_file(name: str) -> Path | None:
    relative = Path(*name.split(".")[1:])
    for candidate in (PACKAGE / relative / "__init__.py", PACKAGE / relative.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _module_name(path: Path) -> str:
    parts = ["mediagate", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def mediagate_imports(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Every ``mediagate`` module that ``source`` (the text of ``module``) imports (``from a
    import b`` counts a.b when b is a module), at any depth of the file (functions,
    TYPE_CHECKING blocks included)."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            found.add(base)
            found.update(
                f"{base}.{alias.name}" for alias in node.names if _module_file(f"{base}.{alias.name}")
            )
    return {name for name in found if name == "mediagate" or name.startswith("mediagate.")}


def test_the_sdk_imports_no_server_package() -> None:
    seen: dict[str, str] = {}
    todo = [(_module_name(p), p) for p in sorted((PACKAGE / "client").rglob("*.py"))]
    assert todo, "no SDK sources found"
    while todo:
        importer, path = todo.pop()
        for name in mediagate_imports(path.read_text(), importer, is_package=path.name == "__init__.py"):
            if name in seen or name == "mediagate":
                continue
            seen[name] = importer
            allowed = any(name == s or name.startswith(s + ".") for s in SHARED)
            assert allowed, f"{importer} imports {name}: the SDK must not import the server"
            file = _module_file(name)
            if file is not None:
                todo.append((name, file))
    assert "mediagate.signing.sigv4" in seen  # the walk did follow the imports


def test_the_walk_sees_a_server_import() -> None:
    source = "def f():\n    from mediagate.core.errors import BadRequest\n    from ..catalog import repo\n"
    names = mediagate_imports(source, "mediagate.client.probe")
    assert {"mediagate.core.errors", "mediagate.catalog", "mediagate.catalog.repo"} <= names


def test_importing_the_sdk_loads_no_server_module() -> None:
    code = (
        "import sys, mediagate.client\n"
        "print('\\n'.join(m for m in sys.modules if m.startswith('mediagate.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    loaded = set(out.split())
    server = {m for m in loaded if not any(m == s or m.startswith(s + ".") for s in SHARED)}
    assert not server, f"importing mediagate.client loaded server modules: {sorted(server)}"
    assert "mediagate.signing.upyun" in loaded

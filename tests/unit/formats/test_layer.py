"""formats is the layer just above core (docs/architecture.md): its modules import only
core, formats itself and third-party libraries, never a domain."""

from __future__ import annotations

import ast
from pathlib import Path

import credit_commons.formats

PACKAGE = Path(credit_commons.formats.__file__).parent
ALLOWED = ("credit_commons.core", "credit_commons.formats")


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
    return names


def test_formats_imports_only_core_and_itself() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) >= 8
    for path in modules:
        for name in _imports(path):
            if name.startswith("credit_commons"):
                assert name.startswith(ALLOWED), f"{path.name} imports {name}"

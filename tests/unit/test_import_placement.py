"""Imports sit at the top of their module (issue 15): none placed inside a function to dodge
an import cycle.  Inside a function only a third-party module may be imported, and only
with a ``# deferred: <reason>`` comment on the statement (an optional or heavy dependency
that few commands need); a ``credit_commons`` module never.

Every module of the package is checked."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

ROOTS = [SRC / "credit_commons"]

DEFERRED = re.compile(r"#\s*deferred:\s*\S")


def _modules() -> list[Path]:
    found: list[Path] = []
    for root in ROOTS:
        found += sorted(root.rglob("*.py")) if root.is_dir() else [root]
    return found


def _function_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    # Every import statement with a function somewhere above it (methods and nested
    # functions included).
    def walk(node: ast.AST, in_function: bool) -> Iterator[ast.Import | ast.ImportFrom]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom) and in_function:
                yield child
            inside = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            yield from walk(child, inside)

    yield from walk(tree, False)


def _names(statement: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(statement, ast.ImportFrom):
        # A relative import is one of this project's modules.
        return ["credit_commons" if statement.level else (statement.module or "")]
    return [alias.name for alias in statement.names]


def misplaced(source: str) -> list[str]:
    """The function-level imports in ``source`` that break the rule, as ``line: why``."""
    lines = source.splitlines()
    problems = []
    for statement in _function_imports(ast.parse(source)):
        end = statement.end_lineno or statement.lineno
        text = "\n".join(lines[statement.lineno - 1 : end])
        for name in _names(statement):
            if name == "credit_commons" or name.startswith("credit_commons."):
                problems.append(f"{statement.lineno}: {name} imported inside a function")
            elif not DEFERRED.search(text):
                problems.append(f"{statement.lineno}: {name} without '# deferred: <reason>'")
    return problems


MODULES = _modules()


def test_the_roots_are_scanned() -> None:
    # A guard against an empty parametrisation: the CLI package, the demo and the lower
    # layers are found.
    names = {p.relative_to(SRC).as_posix() for p in MODULES}
    assert "credit_commons/cli/__init__.py" in names
    assert "credit_commons/cli/log.py" in names
    assert "credit_commons/demo.py" in names
    assert "credit_commons/runtime.py" in names
    assert "credit_commons/vault/pkcs11.py" in names
    assert "credit_commons/ledger/anchors/evm.py" in names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(SRC).as_posix())
def test_no_import_inside_a_function(path: Path) -> None:
    assert misplaced(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "def f():\n    from credit_commons.core import db\n",
            ["2: credit_commons.core imported inside a function"],
        ),
        (
            "def f():\n    import credit_commons.cli  # deferred: no excuse for our own\n",
            ["2: credit_commons.cli imported inside a function"],
        ),
        ("def f():\n    from . import support\n", ["2: credit_commons imported inside a function"]),
        (
            "class C:\n    def m(self):\n        import json\n",
            ["3: json without '# deferred: <reason>'"],
        ),
        (
            "def f():\n    def g():\n        import uvicorn\n",
            ["3: uvicorn without '# deferred: <reason>'"],
        ),
        ("def f():\n    import uvicorn  # deferred: 100 ms, only when serving\n", []),
        (
            "def f():\n    from rich import (  # deferred: long commands only\n"
            "        progress,\n    )\n",
            [],
        ),
        ("import json\nfrom credit_commons.core import db\n", []),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import httpx\n", []),
    ],
)
def test_the_rule(source: str, expected: list[str]) -> None:
    assert misplaced(source) == expected

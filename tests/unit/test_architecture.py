"""The package's shape (issue 15): no import cycle between modules, small modules, short
functions, typed results.

The layers and the "no other domain's tables or routers" rules are import-linter contracts
(``[tool.importlinter]`` in pyproject.toml, run by ``make imports``); they compare packages.
This test looks one level finer: no two modules import each other, directly or through
others, so every module can be imported on its own and the order of imports never matters.
It reads the same graph import-linter builds (grimp), without ``TYPE_CHECKING`` imports,
which exist only for annotations."""

from __future__ import annotations

import ast
import re
import statistics
from collections.abc import Callable, Iterable
from pathlib import Path

import grimp
import pytest

import credit_commons


def cycles(nodes: Iterable[str], successors: Callable[[str], Iterable[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(nodes):
        if root in index:
            continue
        # An explicit stack of (node, its successors still to visit), not recursion: the
        # package has a few hundred modules and chains can be long.
        work = [(root, iter(sorted(successors(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, pending = work[-1]
            advanced = False
            for nxt in pending:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(successors(nxt)))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        ({"a": ["b"], "b": ["c"], "c": []}, []),
        ({"a": ["b"], "b": ["a"]}, [["a", "b"]]),
        ({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}, [["a", "b", "c"]]),
        ({"a": ["a"]}, []),
        ({"a": ["b"], "b": ["a"], "c": ["d"], "d": ["c"]}, [["a", "b"], ["c", "d"]]),
    ],
)
def test_cycles_finds_exactly_the_loops(
    edges: dict[str, list[str]], expected: list[list[str]]
) -> None:
    assert sorted(cycles(edges, lambda n: edges[n])) == expected


def test_no_module_imports_itself_through_others() -> None:
    graph = grimp.build_graph("credit_commons", exclude_type_checking_imports=True)
    assert len(graph.modules) > 200  # the package was found, not an empty graph
    assert cycles(graph.modules, graph.find_modules_directly_imported_by) == []


def _sources() -> list[tuple[str, str]]:
    package = Path(credit_commons.__file__).parent
    return [
        (path.relative_to(package.parent).as_posix(), path.read_text(encoding="utf-8"))
        for path in sorted(package.rglob("*.py"))
    ]


def test_modules_stay_small() -> None:
    # Issue 15: the median module at most 250 lines, none over 600.
    lengths = {name: len(text.splitlines()) for name, text in _sources()}
    assert len(lengths) > 200
    assert statistics.median(lengths.values()) <= 250
    assert {name: n for name, n in lengths.items() if n > 600} == {}


def test_functions_stay_short() -> None:
    # Issue 15: no function (method, nested function) over 80 lines, the demo's story too.
    long = [
        f"{name}:{node.lineno} {node.name} ({(node.end_lineno or node.lineno) - node.lineno + 1})"
        for name, text in _sources()
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (node.end_lineno or node.lineno) - node.lineno + 1 > 80
    ]
    assert long == []


_UNTYPED_RESULT = re.compile(r"\bdict\[str, Any\]")


def test_functions_return_named_types() -> None:
    # Issue 15, typed seams: a result is a model, a dataclass or, for a JSON document a
    # specification leaves open, core.encoding.JsonObject -- never a bare dict[str, Any].
    # A method whose signature a library fixes says so on its line ("# signature: ...").
    untyped = [
        f"{name}:{node.lineno} {node.name}"
        for name, text in _sources()
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.returns is not None
        and _UNTYPED_RESULT.search(ast.unparse(node.returns))
        and "# signature:" not in text.splitlines()[node.returns.lineno - 1]
    ]
    assert untyped == []

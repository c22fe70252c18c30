"""The package's import graph has no cycle (issue 15).

The layers and the "no other domain's tables or routers" rules are import-linter contracts
(``[tool.importlinter]`` in pyproject.toml, run by ``make imports``); they compare packages.
This test looks one level finer: no two modules import each other, directly or through
others, so every module can be imported on its own and the order of imports never matters.
It reads the same graph import-linter builds (grimp), without ``TYPE_CHECKING`` imports,
which exist only for annotations."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import grimp
import pytest


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

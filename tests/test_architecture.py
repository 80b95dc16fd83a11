"""The shape of the code: small modules, short functions, imports without circles.

The import contracts in pyproject.toml (lint-imports) say which layer may import which; these
checks cover what they cannot: a circle between two modules of one layer or one package, and
the size limits the project keeps (a module at most 500 lines, a function at most 60)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60


def _modules() -> list[Path]:
    return sorted(BENCH.rglob("*.py"))


def test_no_module_is_over_500_lines():
    long = {
        str(p.relative_to(BENCH.parent)): n
        for p in _modules()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_no_function_is_over_60_lines():
    long = []
    for path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(
                        f"{path.relative_to(BENCH.parent)}:{node.lineno} {node.name} {lines}"
                    )
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_no_import_cycle_in_bench():
    grimp = pytest.importorskip("grimp")  # comes with import-linter (the test extra)
    graph = grimp.build_graph("bench", include_external_packages=False)
    cycles = set()
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            chain = graph.find_shortest_chain(importer=imported, imported=module)
            if chain:
                cycles.add(" -> ".join((module, *chain)))
    assert not cycles, "import cycles:\n" + "\n".join(sorted(cycles))

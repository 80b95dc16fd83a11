"""The shape of the code: small modules, short functions, imports without circles.

The import contracts in pyproject.toml (lint-imports) say which layer may import which; these
checks cover what they cannot: a circle between two modules of one layer or one package, and
the size limits the project keeps (a module at most 500 lines, a function at most 60)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
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


def _harness_units() -> set[str]:
    """The harnesses cnn-bench registers (its entry points), as the top-level module or
    package under bench/harness that holds each: ``bench.harness.finetune.harness`` is
    ``finetune``."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        points = tomllib.load(f)["project"]["entry-points"]["cnn_bench.harnesses"]
    units = set()
    for target in points.values():
        parts = target.split(":", 1)[0].split(".")
        assert parts[:2] == ["bench", "harness"], target
        units.add(parts[2])
    return units


def _imported(path: Path) -> set[str]:
    """Every module ``path`` imports, anywhere in it (inside functions too), as absolute
    names; ``from a import b`` counts as importing ``a`` and ``a.b``."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)
    return out


def sibling_harness_imports(units: set[str]) -> list[str]:
    """``module -> imported`` for each import of a harness's module by another harness."""
    found = []
    for unit in sorted(units):
        top = BENCH / "harness" / unit
        files = sorted(top.rglob("*.py")) if top.is_dir() else [top.with_suffix(".py")]
        for path in files:
            for name in sorted(_imported(path)):
                parts = name.split(".")
                if parts[:2] == ["bench", "harness"] and len(parts) > 2:
                    if parts[2] in units and parts[2] != unit:
                        found.append(f"{path.relative_to(ROOT)} -> {name}")
    return found


def test_the_harnesses_are_found_from_the_entry_points():
    units = _harness_units()
    assert {"params", "flops", "depth", "throughput", "finetune", "validate"} <= units
    assert not units & {"counting", "images", "datasets", "samples", "energy", "argtypes"}


def test_no_harness_imports_a_sibling_harness():
    found = sibling_harness_imports(_harness_units())
    assert not found, "a harness imports another harness's module:\n" + "\n".join(found)


def test_a_sibling_harness_import_is_found(tmp_path, monkeypatch):
    """The check above can fail: a harness module that imports another harness is named."""
    fake = tmp_path / "bench" / "harness"
    (fake / "alpha").mkdir(parents=True)
    (fake / "alpha" / "__init__.py").write_text("")
    (fake / "alpha" / "run.py").write_text(
        "from bench.harness.counting import count_flops\ndef f():\n    from ..beta import thing\n"
    )
    (fake / "beta.py").write_text("from bench.harness import alpha\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "BENCH", tmp_path / "bench")
    found = sibling_harness_imports({"alpha", "beta"})
    assert found == [
        "bench/harness/alpha/run.py -> bench.harness.beta",
        "bench/harness/alpha/run.py -> bench.harness.beta.thing",
        "bench/harness/beta.py -> bench.harness.alpha",
    ]
    assert sibling_harness_imports({"alpha"}) == []  # counting is shared, not a harness

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import tomllib
from conftest import REPO, run_cli

from bench.registry.plugins import BUILTIN_ENTRY_POINTS, GROUP, find_plugins


def test_builtin_entry_points_match_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["project"]["entry-points"][GROUP] == BUILTIN_ENTRY_POINTS


def test_builtins_are_found_through_the_same_mechanism():
    found = {p.name: p for p in find_plugins() if p.builtin}
    assert set(found) == set(BUILTIN_ENTRY_POINTS)
    assert found["lenet5"].display == "cnn-bench[lenet5]"


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory):
    """pip-install tests/example_plugin into a private folder (no network, no deps)."""
    target = tmp_path_factory.mktemp("example_site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target), str(REPO / "tests" / "example_plugin")],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return target


def test_example_plugin_is_listed_measured_and_stored(installed_example, tmp_path):
    listed = run_cli("list", "tiny*", extra_path=installed_example)
    assert listed.returncode == 0, listed.stderr
    assert "cnn-bench-example[tiny_convnet]" in listed.stdout
    assert "3x32x32" in listed.stdout

    out = tmp_path / "store"
    ran = run_cli(
        "run",
        "--models",
        "tiny_convnet",
        "--harness",
        "params,flops,depth",
        "--out",
        str(out),
        extra_path=installed_example,
    )
    assert ran.returncode == 0, ran.stderr
    (doc_path,) = out.glob("*/*.json")
    doc = json.loads(doc_path.read_text())
    records = {r["harness"]: r for r in doc["records"]}
    assert set(records) == {"params", "flops", "depth"}
    for r in records.values():
        assert r["status"] == "ok" and r["source"] == "cnn-bench-example[tiny_convnet]"
    # 8*3*9+8 + 16*8*9+16 + 16*10+10
    assert records["params"]["metrics"]["params"] == 224 + 1168 + 170
    assert records["depth"]["metrics"]["depth"] == 3

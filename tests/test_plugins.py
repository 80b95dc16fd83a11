from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest
import tomllib
from conftest import REPO, run_cli

from bench.registry.plugins import BUILTIN_ENTRY_POINTS, GROUP, find_plugins


def test_builtin_entry_points_match_pyproject():
    from bench import harness

    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["project"]["entry-points"][GROUP] == BUILTIN_ENTRY_POINTS
    assert project["project"]["entry-points"][harness.GROUP] == harness.BUILTIN_HARNESSES


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
        assert r["status"] == "ok"
        assert r["source"] == "cnn-bench-example[tiny_convnet]"
    # 8*3*9+8 + 16*8*9+16 + 16*10+10
    assert records["params"]["metrics"]["params"] == 224 + 1168 + 170
    assert records["depth"]["metrics"]["depth"] == 3


def test_example_harness_plugin_end_to_end(installed_example, tmp_path):
    """Written from the README alone: installed, listed, run, in results.csv, failing as a row."""
    listed = run_cli("list", "--harnesses", extra_path=installed_example)
    assert listed.returncode == 0, listed.stderr
    assert "cnn-bench-example[sensitivity]" in listed.stdout
    assert "cnn-bench[throughput]" in listed.stdout

    out = tmp_path / "store"
    ran = run_cli("run", "--models", "tiny_convnet,lenet5", "--harness", "params,sensitivity",
                  "--nudge", "0.01", "--out", str(out), extra_path=installed_example)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    (doc_path,) = out.glob("*/*.json")
    records = json.loads(doc_path.read_text())["records"]
    sens = [r for r in records if r["harness"] == "sensitivity"]
    assert [r["status"] for r in sens] == ["ok", "ok"]
    assert all(r["config"]["nudge"] == 0.01 for r in sens)
    doc = json.loads(doc_path.read_text())
    assert doc["config"]["harness_config"]["sensitivity"]["nudge"] == 0.01

    reports = tmp_path / "reports"
    made = run_cli("report", "--results", str(out), "--out", str(reports))
    assert made.returncode == 0, made.stderr
    with open(reports / "results.csv", newline="") as f:  # quoted cells hold commas
        rows = list(csv.DictReader(f))
    assert sum(1 for r in rows if r["output_sensitivity"]) == 2

    failed = run_cli("run", "--models", "tiny_convnet", "--harness", "sensitivity",
                     "--sensitivity-fail", "--out", str(out), extra_path=installed_example)  # fmt: skip
    assert "Traceback" not in failed.stderr
    newest = max(out.glob("*/*.json"), key=lambda p: p.stat().st_mtime)
    (rec,) = json.loads(newest.read_text())["records"]
    assert rec["status"] == "error"
    assert "refuses tiny_convnet on purpose" in rec["error"]

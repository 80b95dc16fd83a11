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


# -- runtime plugins ---------------------------------------------------------------------------
def test_builtin_runtimes_match_pyproject_and_the_registry_imports_no_runtime():
    from bench.harness.throughput import runtimes

    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["project"]["entry-points"][runtimes.GROUP] == runtimes.BUILTIN_RUNTIMES
    code = (
        "import sys; from bench.harness.throughput import runtimes as r; "
        "assert r.names()[:3] == ('torch', 'onnxruntime', 'openvino'), r.names(); "
        "assert r.label('openvino') == 'OpenVINO'; "
        "print(sorted(m for m in ('torch', 'onnxruntime', 'openvino', 'nncf') if m in sys.modules))"
    )
    cheap = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert cheap.returncode == 0, cheap.stderr
    assert cheap.stdout.strip() == "[]"


def _runtime_dist(root, entry_points: dict[str, str], module: str):
    """A fake installed distribution 'rt-plugin' adding ``entry_points`` to cnn_bench.runtimes."""
    info = root / "rt_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rt-plugin\nVersion: 0.1\n")
    lines = ["[cnn_bench.runtimes]", *(f"{k} = {v}" for k, v in entry_points.items())]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    (root / "rt_plugin_mod.py").write_text(module)


PLUGIN_RUNTIMES = """
from bench.harness.throughput.runtimes.base import Runtime

class Fp32Only(Runtime):
    name = "fp32only"
    label = "Fp32 Only"

not_a_runtime = 42
"""


@pytest.fixture
def runtime_plugins(tmp_path, monkeypatch):
    """A distribution with a good runtime, one whose module is missing and one that is not a
    runtime; the registry forgets what it found before and after."""
    from bench.harness.throughput import runtimes

    _runtime_dist(tmp_path, {"fp32only": "rt_plugin_mod:Fp32Only",
                             "gone": "no_such_module:RUNTIME",
                             "number": "rt_plugin_mod:not_a_runtime"}, PLUGIN_RUNTIMES)  # fmt: skip
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(runtimes, "_CACHE", {})
    yield runtimes
    runtimes._CACHE.clear()


def test_a_runtime_plugin_is_asked_for_by_name_and_a_broken_one_is_a_clear_error(runtime_plugins):
    from bench.errors import ConfigError
    from bench.harness.throughput.config import LABELS, parse_runtimes

    rt = runtime_plugins
    assert parse_runtimes("torch,fp32only") == ("torch", "fp32only")
    assert "fp32only" in parse_runtimes("all")
    assert not {"gone", "number"} & set(parse_runtimes("all"))  # 'all': those that load
    assert LABELS["fp32only"] == "Fp32 Only"
    assert LABELS.get("gone", "gone") == "gone"
    with pytest.raises(
        ConfigError, match=r"^--runtime gone: Plugin rt-plugin\[gone\].*failed to load"
    ):
        rt.check_names(("torch", "gone"))
    with pytest.raises(ConfigError, match="without open_session"):
        rt.check_names(("number",))
    with pytest.raises(ConfigError, match="expected a comma list of torch, onnxruntime"):
        rt.check_names(("tensorrt",))


def test_a_runtime_not_known_to_cnn_bench_follows_its_own_rules(runtime_plugins):
    """The old traps: version() and the INT8 packages raised KeyError for an unlisted runtime,
    and skip_reason sent every runtime but ONNX Runtime into OpenVINO's rules."""
    rt = runtime_plugins
    assert rt.version("fp32only") is None
    assert rt.version("tensorrt") is None
    assert rt.missing("fp32only") == []
    assert rt.skip_reason("fp32only", "infer", "cpu", "fp32", False) is None
    bf16 = rt.skip_reason("fp32only", "infer", "cpu", "bf16", False)
    assert bf16 == "skipped: Fp32 Only runs fp32 only (bf16 not measured)"
    cuda = rt.skip_reason("fp32only", "infer", "cuda", "fp32", False)
    assert cuda.startswith("skipped: Fp32 Only has no cuda device")
    assert "OpenVINO" not in cuda
    assert rt.skip_reason("fp32only", "infer", "cpu", "fp32", False, "offline") == (
        "skipped: Fp32 Only has no offline scenario"
    )
    assert rt.int8_skip_reason("fp32only", "infer", "cpu") == (
        "skipped: Fp32 Only has no INT8 candidate"
    )


def test_example_runtime_plugin_is_measured_and_tried_by_optimize(installed_example, tmp_path):
    """--runtime torchscript measures the example's TorchScript runtime as a row of its own;
    --optimize --runtime torchscript tries it among its candidates."""
    out = tmp_path / "store"
    fast = ["--batch-size", "2", "--min-time", "0.02", "--min-steps", "3", "--threads", "1"]
    ran = run_cli("run", "--models", "tiny_convnet", "--harness", "throughput", "--runtime",
                  "torch,torchscript", *fast, "--out", str(out), extra_path=installed_example)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    (doc_path,) = out.glob("*/*.json")
    doc = json.loads(doc_path.read_text())
    rows = {r["config"].get("runtime", "torch"): r for r in doc["records"]}
    assert set(rows) == {"torch", "torchscript"}
    ts = rows["torchscript"]
    assert ts["status"] == "ok", ts.get("error")
    assert ts["metrics"]["agrees"] is True
    assert ts["metrics"]["runtime_version"] == rows["torch"]["metrics"]["runtime_version"]
    assert ts["metrics"]["infer_samples_per_sec"] > 0
    assert doc["versions"]["cnn-bench-example"] == "0.1.0"  # the plugin's distribution

    opt = run_cli("run", "--models", "tiny_convnet", "--harness", "throughput", "--optimize",
                  "--optimize-rounds", "1", "--runtime", "torchscript", *fast,
                  "--out", str(tmp_path / "opt"), extra_path=installed_example)  # fmt: skip
    assert opt.returncode == 0, opt.stderr
    (doc_path,) = (tmp_path / "opt").glob("*/*.json")
    (rec,) = json.loads(doc_path.read_text())["records"]
    cands = {(c["runtime"], c["precision"]): c for c in rec["metrics"]["candidates"]}
    assert cands[("torchscript", "fp32")]["infer_samples_per_sec"] > 0
    assert cands[("torchscript", "fp32")]["error"] is None
    assert cands[("torchscript", "bf16")]["error"].startswith("skipped: ")
    assert cands[("torchscript", "int8")]["error"] == (
        "skipped: TorchScript (frozen) has no INT8 candidate"
    )
    assert not any(r == "onnxruntime" for r, _ in cands)  # only the runtime --runtime names


def test_a_runtime_plugins_distribution_is_recorded_but_cnn_bench_is_not_twice(runtime_plugins):
    from bench.environment import library_versions, runtime_plugin_distributions

    names = [d.metadata["Name"] for d in runtime_plugin_distributions()]
    assert "rt-plugin" in names
    assert "cnn-bench" not in names  # its own runtimes are not a plugin's
    assert library_versions()["rt-plugin"] == "0.1"

"""The Python API (``bench.run``, ``load``, ``compare``, ``report``) on tiny models."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import REPO
from test_compare import GOOD_SPEEDS, speed_store

import bench


@pytest.fixture(scope="module")
def counted(tmp_path_factory):
    """The floor: two chapter models through params and flops, as a notebook would."""
    out = tmp_path_factory.mktemp("api") / "results"
    return bench.run(["lenet5", "simple_cnn"], harness=["params", "flops"], out=out), out


def test_import_bench_leaves_torch_unimported():
    code = "import bench, sys; bench.run; bench.load; assert 'torch' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_run_gives_the_run_and_its_tidy_table(counted):
    run, out = counted
    assert run.status == "complete"
    assert run.failed == []
    assert run.path.is_file()
    assert run.path.is_relative_to(out)
    assert run.run_id in run.path.name
    assert {(r["model"], r["harness"]) for r in run.records} == {
        (m, h) for m in ("lenet5", "simple_cnn") for h in ("params", "flops")
    }
    table = run.to_pandas()
    assert list(table["model"]) == ["lenet5", "simple_cnn"]
    assert list(table["params"]) == [61_706, 128_714]
    assert table["param_count"].notna().all()
    # the document records the equivalent command line (what --resume reads back)
    argv = json.loads(run.path.read_text())["argv"]
    assert argv == ["run", "--models", "lenet5,simple_cnn", "--harness=params,flops",
                    f"--out={out}"]  # fmt: skip


def test_load_reads_a_store_and_one_run(counted):
    run, out = counted
    store = bench.load(out)
    assert list(store["model"]) == ["lenet5", "simple_cnn"]
    assert "param_count" in store.columns
    assert bench.load(run.path).equals(run.to_pandas())
    with pytest.raises(bench.BenchError, match="No results at"):
        bench.load(out / "missing")


def test_run_options_are_the_command_lines(tmp_path):
    run = bench.run("lenet5", harness="throughput", batch_size=16, min_time=0.05, out=tmp_path,
                    no_isolate=True, device="cpu")  # fmt: skip
    ((_, row),) = run.to_pandas().iterrows()
    assert row["infer_batch_size"] == 16
    assert run.records[0]["config"]["batch_size"] == 16
    assert json.loads(run.path.read_text())["config"]["run"]["isolate"] is False


def test_the_throughput_floor(tmp_path):
    run = bench.run(["lenet5"], harness=["throughput"], batch_size=16, min_time=0.5, out=tmp_path)
    assert run.failed == []
    assert run.to_pandas()["infer_samples_per_sec"].iloc[0] > 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"harness": ["nosuch"]}, "Unknown harness 'nosuch'"),
        ({"batch_size": 0}, "argument --batch-size: expected comma-separated positive"),
        ({"precision": "fp8"}, "argument --precision: invalid choice"),
        ({"batchsize": 16}, "unknown option 'batchsize'. Did you mean batch_size"),
        ({"no_isolate": "yes"}, "--no-isolate is a flag"),
        ({"min_time": True}, "--min-time takes a value"),
        ({"help": True}, "unknown option 'help'"),
    ],
)
def test_a_bad_option_is_a_bench_error_of_one_line(tmp_path, options, message):
    with pytest.raises(bench.BenchError) as caught:
        bench.run(["lenet5"], out=tmp_path, **options)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert not list(tmp_path.glob("*/*.json"))  # nothing measured, nothing written


def test_an_unknown_model_is_a_bench_error(tmp_path):
    with pytest.raises(bench.BenchError, match="Did you mean 'resnet50'"):
        bench.run("resnet5", harness="params", out=tmp_path)


def test_compare_a_run_with_itself(counted):
    run, _ = counted
    result = bench.compare(run.path, run.path)
    table = result.to_pandas()
    assert set(table["model"]) == {"lenet5", "simple_cnn"}
    assert {"metric", "base", "new", "change"} <= set(table.columns)
    assert result.exit_code == 0


def test_compare_exit_code_follows_the_thresholds(tmp_path):
    base = speed_store(tmp_path / "base", GOOD_SPEEDS)
    slower = speed_store(tmp_path / "new", {**GOOD_SPEEDS, "resnet50": 80.0})
    failed = bench.compare(base, slower, fail="infer_samples_per_sec:-5%")
    assert failed.exit_code == 1
    assert failed.failures
    assert bench.compare(base, slower, fail="infer_samples_per_sec:-30%").exit_code == 0
    third = speed_store(tmp_path / "third", GOOD_SPEEDS, run_id="run00003")
    many = bench.compare(base, slower, third, fail=["infer_samples_per_sec:-5%"])
    assert many.exit_code == 1
    assert set(many.to_pandas()["run"]) == {p.new.column for p in many.pairs}
    with pytest.raises(bench.BenchError):
        bench.compare(base, slower, fail="infer_samples_per_sec:fast")


def test_report_writes_the_reports(counted, tmp_path):
    _, out = counted
    written = bench.report(out, tmp_path / "reports")
    assert tmp_path / "reports" / "results.csv" in written
    with pytest.raises(bench.BenchError, match="No results store"):
        bench.report(tmp_path / "missing")


def test_compare_and_report_stay_callable_once_their_subpackages_are_imported(counted):
    """``bench.compare`` and ``bench.report`` are also subpackages, which importing sets as
    the package's attributes: they are then the subpackages, callable as the functions."""
    code = (
        "import bench, types, sys; f = bench.compare; assert isinstance(f, types.FunctionType)\n"
        "import bench.compare.match, bench.report.records\n"
        "assert isinstance(bench.compare, types.ModuleType) and bench.compare.match.compare\n"
        "assert bench.report.records.read_records and callable(bench.compare) and callable(bench.report)\n"
        "from bench import compare; assert compare is sys.modules['bench.compare']\n"
        "print(bench.compare(sys.argv[1], sys.argv[1]).exit_code)"
    )
    run, _ = counted
    done = subprocess.run([sys.executable, "-c", code, str(run.path)], cwd=REPO,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "0\n"


def test_a_failing_model_is_a_row_and_named_in_failed(tmp_path, plugin_path):
    run = bench.run("broken_model,tiny_mlp", harness="params", out=tmp_path, no_isolate=True)
    assert run.failed == ["broken_model"]
    assert list(run.to_pandas()["model"]) == ["tiny_mlp"]  # the tidy table: ok records

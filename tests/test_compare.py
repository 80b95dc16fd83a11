"""`bench compare`: thresholds, noise-aware verdicts, matching, exit codes; trends; `run`'s exit."""

from __future__ import annotations

import json

import pytest
from conftest import REPO, run_cli

from bench.cli import main
from bench.compare import (
    HIGHER,
    LOWER,
    NEITHER,
    Entry,
    Threshold,
    change_of,
    combined_noise,
    compare,
    direction,
)
from bench.errors import ConfigError
from bench.report.generate import generate
from bench.storage import ResultStore

TIMM = REPO / "tests" / "data" / "timm"
CHAPTER = ["lenet5", "alexnet", "vgg16", "googlenet", "resnet50", "efficientnet_b0",
           "vit_base_patch16_224", "convnext_tiny", "chapter_resnet", "resnet50_transfer",
           "simple_cnn"]  # fmt: skip
GOOD_SPEEDS = {"resnet50": 100.0, "convnext_tiny": 80.0}


# -- synthetic records and stores --------------------------------------------------------
def speed_record(model: str, samples_per_sec: float, spread: float = 0.01, batch: int = 16):
    """A throughput record whose step times spread by ``spread`` (IQR/median and CV)."""
    median = 1000.0 * batch / samples_per_sec
    config = {"img_size": 224, "batch_size": batch, "mode": "infer", "precision": "fp32",
              "layout": "nchw", "compiled": False, "optimize": False}  # fmt: skip
    metrics = {"infer_samples_per_sec": samples_per_sec, "infer_batch_size": batch,
               "min": median * (1 - spread), "max": median * (1 + spread), "mean": median,
               "stddev": spread * median, "median": median, "iqr": spread * median,
               "p90": median * (1 + spread / 2), "p99": median * (1 + spread),
               "cv_pct": 100 * spread, "rounds": 20, "peak_mem_mb": 500.0}  # fmt: skip
    return {"model": model, "source": "timm", "harness": "throughput", "status": "ok",
            "error": None, "device": "cpu", "device_name": "Test CPU", "config": config,
            "metrics": metrics}  # fmt: skip


def params_record(model: str, params: int):
    return {"model": model, "source": "timm", "harness": "params", "status": "ok", "error": None,
            "device": "cpu", "config": {},
            "metrics": {"params": params, "param_count": round(params / 1e6, 3)}}  # fmt: skip


def failed_record(model: str, harness: str):
    return {"model": model, "source": "timm", "harness": harness, "status": "error",
            "error": "RuntimeError: boom", "device": "cpu", "config": {}, "metrics": {}}  # fmt: skip


def write_run(root, records, run_id, started, status="complete", commit=None, torch="2.14.1"):
    header = {"tool": {"name": "cnn-bench", "version": "0.1.0"}, "run_id": run_id,
              "started_utc": started, "finished_utc": None, "status": "running",
              "machine": {"id": "Test-CPU", "cpu": "Test CPU"}, "versions": {"torch": torch},
              "commit": commit, "config": {}}  # fmt: skip
    doc = ResultStore(root).new_run(header)
    doc.add(records)
    doc.finish(status, started)
    return doc.path


def speed_store(root, speeds: dict[str, float], spread: float = 0.01, run_id="run00001"):
    records = [params_record(m, 25_557_032) for m in speeds]
    records += [speed_record(m, s, spread) for m, s in speeds.items()]
    write_run(root, records, run_id, "2026-01-01T00:00:00.000000Z")
    return root


@pytest.fixture
def base_store(tmp_path):
    return speed_store(tmp_path / "base", GOOD_SPEEDS)


# -- thresholds and directions -----------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "metric", "limit", "sign", "relative"),
    [
        ("infer_samples_per_sec:-5%", "infer_samples_per_sec", 5.0, -1, True),
        ("top1:-0.5", "top1", 0.5, -1, False),
        ("infer_gmacs:1%", "infer_gmacs", 1.0, 0, True),
        ("params:0", "params", 0.0, 0, False),
        ("peak_mem_mb:+10%", "peak_mem_mb", 10.0, 1, True),
    ],
)
def test_threshold_parse(text, metric, limit, sign, relative):
    t = Threshold.parse(text)
    assert (t.metric, t.limit, t.sign, t.relative) == (metric, limit, sign, relative)
    assert str(t) == text


@pytest.mark.parametrize("text", ["speed", "top1:", ":5%", "top1:five", "top1:5%%", "a b:1"])
def test_bad_threshold_is_config_error(text):
    with pytest.raises(ConfigError, match="expected METRIC:CHANGE"):
        Threshold.parse(text)


@pytest.mark.parametrize(
    ("text", "base", "new", "crossed"),
    [
        ("s:-5%", 100, 80, True),  # a 20% drop
        ("s:-5%", 100, 95, True),  # exactly the limit
        ("s:-5%", 100, 97, False),  # 3%: under the limit
        ("s:-5%", 100, 120, False),  # the other way
        ("g:1%", 100, 101.5, True),  # unsigned: either way
        ("g:1%", 100, 98, True),
        ("g:1%", 100, 100.5, False),
        ("params:0", 10, 11, True),  # any change
        ("params:0", 10, 10, False),
        ("top1:-0.5", 76.1, 75.6, True),  # absolute points
        ("top1:-0.5", 76.1, 75.7, False),
    ],
)
def test_threshold_semantics(text, base, new, crossed):
    assert Threshold.parse(text).crossed(change_of(base, new)) is crossed


def test_directions():
    assert direction("infer_samples_per_sec") == direction("train_samples_per_sec") == HIGHER
    assert direction("top1") == direction("achieved_gmacs_per_sec") == HIGHER
    for metric in ("median", "p90", "infer_step_time", "cv_pct", "peak_mem_mb", "train_time_s"):
        assert direction(metric) == LOWER, metric
    for metric in ("params", "param_count", "infer_gmacs", "infer_macts", "depth"):
        assert direction(metric) == NEITHER, metric


def test_noise_is_combined_in_quadrature():
    tight = Entry("m", metrics={"median": 10.0, "iqr": 0.1})
    loose = Entry("m", metrics={"median": 10.0, "iqr": 4.0})
    assert combined_noise(tight, tight) == pytest.approx(0.01 * 2**0.5)
    assert combined_noise(tight, loose) == pytest.approx((0.4**2 + 0.01**2) ** 0.5)
    no_stats = Entry("m", metrics={"infer_samples_per_sec": 5.0})
    assert combined_noise(no_stats, no_stats) == 0
    assert combined_noise(Entry("m", metrics={"mean": 10.0, "stddev": 2.0}), no_stats) == 0.2


# -- the floors ----------------------------------------------------------------------------
def test_20_percent_drop_with_tight_stats_fails_naming_the_model(tmp_path, base_store, capsys):
    new = speed_store(tmp_path / "new", {**GOOD_SPEEDS, "resnet50": 80.0})
    argv = ["compare", str(base_store), str(new), "--fail", "infer_samples_per_sec:-5%"]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert "regression: resnet50 infer_samples_per_sec" in err
    assert "-20.00%" in err
    assert "convnext_tiny" not in err
    assert "worse; FAIL infer_samples_per_sec:-5%" in out


def test_3_percent_drop_passes(tmp_path, base_store, capsys):
    new = speed_store(tmp_path / "new", {**GOOD_SPEEDS, "resnet50": 97.0})
    argv = ["compare", str(base_store), str(new), "--fail", "infer_samples_per_sec:-5%"]
    assert main(argv) == 0
    assert "regression" not in capsys.readouterr().err


def test_20_percent_drop_within_25_percent_step_spreads_is_noise(tmp_path, capsys):
    # 25% a side, 35% combined; a CV over 25% would make the timings untrusted instead
    base = speed_store(tmp_path / "base", GOOD_SPEEDS, spread=0.25)
    new = speed_store(tmp_path / "new", {**GOOD_SPEEDS, "resnet50": 80.0}, spread=0.25)
    argv = ["compare", str(base), str(new), "--fail", "infer_samples_per_sec:-5%"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if "resnet50" in ln and "samples_per_sec" in ln)
    assert "within noise" in line
    # the rule is per pair: one loose side is enough
    new_tight = speed_store(tmp_path / "new2", {**GOOD_SPEEDS, "resnet50": 80.0}, spread=0.01)
    result = compare(str(base), str(new_tight), [Threshold.parse("infer_samples_per_sec:-5%")])
    assert not result.failures


def test_store_against_itself_has_no_change(base_store, capsys):
    argv = ["compare", str(base_store), str(base_store), "--format", "json",
            "--fail", "infer_samples_per_sec:-5%", "--fail", "params:0", "--metrics", "all"]  # fmt: skip
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["rows"]
    assert doc["failures"] == []
    assert {r["change"] for r in doc["rows"]} == {0}
    assert {r["verdict"] for r in doc["rows"]} == {"same"}


def test_chapter_run_against_timm_csv_matches_by_name(tmp_path):
    store = tmp_path / "results"
    write_run(store, [params_record(m, 1_000_000) for m in CHAPTER], "chap0001",
              "2026-01-01T00:00:00.000000Z")  # fmt: skip
    result = compare(str(store), str(TIMM / "results-imagenet.csv"))
    matched = {r.model for r in result.rows if r.metric}
    listed = {"vgg16", "resnet50", "efficientnet_b0", "vit_base_patch16_224", "convnext_tiny"}
    assert matched == listed
    assert {r.metric for r in result.rows if r.metric} == {"param_count"}
    only_base = {r.model for r in result.rows if r.verdict == "only in base"}
    assert only_base == set(CHAPTER) - listed
    assert {r.model for r in result.rows if r.verdict == "only in new"} == {"resnet18"}
    text = result.render()
    assert "Only in base (6):" in text
    assert "Only in new (1): resnet18" in text


def test_store_against_timm_csv_reads_every_run_of_the_store(tmp_path):
    """A store whose latest run measured something else (a fine-tune) still meets timm's CSV
    with what its earlier runs measured: against a catalogue the store is read whole."""
    store = tmp_path / "results"
    write_run(store, [params_record("resnet50", 25_557_032)], "stat0001",
              "2026-01-01T00:00:00.000000Z")  # fmt: skip
    tuned = {**params_record("resnet50", 0), "harness": "finetune",
             "config": {"dataset": "mnist5k"}, "metrics": {"top1": 96.7}}  # fmt: skip
    write_run(store, [tuned], "tune0001", "2026-02-01T00:00:00.000000Z")
    result = compare(str(store), str(TIMM / "results-imagenet.csv"))
    (row,) = [r for r in result.rows if r.metric]
    assert (row.model, row.metric, row.new) == ("resnet50", "param_count", 25.56)
    # 25.557 against timm's 25.56, which states two decimals: the same figure
    assert row.verdict == "same to the CSV's 2 decimal(s)"
    assert not result.failures


def test_validate_top1_meets_timms_only_over_the_whole_imagenet_validation_set(tmp_path):
    def validate(images: int) -> dict:
        return {**params_record("resnet50", 0), "harness": "validate", "config": {},
                "metrics": {"val_top1": 76.1, "val_top5": 92.9, "val_images": images}}  # fmt: skip

    for images, expected in ((50_000, {"top1", "top5"}), (5, set())):
        store = tmp_path / f"r{images}"
        write_run(store, [validate(images)], "vald0001", "2026-01-01T00:00:00.000000Z")
        result = compare(str(store), str(TIMM / "results-imagenet.csv"))
        assert {r.metric for r in result.rows if r.metric} == expected


def test_speeds_against_timm_benchmark_csv(base_store):
    result = compare(str(base_store), str(TIMM / "benchmark-infer.csv"))
    rows = {(r.model, r.metric): r for r in result.rows if r.metric}
    r = rows[("resnet50", "infer_samples_per_sec")]
    assert (r.base, r.new, r.harness) == (100.0, 1000.0, "throughput")
    assert r.verdict == "better"
    assert ("convnext_tiny", "param_count") in rows


# -- sides, formats, bad input -------------------------------------------------------------
def test_run_ids_latest_complete_run_and_all(tmp_path, capsys):
    store = tmp_path / "results"
    write_run(store, [speed_record("resnet50", 100.0)], "aaaa0001", "2026-01-01T00:00:00.000000Z")
    write_run(store, [speed_record("resnet50", 90.0)], "bbbb0002", "2026-01-02T00:00:00.000000Z")
    write_run(store, [speed_record("resnet50", 10.0)], "cccc0003", "2026-01-03T00:00:00.000000Z",
              status="interrupted")  # fmt: skip
    assert main(["compare", "aaaa0001", "bbbb", "--results", str(store), "--format", "csv"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("model,harness,device,config,metric,base,new,change,change_pct,")
    assert ",100.0,90.0,-10.0,-10.0," in out
    latest = compare("aaaa0001", str(store), results=store)  # the interrupted run is skipped
    assert "latest complete run bbbb0002" in latest.new.label
    every = compare("aaaa0001", str(store), results=store, all_runs=True)
    (row,) = [r for r in every.rows if r.metric == "infer_samples_per_sec"]
    assert row.new == 10.0


def test_results_file_as_a_side(tmp_path):
    path = write_run(tmp_path / "s", [params_record("resnet50", 5)], "f0000001",
                     "2026-01-01T00:00:00.000000Z")  # fmt: skip
    result = compare(str(path), str(path), [Threshold.parse("params:0")])
    assert [r.verdict for r in result.rows] == ["same"]


def test_failed_record_in_new_fails_the_gate(tmp_path, base_store, capsys):
    new = tmp_path / "new"
    records = [params_record(m, 25_557_032) for m in GOOD_SPEEDS]
    records += [speed_record("convnext_tiny", 80.0), failed_record("resnet50", "throughput")]
    write_run(new, records, "new00001", "2026-01-02T00:00:00.000000Z")
    argv = ["compare", str(base_store), str(new), "--fail", "infer_samples_per_sec:-5%"]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert "failed in new: RuntimeError: boom" in out
    assert "regression: resnet50 throughput failed in new" in err
    assert "Only in" not in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["nosuchrun", "nosuchrun"], "is no run id"),
        (["BASE", "BASE", "--fail", "speed-5"], "expected METRIC:CHANGE"),
        (["BASE", "BASE", "--fail", "infer_samples_per_second:-5%"], "Did you mean"),
    ],
)
def test_bad_input_exits_2_with_one_line(base_store, capsys, argv, message):
    argv = [str(base_store) if a == "BASE" else a for a in argv]
    assert main(["compare", *argv, "--results", str(base_store)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert message in err
    assert len(err.strip().splitlines()) == 1


# -- trends --------------------------------------------------------------------------------
def test_trends_written_only_for_repeated_configurations(tmp_path):
    store = tmp_path / "results"
    write_run(store, [speed_record("resnet50", 100.0)], "aaaa0001", "2026-01-01T00:00:00.000000Z",
              commit={"id": "0123456789abcdef", "dirty": False})  # fmt: skip
    generate(store, tmp_path / "one")
    assert not (tmp_path / "one" / "trends.md").exists()
    write_run(store, [speed_record("resnet50", 90.0)], "bbbb0002", "2026-02-01T00:00:00.000000Z",
              commit={"id": "fedcba9876543210", "dirty": True}, torch="2.15.0")  # fmt: skip
    generate(store, tmp_path / "a")
    generate(store, tmp_path / "b")
    text = (tmp_path / "a" / "trends.md").read_text()
    assert "### resnet50: throughput" in text
    cells = [[c.strip() for c in ln.split("|")[2:6]] for ln in text.splitlines() if "| 2026" in ln]
    assert cells == [["aaaa0001", "2026-01-01", "0123456", "2.14.1"],
                     ["bbbb0002", "2026-02-01", "fedcba9+", "2.15.0"]]  # fmt: skip
    for name in ("trends.md", "trends.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


# -- `run`'s exit status ------------------------------------------------------------------
def test_run_with_a_failing_model_exits_1_and_keeps_the_good_record(tmp_path, plugin_path):
    store = tmp_path / "results"
    argv = ["run", "--models", "tiny_mlp,broken_model", "--harness", "params", "--out", str(store)]
    proc = run_cli(*argv, extra_path=plugin_path)
    assert proc.returncode == 1, proc.stderr
    assert "failed: 1 of 2 model(s): broken_model" in proc.stderr
    (doc,) = store.glob("*/*.json")
    status = {r["model"]: r["status"] for r in json.loads(doc.read_text())["records"]}
    assert status == {"tiny_mlp": "ok", "broken_model": "error"}


def test_known_metric_absent_from_both_sides_only_warns(base_store, caplog):
    result = compare(str(base_store), str(base_store), [Threshold.parse("top1:-0.5")])
    assert not result.failures
    assert "neither side has top1" in caplog.text

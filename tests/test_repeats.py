"""``run --repeats N``: rounds interleaved over models and configurations, merged per
configuration; a plain ``--runtime`` row that disagrees with eager, and the report's mark."""

from __future__ import annotations

import pytest

from bench.errors import ConfigError
from bench.harness import get_harness, make_job, split_options
from bench.harness.throughput import runtimes as rt
from bench.harness.throughput import sessions
from bench.harness.throughput.rounds import merge_rounds
from bench.registry.lookup import ModelSpec

torch = pytest.importorskip("torch")
nn = torch.nn

FAST = {"min_time_s": 0.01, "min_steps": 3, "threads": 1, "isolate": False}


def tiny(pretrained=False, **kwargs):
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))


def _spec(name: str) -> ModelSpec:
    return ModelSpec(name=name, source="test", input_size=(1, 8, 8), builder=tiny)


def _record(speed, status="ok", steps=(1.0,), batch=4):
    return {
        "model": "m", "harness": "throughput", "status": status, "duration_s": 1.0,
        "config": {"mode": "infer", "batch_size": batch},
        "metrics": {"infer_samples_per_sec": speed, "achieved_gmacs_per_sec": speed * 2,
                    "step_times_ms": list(steps), "peak_sample_gmacs_per_sec": speed}
        if status == "ok" else {},
        "finished_utc": f"2026-01-01T00:00:0{int(speed)}Z",
    }  # fmt: skip


def test_merge_keeps_every_round_and_reports_the_median():
    rounds = [[_record(3.0, steps=(3.0,))], [_record(1.0, steps=(1.0,))],
              [_record(2.0, steps=(2.0,))]]  # fmt: skip
    (r,) = merge_rounds(rounds)
    m = r["metrics"]
    assert r["config"] == {"mode": "infer", "batch_size": 4, "repeats": 3}
    assert m["infer_samples_per_sec"] == 2.0
    assert m["rounds_samples_per_sec"] == [3.0, 1.0, 2.0]  # in the order they ran
    assert m["step_times_ms"] == [3.0, 1.0, 2.0]
    assert m["achieved_gmacs_per_sec"] == 4.0  # the median round's
    assert m["peak_sample_gmacs_per_sec"] == 3.0  # the best sample of any round
    assert m["rounds_failed"] == 0
    assert r["duration_s"] == 3.0


def test_merge_of_an_even_count_a_failed_round_and_a_skipped_row():
    rounds = [[_record(1.0), _record(0, "skipped", batch=8)],
              [_record(0, "error"), _record(0, "skipped", batch=8)],
              [_record(4.0), _record(0, "skipped", batch=8)],
              [_record(2.0), _record(0, "skipped", batch=8)]]  # fmt: skip
    ok, skipped = merge_rounds(rounds)
    assert ok["status"] == "ok"
    assert ok["metrics"]["infer_samples_per_sec"] == 2.0  # median of 1, 4, 2
    assert ok["metrics"]["rounds_failed"] == 1
    assert skipped["status"] == "skipped"
    assert skipped["config"]["repeats"] == 4


def test_an_even_count_of_good_rounds_averages_the_middle_two_and_rescales_with_them():
    """Two good rounds (100 and 200 samples/s): the median is 150, and the figures derived
    from samples/s are the median round's (the slower middle one) scaled to 150, not the
    round's own nor the other's: they agree with the reported samples/s."""
    from bench.harness.throughput.rounds import median_index, median_of_rounds

    rounds = [
        {"infer_samples_per_sec": 200.0, "achieved_gmacs_per_sec": 400.0, "frac_of_peak": 0.4,
         "cv_pct": 2.0, "step_times_ms": [5.0]},
        {"infer_samples_per_sec": 100.0, "achieved_gmacs_per_sec": 200.0, "frac_of_peak": 0.2,
         "cv_pct": 9.0, "step_times_ms": [10.0]},
    ]  # fmt: skip
    key = "infer_samples_per_sec"
    assert median_index(rounds, key) == 1  # the slower of the middle two
    m = median_of_rounds(rounds, key)
    assert m[key] == 150.0
    assert m["achieved_gmacs_per_sec"] == 300.0  # 2 GMAC a sample at 150 samples/s
    assert m["frac_of_peak"] == 0.3
    assert m["cv_pct"] == 9.0  # the median round's own statistics
    assert m["rounds_samples_per_sec"] == [200.0, 100.0]
    assert m["step_times_ms"] == [5.0, 10.0]
    odd = median_of_rounds([*rounds, {**rounds[0], key: 150.0}], key)
    assert odd[key] == 150.0
    assert odd["achieved_gmacs_per_sec"] == 400.0
    even = merge_rounds([[_record(1.0)], [_record(3.0)]])[0]["metrics"]
    assert even[key] == 2.0
    assert even["achieved_gmacs_per_sec"] == 4.0


def _run(tmp_path, repeats, monkeypatch, **own):
    import bench.executors.local as local
    from bench.runner import harness_configs, run
    from bench.storage import ResultStore

    order = []
    real = local.LocalExecutor.submit

    def submit(self, task, follow_up=False):
        order.append((task.spec.name, task.configs["throughput"].reverse))
        return real(self, task, follow_up)

    monkeypatch.setattr(local.LocalExecutor, "submit", submit)
    run_config, _ = split_options("throughput", batch_sizes=(2, 4), **FAST)
    own = {"min_time_s": 0.01, "min_steps": 3, "threads": 1, **own}
    configs = harness_configs(["throughput"], run_config, {"throughput": own})
    specs = [_spec("a"), _spec("b")]
    doc = run(specs, ["throughput"], run_config, ResultStore(tmp_path), configs=configs,
              repeats=repeats)  # fmt: skip
    return doc, order


def test_repeats_interleave_models_forward_then_backward(tmp_path, monkeypatch):
    doc, order = _run(tmp_path, 3, monkeypatch)
    assert order == [("a", False), ("b", False), ("b", True), ("a", True), ("a", False),
                     ("b", False)]  # fmt: skip
    assert doc.header["config"]["repeats"] == 3
    assert [(r["model"], r["config"]["batch_size"]) for r in doc.records] == [
        ("a", 2), ("a", 4), ("b", 2), ("b", 4)]  # fmt: skip
    for r in doc.records:
        m = r["metrics"]
        assert r["config"]["repeats"] == 3
        assert len(m["rounds_samples_per_sec"]) == 3
        assert m["infer_samples_per_sec"] == round(statistics_median(m), 3)
        assert len(m["step_times_ms"]) >= 9


def statistics_median(m):
    import statistics

    return statistics.median(m["rounds_samples_per_sec"])


def test_one_round_reads_as_runs_always_have(tmp_path, monkeypatch):
    doc, order = _run(tmp_path, 1, monkeypatch)
    assert order == [("a", False), ("b", False)]
    assert "repeats" not in doc.header["config"]
    for r in doc.records:
        assert "repeats" not in r["config"]
        assert "rounds_samples_per_sec" not in r["metrics"]


def test_a_reversed_round_measures_the_configurations_the_other_way_round():
    job = make_job(_spec("a"), "throughput", batch_sizes=(2, 4), reverse=True, **FAST)
    ms = get_harness("throughput").measure(job)
    assert [m.config["batch_size"] for m in ms] == [4, 2]


def test_repeats_with_optimize_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="--optimize-rounds"):
        _run(tmp_path, 2, monkeypatch, optimize=True)
    assert not list(tmp_path.glob("**/*.json"))


# -- a runtime that disagrees with eager -----------------------------------------------------------
@pytest.mark.skipif(not rt.installed("openvino"), reason="needs openvino (cnn-bench[runtimes])")
def test_a_plain_runtime_row_that_disagrees_with_eager_says_so(monkeypatch):
    import numpy as np

    real = sessions.open_session

    def wrong(runtime, model, x, threads, device, precision, *scenario):
        session = real(runtime, model, x, threads, device, precision, *scenario)
        out = -np.asarray(session.infer()) + 1.0  # other classes, other values
        session.infer = lambda: out
        return session

    monkeypatch.setattr(sessions, "open_session", wrong)
    job = make_job(_spec("a"), "throughput", batch_sizes=(4,), runtimes=("torch", "openvino"),
                   **FAST)  # fmt: skip
    eager, ov = get_harness("throughput").measure(job)
    assert eager.status == "ok"
    assert "agrees" not in eager.metrics
    assert ov.status == "ok"  # measured and recorded, marked as disagreeing
    assert ov.metrics["agrees"] is False
    assert ov.metrics["top1_agree"] is False
    assert ov.metrics["max_abs_diff"] > ov.metrics["agree_tolerance"]


def test_the_report_marks_a_runtime_whose_top1_differs(tmp_path):
    from bench.report.generate import generate
    from bench.storage import ResultStore

    def record(runtime, sps, **metrics):
        config = {"img_size": 8, "batch_size": 4, "mode": "infer", "precision": "fp32",
                  "layout": "nchw", "compiled": False, "optimize": False}  # fmt: skip
        if runtime != "torch":
            config["runtime"] = runtime
        return {"model": "m", "source": "test", "harness": "throughput", "status": "ok",
                "error": None, "device": "cpu", "device_name": "Test CPU", "config": config,
                "metrics": {"infer_samples_per_sec": sps, "infer_batch_size": 4,
                            "infer_img_size": 8, **metrics},
                "finished_utc": "2026-01-01T00:00:00.000000Z"}  # fmt: skip

    store = ResultStore(tmp_path / "results")
    doc = store.new_run({"run_id": "r1", "started_utc": "2026-01-01T00:00:00.000000Z",
                         "machine": {"id": "m", "cpu": "Test CPU"}})  # fmt: skip
    doc.add([record("torch", 10.0, energy_j_per_sample=0.5),
             record("onnxruntime", 20.0, max_abs_diff=0.9, top1_agree=False, agrees=False),
             record("openvino", 30.0, max_abs_diff=1e-6, top1_agree=True, agrees=True)])  # fmt: skip
    generate(store.root, tmp_path / "out")
    md = (tmp_path / "out" / "throughput.md").read_text()
    sbs = md.split("## Runtimes side by side")[1]
    agreement = _first_row(sbs.split("Agreement with eager")[1])  # by column header
    assert [v for k, v in agreement.items() if "ONNX Runtime" in k] == ["0.9, ⚠ top-1 differs"]
    assert [v for k, v in agreement.items() if "OpenVINO" in k] == ["1e-06, same top-1"]
    timing = _rows(md.split("## Every measurement: timing")[1])
    assert sorted(r["J/sample"] for r in timing) == ["-", "-", "0.5"]


def _rows(text: str) -> list[dict[str, str]]:
    """The first markdown table in ``text``: its rows' cells by column header."""
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("|"))
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append([c.strip() for c in line.strip("|").split("|")])
    return [dict(zip(table[0], row, strict=True)) for row in table[2:]]


def _first_row(text: str) -> dict[str, str]:
    """The first markdown table in ``text``: its first row's cells by column header."""
    return _rows(text)[0]

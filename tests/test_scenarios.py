"""MLPerf's scenarios in the throughput harness: --scenario single-stream, sync and offline,
their records, the offline concurrency --optimize searches, and how the reports name them.

Tiny models on the CPU, short timings; the offline tests spawn one or two worker processes.
"""

from __future__ import annotations

import pytest

from bench.errors import BenchError, ConfigError
from bench.harness import get_harness, make_job
from bench.harness.throughput import ThroughputConfig
from bench.harness.throughput.config import (
    SINGLE_STREAM_MIN_QUERIES,
    check_scenario_batches,
    min_steps_of,
)
from bench.harness.throughput.offline import Layout, layout, offline_metrics
from bench.harness.throughput.optimize import concurrency_levels
from bench.harness.throughput.runtimes.base import scenario_record
from bench.registry.lookup import ModelSpec
from bench.report.workload import workload_key

torch = pytest.importorskip("torch")
nn = torch.nn

FAST = {"min_time_s": 0.01, "min_steps": 3, "threads": 1, "isolate": False}


def tiny(pretrained=False, **kwargs):
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10)
    )


def _measure(**options):
    spec = ModelSpec(name="tiny", source="test", input_size=(1, 8, 8), builder=tiny)
    return get_harness("throughput").measure(make_job(spec, "throughput", **{**FAST, **options}))


# -- options ------------------------------------------------------------------------------
def test_scenario_defaults_to_sync_and_takes_mlperfs_names():
    assert ThroughputConfig().scenario == "sync"
    for name in ("single-stream", "sync", "offline"):
        assert ThroughputConfig(scenario=name).scenario == name
    with pytest.raises(ConfigError, match=r"--scenario server: expected one of single-stream"):
        ThroughputConfig(scenario="server")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"scenario": "offline", "modes": ("train",)}, "measures inference"),
        ({"scenario": "single-stream", "batch_search": True}, "--batch-search"),
        ({"scenario": "offline", "compile": True}, "drop --compile"),
        ({"loadgen": True}, "--loadgen drives MLPerf's scenarios"),
    ],
)
def test_scenario_combinations_refused_with_one_line(options, message):
    with pytest.raises(ConfigError, match=message) as e:
        ThroughputConfig(**options)
    assert "\n" not in str(e.value)


def test_the_same_options_pass_in_the_sync_scenario():
    ThroughputConfig(modes=("train",), batch_search=True, compile=True)  # no error


def test_single_stream_is_batch_one():
    with pytest.raises(ConfigError, match="single-stream measures batch 1"):
        check_scenario_batches("single-stream", (4,))
    check_scenario_batches("single-stream", (1,))
    check_scenario_batches("single-stream", None)
    check_scenario_batches("sync", (4, 8))
    with pytest.raises(ConfigError, match="measures batch 1"):
        make_job(ModelSpec("tiny", "test", (1, 8, 8), tiny), "throughput",
                 scenario="single-stream", batch_sizes=(16,))  # fmt: skip


def test_single_stream_raises_min_steps_to_64_queries():
    assert min_steps_of(ThroughputConfig(scenario="single-stream", min_steps=3)) == 64
    assert min_steps_of(ThroughputConfig(scenario="single-stream", min_steps=100)) == 100
    assert min_steps_of(ThroughputConfig(scenario="sync", min_steps=3)) == 3
    assert min_steps_of(ThroughputConfig(scenario="offline", min_steps=3)) == 3


def test_help_names_the_scenarios(capsys):
    from bench.cli import main

    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert "--scenario {single-stream,sync,offline}" in out
    assert "--loadgen" in out


# -- records ------------------------------------------------------------------------------
def test_single_stream_record_has_its_latency_percentiles():
    (m,) = _measure(scenario="single-stream")
    assert m.status == "ok", m.error
    assert m.config["scenario"] == "single-stream"
    assert m.config["batch_size"] == 1
    x = m.metrics
    assert x["scenario"] == "single-stream"
    assert x["queries"] >= SINGLE_STREAM_MIN_QUERIES
    assert x["queries"] == x["rounds"]
    assert x["latency_p50_ms"] <= x["latency_p90_ms"] <= x["latency_p99_ms"]
    assert x["latency_p90_ms"] == pytest.approx(x["p90"], abs=1e-3)


def test_sync_record_keeps_its_configuration_keys_and_has_no_percentile_headline():
    (m,) = _measure(batch_sizes=(4,))
    assert "scenario" not in m.config  # compare matches it with records before --scenario
    assert m.metrics["scenario"] == "sync"
    assert "latency_p90_ms" not in m.metrics


def test_workload_key_keeps_scenarios_apart():
    base = {"model": "m", "config": {"batch_size": 1, "mode": "infer"}, "metrics": {}}
    single = {**base, "config": {**base["config"], "scenario": "single-stream"}}
    sync = {**base, "metrics": {"scenario": "sync"}}
    assert workload_key(base).scenario == "sync"  # a record before --scenario
    assert workload_key(base) == workload_key(sync)
    assert workload_key(single) != workload_key(base)
    assert workload_key(single).scenario == "single-stream"


# -- offline ------------------------------------------------------------------------------
def test_offline_layout_splits_the_cores_evenly():
    lay = layout(tuple(range(8)), 2)
    assert lay.cores == ((0, 1, 2, 3), (4, 5, 6, 7))
    assert lay.threads_per_instance == 4
    assert layout(tuple(range(8)), None).instances == 2  # one per 4 cores
    assert layout((0, 1), None).instances == 1
    assert layout(tuple(range(7)), 3).cores == ((0, 1), (2, 3), (4, 5))  # core 6 idle
    with pytest.raises(BenchError, match="3 instances on 2 cores"):
        layout((0, 1), 3)


def test_offline_metrics_sum_the_instances():
    lay = Layout(((0,), (1,)))
    results = [
        {"times_ms": [10.0] * 10, "total": 0.1, "warm": 3, "stable": True, "rss": 100.0,
         "faults": 300},
        {"times_ms": [20.0] * 5, "total": 0.1, "warm": 4, "stable": False, "rss": 50.0,
         "faults": 0},
    ]  # fmt: skip
    m = offline_metrics(results, 2, lay)
    assert m["samples_per_sec"] == pytest.approx(2 * 10 / 0.1 + 2 * 5 / 0.1)
    assert m["rounds"] == 15
    assert m["warmup_stable"] is False
    assert m["peak_mem_mb"] == 150.0
    assert m["page_faults_per_step"] == 20  # 300 faults over 15 steps
    assert m["offline_instances"] == 2
    assert m["threads_per_instance"] == 1
    assert m["scenario"] == "offline"
    assert m["offline_streams"] is None


def test_scenario_keys_name_the_contracts_fields():
    info = {"scenario": "offline", "streams": 2, "requests": 8, "instances": None,
            "threads_per_instance": None}  # fmt: skip
    assert scenario_record(info) == {
        "scenario": "offline", "offline_streams": 2, "offline_requests": 8,
        "offline_instances": None, "threads_per_instance": None,
    }  # fmt: skip


def test_pytorch_offline_runs_pinned_instances_and_records_them():
    (m,) = _measure(scenario="offline", batch_sizes=(2,))
    assert m.status == "ok", m.error
    assert m.config["scenario"] == "offline"
    x = m.metrics
    assert x["offline_instances"] == 1  # --threads 1: one core
    assert x["threads_per_instance"] == 1
    assert x["infer_samples_per_sec"] > 0
    assert x["rounds"] >= 3
    assert x["peak_mem_mb"] > 0  # the instances' resident sets
    assert "peak_mem_increase_mb" not in x  # this process's would say nothing of them


def test_offline_on_more_instances_than_cores_is_the_models_error_row():
    from bench.harness.throughput.config import Settings
    from bench.harness.throughput.measure import Candidate, measure_at
    from bench.harness.throughput.model_run import ModelRun

    spec = ModelSpec(name="tiny", source="test", input_size=(1, 8, 8), builder=tiny)
    job = make_job(spec, "throughput", **{**FAST, "scenario": "offline"})
    run = ModelRun.build(job, Settings.of(job.run, job.config), "cpu")
    with pytest.raises(BenchError, match="instances on 1 cores"):
        measure_at(run, Candidate("infer", "fp32", False, False, concurrency=2), 2)


def test_runtime_offline_session_is_timed_per_wave(monkeypatch):
    """Another runtime's offline session: opened with the scenario and concurrency, timed at
    its samples per call (batch x requests), its scenario_info in the record."""
    import bench.harness.throughput.harness as harness_module
    import bench.harness.throughput.sessions as sessions
    from bench.harness.throughput.runtimes.base import Session

    opened = {}

    def fake_open(runtime, model, x, threads, device, precision, scenario, concurrency):
        opened.update(scenario=scenario, concurrency=concurrency)
        m = model.eval()
        info = {"scenario": "offline", "streams": 2, "requests": 3, "instances": None,
                "threads_per_instance": None}  # fmt: skip
        return Session("openvino", "x", "CPU", 0.0, threads, lambda: m(x).detach().numpy(),
                       samples_per_call=2 * 3, scenario_info=info)  # fmt: skip

    monkeypatch.setattr(sessions, "open_session", fake_open)
    monkeypatch.setattr(harness_module, "skip_reason", lambda *a: None)
    (m,) = _measure(scenario="offline", batch_sizes=(2,), runtimes=("openvino",))
    assert m.status == "ok", m.error
    assert opened == {"scenario": "offline", "concurrency": None}
    x = m.metrics
    assert (x["offline_streams"], x["offline_requests"]) == (2, 3)
    assert x["infer_batch_size"] == 2
    assert x["infer_samples_per_sec"] == pytest.approx(
        6 * x["rounds"] / x["total_time_s"], rel=1e-2
    )


def test_runtime_sync_session_is_opened_as_before(monkeypatch):
    import bench.harness.throughput.harness as harness_module
    import bench.harness.throughput.sessions as sessions
    from bench.harness.throughput.runtimes.base import Session

    opened = {}

    def fake_open(runtime, model, x, threads, device, precision, scenario, concurrency):
        opened.update(scenario=scenario, concurrency=concurrency)
        m = model.eval()
        return Session("openvino", "x", "CPU", 0.0, threads, lambda: m(x).detach().numpy(),
                       samples_per_call=2)  # fmt: skip

    monkeypatch.setattr(sessions, "open_session", fake_open)
    monkeypatch.setattr(harness_module, "skip_reason", lambda *a: None)
    (m,) = _measure(batch_sizes=(2,), runtimes=("openvino",))
    assert m.status == "ok", m.error
    assert opened == {"scenario": "sync", "concurrency": None}
    assert "offline_requests" not in m.metrics
    assert m.metrics["infer_samples_per_sec"] == pytest.approx(
        2 * m.metrics["rounds"] / m.metrics["total_time_s"], rel=1e-2
    )


# -- --optimize's concurrency ------------------------------------------------------------
def test_concurrency_levels_double_up_to_the_cores():
    assert concurrency_levels(1) == [1]
    assert concurrency_levels(2) == [1, 2]
    assert concurrency_levels(6) == [1, 2, 4, 6]
    assert concurrency_levels(8) == [1, 2, 4, 8]


def _concurrencies_timed(monkeypatch, states_instances: bool) -> list:
    """On 2 cores, every candidate of --optimize measured by a stand-in whose samples/s grows
    with its concurrency (and, with ``states_instances``, whose record states the instances
    it ran, as PyTorch's offline timing does); the concurrency of each timing, as timed."""
    import bench.harness.throughput.optimize as optimize

    monkeypatch.setattr(optimize, "usable_cores", lambda threads=None: (0, 1))
    seen = []

    def fake_measure(run, opt, batch, mode):
        seen.append(opt.cand.concurrency)
        n = opt.cand.concurrency or 1
        out = {f"{mode}_samples_per_sec": 100.0 * n, "agrees": True, "rounds": 10,
               "cv_pct": 1.0, f"{mode}_batch_size": batch}  # fmt: skip
        return {**out, "offline_instances": n} if states_instances else out

    monkeypatch.setattr(optimize, "_measure", fake_measure)
    return seen


def test_optimize_searches_concurrency_only_offline(monkeypatch):
    seen = _concurrencies_timed(monkeypatch, states_instances=False)
    (m,) = _measure(scenario="offline", optimize=True, optimize_rounds=1, batch_sizes=(2,),
                    runtimes=("torch",))  # fmt: skip
    assert m.status == "ok", m.error
    assert {1, 2} <= set(seen)
    assert m.config["concurrency"] == 2  # the fastest: two instances
    assert any(c.get("concurrency") == 2 for c in m.metrics["candidates"])
    seen.clear()
    (m,) = _measure(optimize=True, optimize_rounds=1, batch_sizes=(2,), runtimes=("torch",))
    assert set(seen) == {None}
    assert "concurrency" not in m.config


def test_optimize_does_not_measure_again_the_concurrency_its_own_choice_ran_at(monkeypatch):
    """A runtime's own offline choice (concurrency None) that states 1 instance: level 1 is
    that same configuration and is not timed again; level 2 is (without the statement, as
    above, every level is timed)."""
    seen = _concurrencies_timed(monkeypatch, states_instances=True)
    (m,) = _measure(scenario="offline", optimize=True, optimize_rounds=1, batch_sizes=(2,),
                    runtimes=("torch",))  # fmt: skip
    assert m.status == "ok", m.error
    assert 2 in seen
    assert 1 not in seen
    assert m.config["concurrency"] == 2


def test_int8_is_measured_offline_and_still_skipped_for_training():
    from types import SimpleNamespace

    from bench.harness.throughput.optimize import _int8_skip
    from bench.harness.throughput.runtimes import installed, missing

    if not installed("onnxruntime") or missing("onnxruntime", int8=True):
        pytest.skip("ONNX Runtime not installed")
    offline = SimpleNamespace(settings=ThroughputConfig(scenario="offline"), device="cpu")
    sync = SimpleNamespace(settings=ThroughputConfig(), device="cpu")
    # an INT8 session opens in every scenario: only the gate's own conditions remain
    assert _int8_skip(offline, "infer", "onnxruntime") == _int8_skip(sync, "infer", "onnxruntime")
    assert "offline" not in (_int8_skip(offline, "infer", "onnxruntime") or "")
    assert "inference only" in _int8_skip(offline, "train", "onnxruntime")


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--scenario", "single-stream", "--batch-size", "16"), "--batch-size"),
        (("--loadgen",), "--loadgen"),
        (("--scenario", "server"), "--scenario"),
    ],
)
def test_cli_refuses_a_bad_scenario_with_one_line_and_exit_2(args, named):
    from conftest import run_cli

    r = run_cli("run", "--models", "lenet5", "--harness", "throughput", *args)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert named in r.stderr

"""How the reports name a scenario other than sync: the speed tables' configuration (with
single-stream's p90 latency), the runtimes table, a record's configuration in words and the
export's workload names; sync rows read as they did before --scenario."""

from __future__ import annotations

from bench.report.best import short_config
from bench.report.workload import workload_key


def test_speed_tables_name_the_scenario_and_single_streams_p90():
    sync = {"model": "m", "config": {"batch_size": 16, "mode": "infer", "precision": "fp32",
            "layout": "nchw", "compiled": False}, "metrics": {"scenario": "sync"}}  # fmt: skip
    single = {"model": "m", "config": {**sync["config"], "batch_size": 1,
              "scenario": "single-stream"}, "metrics": {"latency_p90_ms": 4.204}}  # fmt: skip
    offline = {"model": "m", "config": {**sync["config"], "scenario": "offline"},
               "metrics": {"offline_instances": 4, "threads_per_instance": 2}}  # fmt: skip
    runtime = {"model": "m", "config": {**sync["config"], "scenario": "offline",
               "runtime": "openvino"}, "metrics": {"offline_streams": 2,
               "offline_requests": 8}}  # fmt: skip
    assert short_config(sync) == "bs 16 fp32 nchw eager PyTorch"
    assert short_config(single) == "single-stream p90 4.20 ms bs 1 fp32 nchw eager PyTorch"
    assert short_config(offline) == "offline 4 inst x 2 thr bs 16 fp32 nchw eager PyTorch"
    assert short_config(runtime).startswith("offline 2 str 8 req bs 16")


def test_a_row_timed_under_glibcs_default_allocator_says_so():
    """Named: ``--malloc system``. Quiet: ``keep`` and a record from before the option."""
    base = {"model": "m", "config": {"batch_size": 16, "mode": "infer", "precision": "fp32",
            "layout": "nchw", "compiled": False}}  # fmt: skip
    system = {**base, "metrics": {"malloc": "system"}}
    assert short_config(system) == "bs 16 fp32 nchw eager PyTorch malloc system"
    assert short_config({**base, "metrics": {"malloc": "keep"}}) == "bs 16 fp32 nchw eager PyTorch"
    assert short_config({**base, "metrics": {}}) == "bs 16 fp32 nchw eager PyTorch"


def test_a_row_whose_queries_loadgen_issued_says_so_with_its_verdict():
    """Named, with the verdict's first word, and kept apart from the same configuration timed
    by the harness's own loop. Quiet: the same row without LoadGen."""
    config = {"batch_size": 1, "mode": "infer", "precision": "fp32", "layout": "nchw",
              "compiled": False, "scenario": "single-stream"}  # fmt: skip
    own = {"model": "m", "config": config, "metrics": {"latency_p90_ms": 4.2}}
    short = {"model": "m", "config": {**config, "loadgen": True},
             "metrics": {"latency_p90_ms": 4.2, "loadgen": {"result": "VALID"},
                         "loadgen_verdict": "shortened (2 s < MLPerf's 600 s)"}}  # fmt: skip
    invalid = {**short, "metrics": {**short["metrics"], "loadgen_verdict":
               "INVALID: min queries satisfied not satisfied"}}  # fmt: skip
    assert short_config(own) == "single-stream p90 4.20 ms bs 1 fp32 nchw eager PyTorch"
    assert short_config(short) == f"{short_config(own)} LoadGen shortened"
    assert short_config(invalid) == f"{short_config(own)} LoadGen INVALID"
    assert workload_key(short) != workload_key(own)


def test_runtimes_table_and_record_text_name_a_scenario_other_than_sync():
    from bench.report.export import workload_name
    from bench.report.runtimes import Group, _lead
    from bench.report.throughput import config_text

    config = {"batch_size": 1, "mode": "infer", "precision": "fp32", "layout": "nchw",
              "compiled": False, "optimize": False}  # fmt: skip
    sync = {"model": "m", "config": config, "metrics": {}}
    single = {"model": "m", "config": {**config, "scenario": "single-stream"}, "metrics": {}}
    lead = {r["config"].get("scenario"): _lead(Group("cpu", workload_key(r), {}, [r]), False)
            for r in (sync, single)}  # fmt: skip
    assert lead[None]["Batch"] == "1"
    assert lead["single-stream"]["Batch"] == "1 single-stream"
    assert config_text(config) == "infer batch 1, fp32, nchw, eager, PyTorch"
    assert config_text(single["config"]).startswith("single-stream, infer batch 1")
    flat_sync = {"model": "m", **config}
    flat_single = {**flat_sync, "scenario": "single-stream"}
    assert "single-stream" not in workload_name(flat_sync, "infer_samples_per_sec")
    assert "single-stream" in workload_name(flat_single, "infer_samples_per_sec")


def test_compare_judges_single_streams_p90_latency_lower_is_better():
    from bench.compare.metrics import HEADLINE, HIGHER, LOWER, direction, is_timed

    assert "latency_p90_ms" in HEADLINE
    assert direction("latency_p90_ms") == LOWER
    assert direction("infer_samples_per_sec") == HIGHER
    assert is_timed("latency_p99_ms")
    assert not is_timed("queries")


def test_compare_tests_single_streams_p90_on_the_steps_p90_not_on_the_speed():
    from bench.compare.judge import sample_test
    from bench.compare.sides import Entry
    from bench.stats import samples_of

    base = [4.0 + 0.01 * (i % 7) for i in range(80)]
    slower = [1.5 * t for t in base]
    b = Entry("m", metrics={"latency_p90_ms": 4.05}, samples=samples_of({"step_times_ms": base}))
    n = Entry("m", metrics={"latency_p90_ms": 6.1}, samples=samples_of({"step_times_ms": slower}))
    cache: dict = {}
    test = sample_test(b, n, "latency_p90_ms", 0.95, cache)
    assert set(cache) == {"p90"}  # the steps' p90, as the median and p99 are tested
    assert test.significant(0.05)
    cache.clear()
    sample_test(b, n, "infer_samples_per_sec", 0.95, cache)
    assert set(cache) == {"speed"}

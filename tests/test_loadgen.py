"""--loadgen: MLCommons' LoadGen drives the queries; its summary parsed into the record, a
shortened run never called valid, and a missing package one line naming the extra.

The summaries parsed here follow the layout of LoadGen 6.0.17's mlperf_log_summary.txt; the end-to-end tests run LoadGen
itself on a tiny model and skip where ``mlcommons-loadgen`` is not installed.
"""

from __future__ import annotations

import importlib.util

import pytest

from bench.errors import ConfigError
from bench.harness.throughput import ThroughputConfig
from bench.harness.throughput.harness import ThroughputHarness
from bench.harness.throughput.loadgen import (
    MLPERF_MIN_DURATION_S,
    parse_summary,
    require_loadgen,
    verdict,
)

SINGLE_STREAM = """================================================
MLPerf Results Summary
================================================
SUT name : PySUT
Scenario : SingleStream
Mode     : PerformanceOnly
90.0th percentile latency (ns) : 4204000
Result is : VALID
  Min duration satisfied : Yes
  Min queries satisfied : Yes
  Early stopping satisfied: Yes
Early Stopping Result:
 * Processed at least 64 queries (143).
 * Would discard 6 highest latency queries.
 * Early stopping 90.0th percentile estimate: 4300000
 * Not enough queries processed for 99.0th percentile
 early stopping estimate (would need to process at
 least 662 total queries).

================================================
Additional Stats
================================================
QPS w/ loadgen overhead         : 240.10
QPS w/o loadgen overhead        : 241.55

Min latency (ns)                : 3900000
50.00 percentile latency (ns)   : 4100000
90.00 percentile latency (ns)   : 4204000
99.00 percentile latency (ns)   : 4900000
"""

OFFLINE_INVALID = """Scenario : Offline
Mode     : PerformanceOnly
Samples per second: 1.21305
Result is : INVALID
  Min duration satisfied : NO
  Min queries satisfied : Yes
  Early stopping satisfied: Yes
"""


def test_single_stream_summary_parsed():
    s = parse_summary(SINGLE_STREAM)
    assert s["result"] == "VALID"
    assert s["queries"] == 143
    assert s["p90_ns"] == 4204000
    assert s["p50_ns"] == 4100000
    assert s["p99_ns"] == 4900000
    assert s["queries_per_sec"] == pytest.approx(241.55)
    assert s["early_stopping_p90_ns"] == 4300000
    assert s["invalid_reasons"] == []


def test_invalid_summary_names_its_reason():
    s = parse_summary(OFFLINE_INVALID)
    assert s["result"] == "INVALID"
    assert s["samples_per_sec"] == pytest.approx(1.21305)
    assert s["invalid_reasons"] == ["min duration satisfied"]
    long_run = MLPERF_MIN_DURATION_S
    assert verdict(s, long_run) == "INVALID: min duration satisfied not satisfied"


def test_a_shortened_run_is_never_called_valid():
    s = parse_summary(SINGLE_STREAM)  # LoadGen said VALID of the shortened settings
    assert verdict(s, 2.0) == "shortened (2 s < MLPerf's 600 s)"
    assert verdict(s, MLPERF_MIN_DURATION_S) == "VALID"


def test_missing_loadgen_is_one_line_naming_the_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "mlperf_loadgen" else real(name, *a))  # fmt: skip
    with pytest.raises(ConfigError, match=r"pip install 'cnn-bench\[mlperf\]'") as e:
        ThroughputHarness.preflight(ThroughputConfig(scenario="offline", loadgen=True))
    assert "\n" not in str(e.value)
    ThroughputHarness.preflight(ThroughputConfig(scenario="offline"))  # no --loadgen: no check


# -- LoadGen itself --------------------------------------------------------------------------
needs_loadgen = pytest.mark.skipif(
    importlib.util.find_spec("mlperf_loadgen") is None, reason="mlcommons-loadgen not installed"
)


@needs_loadgen
def test_loadgen_installed_passes_preflight():
    require_loadgen()


@needs_loadgen
def test_single_stream_under_loadgen_records_its_summary():
    from test_scenarios import _measure

    (m,) = _measure(scenario="single-stream", loadgen=True, min_time_s=0.2)
    assert m.status == "ok", m.error
    assert m.config["loadgen"] is True
    x = m.metrics
    assert x["loadgen"]["queries"] >= 64
    assert x["loadgen"]["result"] in ("VALID", "INVALID")
    assert x["loadgen_verdict"].startswith("shortened")
    assert x["loadgen_early_stopping_p90_ms"] > 0
    assert x["rounds"] >= 64  # every query timed
    assert x["infer_samples_per_sec"] > 0


@needs_loadgen
def test_pytorch_offline_under_loadgen_is_refused_as_the_rows_error():
    from test_scenarios import _measure

    with pytest.raises(Exception, match="LoadGen cannot drive"):
        _measure(scenario="offline", loadgen=True, batch_sizes=(2,))

"""``--loadgen``: MLCommons' LoadGen issues the queries of the single-stream and offline
scenarios, as MLPerf's rules have them, and its summary goes into the record.

The system under test is one ``infer()`` of the measurement (PyTorch's step in this process,
or another runtime's session; an offline session's call is a wave of ``samples_per_call``
samples). Single-stream: LoadGen sends one sample at a time and waits for it. Offline: it
sends every sample at once, run here ``samples_per_call`` at a time. The test runs at least
``--min-time`` seconds and ``--min-steps`` queries (64 in single-stream); MLPerf's own rules
ask for ``MLPERF_MIN_DURATION_S``, so a shorter run is labelled 'shortened' and never called
valid, whatever LoadGen's own verdict on the shortened settings.

LoadGen ships as ``mlcommons-loadgen`` (the module ``mlperf_loadgen``), the extra
``cnn-bench[mlperf]``; it is imported inside functions.
"""

from __future__ import annotations

import importlib.util
import re
import tempfile
from pathlib import Path

from bench.errors import ConfigError
from bench.harness.throughput.config import min_steps_of

EXTRA = "cnn-bench[mlperf]"
MODULE = "mlperf_loadgen"
MLPERF_MIN_DURATION_S = 600  # MLPerf Inference's minimum run for a valid result
SUMMARY = "mlperf_log_summary.txt"
# the summary's lines the record keeps, by the name the record gives them
FIELDS = {
    "result": r"Result is\s*:\s*(\S+)",
    "min_duration_satisfied": r"Min duration satisfied\s*:\s*(\S+)",
    "min_queries_satisfied": r"Min queries satisfied\s*:\s*(\S+)",
    "early_stopping_satisfied": r"Early stopping satisfied\s*:\s*(\S+)",
    "samples_per_sec": r"Samples per second\s*:\s*([\d.eE+-]+)",
    "queries_per_sec": r"QPS w/o loadgen overhead\s*:\s*([\d.eE+-]+)",
    "p50_ns": r"50\.00 percentile latency \(ns\)\s*:\s*(\d+)",
    "p90_ns": r"90\.00 percentile latency \(ns\)\s*:\s*(\d+)",
    "p99_ns": r"99\.00 percentile latency \(ns\)\s*:\s*(\d+)",
    "queries": r"Processed at least \d+ queries \((\d+)\)",
    "early_stopping_p90_ns": r"Early stopping 90(?:\.0+)?(?:th)? percentile estimate\s*:\s*(\d+)",
}


def require_loadgen() -> None:
    """A ConfigError (one line, exit 2) naming the extra when LoadGen is not installed."""
    if importlib.util.find_spec(MODULE) is None:
        raise ConfigError(f"--loadgen: mlcommons-loadgen is not installed; pip install '{EXTRA}'.")


def parse_summary(text: str) -> dict:
    """LoadGen's summary as the record's fields (numbers as numbers; what a line does not
    give is left out), with the reasons of an INVALID result (``invalid_reasons``)."""
    out: dict = {}
    for name, pattern in FIELDS.items():
        m = re.search(pattern, text)
        if m:
            value = m.group(1)
            out[name] = float(value) if re.fullmatch(r"[\d.eE+-]+", value) else value
    out["invalid_reasons"] = [
        name.replace("_", " ")
        for name in ("min_duration_satisfied", "min_queries_satisfied", "early_stopping_satisfied")
        if str(out.get(name, "Yes")).upper().startswith("NO")
    ]
    return out


def verdict(summary: dict, min_duration_s: float) -> str:
    """The record's label: 'shortened' below MLPerf's minimum duration (never 'VALID'),
    else LoadGen's result, an INVALID one with its reasons."""
    if min_duration_s < MLPERF_MIN_DURATION_S:
        return f"shortened ({min_duration_s:g} s < MLPerf's {MLPERF_MIN_DURATION_S} s)"
    result = str(summary.get("result", "missing"))
    reasons = summary.get("invalid_reasons") or []
    return result + (f": {', '.join(reasons)} not satisfied" if reasons else "")


def _settings(lg, scenario: str, s, per_call: int, step_s: float):
    settings = lg.TestSettings()
    settings.mode = lg.TestMode.PerformanceOnly
    settings.min_duration_ms = int(1000 * s.min_time_s)
    settings.min_query_count = min_steps_of(s)
    if scenario == "single-stream":
        settings.scenario = lg.TestScenario.SingleStream
        settings.single_stream_expected_latency_ns = max(1, int(step_s * 1e9))
    else:
        settings.scenario = lg.TestScenario.Offline
        settings.offline_expected_qps = per_call / max(step_s, 1e-9)
    return settings


def run_loadgen(infer, per_call: int, scenario: str, s, step_s: float) -> dict:
    """LoadGen's test of ``infer`` (``per_call`` samples a call, about ``step_s`` seconds
    each): its parsed summary, with the record's ``verdict``."""
    import mlperf_loadgen as lg

    def issue(samples):
        done = []
        for i in range(0, len(samples), per_call):
            infer()
            done += [lg.QuerySampleResponse(q.id, 0, 0) for q in samples[i : i + per_call]]
        lg.QuerySamplesComplete(done)

    sut = lg.ConstructSUT(issue, lambda: None)
    qsl = lg.ConstructQSL(1024, 1024, lambda ids: None, lambda ids: None)
    try:
        with tempfile.TemporaryDirectory(prefix="cnn-bench-loadgen-") as tmp:
            log = lg.LogSettings()
            log.log_output.outdir = tmp
            log.log_output.copy_summary_to_stdout = False
            log.enable_trace = False
            lg.StartTestWithLogSettings(sut, qsl, _settings(lg, scenario, s, per_call, step_s), log)
            summary = parse_summary((Path(tmp) / SUMMARY).read_text())
    finally:
        lg.DestroyQSL(qsl)
        lg.DestroySUT(sut)
    summary["verdict"] = verdict(summary, s.min_time_s)
    summary["min_duration_s"] = s.min_time_s
    return summary


def under_loadgen(step, batch: int, s, warm_s: list[float], timer) -> tuple[float, dict]:
    """The timed loop's place taken by LoadGen: each call timed by ``timer``; the seconds
    from first to last, and the record's LoadGen fields (``loadgen_metrics``) with LoadGen's
    samples/s."""
    import statistics

    def timed():
        timer.step_start()
        step()
        timer.step_end()

    timer.begin()
    summary = run_loadgen(timed, batch, s.scenario, s, statistics.median(warm_s[-3:]))
    total = timer.finish()
    rate = summary.get("samples_per_sec") or summary.get("queries_per_sec")
    return total, {**loadgen_metrics(summary), "samples_per_sec": rate}


def loadgen_metrics(summary: dict) -> dict:
    """The record's LoadGen fields: its summary whole (``loadgen``), its verdict, and in
    single-stream the early-stopping p90 (ms)."""
    out = {"loadgen": summary, "loadgen_verdict": summary["verdict"]}
    if "early_stopping_p90_ns" in summary:
        out["loadgen_early_stopping_p90_ms"] = round(summary["early_stopping_p90_ns"] / 1e6, 4)
    return out

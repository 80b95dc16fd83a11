"""``--optimize``'s rounds: each candidate is judged by the median of its rounds (no winner's
curse), an untrusted fastest candidate is measured again before it may win, and the speedup
carries an interval. The timings are made up (``measure_candidate`` is replaced), so the
verdicts do not depend on this machine."""

from __future__ import annotations

import pytest

from bench.harness import get_harness, make_job
from bench.harness.throughput import ThroughputConfig
from bench.registry.lookup import ModelSpec

torch = pytest.importorskip("torch")
nn = torch.nn

KEY = "infer_samples_per_sec"
FAST = {"min_time_s": 0.01, "min_steps": 3, "threads": 1, "batch_sizes": (4,), "isolate": False}
# A trusted round: over a second timed, settled warm-up, steady steps.
STEADY = {"total_time_s": 2.0, "warmup_stable": True, "cv_pct": 3.0}


def plain(pretrained=False, **kwargs):
    """No batch norm: no folded candidate, only the eager grid and the other runtimes."""
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))


NCHW = ("torch", "fp32", "nchw")  # the baseline
CL = ("torch", "fp32", "channels_last")


def _fake(monkeypatch, table: dict[tuple, list]):
    """Replace the timing: candidate (runtime, precision, layout) -> its rounds in turn, each
    a samples/s or (samples/s, extra metrics); any other candidate is slow and steady. Returns
    each candidate's calls."""
    calls: dict[tuple, int] = {}

    def fake(run, cand, batch, compare=True):
        name = (cand.runtime, cand.precision, cand.layout)
        n = calls[name] = calls.get(name, 0) + 1
        rounds = table.get(name, [10.0])
        speed = rounds[min(n, len(rounds)) - 1]
        speed, extra = speed if isinstance(speed, tuple) else (speed, {})
        return {KEY: float(speed), "infer_batch_size": batch, "agrees": True, **STEADY, **extra}

    monkeypatch.setattr("bench.harness.throughput.optimize.measure_candidate", fake)
    return calls


def _optimize(**options):
    spec = ModelSpec(name="plain", source="test", input_size=(3, 8, 8), builder=plain)
    job = make_job(spec, "throughput", **{**FAST, "optimize": True, **options})
    (m,) = get_harness("throughput").measure(job)
    assert m.status == "ok", m.error
    return m


def _chosen(m) -> tuple:
    return (m.config.get("runtime", "torch"), m.config["precision"], m.config["layout"])


def _row(m, name: tuple) -> dict:
    (row,) = [c for c in m.metrics["candidates"]
              if (c["runtime"], c["precision"], c["layout"]) == name and not c.get("fold_bn")]  # fmt: skip
    return row


def test_three_rounds_by_default():
    assert ThroughputConfig().optimize_rounds == 3


def test_the_median_decides_not_one_lucky_round(monkeypatch):
    """Winner's curse: channels_last is slow in two rounds of three and lucky in one (195);
    the best of its rounds would beat NCHW's steady 100, its median (81) does not."""
    _fake(monkeypatch, {CL: [80.0, 195.0, 81.0], NCHW: [100.0, 101.0, 99.0]})
    m = _optimize()
    assert _chosen(m) == NCHW
    assert m.metrics[KEY] == 100.0
    cl = _row(m, CL)
    assert cl[KEY] == 81.0  # its median, not its best
    assert cl["rounds_samples_per_sec"] == [80.0, 195.0, 81.0]  # every round, as they ran
    assert m.metrics["optimize_speedup"] == 1.0  # the baseline itself
    assert m.metrics["optimize_speedup_low"] == m.metrics["optimize_speedup_high"] == 1.0
    assert "optimize_untrusted" not in m.metrics  # the lucky one was never the pick


def test_a_steadily_faster_candidate_wins_with_an_interval(monkeypatch):
    """The quiet case: channels_last is faster in every round; it wins, nothing is measured
    again, and the speedup over NCHW is its median over NCHW's with an interval about it."""
    calls = _fake(monkeypatch, {CL: [120.0, 121.0, 119.0], NCHW: [100.0, 101.0, 99.0]})
    m = _optimize()
    assert _chosen(m) == CL
    assert calls[CL] == 3
    assert m.metrics["rounds_samples_per_sec"] == [120.0, 121.0, 119.0]
    assert m.metrics["optimize_speedup"] == 1.2
    low, high = m.metrics["optimize_speedup_low"], m.metrics["optimize_speedup_high"]
    assert 1.17 < low < 1.2 < high < 1.23
    assert "optimize_remeasured" not in m.metrics
    assert "optimize_untrusted" not in m.metrics


def test_one_round_has_no_interval(monkeypatch):
    _fake(monkeypatch, {CL: [120.0], NCHW: [100.0]})
    m = _optimize(optimize_rounds=1)
    assert _chosen(m) == CL
    assert m.metrics["optimize_speedup"] == 1.2
    assert m.metrics["optimize_speedup_low"] is None
    assert m.metrics["optimize_speedup_high"] is None


def test_an_untrusted_best_is_measured_again_and_wins_once_trusted(monkeypatch):
    """The median round of channels_last's three varies 40% step to step: it is timed once
    more, and with that round its median round is a steady one: it wins."""
    bad = {"cv_pct": 40.0}
    calls = _fake(monkeypatch, {CL: [150.0, (160.0, bad), 170.0, 140.0], NCHW: [100.0] * 3})
    m = _optimize()
    assert calls[CL] == 4
    assert _chosen(m) == CL
    assert m.metrics["rounds_samples_per_sec"] == [150.0, 160.0, 170.0, 140.0]
    assert m.metrics[KEY] == 155.0
    assert m.metrics["cv_pct"] == 3.0
    assert m.metrics["optimize_remeasured"] == ["torch fp32 channels_last"]
    assert "optimize_untrusted" not in m.metrics


def test_a_best_still_untrusted_gives_way_to_the_fastest_trusted(monkeypatch):
    bad = {"warmup_stable": False}
    calls = _fake(monkeypatch, {CL: [(150.0, bad)] * 4, NCHW: [100.0] * 3})
    m = _optimize()
    assert calls[CL] == 4  # measured again once, no more
    assert _chosen(m) == NCHW
    note = m.metrics["optimize_untrusted"]
    assert "torch fp32 channels_last (150 samples/s)" in note
    assert "warm-up did not stabilise" in note
    assert "chose the fastest trusted candidate" in note


def test_a_candidate_that_disagrees_in_any_round_is_never_chosen(monkeypatch):
    wrong = {"agrees": False, "max_abs_diff": 3.0}
    _fake(monkeypatch, {CL: [200.0, (210.0, wrong), 202.0], NCHW: [100.0] * 3})  # median: 202
    m = _optimize()
    assert _chosen(m) == NCHW
    assert "disagrees with eager fp32 (max_abs_diff 3.0" in _row(m, CL)["error"]


def test_when_no_candidate_is_trusted_the_fastest_is_kept_and_the_record_says_so(monkeypatch):
    short = {"total_time_s": 0.5}  # every candidate, every round: under a second timed
    table = {CL: [(150.0, short)] * 4, NCHW: [(100.0, short)] * 3}
    for name in (("torch", "bf16", "nchw"), ("torch", "bf16", "channels_last"),
                 ("onnxruntime", "fp32", "nchw"), ("openvino", "fp32", "nchw"),
                 ("openvino", "bf16", "nchw")):  # fmt: skip
        table[name] = [(10.0, short)] * 4
    _fake(monkeypatch, table)
    m = _optimize()
    assert _chosen(m) == CL
    assert m.metrics["optimize_remeasured"] == ["torch fp32 channels_last"]
    note = m.metrics["optimize_untrusted"]
    assert "timed 0.50 s < 1 s" in note
    assert note.endswith("no candidate is trusted")

"""Judging one metric of a matched pair: which test on samples judges it (``sample_test``),
and what its change means (``judge``): a test on the records' samples where both carry them
(``bench.stats``), else the spread rule (step-time IQR over median, in quadrature), labelled;
an untimed metric within its tolerance is the same; an untrusted timing is not judged.

A test's verdict here is on its own p-value; ``Judgement.adjusted`` sets it on the p-value
that the table's correction for many tests gives (``match``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from bench.compare.metrics import (
    LATENCY,
    Change,
    Threshold,
    Tolerance,
    change_of,
    direction,
    is_timed,
    tolerance,
)
from bench.compare.sides import Entry, combined_noise
from bench.stats import STEP_STATISTICS, SpeedTest, speed_test, step_test

# Step-time statistics that measure a spread, not a speed: without samples, not judged.
SPREADS = ("stddev", "iqr", "cv_pct")
UNTRUSTED = "untrusted: re-measure"


def sample_test(b: Entry, n: Entry, metric: str, confidence: float, cache: dict):
    """The test on samples that judges timed ``metric`` of a pair, or None: a step-time
    statistic (median, p90, p99, max...) on that statistic of the step times
    (``stats.step_test``), any other timing on the speed (``stats.speed_test``). ``cache``
    holds the pair's tests, so that metrics judged on the speed share one."""
    if not (b.samples and n.samples) or not is_timed(metric):
        return None
    stat = LATENCY.get(metric, metric)  # single-stream's p90 latency: the steps' p90
    key = stat if stat in STEP_STATISTICS else "speed"
    if key not in cache:
        if key == "speed":
            cache[key] = speed_test(b.samples, n.samples, confidence)
        else:
            cache[key] = step_test(b.samples, n.samples, stat, confidence)
    return cache[key]


@dataclass(frozen=True)
class Judgement:
    """What one metric's change means.

    ``test``: the test on samples (None without samples or for an untimed metric);
    ``low``/``high``: its interval as changes of this metric; ``p_adjusted``: its p-value
    after the table's correction; ``noise_pct``: the spread rule's combined spread, in %,
    when there are no samples; ``within``: the tolerance the change lies within;
    ``untrusted``: why either side's timing is not to be trusted; ``note``: why a timing
    was not judged; ``quiet``: not significant, within noise or tolerance, untrusted or not
    judged, so that no threshold fails.
    """

    change: Change
    test: SpeedTest | None = None
    low: Change | None = None
    high: Change | None = None
    noise_pct: float | None = None
    quiet: bool = False
    p_adjusted: float | None = None
    within: Tolerance | None = None
    untrusted: str = ""
    note: str = ""

    @property
    def tested(self) -> bool:
        """Whether its test counts in the table's correction (a test, on trusted timings)."""
        return self.test is not None and not self.untrusted

    def adjusted(self, p: float, alpha: float) -> Judgement:
        """The same judgement on the corrected p-value ``p``."""
        return replace(self, p_adjusted=p, quiet=p >= alpha)

    def crossed(self, thresholds: list[Threshold], metric: str) -> list[Threshold]:
        """The thresholds on ``metric`` this change fails: with a test, only those that the
        whole interval lies beyond."""
        named = [t for t in thresholds if t.metric == metric]
        if self.quiet:
            return []
        if self.low is None or self.high is None:
            return [t for t in named if t.crossed(self.change)]
        same_side = (self.low.abs > 0) == (self.high.abs > 0)
        return [t for t in named if same_side and t.crossed(self.low) and t.crossed(self.high)]

    def verdict(self, metric: str, crossed: list[Threshold]) -> str:
        if self.untrusted:
            return UNTRUSTED
        if self.change.abs == 0:
            return "same"
        if self.within is not None:
            return f"same (within {self.within})"
        if self.note:
            return "not judged"
        if self.quiet:
            return "not significant" if self.test else f"within noise (±{self.noise_pct:.1f}%)"
        way = direction(metric) * (1 if self.change.abs > 0 else -1)
        word = {1: "better", -1: "worse", 0: "changed"}[way]
        return f"{word}; FAIL {', '.join(map(str, crossed))}" if crossed else word

    def evidence(self) -> str:
        """The test's p-values and interval, or the rule used instead; '' for untimed
        metrics."""
        if self.untrusted:
            return self.untrusted
        if self.note:
            return self.note
        if self.test is not None:
            alone = "; one round: within-run noise only" if self.test.within_run_only else ""
            return self.test.text(self.p_adjusted) + alone
        if self.noise_pct == 0:
            return "no samples, no spread recorded"
        if self.noise_pct is not None:
            return f"spread rule ±{self.noise_pct:.1f}% (no samples)"
        return ""


def _interval(test: SpeedTest, metric: str, base: float) -> tuple[Change, Change]:
    """The test's interval as changes of ``metric``: a speed's interval inverted for a
    metric that is a time (lower is better); a step statistic's as it is."""
    low, high = test.low, test.high
    if test.of_speed and direction(metric) < 0:
        low, high = 1 / test.high, 1 / test.low
    return tuple(Change((r - 1) * base, 100 * (r - 1) if base else None) for r in (low, high))


def _untrusted(b: Entry, n: Entry) -> str:
    """'base: timed 0.30 s < 1 s; new: ...' for the sides whose timing is untrusted."""
    return "; ".join(f"{side}: {e.untrusted}" for side, e in (("base", b), ("new", n))
                     if e.untrusted)  # fmt: skip


def judge(b: Entry, n: Entry, metric: str, test: SpeedTest | None, alpha: float) -> Judgement:
    """Judge ``metric`` of a matched pair; ``test`` is its test on samples, if any."""
    change = change_of(b.metrics[metric], n.metrics[metric])
    within = tolerance(metric)
    if within is not None and change.abs != 0 and within.holds(change):
        return Judgement(change, quiet=True, within=within)
    if not is_timed(metric):
        return Judgement(change)
    why = _untrusted(b, n)
    if why:
        return Judgement(change, test, quiet=True, untrusted=why)
    if test is not None:
        low, high = _interval(test, metric, b.metrics[metric])
        return Judgement(change, test, low, high, quiet=not test.significant(alpha))
    if metric in SPREADS:
        return Judgement(change, quiet=True, note="no step times: a spread is not judged")
    noise = combined_noise(b, n)
    rel = math.inf if change.pct is None else abs(change.pct) / 100
    within_noise = change.abs != 0 and noise > 0 and rel <= noise
    return Judgement(change, noise_pct=100 * noise, quiet=within_noise)

"""Which way each metric is better, and the thresholds that gate a change (``--fail``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bench.errors import ConfigError

# The step-time statistics of a throughput record (the timing's StepStats), in ms.
STEP_STATS = ("min", "max", "mean", "stddev", "median", "iqr", "p90", "p99")

# single-stream's query latency percentiles (bench.harness.throughput), in ms: the step
# statistic of its step times (one query a step) each one is
LATENCY = {"latency_p50_ms": "median", "latency_p90_ms": "p90", "latency_p99_ms": "p99"}

# Metrics shown when no --metrics is given (any metric named by a threshold is added), where
# both records have them: single-stream's headline is its p90 latency.
HEADLINE = (
    "params",
    "param_count",
    "infer_gmacs",
    "infer_macts",
    "depth",
    "infer_samples_per_sec",
    "train_samples_per_sec",
    "latency_p90_ms",
    "peak_mem_mb",
    "top1",
    "top5",
)

HIGHER, LOWER, NEITHER = 1, -1, 0
DIRECTIONS = {
    "top1": HIGHER, "top5": HIGHER, "best_top1": HIGHER, "frac_of_peak": HIGHER,
    "cv_pct": LOWER, "loss": LOWER, "top1_err": LOWER, "top5_err": LOWER,
    **dict.fromkeys(STEP_STATS, LOWER), **dict.fromkeys(LATENCY, LOWER),
}  # fmt: skip
_SUFFIXES = (
    ("_samples_per_sec", HIGHER), ("_gmacs_per_sec", HIGHER),
    ("_step_time", LOWER), ("_time_s", LOWER),
)  # fmt: skip


def direction(metric: str) -> int:
    """HIGHER (1), LOWER (-1) or NEITHER (0): which way ``metric`` is better."""
    if metric in DIRECTIONS:
        return DIRECTIONS[metric]
    if metric.startswith("peak_mem"):
        return LOWER
    for suffix, way in _SUFFIXES:
        if metric.endswith(suffix):
            return way
    return NEITHER


def is_timed(metric: str) -> bool:
    """Whether ``metric`` comes from timing steps, so that its records' step noise applies."""
    return (
        metric in STEP_STATS
        or metric in LATENCY
        or metric.endswith(("_samples_per_sec", "_step_time"))
        or metric == "achieved_gmacs_per_sec"
    )


@dataclass(frozen=True)
class Change:
    abs: float
    pct: float | None  # None when the base is 0 and the new value is not


def change_of(base: float, new: float) -> Change:
    delta = new - base
    if base == 0:
        return Change(delta, 0.0 if delta == 0 else None)
    return Change(delta, 100.0 * delta / abs(base))


@dataclass(frozen=True)
class Tolerance:
    """How far an untimed metric moves between runs of one configuration: a change under
    ``pct`` % of the base, or under ``abs`` in the metric's unit, is no change."""

    pct: float
    abs: float
    unit: str

    def holds(self, change: Change) -> bool:
        small = abs(change.abs) < self.abs
        return small or (change.pct is not None and abs(change.pct) < self.pct)

    def __str__(self) -> str:
        return f"{self.pct:g}% or {self.abs:g} {self.unit}"


# Peak memory (MiB) moves a little with the allocator and the page cache between runs.
MEMORY_TOLERANCE = Tolerance(1.0, 1.0, "MiB")


def tolerance(metric: str) -> Tolerance | None:
    """The tolerance within which ``metric`` reads 'same' (None: any change counts)."""
    return MEMORY_TOLERANCE if metric.startswith("peak_mem") else None


def change_text(c: Change | None) -> str:
    """'+1.5 (+2.00%)', '0', or '-' when there is no change to show."""
    if c is None:
        return "-"
    if c.abs == 0:
        return "0"
    pct = "" if c.pct is None else f" ({c.pct:+.2f}%)"
    return f"{c.abs:+.4g}{pct}"


_THRESHOLD = re.compile(r"([A-Za-z_][A-Za-z0-9_]*):([+-]?)([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(%?)")


@dataclass(frozen=True)
class Threshold:
    """One ``--fail METRIC:CHANGE``.

    ``sign`` is -1 or +1 when the change was written with a sign (only a change that way
    fails), 0 when not (a change either way fails). ``relative`` when it ends in ``%``
    (percent of the base value), else absolute, in the metric's own unit.
    """

    metric: str
    limit: float
    sign: int
    relative: bool

    @classmethod
    def parse(cls, text: str) -> Threshold:
        m = _THRESHOLD.fullmatch(text.strip())
        if not m:
            raise ConfigError(
                f"Bad --fail '{text}': expected METRIC:CHANGE, such as "
                "infer_samples_per_sec:-5%, top1:-0.5 (points), infer_gmacs:1% or params:0."
            )
        metric, sign, number, pct = m.groups()
        return cls(metric, float(number), {"-": -1, "+": 1, "": 0}[sign], pct == "%")

    def __str__(self) -> str:
        sign = {-1: "-", 1: "+", 0: ""}[self.sign]
        return f"{self.metric}:{sign}{self.limit:g}{'%' if self.relative else ''}"

    def crossed(self, change: Change) -> bool:
        """Whether ``change`` is at least this large (and, when signed, in this direction)."""
        delta = change.pct if self.relative else change.abs
        if delta is None or delta == 0:
            return False
        if self.sign and (delta > 0) != (self.sign > 0):
            return False
        return abs(delta) >= self.limit


def parse_thresholds(texts: list[str] | None) -> list[Threshold]:
    return [Threshold.parse(t) for t in texts or ()]

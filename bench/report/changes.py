"""Which figures changed between runs, and whether beyond the noise of the runs compared.

A ``Series`` is one (model, harness, machine, configuration) measured in two runs or more; the
machine is the record's ``device_name`` (a CPU's label or a GPU's name), so two machines never
share a series. Each run keeps its last record; a timing too short or unsettled to trust
(``records.untrusted``) is left out of every verdict.

``verdict`` compares a series' first and latest trusted values of one metric:

- a timing (samples/s, step times) changed only when compare's tests say so
  (``bench.stats.speed_test`` on the records' samples at ``ALPHA``, else the spread rule)
  *and* the change is larger than the machine's run-to-run noise (``machine_noise``: how far
  one configuration typically moved between runs on that machine). Otherwise 'within noise'.
  ``verdicts`` judges a family of series at once (one table): their tests on samples are
  Holm-corrected (``bench.stats.holm``) before ``ALPHA`` is applied, as compare does;
- top-1 and top-5 changes are in points ('+0.4 pt'), other metrics in % of the first value;
- a deterministic metric (parameters, depth, MACs) is listed (``listed``) only when it changed.

Pure Python on the records; no torch (scipy and numpy where ``bench.stats`` tests samples).
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field

from bench.harness.throughput.config import LABELS as RUNTIME_LABELS  # cheap: no torch
from bench.report.fmt import WARN, is_number
from bench.report.records import Records, Run, untrusted
from bench.stats import combined_spread, holm, samples_of, speed_test

ALPHA = 0.05  # compare's default significance level (bench.compare.match.Options.alpha)
# Metrics that a rerun of the same code gives exactly: listed only when they changed.
DETERMINISTIC = ("params", "depth", "infer_gmacs", "infer_macts")
POINTS = ("top1", "top5")  # percentages: a change is a difference in points
SPEEDS = ("infer_samples_per_sec", "train_samples_per_sec")
TIMED = (*SPEEDS, "median", "p90")  # judged against the runs' noise
NOISE_RUNS = 3  # a configuration tells the run-to-run noise from this many trusted runs
NOISE_SERIES = 3  # and a machine's noise is told from this many such configurations

# The metrics followed over runs, in this order, where a record has them.
TREND_METRICS = (
    "params",
    "infer_gmacs",
    "infer_macts",
    "depth",
    "infer_samples_per_sec",
    "train_samples_per_sec",
    "median",
    "p90",
    "peak_mem_mb",
    "top1",
    "top5",
)
# The metric a series is summed up by in the headline table, by harness.
MAIN_METRIC = {
    "throughput": "infer_samples_per_sec",
    "finetune": "top1",
    "params": "params",
    "flops": "infer_gmacs",
    "depth": "depth",
}
# The metrics of each harness that the tables and plots follow (the model's own properties
# are followed in the harness that measures them, not in every record that copies them).
HARNESS_METRICS = {
    "throughput": (*SPEEDS, "median", "p90", "peak_mem_mb"),
    "finetune": ("top1", "top5", "train_samples_per_sec"),
    "params": ("params",),
    "flops": ("infer_gmacs", "infer_macts"),
    "depth": ("depth",),
}
SHORT_KEYS = {
    "batch_size": "bs",
    "img_size": "img",
    "finetune_img_size": "px",
    "world_size": "procs",
}
# keys whose values name themselves ('bf16', 'channels_last', 'train'): the value alone, so
# that a label telling several series apart stays within a table line
SELF_NAMED = ("precision", "layout", "mode")


@dataclass(frozen=True)
class Point:
    """One run's record of a series: the run, and the record's metrics."""

    run: Run
    metrics: dict


@dataclass
class Series:
    """One configuration on one machine measured in several runs, oldest first."""

    model: str
    harness: str
    device: str
    device_name: str
    config_key: str
    points: list[Point]
    distinct: str = ""  # what tells it from the other series of its model, harness and machine

    @property
    def configuration(self) -> str:
        return self.distinct or "-"

    @property
    def img_size(self) -> str:
        """The input size the series was measured at ('-' where its records name none)."""
        size = json.loads(self.config_key).get("img_size")
        return str(size) if size else "-"

    def metrics(self) -> list[str]:
        """The metrics its harness follows that some record has, in ``TREND_METRICS`` order."""
        have = {k for p in self.points for k, v in p.metrics.items() if is_number(v)}
        follows = HARNESS_METRICS.get(self.harness, TREND_METRICS)
        return [k for k in TREND_METRICS if k in have and k in follows]

    def values(self, metric: str) -> list[tuple[Point, float]]:
        """The trusted values of ``metric`` (timings too short to trust left out)."""
        return [
            (p, float(p.metrics[metric]))
            for p in self.points
            if is_number(p.metrics.get(metric)) and not untrusted(p.metrics)
        ]

    @property
    def main(self) -> str | None:
        """The metric the headline table sums the series up by."""
        have = self.metrics()
        main = MAIN_METRIC.get(self.harness)
        if main in have:
            return main
        return "train_samples_per_sec" if "train_samples_per_sec" in have else (have or [None])[0]


def run_order(run: Run) -> tuple[str, str]:
    return run.started_utc, run.run_id


def series(records: Records) -> list[Series]:
    """Every configuration on one machine with successful records from two runs or more."""
    history = records.history
    if history.empty:
        return []
    ok = history[history["status"] == "ok"]
    ok = ok.assign(device_name=ok["device_name"].fillna("-").astype(str))
    out = []
    keys = ["model", "harness", "device", "device_name", "config_key"]
    for (model, harness, device, name, config_key), group in ok.groupby(keys, sort=True):
        points = {}
        for rec in group.itertuples():
            points[rec.results_file] = Point(records.runs[rec.results_file], rec.metrics)
        if len(points) < 2:
            continue
        ordered = sorted(points.values(), key=lambda p: run_order(p.run))
        s = Series(model, harness, device, name, config_key, ordered)
        if s.metrics():
            out.append(s)
    _tell_apart(out)
    return out


def setting(key: str, value) -> str:
    """A configuration value in few characters: 'bs 16', 'ONNX Runtime', 'compiled', 'bf16'; a
    key a record leaves out is its default: the sync scenario, PyTorch, a lever not pulled
    ('')."""
    if key == "runtime":
        name = value or "torch"
        return RUNTIME_LABELS.get(name, str(name))
    if value is None:
        return "scenario sync" if key == "scenario" else ""
    if isinstance(value, bool):
        return key if value else ""
    if key in SELF_NAMED:
        return str(value)
    return f"{SHORT_KEYS.get(key, key)} {value}"


def _tell_apart(all_series: list[Series]) -> None:
    """Name the config values that differ between series of one model, harness and machine."""
    groups: dict[tuple, list[Series]] = {}
    for s in all_series:
        groups.setdefault((s.model, s.harness, s.device, s.device_name), []).append(s)
    for group in groups.values():
        configs = [json.loads(s.config_key) for s in group]
        keys = sorted({k for c in configs for k in c})
        varying = [k for k in keys if len({json.dumps(c.get(k)) for c in configs}) > 1]
        for s, c in zip(group, configs, strict=True):
            s.distinct = " ".join(filter(None, (setting(k, c.get(k)) for k in varying)))


@dataclass(frozen=True)
class Noise:
    """A machine's run-to-run noise: the median, over its ``configurations`` timed in
    ``NOISE_RUNS`` trusted runs or more, of their range (fastest run over slowest, less 1)."""

    band: float
    configurations: int

    def text(self) -> str:
        return f"±{100 * self.band:.0f}%"


def machine_noise(all_series: list[Series]) -> dict[str, Noise]:
    """Each machine's run-to-run noise, where enough configurations tell it."""
    ranges: dict[str, list[float]] = {}
    for s in all_series:
        for metric in SPEEDS:
            values = [v for _, v in s.values(metric)] if metric in s.metrics() else []
            if len(values) >= NOISE_RUNS and min(values) > 0:
                ranges.setdefault(s.device_name, []).append(max(values) / min(values) - 1)
    return {
        name: Noise(statistics.median(r), len(r))
        for name, r in ranges.items()
        if len(r) >= NOISE_SERIES
    }


@dataclass(frozen=True)
class Verdict:
    """What a series' first and latest trusted values of one metric say: ``text`` for a
    table cell, ``changed`` when it is a change beyond noise, ``first`` and ``latest`` the
    two points (None when fewer than two trusted values)."""

    text: str
    changed: bool = False
    first: tuple[Point, float] | None = None
    latest: tuple[Point, float] | None = None
    runs: int = 0


_NOT_RUN = object()  # a test on samples not run yet (None: there is none to run)


def _timed(first: tuple[Point, float], last: tuple[Point, float], noise: Noise | None,
           holm_p: float | None = None, test=_NOT_RUN):  # fmt: skip
    """A timing's change, or why it is within noise: compare's test (its p Holm-corrected
    over the table's tests when ``holm_p`` is given; ``test``: the one ``verdicts`` ran
    already), then the machine's noise."""
    (p0, v0), (p1, v1) = first, last
    pct = 100 * (v1 - v0) / abs(v0)
    if test is _NOT_RUN:
        test = speed_test(samples_of(p0.metrics), samples_of(p1.metrics))
    if test is not None:
        p = test.p if holm_p is None else holm_p
        if not p < ALPHA:
            return f"within noise ({'p' if holm_p is None else 'Holm p'}={p:.2g})", False
    spread = combined_spread(p0.metrics, p1.metrics) if test is None else 0.0
    if abs(pct) <= 100 * spread:
        return f"within noise (±{100 * spread:.1f}%)", False
    if noise is not None and v0 > 0 and v1 > 0 and max(v0, v1) / min(v0, v1) - 1 <= noise.band:
        return f"within run-to-run noise ({noise.text()})", False
    return f"{pct:+.1f}%", True


def _ends(s: Series, metric: str):
    """The first and latest trusted values of ``metric`` and how many there are; None when
    fewer than two."""
    values = s.values(metric)
    return (values[0], values[-1], len(values)) if len(values) >= 2 else None


def verdict(s: Series, metric: str, noise: Noise | None = None,
            holm_p: float | None = None, test=_NOT_RUN) -> Verdict:  # fmt: skip
    """Compare the first and latest trusted values of ``metric`` (see the module); ``test``:
    its test on samples when the caller ran it already (``sample_test``)."""
    ends3 = _ends(s, metric)
    if ends3 is None:
        return Verdict(f"- {WARN}", runs=len(s.values(metric)))
    first, last, runs = ends3
    ends = {"first": first, "latest": last, "runs": runs}
    v0, v1 = first[1], last[1]
    if v0 == v1:
        return Verdict("unchanged", **ends)
    if metric in POINTS:
        return Verdict(f"{v1 - v0:+.1f} pt", True, **ends)
    if v0 == 0:
        return Verdict("-", True, **ends)
    if metric in TIMED:
        text, changed = _timed(first, last, noise, holm_p, test)
        return Verdict(text, changed, **ends)
    return Verdict(f"{100 * (v1 - v0) / abs(v0):+.1f}%", True, **ends)


def sample_test(s: Series, metric: str):
    """The test on samples that ``verdict`` would judge ``metric``'s change by
    (``bench.stats.speed_test``), or None where it judges without one."""
    ends = _ends(s, metric)
    if metric not in TIMED or ends is None or ends[0][1] in (0, ends[1][1]):
        return None
    return speed_test(samples_of(ends[0][0].metrics), samples_of(ends[1][0].metrics))


def verdicts(judged: list[tuple[Series, str]], noise: Noise | None = None):
    """The verdicts of one table (each series on its metric) and how many tests on samples
    they rest on: those tests' p-values are Holm-corrected over the table before ``ALPHA``
    is applied, so that many series do not make a change out of chance."""
    tests = [sample_test(s, m) for s, m in judged]
    pvalues = [t.p for t in tests if t is not None]
    # one test needs no correction (Holm would leave its p as it is): its cell says plain p
    adjusted = iter(holm(pvalues) if len(pvalues) > 1 else [None] * len(pvalues))
    out = [
        verdict(s, m, noise, next(adjusted) if t is not None else None, t)
        for (s, m), t in zip(judged, tests, strict=True)
    ]
    return out, len(pvalues)


def changed_anywhere(s: Series, metric: str) -> bool:
    """Whether any two trusted values of ``metric`` differ."""
    return len({v for _, v in s.values(metric)}) > 1


def listed(s: Series) -> bool:
    """Whether a series is worth a row: not when all it follows is deterministic metrics
    that every run gave alike."""
    return any(m not in DETERMINISTIC or changed_anywhere(s, m) for m in s.metrics())


def shown_metrics(s: Series) -> list[str]:
    """The metrics of a series that its tables show: deterministic ones only if changed."""
    return [m for m in s.metrics() if m not in DETERMINISTIC or changed_anywhere(s, m)]


@dataclass
class Machine:
    """The listed series of one machine, its runs (oldest first) and its run-to-run noise."""

    name: str
    series: list[Series]
    noise: Noise | None
    runs: list[Run] = field(default_factory=list)

    def position(self, run: Run) -> int:
        """A run's number on this machine (1 for its first): its key in the runs table."""
        return self.runs.index(run) + 1


def machines(all_series: list[Series]) -> list[Machine]:
    """The listed series grouped by machine, machines by name."""
    noise = machine_noise(all_series)
    out = []
    for name in sorted({s.device_name for s in all_series}):
        mine = [s for s in all_series if s.device_name == name and listed(s)]
        if not mine:
            continue
        runs = sorted({p.run for s in mine for p in s.points}, key=run_order)
        out.append(Machine(name, mine, noise.get(name), runs))
    return out

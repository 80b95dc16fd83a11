"""Compare two sets of results and gate regressions: ``python -m bench compare BASE NEW``.

Each side is a run id (looked up in a results store), a run document, a store folder (its
latest complete run, or every run with ``all_runs``) or a timm results CSV (``model``
plus timm's columns: ``infer_samples_per_sec``, ``param_count``, ``infer_gmacs``, ``top1``...).
cnn-bench records are matched on (model, harness, device, configuration), the key the
reports use; against a timm CSV, which has no harness or configuration, on the model name
alone. What only one side has is listed, never dropped.

Which way is better (``DIRECTIONS``): a metric's direction decides the words "better" and
"worse" in the table, never whether a threshold fails (the threshold's own sign does).

=========================================================  =========================
metric                                                     better when
=========================================================  =========================
``*_samples_per_sec``, ``*_gmacs_per_sec``, ``frac_of_peak``  higher
``top1``, ``top5``, ``best_top1``                          higher
step times (``min`` ... ``p99``, ``*_step_time``), ``cv_pct``  lower
``peak_mem*``, ``*_time_s``, ``loss``, ``top1_err``, ``top5_err``  lower
anything else (``params``, ``param_count``, ``infer_gmacs``,  neither: a change is a change
``infer_macts``, ``depth``...)
=========================================================  =========================

Thresholds (``Threshold.parse``) read ``METRIC:CHANGE``: ``infer_samples_per_sec:-5%`` fails
on a drop of 5% or more, ``top1:-0.5`` on a drop of half a point or more, ``infer_gmacs:1%``
on a change of 1% or more either way, ``params:0`` on any change at all.

Noise (``noise_spread``): a change of a timed metric (samples/s, step times) counts only if
it is larger than the spread of the step times both records carry; otherwise it is reported
"within noise" and fails no threshold. No torch here; pandas is imported where it is used.
"""

from __future__ import annotations

import difflib
import json
import logging
import math
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import ConfigError
from bench.report.fmt import natural as _natural
from bench.storage import ResultStore

logger = logging.getLogger(__name__)

# The step-time statistics of a throughput record (bench/harness/_timing.py StepStats), in ms.
STEP_STATS = ("min", "max", "mean", "stddev", "median", "iqr", "p90", "p99")

# Metrics shown when no --metrics is given (any metric named by a threshold is added).
HEADLINE = (
    "params", "param_count", "infer_gmacs", "infer_macts", "depth", "infer_samples_per_sec",
    "train_samples_per_sec", "peak_mem_mb", "top1", "top5",
)  # fmt: skip

HIGHER, LOWER, NEITHER = 1, -1, 0
DIRECTIONS = {
    "top1": HIGHER, "top5": HIGHER, "best_top1": HIGHER, "frac_of_peak": HIGHER,
    "cv_pct": LOWER, "loss": LOWER, "top1_err": LOWER, "top5_err": LOWER,
    **dict.fromkeys(STEP_STATS, LOWER),
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
        or metric.endswith(("_samples_per_sec", "_step_time"))
        or metric == "achieved_gmacs_per_sec"
    )


# -- thresholds --------------------------------------------------------------------------
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


# -- what each side holds --------------------------------------------------------------
@dataclass(frozen=True)
class Change:
    abs: float
    pct: float | None  # None when the base is 0 and the new value is not


def change_of(base: float, new: float) -> Change:
    delta = new - base
    if base == 0:
        return Change(delta, 0.0 if delta == 0 else None)
    return Change(delta, 100.0 * delta / abs(base))


@dataclass
class Entry:
    """One record (or one row of a timm CSV): its identity and its numeric metrics."""

    model: str
    harness: str = ""
    device: str = ""
    config: dict = field(default_factory=dict)
    status: str = "ok"
    error: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def key(self) -> tuple:
        return (self.model, self.harness, self.device, json.dumps(self.config, sort_keys=True))


@dataclass
class Side:
    label: str
    entries: list[Entry]
    by_name: bool = False  # a timm CSV: matched on the model name alone


def noise_spread(entry: Entry) -> float:
    """The relative spread of a record's step times, as a fraction (0 when it has none).

    IQR over median when the record has them: throughput is samples over step time, so a
    relative spread of the step time is, to first order, the same relative spread of
    samples/s. The IQR is used rather than the standard deviation because one slow step
    (a page fault, a clock change) inflates the standard deviation of a handful of rounds
    and would hide a real regression; stddev over mean is the fall-back.
    """
    m = entry.metrics
    if m.get("median", 0) > 0 and "iqr" in m:
        return m["iqr"] / m["median"]
    if m.get("mean", 0) > 0 and "stddev" in m:
        return m["stddev"] / m["mean"]
    return m.get("cv_pct", 0.0) / 100.0


def combined_noise(base: Entry, new: Entry) -> float:
    """Both sides' spreads added in quadrature, as a fraction.

    The two runs' noise is independent, so the spread of their ratio is the root of the
    sum of squares; adding the spreads would assume they always err together and would
    hide regressions. Either way the floors hold: 1% against 1% gives 1.4%, far under a
    20% drop; 40% against 1% gives 40%, over it.
    """
    return math.hypot(noise_spread(base), noise_spread(new))


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return None if isinstance(v, float) and math.isnan(v) else v


def _entries(frame) -> list[Entry]:
    from bench.report.generate import latest

    out = []
    for rec in latest(frame).itertuples():
        numbers = {k: _number(v) for k, v in rec.metrics.items()}
        out.append(
            Entry(
                model=rec.model, harness=rec.harness, device=rec.device, config=rec.config,
                status=rec.status, error=rec.error,
                metrics={k: v for k, v in numbers.items() if v is not None},
            )
        )  # fmt: skip
    return out


def _store_side(root: Path, all_runs: bool) -> Side:
    from bench.report.generate import load_records

    frame = load_records(root)
    if frame.empty:
        raise ConfigError(
            f"No results in {root}/: expected <machine>/<time>_<run id>.json documents. "
            "Give the results store folder, a run document, a run id or a timm CSV."
        )
    if all_runs:
        return Side(f"{root} (all runs)", _entries(frame))
    docs = [d for d in ResultStore(root).load() if d.get("status") == "complete"]
    if not docs:
        raise ConfigError(f"No complete run in {root}/. Pass --all to compare every run.")
    doc = max(docs, key=lambda d: (d.get("started_utc") or "", d.get("run_id") or ""))
    frame = frame[frame["results_file"] == doc["_path"]]
    return Side(f"{root} (latest complete run {doc.get('run_id')})", _entries(frame))


def _file_side(path: Path) -> Side:
    """One run document anywhere on disk, read through the store's own loader."""
    from bench.report.generate import load_records

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "run").mkdir()
        shutil.copyfile(path, Path(tmp) / "run" / path.name)
        frame = load_records(tmp)
    if frame.empty:
        raise ConfigError(
            f"{path} is not a cnn-bench results document (or has no records). Give a file "
            "written by 'python -m bench run', a store folder, a run id or a timm CSV."
        )
    return Side(str(path), _entries(frame))


def _run_side(run_id: str, results: Path) -> Side:
    from bench.report.generate import load_records

    frame = load_records(results) if results.is_dir() else None
    if frame is None or frame.empty:
        raise ConfigError(
            f"'{run_id}' is not a file or folder, and there is no results store at "
            f"{results}/ to look it up as a run id. Pass --results DIR."
        )
    ids = sorted(set(frame["run_id"].dropna()))
    found = [i for i in ids if i == run_id] or [i for i in ids if i.startswith(run_id)]
    if len(found) != 1:
        close = difflib.get_close_matches(run_id, ids, n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        what = "matches several runs" if found else "is no run id"
        raise ConfigError(
            f"'{run_id}' {what} in {results}/ and is not a file or folder.{hint} Run ids are "
            "the last part of the results file names (<time>_<run id>.json)."
        )
    frame = frame[frame["run_id"] == found[0]]
    return Side(f"run {found[0]} ({frame['results_file'].iloc[0]})", _entries(frame))


def _timm_side(path: Path) -> Side:
    import pandas as pd

    try:
        table = pd.read_csv(path)
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise ConfigError(f"Cannot read {path} as CSV: {e}") from e
    if "model" not in table.columns:
        raise ConfigError(
            f"{path} has no 'model' column: expected a timm results CSV "
            "(model, top1, param_count, ... or model, infer_samples_per_sec, ...)."
        )
    entries, seen = [], set()
    for row in table.to_dict("records"):
        name = str(row.pop("model"))
        if name in seen:
            logger.warning("%s lists %s more than once; the first row is used", path, name)
            continue
        seen.add(name)
        numbers = {k: _number(v) for k, v in row.items()}
        entries.append(
            Entry(model=name, metrics={k: v for k, v in numbers.items() if v is not None})
        )
    return Side(f"{path} (timm CSV)", entries, by_name=True)


def load_side(spec: str, results: str | Path = "results", all_runs: bool = False) -> Side:
    """A run id, a run document, a store folder or a timm CSV, as a Side."""
    path = Path(spec)
    if path.is_dir():
        return _store_side(path, all_runs)
    if path.is_file():
        return _timm_side(path) if path.suffix.lower() == ".csv" else _file_side(path)
    return _run_side(spec, Path(results))


# -- comparing ------------------------------------------------------------------------
@dataclass
class Row:
    """One line of the comparison: a metric of a matched pair, or an unmatched record."""

    model: str
    harness: str
    device: str
    config: str
    metric: str
    base: float | None
    new: float | None
    change: Change | None
    noise_pct: float | None
    verdict: str
    failed: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "harness": self.harness, "device": self.device,
            "config": self.config, "metric": self.metric, "base": self.base, "new": self.new,
            "change": self.change.abs if self.change else None,
            "change_pct": self.change.pct if self.change else None,
            "noise_pct": self.noise_pct, "verdict": self.verdict, "failed": self.failed,
        }  # fmt: skip

    def where(self) -> str:
        return " ".join(p for p in (self.harness, self.device, self.config) if p)


def _varying_keys(entries: list[Entry]) -> dict[str, list[str]]:
    """Per harness, the config keys whose values differ between records: what tells them apart."""
    values: dict[tuple[str, str], set[str]] = {}
    for e in entries:
        for k, v in e.config.items():
            values.setdefault((e.harness, k), set()).add(json.dumps(v, sort_keys=True))
    out: dict[str, list[str]] = {}
    for (harness, k), seen in sorted(values.items()):
        if len(seen) > 1:
            out.setdefault(harness, []).append(k)
    return out


def _selected(b: Entry, n: Entry, metrics, thresholds: list[Threshold]) -> list[str]:
    common = b.metrics.keys() & n.metrics.keys()
    named = [t.metric for t in thresholds]
    if metrics == ["all"]:
        return sorted(common)
    wanted = list(metrics or HEADLINE)
    if metrics is None and "params" in common and "param_count" not in named:
        wanted.remove("param_count")  # the exact count says it already
    wanted += [m for m in named if m not in wanted]
    return [m for m in wanted if m in common]


def _timm_comparable(e: Entry) -> bool:
    """A fine-tuned top-1 is on its own data set: comparable with timm's only on ImageNet."""
    return e.harness != "finetune" or str(e.config.get("dataset", "")).startswith("imagenet")


def _value_cells(b: Entry, n: Entry, metric: str) -> tuple[Change, float | None, bool]:
    change = change_of(b.metrics[metric], n.metrics[metric])
    if not is_timed(metric):
        return change, None, False
    noise = combined_noise(b, n)
    rel = math.inf if change.pct is None else abs(change.pct) / 100
    return change, 100 * noise, change.abs != 0 and noise > 0 and rel <= noise


def _verdict(metric: str, change: Change, noise_pct, within: bool, crossed) -> str:
    if change.abs == 0:
        return "same"
    if within:
        return f"within noise (±{noise_pct:.1f}%)"
    way = direction(metric) * (1 if change.abs > 0 else -1)
    word = {1: "better", -1: "worse", 0: "changed"}[way]
    return f"{word}; FAIL {', '.join(map(str, crossed))}" if crossed else word


@dataclass
class Comparison:
    base: Side
    new: Side
    rows: list[Row] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def render(self, fmt: str = "markdown") -> str:
        if fmt == "json":
            doc = {"base": self.base.label, "new": self.new.label,
                   "rows": [r.as_dict() for r in self.rows], "failures": self.failures}  # fmt: skip
            return json.dumps(doc, indent=1) + "\n"
        import pandas as pd

        table = pd.DataFrame([r.as_dict() for r in self.rows], columns=list(_COLUMNS))
        if fmt == "csv":
            return table.to_csv(index=False, lineterminator="\n")
        return _markdown(self)


_COLUMNS = Row("", "", "", "", "", None, None, None, None, "").as_dict()


def _fmt(v) -> str:
    if v is None:
        return "-"
    return f"{v:,}" if isinstance(v, int) else f"{v:.6g}"


def _fmt_change(c: Change | None) -> str:
    if c is None:
        return "-"
    if c.abs == 0:
        return "0"
    pct = "" if c.pct is None else f" ({c.pct:+.2f}%)"
    return f"{c.abs:+.4g}{pct}"


def _markdown(cmp: Comparison, limit: int = 30) -> str:
    import pandas as pd

    lines = [f"Base: {cmp.base.label}", f"New:  {cmp.new.label}", ""]
    matched = [r for r in cmp.rows if not r.verdict.startswith("only in")]
    if matched:
        view = [
            {"model": r.model, "where": r.where(), "metric": r.metric, "base": _fmt(r.base),
             "new": _fmt(r.new), "change": _fmt_change(r.change), "verdict": r.verdict}
            for r in matched
        ]  # fmt: skip
        lines.append(pd.DataFrame(view).to_markdown(index=False, disable_numparse=True))
    else:
        lines.append("No metric in common.")
    for side in ("base", "new"):
        only = [r for r in cmp.rows if r.verdict == f"only in {side}"]
        if only:
            names = [f"{r.model} [{r.where()}]" if r.where() else r.model for r in only]
            more = f", ... and {len(names) - limit} more" if len(names) > limit else ""
            lines += ["", f"Only in {side} ({len(names)}): {', '.join(names[:limit])}{more}"]
    if cmp.failures:
        lines += ["", "Thresholds crossed:", *(f"- {f}" for f in cmp.failures)]
    return "\n".join(lines) + "\n"


class _Builder:
    """Collects the rows of one comparison."""

    def __init__(self, base: Side, new: Side, thresholds: list[Threshold], metrics):
        self.base, self.new = base, new
        self.thresholds, self.metrics = thresholds, metrics
        self.by_name = base.by_name or new.by_name
        self.vary = _varying_keys(base.entries + new.entries)
        self.rows: list[Row] = []
        self.failures: list[str] = []

    def key(self, e: Entry) -> tuple:
        return (e.model,) if self.by_name else e.key

    def row(self, e: Entry, metric: str = "", **cells) -> Row:
        keys = self.vary.get(e.harness, [])
        config = " ".join(f"{k}={e.config[k]}" for k in keys if k in e.config)
        base = {"base": None, "new": None, "change": None, "noise_pct": None}
        return Row(e.model, e.harness, e.device, config, metric, **{**base, **cells})

    def pair(self, b: Entry, n: Entry) -> None:
        if b.status != "ok" or n.status != "ok":
            self.status_pair(b, n)
            return
        if self.by_name and not (_timm_comparable(b) and _timm_comparable(n)):
            return
        shown = b if self.new.by_name else n  # name the record, not the CSV row
        for metric in _selected(b, n, self.metrics, self.thresholds):
            change, noise_pct, within = _value_cells(b, n, metric)
            crossed = [t for t in self.thresholds if t.metric == metric and t.crossed(change)]
            failed = bool(crossed) and not within
            row = self.row(shown, metric, base=b.metrics[metric], new=n.metrics[metric],
                           change=change, noise_pct=noise_pct, failed=failed,
                           verdict=_verdict(metric, change, noise_pct, within, crossed))  # fmt: skip
            self.rows.append(row)
            if failed:
                pct = "" if change.pct is None else f" ({change.pct:+.2f}%)"
                self.failures.append(
                    f"{row.model} {metric} {change.abs:+.4g}{pct} crosses "
                    f"{', '.join(map(str, crossed))} [{row.where()}]"
                )

    def status_pair(self, b: Entry, n: Entry) -> None:
        if n.status != "ok":
            verdict = f"failed in {'both' if b.status != 'ok' else 'new'}: {n.error}"
        else:
            verdict = f"failed in base: {b.error}; ok in new"
        failed = bool(self.thresholds) and b.status == "ok"
        row = self.row(b if b.status == "ok" else n, verdict=verdict, failed=failed)
        self.rows.append(row)
        if failed:
            self.failures.append(f"{row.model} {row.harness} failed in new: {n.error}")

    def unmatched(self, only_base: list[Entry], only_new: list[Entry]) -> None:
        """A record that failed has no config: pair it with its harness's records on the
        other side before calling anything unmatched."""
        for side, others in ((only_new, only_base), (only_base, only_new)):
            for e in [e for e in side if e.status != "ok"]:
                partners = [o for o in others if (o.model, o.harness) == (e.model, e.harness)]
                for o in partners:
                    self.pair(*((o, e) if side is only_new else (e, o)))
                    others.remove(o)
                if partners:
                    side.remove(e)
        for side, entries in (("base", only_base), ("new", only_new)):
            seen = set()
            for e in entries:
                if self.by_name and e.model in seen:
                    continue  # a model without a match is listed once, not per record
                seen.add(e.model)
                if self.by_name:  # matched on the name alone: the name is what is missing
                    e = Entry(e.model)
                self.rows.append(self.row(e, verdict=f"only in {side}"))

    def build(self) -> Comparison:
        bidx: dict[tuple, list[Entry]] = {}
        nidx: dict[tuple, list[Entry]] = {}
        for idx, side in ((bidx, self.base), (nidx, self.new)):
            for e in side.entries:
                idx.setdefault(self.key(e), []).append(e)
        for k in sorted(bidx.keys() & nidx.keys(), key=self.order):
            for b in bidx[k]:
                for n in nidx[k]:
                    self.pair(b, n)
        only_base = [e for k in sorted(bidx.keys() - nidx.keys(), key=self.order) for e in bidx[k]]
        only_new = [e for k in sorted(nidx.keys() - bidx.keys(), key=self.order) for e in nidx[k]]
        self.unmatched(only_base, only_new)
        return Comparison(self.base, self.new, self.rows, self.failures)

    @staticmethod
    def order(key: tuple) -> tuple:
        return (_natural(key[0]), *key[1:])


def _check_thresholds(thresholds: list[Threshold], sides: tuple[Side, Side]) -> None:
    """A metric neither side has is a typo (an error) unless cnn-bench knows the name: then
    these results lack it (a warning; the threshold checks nothing)."""
    present = {m for s in sides for e in s.entries for m in e.metrics}
    for t in thresholds:
        if t.metric in present:
            continue
        if t.metric in HEADLINE or direction(t.metric) != NEITHER:
            logger.warning("--fail %s: neither side has %s; nothing to check", t, t.metric)
        else:
            close = difflib.get_close_matches(t.metric, sorted(present | set(HEADLINE)), n=3)
            hint = f" Did you mean {' or '.join(close)}?" if close else ""
            raise ConfigError(
                f"--fail {t}: neither side has a metric '{t.metric}'.{hint} Metric names are "
                "the records' (infer_samples_per_sec, params, param_count, infer_gmacs, top1...)."
            )


def compare(
    base: str,
    new: str,
    thresholds: list[Threshold] | None = None,
    *,
    results: str | Path = "results",
    all_runs: bool = False,
    metrics: list[str] | None = None,
) -> Comparison:
    """Load both sides, match their records and judge every shared metric."""
    thresholds = thresholds or []
    sides = (load_side(base, results, all_runs), load_side(new, results, all_runs))
    _check_thresholds(thresholds, sides)
    return _Builder(*sides, thresholds, metrics).build()

"""The comparison's rows and how they are written: markdown, CSV or JSON; one pair of sides
(``Comparison``) or one column per run (``MultiComparison``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from bench.compare.machines import machine_lines
from bench.compare.metrics import MEMORY_TOLERANCE, Change, change_text
from bench.compare.sides import Side
from bench.report.fmt import metric_cell
from bench.report.records import UNTRUSTED_RULE
from bench.stats import RANK_ROUNDS


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
    test: str = ""  # the test's p-value and interval, or the rule used instead
    p_value: float | None = None
    p_adjusted: float | None = None  # after the table's correction for its number of tests
    interval: tuple[float | None, float | None] | None = None  # of the change, in %
    machines: str = ""  # 'A vs B' for a cross-machine pair
    untrusted: str = ""  # why a timing was not judged: either side's is not to be trusted

    def as_dict(self) -> dict[str, Any]:
        low, high = self.interval or (None, None)
        return {
            "model": self.model,
            "harness": self.harness,
            "device": self.device,
            "config": self.config,
            "metric": self.metric,
            "base": self.base,
            "new": self.new,
            "change": self.change.abs if self.change else None,
            "change_pct": self.change.pct if self.change else None,
            "noise_pct": self.noise_pct,
            "verdict": self.verdict,
            "failed": self.failed,
            "p_value": self.p_value,
            "p_adjusted": self.p_adjusted,
            "ci_low_pct": low,
            "ci_high_pct": high,
            "test": self.test,
            "cross_machine": self.machines,
            "untrusted": self.untrusted,
        }

    def where(self) -> str:
        return " ".join(p for p in (self.harness, self.device, self.config) if p)


COLUMNS = tuple(Row("", "", "", "", "", None, None, None, None, "").as_dict())
NOTES = (
    "Timings are judged on the records' samples (two-sided, alpha {alpha}; {confidence:.0%} "
    "intervals): a speed on its rounds where both records have two or more (a t-test on the "
    "logs of the rounds' samples/s below {rank} rounds a side, Mann-Whitney U with a bootstrap "
    "interval of the ratio of medians from {rank}), else on its median step time; each "
    "step-time statistic (median, p90, p99, max...) on that statistic of the step times, by a "
    "block bootstrap over contiguous blocks, so that steps that drift together are not counted "
    "as independent (one round: within-run noise only). A threshold fails only when the change "
    "is significant after the correction and its whole interval lies beyond it."
)

SPREAD_NOTE = (
    "Verdicts without a p-value are on records without samples: the spread rule (each step-time "
    "IQR over its median, the two in quadrature), not a test."
)
TOLERANCE_NOTE = f"Peak memory within {MEMORY_TOLERANCE} of the base reads 'same'."
UNTRUSTED_NOTE = (
    f"Untrusted timings ({UNTRUSTED_RULE}) are not judged: they read '{{verdict}}' and fail no "
    "--fail threshold (listed on stderr when one names them)."
)


def notes_of(rows: list[Row], alpha: float, confidence: float) -> str:
    """What the table's verdicts rest on, for the rows it has."""
    notes = []
    if any(r.p_value is not None for r in rows):
        notes.append(NOTES.format(alpha=alpha, confidence=confidence, rank=RANK_ROUNDS))
    if any(r.noise_pct is not None for r in rows):
        notes.append(SPREAD_NOTE)
    if any(r.verdict.startswith("same (within") for r in rows):
        notes.append(TOLERANCE_NOTE)
    if any(r.untrusted for r in rows):
        notes.append(UNTRUSTED_NOTE.format(verdict="untrusted: re-measure"))
    return " ".join(notes)


def correction_line(tests: int) -> str:
    """The line under a table that names its correction for many tests."""
    if not tests:
        return "Multiple comparisons: no test on samples in this table, so no correction."
    return (
        f"Multiple comparisons: Holm's correction over the {tests} test(s) on samples in this "
        "table; verdicts and --fail use the corrected p (the test column's 'Holm')."
    )


def _side_lines(title: str, side: Side) -> list[str]:
    pad = " " * len(title)
    return [f"{title}{side.label}", *(f"{pad}on {m}" for m in machine_lines(side))]


@dataclass
class Comparison:
    base: Side
    new: Side
    rows: list[Row] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    note: str = ""  # what the verdicts rest on (notes_of)
    correction: str = ""  # the correction for many tests (correction_line)
    unjudged: list[str] = field(default_factory=list)  # untrusted rows that --fail names

    @property
    def exit_code(self) -> int:
        """compare's exit status: 1 when a --fail threshold is crossed, else 0."""
        return 1 if self.failures else 0

    def to_pandas(self):
        """The table as a DataFrame: one row per (record, metric), ``COLUMNS``."""
        import pandas as pd

        return pd.DataFrame([r.as_dict() for r in self.rows], columns=list(COLUMNS))

    def render(self, fmt: str = "markdown") -> str:
        if fmt == "json":
            doc = {
                "base": self.base.label,
                "new": self.new.label,
                "machines": {"base": machine_lines(self.base), "new": machine_lines(self.new)},
                "rows": [r.as_dict() for r in self.rows],
                "correction": self.correction,
                "failures": self.failures,
                "unjudged": self.unjudged,
            }
            return json.dumps(doc, indent=1) + "\n"
        if fmt == "csv":
            return self.to_pandas().to_csv(index=False, lineterminator="\n")
        return _markdown(self)


def _matched_view(rows: list[Row]) -> list[dict[str, str]]:
    return [
        {
            "model": r.model,
            "where": r.where(),
            "metric": r.metric,
            "base": metric_cell(r.base),
            "new": metric_cell(r.new),
            "change": change_text(r.change),
            "verdict": r.verdict,
            "test": r.test or "-",
        }
        for r in rows
    ]


def _markdown(cmp: Comparison, limit: int = 30) -> str:
    import pandas as pd

    lines = [*_side_lines("Base: ", cmp.base), *_side_lines("New:  ", cmp.new), ""]
    matched = [r for r in cmp.rows if not r.verdict.startswith("only in")]
    if matched:
        view = pd.DataFrame(_matched_view(matched))
        lines.append(view.to_markdown(index=False, disable_numparse=True))
    else:
        lines.append("No metric in common.")
    for side in ("base", "new"):
        only = [r for r in cmp.rows if r.verdict == f"only in {side}"]
        if only:
            names = [f"{r.model} [{r.where()}]" if r.where() else r.model for r in only]
            more = f", ... and {len(names) - limit} more" if len(names) > limit else ""
            lines += ["", f"Only in {side} ({len(names)}): {', '.join(names[:limit])}{more}"]
    lines += [y for text in (cmp.note, cmp.correction) if text for y in ("", text)]
    if cmp.failures:
        lines += ["", "Thresholds crossed:", *(f"- {f}" for f in cmp.failures)]
    return "\n".join(lines) + "\n"


@dataclass
class MultiComparison:
    """Several runs against the first: one pairwise ``Comparison`` per later run."""

    sides: list[Side]
    pairs: list[Comparison]

    @property
    def failures(self) -> list[str]:
        return [f"{p.new.column}: {f}" for p in self.pairs for f in p.failures]

    @property
    def unjudged(self) -> list[str]:
        return [f"{p.new.column}: {u}" for p in self.pairs for u in p.unjudged]

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0

    def to_pandas(self):
        """Every pair's rows in one DataFrame, a ``run`` column (the later run) first."""
        import pandas as pd

        rows = [{"run": p.new.column, **r.as_dict()} for p in self.pairs for r in p.rows]
        return pd.DataFrame(rows, columns=["run", *COLUMNS])

    def render(self, fmt: str = "markdown") -> str:
        if fmt == "json":
            docs = [json.loads(p.render("json")) for p in self.pairs]
            return json.dumps({"base": self.sides[0].label, "comparisons": docs}, indent=1) + "\n"
        if fmt == "csv":
            return self.to_pandas().to_csv(index=False, lineterminator="\n")
        return _wide_markdown(self)


def _cell(r: Row) -> str:
    """'90.1 (-9.90%, worse)': the value, its change from the base, and the verdict."""
    if r.change is None or r.change.abs == 0:
        return f"{metric_cell(r.new)} ({r.verdict})" if r.change is None else metric_cell(r.new)
    pct = f"{r.change.pct:+.2f}%" if r.change.pct is not None else change_text(r.change)
    p = f", Holm p={r.p_adjusted:.2g}" if r.p_adjusted is not None else ""
    return f"{metric_cell(r.new)} ({pct}, {r.verdict}{p})"


def _wide_markdown(multi: MultiComparison) -> str:
    import pandas as pd

    base = multi.sides[0]
    columns = [f"1: {base.column} (base)"]
    columns += [f"{i}: {s.column}" for i, s in enumerate(multi.sides[1:], 2)]
    lines = _side_lines("1:    ", base)
    for i, side in enumerate(multi.sides[1:], 2):
        lines += _side_lines(f"{i}:".ljust(6), side)
    table: dict[tuple, dict[str, str]] = {}
    for column, p in zip(columns[1:], multi.pairs, strict=True):
        for r in p.rows:
            if not r.metric:
                continue
            row = table.setdefault((r.model, r.where(), r.metric), {
                "model": r.model, "where": r.where(), "metric": r.metric,
                columns[0]: metric_cell(r.base),
            })  # fmt: skip
            row[column] = _cell(r)
    columns = ["model", "where", "metric", *columns]
    lines.append("")
    if table:
        view = pd.DataFrame(list(table.values()), columns=columns).fillna("-")
        lines.append(view.to_markdown(index=False, disable_numparse=True))
    else:
        lines.append("No metric in common.")
    notes = list(dict.fromkeys(p.note for p in multi.pairs if p.note))
    notes += [f"{p.new.column}: {p.correction}" for p in multi.pairs]
    lines += [y for note in notes for y in ("", note)]
    if multi.failures:
        lines += ["", "Thresholds crossed:", *(f"- {f}" for f in multi.failures)]
    return "\n".join(lines) + "\n"

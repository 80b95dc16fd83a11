"""The page's trends: every configuration measured in several runs, its first and latest value
of each metric, and one small-multiples plot per metric that changed."""

from __future__ import annotations

from bench.report.html.cells import num, text
from bench.report.html.plots import trend_panels
from bench.report.html.render import Cell, Figure, Row, Table, Text
from bench.report.records import Records, Run
from bench.report.trends import TREND_METRICS, Series, series

KINDS = {
    "params": "count",
    "depth": "count",
    "infer_gmacs": "gmacs",
    "infer_macts": "gmacs",
    "infer_samples_per_sec": "rate",
    "train_samples_per_sec": "rate",
    "median": "ms",
    "p90": "ms",
    "peak_mem_mb": "mib",
    "top1": "top1",
    "top5": "top1",
}


# Step times (median, p90) mirror samples/s: the table shows them, the plots do not.
PLOTTED = tuple(m for m in TREND_METRICS if m not in ("median", "p90"))


def _label(run: Run) -> str:
    return f"run {run.run_id}, {run.started_utc[:16].replace('T', ' ')} UTC, commit {run.commit}, torch {run.torch}"


def _values(s: Series, metric: str) -> list[tuple[Run, float]]:
    return [
        (label, float(m[metric]))
        for label, m in s.points
        if isinstance(m.get(metric), (int, float)) and not isinstance(m.get(metric), bool)
    ]


def _row(s: Series, metric: str) -> Row | None:
    vals = _values(s, metric)
    if len(vals) < 2:
        return None
    (first_run, first), (last_run, last) = vals[0], vals[-1]
    change = 100 * (last - first) / abs(first) if first else None
    kind = KINDS.get(metric, "gmacs")
    cells = (
        text(s.model),
        text(s.harness),
        text(s.device),
        text(s.distinct, "the only configuration"),
        text(metric),
        num(len(vals), "count"),
        num(first, kind, title=_label(first_run)),
        num(last, kind, title=_label(last_run)),
        num(change, "pct", "the first value is 0"),
        Cell(
            f"{first_run.run_id} → {last_run.run_id}",
            title=f"{_label(first_run)} → {_label(last_run)}",
        ),
    )
    return Row(cells, title=f"configuration {s.config_key}")


def _figures(all_series: list[Series], order: list[Run]) -> list[Figure]:
    ticks = [f"{r.run_id} {r.started_utc[5:10]}" for r in order]
    figures = []
    for metric in PLOTTED:
        lines = []
        for s in all_series:
            vals = _values(s, metric)
            if len(vals) < 2 or not vals[0][1] or len({v for _, v in vals}) < 2:
                continue
            first = vals[0][1]
            pts = [(order.index(r), 100 * (v - first) / abs(first)) for r, v in vals]
            what = f"{s.model} {s.device} {s.distinct}".replace("runtime=None", "runtime=torch")
            lines.append((what, pts))
        if lines:
            figures.append(
                Figure(
                    trend_panels(metric, lines, ticks),
                    f"trends of {metric}",
                    f"{metric}: the {len(lines)} configurations whose value changed",
                )
            )
    return figures


def trends_blocks(records: Records) -> list:
    all_series = series(records)
    rows = tuple(r for s in all_series for m in s.metrics() if (r := _row(s, m)) is not None)
    order = sorted(
        {label for s in all_series for label, _ in s.points},
        key=lambda r: (r.started_utc, r.run_id),
    )
    columns = (
        "Model",
        "Harness",
        "Device",
        "Configuration",
        "Metric",
        "Runs",
        "First",
        "Latest",
        "Change",
        "Runs compared",
    )
    return [
        Text(
            "Every (model, harness, device, configuration) measured in more than one run: each "
            "metric's first and latest value (hover for the runs' date, commit and torch). The "
            "plots show the configurations whose value changed, in % of their first run."
        ),
        Table("trends", columns, rows, empty="No configuration measured in two runs yet."),
        *_figures(all_series, order),
    ]

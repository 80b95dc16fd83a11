"""The page's trends: every configuration measured in several runs on one machine, its first and
latest value of each metric and whether that is a change beyond the runs' noise (the verdicts
of ``bench.report.changes``, as in trends.md), and the plots trends.md links to."""

from __future__ import annotations

from bench.report.changes import Machine, Series, machines, shown_metrics, verdict
from bench.report.fmt import metric_label
from bench.report.html.cells import num, text
from bench.report.html.render import Cell, Figure, Row, Table, Text
from bench.report.records import Records, Run
from bench.report.trends import PLOTTED, plot_png, series

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


def _label(run: Run) -> str:
    return f"run {run.run_id}, {run.started_utc[:16].replace('T', ' ')} UTC, commit {run.commit}, torch {run.torch}"


def _row(machine: Machine, s: Series, metric: str) -> Row | None:
    v = verdict(s, metric, machine.noise)
    if v.first is None or v.latest is None:
        return None
    (first_point, first), (last_point, last) = v.first, v.latest
    first_run, last_run = first_point.run, last_point.run
    kind = KINDS.get(metric, "gmacs")
    cells = (
        text(s.model),
        text(s.harness),
        text(machine.name),
        text(s.distinct, "the only configuration of this model and harness on this machine"),
        text(metric_label(metric)),
        num(v.runs, "count"),
        num(first, kind, title=_label(first_run)),
        num(last, kind, title=_label(last_run)),
        Cell(v.text, title="a change beyond the runs' noise" if v.changed else ""),
        Cell(
            f"#{machine.position(first_run)} → #{machine.position(last_run)}",
            title=f"{_label(first_run)} → {_label(last_run)}",
        ),
    )
    return Row(cells, title=f"configuration {s.config_key}")


def _figures(all_series: list[Series]) -> list[Figure]:
    figures = []
    for metric in PLOTTED:
        png = plot_png(all_series, metric)
        if png is not None:
            figures.append(
                Figure(
                    png,
                    f"trends of {metric_label(metric)}",
                    f"{metric_label(metric)}: change from each configuration's first trusted "
                    "run, one machine a panel, the grey band its run-to-run noise",
                )
            )
    return figures


def trends_blocks(records: Records) -> list:
    all_series = series(records)
    rows = tuple(
        r
        for machine in machines(all_series)
        for s in machine.series
        for m in shown_metrics(s)
        if (r := _row(machine, s, m)) is not None
    )
    columns = (
        "Model",
        "Harness",
        "Machine",
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
            "Every (model, harness, machine, configuration) measured in more than one run: each "
            "metric's first and latest trusted value (hover for the runs' date, commit and "
            "torch; '#n' numbers the machine's runs as trends.md does). A timing's change is "
            "named only when compare's test calls it and it exceeds the machine's run-to-run "
            "noise, else 'within noise'; top-1 changes are in points; parameters, depth and "
            "MACs appear only where they changed."
        ),
        Table("trends", columns, rows, empty="No configuration measured in two runs yet."),
        *_figures(all_series),
    ]

"""The page's trends figures: the plots trends.md links to (its tables reach the page through
``bench.report.sections``)."""

from __future__ import annotations

from bench.report.fmt import metric_label
from bench.report.html.render import Figure
from bench.report.records import Records
from bench.report.trends import PLOTTED, plot_png, series


def _figures(all_series) -> list[Figure]:
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


def trends_figures(records: Records) -> list[Figure]:
    """The plots trends.md links to, one per followed metric with something to draw."""
    return _figures(records.derived(series))

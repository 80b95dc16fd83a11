"""The page's trends: the blocks of trends.md (``bench.report.trends``: one section per
machine, its headline table of changes, every run's figures and its numbered runs) drawn with
the same columns, and the plots trends.md links to."""

from __future__ import annotations

from bench.report.fmt import metric_label
from bench.report.html.blocks import page_blocks, plain
from bench.report.html.render import Figure, Text
from bench.report.records import Records
from bench.report.trends import PLOTTED, plot_png, series, trends_blocks, trends_intro


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


def trends_page_blocks(records: Records) -> list:
    all_series = series(records)
    blocks = trends_blocks(all_series)
    if not blocks:
        return [Text("No configuration measured in two runs yet.")]
    intro = Text(plain(trends_intro(all_series)))
    return [intro, *page_blocks(blocks, "trends-part"), *_figures(all_series)]

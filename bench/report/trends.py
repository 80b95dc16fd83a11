"""Trends: ``reports/trends.md`` and ``reports/trends.png`` (and ``trends_<metric>.png``),
written only when the store holds several runs of one (model, harness, machine, configuration).

Registered in ``bench.report.sections.SECTIONS``. The series, and whether a change is one or
within the noise of the runs compared, come from ``bench.report.changes``. One section per
machine: its headline table, each model's runs, its runs numbered (the plots' x axis). Reads
only the results (no torch); the plots use matplotlib's Agg backend and write no timestamp or
version, so the same results give the same bytes.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from bench.report.blocks import Heading, Para, Tbl
from bench.report.changes import (
    ALPHA,
    HARNESS_METRICS,
    NOISE_RUNS,
    NOISE_SERIES,
    SPEEDS,
    Machine,
    Series,
    listed,
    machines,
    series,
    shown_metrics,
    verdicts,
)
from bench.report.fmt import WARN, Footnotes, fmt_metric, metric_label, wrap
from bench.report.plot import png_bytes
from bench.report.records import UNTRUSTED_RULE, Records, untrusted
from bench.storage import atomic_write_bytes

__all__ = ["PLOTTED", "panels", "plot_png", "series", "trend_figure", "trends_section_blocks"]

PLOT = "trends.png"
MAX_SERIES = 8  # per panel of a plot
FONT = 9  # points: the smallest type on a plot
# The metrics plotted: speeds and memory (step times follow samples/s; accuracy and the
# deterministic metrics are read in the tables).
PLOTTED = ("infer_samples_per_sec", "train_samples_per_sec", "peak_mem_mb")


def _headline_rows(machine: Machine) -> tuple[list[dict], int, int]:
    """One row per series judged on its main metric; how many had too few trusted values;
    and how many tests on samples the table's verdicts rest on (Holm-corrected together)."""
    rows, unjudged = [], 0
    judged, tests = verdicts([(s, s.main or "") for s in machine.series], machine.noise)
    for s, v in zip(machine.series, judged, strict=True):
        main = s.main or ""
        if v.first is None or v.latest is None:
            unjudged += 1
            continue
        rows.append(
            {
                "Model": s.model,
                "Harness": s.harness,
                "Configuration": s.configuration,
                "px": s.img_size,
                "Metric": metric_label(main),
                "Runs": str(v.runs),
                "First": fmt_metric(main, v.first[1]),
                "Latest": fmt_metric(main, v.latest[1]),
                "Change": v.text,
            }
        )
    return rows, unjudged, tests


def _detail_rows(machine: Machine, mine: list[Series]) -> list[dict]:
    """Every run's figures of the series of one model and harness on one machine."""
    have = {m for s in mine for m in shown_metrics(s)}
    metrics = [m for m in HARNESS_METRICS.get(mine[0].harness, ()) if m in have]
    rows = []
    for s in mine:
        for p in s.points:
            flag = f" {WARN}" if untrusted(p.metrics) else ""
            rows.append(
                {"Configuration": s.configuration, "px": s.img_size}
                | {"Run": f"#{machine.position(p.run)} `{p.run.run_id}`"}
                | {metric_label(m): fmt_metric(m, p.metrics.get(m)) + flag for m in metrics}
            )
    return rows


def _runs_rows(machine: Machine) -> list[dict]:
    return [
        {"#": str(n), "Run": r.run_id, "Date": r.date, "Commit": r.commit, "torch": r.torch}
        for n, r in enumerate(machine.runs, 1)
    ]


def _noise_text(machine: Machine) -> str:
    if machine.noise is None:
        return (
            f"Fewer than {NOISE_SERIES} configurations were timed here in {NOISE_RUNS} trusted "
            "runs or more, so the run-to-run noise is unknown: a timing's change is judged on "
            "its two records alone."
        )
    band = machine.noise.band
    return (
        f"Run-to-run noise here: {machine.noise.text()} (a speed moving by a factor of up to "
        f"{1 + band:.2f} either way), the median range (fastest run over slowest) of the "
        f"{machine.noise.configurations} configurations timed in {NOISE_RUNS} trusted runs or "
        "more."
    )


def _correction_text(tests: int) -> str:
    """Under a headline table: the multiple-comparison correction its verdicts used."""
    if tests == 0:
        return "Multiple comparisons: no test on samples in this table, so no correction."
    if tests == 1:
        return "Multiple comparisons: one test on samples in this table, so no correction."
    return (
        f"Multiple comparisons: Holm's correction over the {tests} tests on samples in this "
        f"table; a change is named only where the corrected p is below {ALPHA:g} ('Holm p')."
    )


def _machine_blocks(machine: Machine) -> list:
    rows, unjudged, tests = _headline_rows(machine)
    blocks: list = [Heading(machine.name, 2), Para(_noise_text(machine))]
    empty = "No configuration here has two trusted values."
    blocks += [Tbl("", tuple(rows), empty=empty), Para(_correction_text(tests))]
    if unjudged:
        blocks.append(
            Para(
                f"{unjudged} configuration(s) with fewer than two trusted timings ({WARN}) are "
                "only in the tables below."
            )
        )
    groups: dict[tuple, list[Series]] = {}
    for s in machine.series:
        groups.setdefault((s.model, s.harness), []).append(s)
    for (model, harness), mine in groups.items():
        blocks += [Heading(f"{model}: {harness}", 3), Tbl("", tuple(_detail_rows(machine, mine)))]
    blocks += [Heading(f"Runs on {machine.name}", 3), Tbl("", tuple(_runs_rows(machine)))]
    return blocks


def trends_blocks(all_series: list[Series]) -> list:
    """The report's blocks after its introduction: one section per machine (markdown and
    page draw the same tables; each table's id numbered for the page)."""
    blocks = [b for machine in machines(all_series) for b in _machine_blocks(machine)]
    n = iter(range(1, len(blocks) + 1))
    return [replace(b, table_id=f"trends-{next(n)}") if isinstance(b, Tbl) else b for b in blocks]


def trends_intro(all_series: list[Series]) -> str:
    """What the report shows and how a change is judged, in words."""
    text = (
        "Every (model, harness, machine, configuration) measured in more than one run, one "
        "section per machine. Its first table sums each configuration up by one metric, "
        "first and latest trusted run. A timing's change is named only when compare's test "
        "calls it (a test on the records' samples, their rounds where both have two or more, "
        f"else their step times, at p < {ALPHA:g} after Holm's correction over the table's "
        "tests; without samples, the step times' spread of "
        "both records in quadrature) and it is larger than the machine's run-to-run noise; "
        "otherwise it reads 'within noise'. Top-1 and top-5 changes are in points (pt). "
        "Parameters, depth and MACs are listed only where they changed. The tables after it "
        "give every run's figures; the last one numbers the machine's runs (the plots' x axis) "
        "with their date, commit (`+`: uncommitted changes) and torch version. Step times "
        "(median, p90) are in ms, peak memory in MiB. Configuration '-': the only one of its "
        f"model and harness there. {WARN}: a timing too "
        f"short or unsettled to trust ({UNTRUSTED_RULE}), left out of the change and of the "
        f"plots. [{PLOT}]({PLOT}) plots inference samples/s as the change from each "
        "configuration's first trusted run, one machine a panel, the grey band its run-to-run "
        "noise; `trends_<metric>.png` does the same for training samples/s and peak memory."
    )
    alike = sum(not listed(s) for s in all_series)
    if alike:
        text += (
            f" Not listed: {alike} configuration(s) of parameters, depth or MACs that every run "
            "measured alike."
        )
    return text


def plotted(all_series: list[Series], metric: str) -> list[Series]:
    """The series that a plot of ``metric`` draws: those of a harness that follows it, with
    two trusted values that differ."""
    out = []
    for s in all_series:
        values = [v for _, v in s.values(metric)] if metric in s.metrics() else []
        if len(values) >= 2 and len(set(values)) > 1:
            out.append(s)
    return out


def panels(all_series: list[Series], metric: str) -> list[tuple[Machine, list[Series]]]:
    """The plotted series of ``metric``: one machine a panel, at most ``MAX_SERIES`` each."""
    out = []
    for machine in machines(all_series):
        mine = sorted(plotted(machine.series, metric), key=lambda s: (s.model, s.distinct))
        out += [(machine, mine[i : i + MAX_SERIES]) for i in range(0, len(mine), MAX_SERIES)]
    return out


def _points(machine: Machine, s: Series, metric: str) -> tuple[list[int], list[float]]:
    """The series' runs on the machine's run numbers, in % of its first trusted value, NaN
    where a run between two of its points did not measure it (a gap, not a line)."""
    values = {machine.position(p.run): v for p, v in s.values(metric)}
    first = values[min(values)]
    xs = list(range(min(values), max(values) + 1))
    nan = float("nan")
    return xs, [100.0 * (values[x] - first) / abs(first) if x in values else nan for x in xs]


def _panel(ax, machine: Machine, group: list[Series], metric: str, xs: tuple[int, int]) -> None:
    """One machine's series of ``metric`` over the run numbers ``xs`` (first, last)."""
    from matplotlib.ticker import MaxNLocator

    if machine.noise is not None and metric in SPEEDS:
        band = machine.noise.band  # a factor of 1 + band either way
        ax.axhspan(100 * (1 / (1 + band) - 1), 100 * band, color="grey", alpha=0.15, lw=0,
                   label=f"run-to-run noise ({machine.noise.text()})")  # fmt: skip
    for i, s in enumerate(group):
        x, y = _points(machine, s, metric)
        label = "\n".join(wrap(f"{s.model} {s.distinct}".strip(), 36))
        ax.plot(x, y, marker="os^Dv<>p"[i % 8], color=f"C{i}", label=label)
    ax.axhline(0, color="grey", linewidth=0.5)
    ax.grid(True, alpha=0.3)
    ax.set_xlim(xs[0] - 0.5, xs[1] + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.tick_params(labelsize=FONT)
    ax.set_ylabel("change from first run (%)", fontsize=FONT)
    ax.set_xlabel(f"run # on this machine (trends.md: Runs on {machine.name})", fontsize=FONT)
    ax.legend(fontsize=FONT, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


def _run_span(groups, metric: str) -> dict[str, tuple[int, int]]:
    """Each machine's first and last run number that a panel of ``metric`` plots."""
    used: dict[str, list[int]] = {}
    for machine, group in groups:
        for s in group:
            used.setdefault(machine.name, []).extend(
                machine.position(p.run) for p, _ in s.values(metric)
            )
    return {name: (min(xs), max(xs)) for name, xs in used.items()}


def trend_figure(all_series: list[Series], metric: str = "infer_samples_per_sec"):
    """Small multiples of one metric: each configuration's change from its first trusted
    run, in %, one machine a panel, legends outside the axes; None when nothing changed."""
    groups = panels(all_series, metric)
    if not groups:
        return None
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(groups), 1, figsize=(11, 0.4 + 3.6 * len(groups)), dpi=100, squeeze=False,
        layout="constrained",
    )  # fmt: skip
    spans = _run_span(groups, metric)
    count = {name: sum(m.name == name for m, _ in groups) for name in spans}
    seen: dict[str, int] = {}
    for ax, (machine, group) in zip(axes[:, 0], groups, strict=True):
        seen[machine.name] = seen.get(machine.name, 0) + 1
        n, of = seen[machine.name], count[machine.name]
        _panel(ax, machine, group, metric, spans[machine.name])
        more = f", {n} of {of}" if of > 1 else ""
        ax.set_title(f"{machine.name}: {metric_label(metric)}{more}", fontsize=FONT + 1)
    return fig


def plot_png(all_series: list[Series], metric: str = "infer_samples_per_sec") -> bytes | None:
    """``trend_figure`` as PNG bytes (None when nothing changed)."""
    fig = trend_figure(all_series, metric)
    if fig is None:
        return None
    import matplotlib.pyplot as plt

    try:
        return png_bytes(fig)
    finally:
        plt.close(fig)


def plot_name(metric: str) -> str:
    return PLOT if metric == "infer_samples_per_sec" else f"trends_{metric}.png"


def trends_wanted(records: Records) -> bool:
    """Whether trends.md is written: some configuration was measured in several runs."""
    return bool(machines(records.derived(series)))


def trends_section_intro(records: Records) -> str:
    return (
        "Generated by `python -m bench report` from `results/`; do not edit by hand. "
        + trends_intro(records.derived(series))
    )


def trends_section_blocks(records: Records, table, notes: Footnotes) -> list:
    return trends_blocks(records.derived(series))


def trends_plots(records: Records, table, out_dir) -> list[Path]:
    """Write one plot per followed metric that has a series to draw."""
    all_series = records.derived(series)
    out = Path(out_dir)
    written = []
    for metric in PLOTTED:
        png = plot_png(all_series, metric)
        if png is not None:
            atomic_write_bytes(out / plot_name(metric), png)
            written.append(out / plot_name(metric))
    return written

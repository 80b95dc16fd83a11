"""Trends: ``reports/trends.md`` and ``reports/trends.png``, written only when the store holds
several runs of one (model, harness, device, configuration).

Registered in ``bench.report.generate.SECTIONS``. Reads the history the store holds
(``Records.history``, every record, not only the latest) and labels each run by its start
date (UTC), its git commit and its torch version (``Records.runs``). Reads only the results
(no torch); the plot uses matplotlib's Agg backend and writes no timestamp or version, so the
same results give the same bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from bench.report.fmt import WARN, fmt_metric, is_number, md_table, metric_label, wrap
from bench.report.plot import png_bytes
from bench.report.records import MAX_CV_PCT, MIN_TIMED_S, Records, Run, untrusted
from bench.storage import atomic_write_bytes, atomic_write_text

MARKDOWN = "trends.md"
PLOT = "trends.png"

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


def _tick(run: Run) -> str:
    return f"{run.run_id}\n{run.date}\n{run.commit}\ntorch {run.torch}"


def _run_order(run: Run) -> tuple[str, str]:
    return run.started_utc, run.run_id


@dataclass
class Series:
    """One configuration measured in several runs: (run, metrics) oldest first."""

    model: str
    harness: str
    device: str
    config_key: str
    points: list[tuple[Run, dict]]
    distinct: str = ""  # what tells it from other series of the same model and harness

    @property
    def title(self) -> str:
        extra = f" {self.distinct}" if self.distinct else ""
        return f"{self.model}: {self.harness} ({self.device}){extra}"

    def metrics(self) -> list[str]:
        have = {k for _, m in self.points for k, v in m.items() if is_number(v)}
        return [k for k in TREND_METRICS if k in have]


def series(records: Records) -> list[Series]:
    """Every configuration with successful records from two runs or more."""
    history = records.history
    if history.empty:
        return []
    ok = history[history["status"] == "ok"]
    out = []
    keys = ["model", "harness", "device", "config_key"]
    for (model, harness, device, config_key), group in ok.groupby(keys, sort=True):
        points = {}
        for rec in group.itertuples():
            run = records.runs[rec.results_file]
            points[rec.results_file] = (run, rec.metrics)  # a run's last record wins
        if len(points) < 2:
            continue
        ordered = sorted(points.values(), key=lambda p: _run_order(p[0]))
        s = Series(model, harness, device, config_key, ordered)
        if s.metrics():
            out.append(s)
    _tell_apart(out)
    return out


def _tell_apart(all_series: list[Series]) -> None:
    """Name the config values that differ between series of one model, harness and device."""
    groups: dict[tuple, list[Series]] = {}
    for s in all_series:
        groups.setdefault((s.model, s.harness, s.device), []).append(s)
    for group in groups.values():
        configs = [json.loads(s.config_key) for s in group]
        keys = sorted({k for c in configs for k in c})
        varying = [k for k in keys if len({json.dumps(c.get(k)) for c in configs}) > 1]
        for s, c in zip(group, configs, strict=True):
            s.distinct = " ".join(filter(None, (_setting(k, c.get(k)) for k in varying)))


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
    "throughput": (
        "infer_samples_per_sec",
        "train_samples_per_sec",
        "median",
        "p90",
        "peak_mem_mb",
    ),
    "finetune": ("top1", "top5", "train_samples_per_sec"),
    "params": ("params",),
    "flops": ("infer_gmacs", "infer_macts"),
    "depth": ("depth",),
}
MAX_SERIES = 8  # per panel of a plot
# The metrics plotted (step times follow samples/s, top-5 follows top-1).
PLOTTED = (
    "infer_samples_per_sec",
    "train_samples_per_sec",
    "peak_mem_mb",
    "top1",
    "params",
    "infer_gmacs",
    "infer_macts",
    "depth",
)
SHORT_KEYS = {
    "batch_size": "bs",
    "img_size": "img",
    "finetune_img_size": "px",
    "world_size": "procs",
}


def _main(s: Series) -> str | None:
    have = s.metrics()
    main = MAIN_METRIC.get(s.harness)
    if main in have:
        return main
    return "train_samples_per_sec" if "train_samples_per_sec" in have else (have or [None])[0]


def _values(s: Series, metric: str) -> list[tuple[Run, float]]:
    """The series' trusted values of ``metric`` (timings too short to trust left out)."""
    return [
        (run, m[metric]) for run, m in s.points if is_number(m.get(metric)) and not untrusted(m)
    ]


def _change(pts: list[tuple[Run, float]]) -> str:
    if len(pts) < 2:
        return f"- {WARN}"
    first, last = pts[0][1], pts[-1][1]
    if first == last:
        return "unchanged"
    return f"{100.0 * (last - first) / abs(first):+.1f}%" if first else "-"


def _machines(s: Series) -> str:
    names = dict.fromkeys(f"{run.machine_name or '-'}, torch {run.torch}" for run, _ in s.points)
    return "; ".join(names)


def _headline_rows(all_series: list[Series]) -> list[dict]:
    rows = []
    for i, s in enumerate(all_series, 1):
        main = _main(s) or ""
        pts = _values(s, main)
        rows.append(
            {
                "#": str(i),
                "Model": s.model,
                "Harness": s.harness,
                "Configuration": s.distinct or "-",
                "Machine, torch": _machines(s),
                "Metric": metric_label(main),
                "First": fmt_metric(main, pts[0][1]) if pts else "-",
                "Latest": fmt_metric(main, pts[-1][1]) if pts else "-",
                "Change": _change(pts),
            }
        )
    return rows


def _detail_rows(all_series: list[Series], group: tuple) -> list[dict]:
    """Every run's figures of the series of one (model, harness, device)."""
    harness = group[1]
    mine = [(i, s) for i, s in enumerate(all_series, 1) if (s.model, s.harness, s.device) == group]
    have = {m for _, s in mine for m in s.metrics()}
    metrics = [m for m in HARNESS_METRICS.get(harness, TREND_METRICS) if m in have]
    rows = []
    for i, s in mine:
        for run, values in s.points:
            flag = f" {WARN}" if untrusted(values) else ""
            rows.append(
                {"#": str(i), "Run": f"`{run.run_id}` {run.date}"}
                | {metric_label(m): fmt_metric(m, values.get(m)) + flag for m in metrics}
            )
    return rows


def _runs_rows(all_series: list[Series]) -> list[dict]:
    runs = sorted({run for s in all_series for run, _ in s.points}, key=_run_order)
    return [
        {
            "Run": r.run_id,
            "Date": r.date,
            "Commit": r.commit,
            "torch": r.torch,
            "Machine": r.machine_name or "-",
        }
        for r in runs
    ]


def _setting(key: str, value) -> str:
    """A configuration value in few characters: 'bs 16', 'onnxruntime', 'compiled'."""
    if key == "runtime":
        return str(value or "torch")
    if isinstance(value, bool):
        return key if value else ""
    return f"{SHORT_KEYS.get(key, key)} {value}"


def trends_markdown(all_series: list[Series]) -> str:
    text = (
        "Every (model, harness, device, configuration) measured in more than one run. The first "
        "table sums each up by one metric (first run, latest run, change); the tables after it "
        "give every run's figures, and the last one each run's date, machine, commit (`+`: the "
        "checkout had uncommitted changes) and torch version. Step times (median, p90) are in "
        f"ms, peak memory in MiB. {WARN}: a timing too short or unsettled to trust (under "
        f"{MIN_TIMED_S:g} s timed, a warm-up that did not stabilise, or step times varying more than "
        f"{MAX_CV_PCT:g}%); it is left out of the "
        "change and of the plots; a change of '- ⚠' had fewer than two trusted timings. "
        "The plots show each metric relative to its first trusted run, "
        f"at most {MAX_SERIES} configurations a panel: [{PLOT}]({PLOT}) for inference samples/s, "
        "`trends_<metric>.png` for the others."
    )
    lines = [
        "# Trends",
        "",
        "Generated by `python -m bench report` from `results/`; do not edit by hand.",
        *wrap(text),
        "",
        md_table(_headline_rows(all_series)),
    ]
    for group in dict.fromkeys((s.model, s.harness, s.device) for s in all_series):
        title = f"## {group[0]}: {group[1]} ({group[2]})"
        lines += ["", title, "", md_table(_detail_rows(all_series, group))]
    lines += ["", "## Runs", "", md_table(_runs_rows(all_series))]
    return "\n".join(lines) + "\n"


def _relative(s: Series, metric: str, runs: list[Run]) -> tuple[list[int], list[float]]:
    """Positions (in ``runs``) and values in % of the series' first trusted value."""
    pts = [(runs.index(run), v) for run, v in _values(s, metric)]
    if not pts or pts[0][1] == 0:
        return [], []
    first = pts[0][1]
    return [x for x, _ in pts], [100.0 * (v - first) / abs(first) for _, v in pts]


def plotted(all_series: list[Series], metric: str) -> list[Series]:
    """The series that a plot of ``metric`` draws: those of a harness that follows it, with
    two trusted values that differ."""
    out = []
    for s in all_series:
        if metric not in HARNESS_METRICS.get(s.harness, ()):
            continue
        values = [v for _, v in _values(s, metric)]
        if len(values) >= 2 and len(set(values)) > 1:
            out.append(s)
    return out


def panels(all_series: list[Series], metric: str) -> list[list[Series]]:
    """The plotted series of ``metric`` in panels of at most ``MAX_SERIES``, one model's
    configurations together where they fit."""
    chunks: list[list[Series]] = []
    for s in sorted(plotted(all_series, metric), key=lambda s: (s.model, s.title)):
        if not chunks or len(chunks[-1]) >= MAX_SERIES:
            chunks.append([])
        chunks[-1].append(s)
    return chunks


def _label(s: Series) -> str:
    text = f"{s.model} ({s.device}) {s.distinct}".strip()
    return "\n".join(wrap(text, 48))


def _panel(ax, group: list[Series], metric: str) -> None:
    runs = sorted({run for s in group for run, _ in s.points}, key=_run_order)
    for i, s in enumerate(group):
        xs, ys = _relative(s, metric, runs)
        ax.plot(xs, ys, marker="os^Dv<>p"[i % 8], label=_label(s))
    ax.axhline(0, color="grey", linewidth=0.5)
    ax.grid(True, alpha=0.3)
    ax.set_ylabel("change from first run (%)", fontsize=8)
    ax.set_xticks(
        range(len(runs)),
        [f"{r.run_id}\n{r.date}" for r in runs],
        fontsize=6,
        rotation=30,
        ha="right",
    )
    ax.set_xlim(-0.5, len(runs) - 0.5)
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


def plot_png(all_series: list[Series], metric: str = "infer_samples_per_sec") -> bytes | None:
    """Small multiples of one metric: each configuration's change from its first trusted
    run, in %, at most ``MAX_SERIES`` a panel, legends outside the axes."""
    groups = panels(all_series, metric)
    if not groups:
        return None
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(groups), 1, figsize=(11, 0.6 + 3.2 * len(groups)), dpi=100, squeeze=False
    )
    try:
        for n, (ax, group) in enumerate(zip(axes[:, 0], groups, strict=True), 1):
            _panel(ax, group, metric)
            ax.set_title(
                f"{metric_label(metric)}: change from each configuration's first run, "
                f"panel {n} of {len(groups)}",
                fontsize=9,
            )
        axes[-1, 0].set_xlabel("run: id and start date (UTC)", fontsize=8)
        fig.tight_layout()
        return png_bytes(fig)
    finally:
        plt.close(fig)


def plot_name(metric: str) -> str:
    return PLOT if metric == "infer_samples_per_sec" else f"trends_{metric}.png"


def trends_section(records: Records, table, out_dir) -> list[Path]:
    """Write trends.md and its plots when some configuration was measured in several runs."""
    all_series = series(records)
    if not all_series:
        return []
    out = Path(out_dir)
    atomic_write_text(out / MARKDOWN, trends_markdown(all_series))
    written = [out / MARKDOWN]
    for metric in PLOTTED:
        png = plot_png(all_series, metric)
        if png is not None:
            atomic_write_bytes(out / plot_name(metric), png)
            written.append(out / plot_name(metric))
    return written

"""Runtimes side by side, for ``reports/throughput.md`` and ``reports/runtimes.png``: the best
trusted inference samples/s of each runtime per machine and workload (``workload_key`` less the
runtime, layout and levers: model, weights, batch, input size and precision held equal), each
speed-up set against the eager PyTorch record that differs from it in the fewest things (and
naming the others). Reads the tidy table only (no torch); the plot is drawn with matplotlib's
Agg backend, one panel per machine and input size."""

from __future__ import annotations

import math
from typing import NamedTuple

from bench.report.best import machine_of
from bench.report.blocks import Heading, Para, Tbl, slug
from bench.report.fmt import WARN, fmt_int, fmt_sps, is_missing, is_number
from bench.report.plot import png_bytes
from bench.report.records import untrusted
from bench.report.workload import (
    LOSSY,
    LOSSY_MARK,
    NOT_MEASURED,
    SCENARIO,
    Workload,
    precision_text,
    workload_key,
)

HARNESS = "throughput"
RUNTIME_PLOT = "runtimes.png"
# the side-by-side table's columns: (label, runtime, compiled)
SIDE_BY_SIDE = (
    ("PyTorch eager", "torch", False),
    ("PyTorch compiled", "torch", True),
    ("ONNX Runtime", "onnxruntime", False),
    ("OpenVINO", "openvino", False),
)


def throughput_rows(table):
    """The throughput harness's rows of the tidy table (empty frame if none)."""
    if table.empty or "harness" not in table.columns:
        return table.iloc[0:0]
    return table[table["harness"] == HARNESS].reset_index(drop=True)


def runtime_of(r: dict) -> str:
    """A record's runtime: PyTorch's records carry none (their keys predate runtimes)."""
    v = r.get("runtime")
    return "torch" if is_missing(v) else str(v)


class Group(NamedTuple):
    """The rows of one workload on one machine that differ only in how they were run."""

    machine: str
    workload: Workload  # the first row's (its runtime, layout and levers aside)
    best: dict  # {column label: the best row or None}
    rows: list[dict]


# What a runtime comparison may vary: the runtime, and the layout and levers each runtime
# chose (named in the speed-up's cell where they differ from the baseline's).
VARIED = ("runtime", "layout", "levers")


def _best_by_runtime(table) -> list[Group]:
    """Each machine's workloads (``workload_key`` less ``VARIED``: a 64 px speed is never set
    beside a 224 px one, nor INT8 beside fp32) where at least two of ``SIDE_BY_SIDE``'s columns
    were measured, with the best row of each column."""
    rows = throughput_rows(table)
    if rows.empty or "runtime" not in rows.columns or "infer_samples_per_sec" not in rows.columns:
        return []
    recs = [
        r
        for r in rows.to_dict("records")
        if is_number(r.get("infer_samples_per_sec")) and not untrusted(r)
    ]
    groups: dict[tuple, list[dict]] = {}
    for r in recs:
        groups.setdefault((machine_of(r), workload_key(r).without(*VARIED)), []).append(r)
    out = []
    for (machine, _), mine in sorted(groups.items(), key=lambda kv: kv[0][0]):
        best = {}
        for label, runtime, compiled in SIDE_BY_SIDE:
            cell = [
                r
                for r in mine
                if runtime_of(r) == runtime and (r.get("compiled") is True) == compiled
            ]
            best[label] = max(cell, key=lambda r: r["infer_samples_per_sec"]) if cell else None
        if sum(r is not None for r in best.values()) >= 2:
            out.append(Group(machine, workload_key(mine[0]), best, mine))
    return out


def _baseline(label: str, r: dict, eager: dict, recs: list[dict]) -> dict:
    """The eager PyTorch record that differs from ``r`` in the fewest things: for compiled
    PyTorch, eager PyTorch at the same layout and precision where one was measured."""
    if label != "PyTorch compiled":
        return eager
    same = [
        e
        for e in recs
        if runtime_of(e) == "torch"
        and e.get("compiled") is not True
        and (e.get("layout"), e.get("precision")) == (r.get("layout"), r.get("precision"))
    ]
    return max(same, key=lambda e: e["infer_samples_per_sec"]) if same else eager


def _speedup_cell(label: str, r: dict | None, eager: dict | None, recs: list[dict]) -> str:
    """Samples/s and the speed-up over eager PyTorch, naming every difference but the
    column's own (compiling, or the runtime)."""
    if r is None:
        return "-"
    sps = r["infer_samples_per_sec"]
    if eager is None or label == "PyTorch eager":
        return fmt_sps(sps)
    base = _baseline(label, r, eager, recs)
    extra = [str(r.get(k)) for k in ("layout", "precision") if r.get(k) != base.get(k)]
    if base is not eager:
        extra.append(f"vs eager {base.get('layout')}")
    detail = f", also {' and '.join(extra)}" if extra else ""
    return f"{fmt_sps(sps)} ({sps / base['infer_samples_per_sec']:.2f}x{detail})"


def _lead(g: Group, weights: bool) -> dict:
    """A row's first cells: what its workload is (a scenario other than sync after its batch)."""
    w = g.workload
    row = {"Model": w.model}
    if weights:
        row["Weights (sha256)"] = (w.weights_sha256 or "-")[:12]
    scenario = "" if w.scenario == SCENARIO else f" {w.scenario}"  # sync reads as before
    unmeasured = any(r.get("accuracy") == NOT_MEASURED for r in g.rows)  # speed-only INT8
    precision = precision_text(w.precision, NOT_MEASURED if unmeasured else None)
    return row | {"Batch": fmt_int(w.batch) + scenario, "px": fmt_int(w.img_size),
                  "Precision": precision}  # fmt: skip


def side_by_side(table) -> list[tuple[str, dict]]:
    """(machine, row) per workload: the best inference samples/s of each runtime and its
    speed-up over eager PyTorch; an empty list when no two runtimes measured one workload."""
    groups = _best_by_runtime(table)
    weights = any(g.workload.weights_sha256 for g in groups)
    out = []
    for g in groups:
        row = _lead(g, weights)
        for label in g.best:
            row[label] = _speedup_cell(label, g.best[label], g.best["PyTorch eager"], g.rows)
        out.append((g.machine, row))
    return out


def _agreement(table) -> list[tuple[str, dict]]:
    groups = [g for g in _best_by_runtime(table) if g.best["ONNX Runtime"] or g.best["OpenVINO"]]
    weights = any(g.workload.weights_sha256 for g in groups)
    out = []
    for g in groups:
        row = _lead(g, weights)
        for label in ("ONNX Runtime", "OpenVINO"):
            r = g.best.get(label)
            if r is None or is_missing(r.get("max_abs_diff")):
                row[label] = "-"
                continue
            top1 = "same top-1" if r.get("top1_agree") is True else f"{WARN} top-1 differs"
            row[label] = f"{r['max_abs_diff']:.2g}, {top1}"
        out.append((g.machine, row))
    return out


def _per_machine(rows: list[tuple[str, dict]], prefix: str) -> list:
    out: list = []
    for machine in dict.fromkeys(m for m, _ in rows):
        mine = tuple(r for m, r in rows if m == machine)
        out += [Heading(machine, 3), Tbl(f"{prefix}-{slug(machine)}", mine)]
    return out


RUNTIMES_TEXT = (
    "Best inference samples/s of each runtime per machine and workload (model, weights, batch, "
    "input size px, precision: a row never mixes two), among the timings that can be trusted, "
    "and its speed-up over eager PyTorch at the same workload. A speed-up names every other "
    "difference from that baseline (layout); compiled PyTorch is set against eager PyTorch at "
    f"its own layout where that was measured. {LOSSY_MARK} after a precision: bf16, fp16 or "
    "INT8, whose outputs differ from fp32's beyond rounding. Rows where fewer than two runtimes "
    f"were measured are left out. The plot is [{RUNTIME_PLOT}]({RUNTIME_PLOT})."
)


def runtimes_blocks(table) -> list:
    sbs = side_by_side(table)
    if not sbs:
        return []
    return [
        Heading("Runtimes side by side"),
        Para(RUNTIMES_TEXT),
        *_per_machine(sbs, "runtimes"),
        Para("Agreement with eager PyTorch fp32 on the same input (max abs diff, top-1):"),
        *_per_machine(_agreement(table), "agreement"),
    ]


def _tick(g: Group) -> str:
    """A workload's bar label, as the table's lead cells name it: model, batch, a scenario
    other than sync, and the precision (a speed-only INT8's 'accuracy not measured')."""
    lead = _lead(g, weights=False)
    return f"{g.workload.model} @{lead['Batch']}, {lead['Precision']}"


def log_floor(lowest: float) -> float:
    """The power of ten below ``lowest`` (strictly): where a log axis of bars starts, so that
    the lowest bar has a length and two bars' lengths compare as their logs do (an axis that
    starts at the lowest bar shows 40 against 50 as a sliver against a bar)."""
    return 10.0 ** (math.ceil(math.log10(lowest)) - 1)


def _bars(ax, panel: list[Group]) -> None:
    """One panel's grouped bars, one colour per runtime (only those measured in the panel); a
    lossy precision's bars hatched."""
    labels = [label for label, _, _ in SIDE_BY_SIDE if any(g.best[label] for g in panel)]
    width = 0.8 / len(labels)
    values = [g.best[label]["infer_samples_per_sec"] for g in panel for label in labels
              if g.best[label]]  # fmt: skip
    for i, label in enumerate(labels):
        colour = f"C{[s[0] for s in SIDE_BY_SIDE].index(label)}"
        xs = [k + (i - (len(labels) - 1) / 2) * width for k in range(len(panel))]
        drawn = [(x, g) for x, g in zip(xs, panel, strict=True) if g.best[label]]
        for j, (x, g) in enumerate(drawn):
            hatch = "//" if g.workload.precision in LOSSY else None
            ax.bar(x, g.best[label]["infer_samples_per_sec"], width, color=colour, hatch=hatch,
                   label=None if j else label)  # fmt: skip
    names = [_tick(g) for g in panel]
    ax.set_xticks(range(len(names)), names, fontsize=7, rotation=30, ha="right")
    ax.set_xlim(-0.6, max(len(panel), 4) - 0.4)  # one workload is not one wide bar
    ax.set_yscale("log")
    ax.set_ylim(bottom=log_floor(min(values)))
    ax.set_ylabel("inference samples/s")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=7, frameon=False)


def runtimes_png(table) -> bytes | None:
    """Samples/s of each runtime per workload (grouped bars, log scale), one panel per machine
    and input size; PNG bytes."""
    groups = _best_by_runtime(table)
    if not groups:
        return None
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    panels: dict[tuple, list[Group]] = {}
    for g in groups:
        panels.setdefault((g.machine, g.workload.img_size), []).append(g)
    widest = max(len(p) for p in panels.values())
    fig, axes = plt.subplots(len(panels), 1, figsize=(max(8, 0.8 * widest + 4), 0.6 + 3.4 * len(panels)),
                             squeeze=False, layout="constrained")  # fmt: skip
    try:
        for ax, ((machine, px), panel) in zip(axes[:, 0], sorted(panels.items()), strict=True):
            _bars(ax, panel)
            ax.set_title(f"{machine}, {px} px input", fontsize=9)
        fig.suptitle("Runtimes side by side: best trusted samples/s per workload "
                     "(hatched: a lossy precision)", fontsize=9)  # fmt: skip
        return png_bytes(fig, dpi=100)
    finally:
        plt.close(fig)

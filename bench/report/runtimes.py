"""Runtimes side by side, for ``reports/throughput.md`` and ``reports/runtimes.png``: the best
inference samples/s of each runtime per model, device, batch and input size, each speed-up set against
the eager PyTorch record that differs from it in the fewest things (and naming the others).
Reads the tidy table only (no torch); the plot is drawn with matplotlib's Agg backend."""

from __future__ import annotations

from bench.report.fmt import WARN, fmt_int, fmt_sps, is_missing, md_table, wrap
from bench.report.plot import png_bytes

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


def _best_by_runtime(table) -> list[tuple[str, str, float, float, dict, list[dict]]]:
    """(model, device, batch, input size, {label: best record or None}, every record) for each
    model, device, batch and input size where another runtime than PyTorch was measured (a
    speed at 64 px is never set beside one at 224 px)."""
    rows = throughput_rows(table)
    if rows.empty or "runtime" not in rows.columns or "infer_samples_per_sec" not in rows.columns:
        return []
    rows = rows[rows["infer_samples_per_sec"].notna()]
    rows = rows.assign(
        device_name=rows["device_name"].fillna(rows["device"]),
        infer_img_size=rows["infer_img_size"].fillna(0) if "infer_img_size" in rows else 0,
    )
    out = []
    keys = ["model", "device_name", "infer_batch_size", "infer_img_size"]
    for (model, device, batch, size), group in rows.groupby(keys, sort=False):
        recs = group.to_dict("records")
        best = {}
        for label, runtime, compiled in SIDE_BY_SIDE:
            mine = [
                r
                for r in recs
                if runtime_of(r) == runtime and (r.get("compiled") is True) == compiled
            ]
            best[label] = max(mine, key=lambda r: r["infer_samples_per_sec"]) if mine else None
        if best["ONNX Runtime"] is not None or best["OpenVINO"] is not None:
            out.append((model, device, batch, size, best, recs))
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


def side_by_side(table) -> list[dict]:
    """Per model, device and batch: the best inference samples/s of each runtime and its
    speed-up over eager PyTorch; an empty list when no other runtime was measured."""
    out = []
    for model, device, batch, size, best, recs in _best_by_runtime(table):
        row = {"Model": model, "Device": device, "Batch": fmt_int(batch), "px": fmt_int(size)}
        for label in best:
            row[label] = _speedup_cell(label, best[label], best["PyTorch eager"], recs)
        out.append(row)
    return out


def _agreement(table) -> list[dict]:
    out = []
    for model, device, batch, size, best, _ in _best_by_runtime(table):
        row = {"Model": model, "Device": device, "Batch": fmt_int(batch), "px": fmt_int(size)}
        for label in ("ONNX Runtime", "OpenVINO"):
            r = best.get(label)
            if r is None or is_missing(r.get("max_abs_diff")):
                row[label] = "-"
                continue
            top1 = "same top-1" if r.get("top1_agree") is True else f"{WARN} top-1 differs"
            row[label] = f"{r['max_abs_diff']:.2g}, {top1}"
        out.append(row)
    return out


def runtimes_markdown(table) -> list[str]:
    sbs = side_by_side(table)
    if not sbs:
        return []
    text = (
        "Best inference samples/s of each runtime per model, device, batch and input size (px), "
        "and its speed-up over eager PyTorch at the same batch and size. A speed-up names every other "
        "difference from that baseline (layout, precision); compiled PyTorch is set against "
        "eager PyTorch at its own layout where that was measured. "
        f"The plot is [{RUNTIME_PLOT}]({RUNTIME_PLOT})."
    )
    return [
        "",
        "## Runtimes side by side",
        "",
        *wrap(text),
        "",
        md_table(sbs),
        "",
        "Agreement with eager PyTorch fp32 on the same input (max abs diff, top-1):",
        "",
        md_table(_agreement(table)),
    ]


def runtimes_png(table) -> bytes | None:
    """Samples/s of each runtime per model and batch (grouped bars, log scale); PNG bytes."""
    groups = _best_by_runtime(table)
    if not groups:
        return None
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    labels = [label for label, _, _ in SIDE_BY_SIDE if any(g[4][label] for g in groups)]
    names = [f"{model} @{batch:.0f}, {size:.0f} px" for model, _, batch, size, _, _ in groups]
    width = 0.8 / len(labels)
    fig, ax = plt.subplots(figsize=(max(8, 0.9 * len(names) + 2), 5), dpi=100)
    try:
        for i, label in enumerate(labels):
            values = [g[4][label]["infer_samples_per_sec"] if g[4][label] else 0 for g in groups]
            xs = [k + (i - (len(labels) - 1) / 2) * width for k in range(len(names))]
            ax.bar(xs, values, width, label=label)
        ax.set_xticks(range(len(names)), names, fontsize=7, rotation=40, ha="right")
        ax.set_yscale("log")
        ax.set_ylabel("inference samples / s (best measured)")
        ax.set_title("Runtimes side by side")
        ax.grid(True, axis="y", which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        return png_bytes(fig)
    finally:
        plt.close(fig)

"""The throughput report: ``reports/throughput.md`` and ``reports/throughput_vs_gmacs.png``.

Registered in ``bench.report.generate.SECTIONS``. Reads only the results (no torch); the plot uses
matplotlib's Agg backend and writes no timestamp or version, so the same results give the
same bytes.
"""

from __future__ import annotations

from pathlib import Path

from bench.report.fmt import WARN, fmt_number, is_missing
from bench.report.plot import png_bytes
from bench.report.records import Records
from bench.storage import atomic_write_bytes, atomic_write_text

HARNESS = "throughput"
PLOT = "throughput_vs_gmacs.png"
RUNTIME_PLOT = "runtimes.png"
RUNTIME_LABELS = {"torch": "PyTorch", "onnxruntime": "ONNX Runtime", "openvino": "OpenVINO"}
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


def _runtime(r: dict) -> str:
    """A record's runtime: PyTorch's records carry none (their keys predate runtimes)."""
    v = r.get("runtime")
    return "torch" if is_missing(v) else str(v)


def _of_peak(frac) -> str:
    if is_missing(frac):
        return "-"
    return f"{100 * frac:.1f}%" + (f" {WARN}" if frac > 1 else "")


def _row_view(r: dict) -> dict:
    mode = r.get("mode") or "infer"
    used = r.get(f"{mode}_batch_size")
    batch = fmt_number(used, ".0f")
    if r.get("batch_size_reduced") is True:
        batch = f"{batch} (asked {fmt_number(r.get('batch_size'), '.0f')}, reduced)"
    compiled = "yes" if r.get("compiled") is True else "no"
    if r.get("optimize") is True:
        compiled += " (optimize)"
    return {
        "Model": r["model"],
        "Device": r.get("device_name") or r.get("device"),
        "Mode": mode,
        "Input": fmt_number(r.get(f"{mode}_img_size"), ".0f"),
        "Batch": batch,
        "Precision": r.get("precision"),
        "Layout": r.get("layout"),
        "Compiled": compiled,
        "Runtime": RUNTIME_LABELS.get(_runtime(r), _runtime(r)),
        "Samples/s": fmt_number(r.get(f"{mode}_samples_per_sec"), ",.1f"),
        "Compile (s)": fmt_number(r.get("compile_time_s"), ".1f"),
        "Step median (ms)": fmt_number(r.get("median"), ".2f"),
        "p90 (ms)": fmt_number(r.get("p90"), ".2f"),
        "CV %": fmt_number(r.get("cv_pct"), ".1f"),
        "Peak mem (MB)": fmt_number(r.get("peak_mem_mb"), ",.0f"),
        "GMACs": fmt_number(r.get("infer_gmacs"), ".4g"),
        "GMAC/s": fmt_number(r.get("achieved_gmacs_per_sec"), ",.1f"),
        "Peak GMAC/s": fmt_number(r.get("peak_gmacs_per_sec"), ",.0f"),
        "Of peak": _of_peak(r.get("frac_of_peak")),
        "Threads": fmt_number(r.get("threads"), ".0f"),
        "J/sample": fmt_number(r.get("energy_j_per_sample"), ".3g"),
    }


def _candidates(frame) -> list[dict]:
    """--optimize candidates of the latest throughput records, one row each."""
    rows = []
    if frame.empty:
        return rows
    ok = frame[(frame["harness"] == HARNESS) & (frame["status"] == "ok")]
    for rec in ok.itertuples():
        cands = rec.metrics.get("candidates")
        if not isinstance(cands, list):
            continue
        mode = rec.config.get("mode", "infer")
        for c in cands:
            rows.append(
                {
                    "Model": rec.model,
                    "Device": rec.device,
                    "Mode": mode,
                    "Batch": rec.config.get("batch_size"),
                    "Precision": c.get("precision"),
                    "Layout": c.get("layout"),
                    "Compiled": "yes" if c.get("compiled") else "no",
                    "Runtime": RUNTIME_LABELS.get(c.get("runtime", "torch"), c.get("runtime")),
                    "Samples/s": fmt_number(c.get(f"{mode}_samples_per_sec"), ",.1f"),
                    "Max abs diff": fmt_number(c.get("max_abs_diff"), ".2g"),
                    "Chosen": "yes" if _chosen(c, rec.config) else "",
                    "Note": c.get("error") or "",
                }
            )
    return rows


def _chosen(c: dict, config: dict) -> bool:
    keys = ("precision", "layout", "compiled")
    return tuple(c.get(k) for k in keys) == tuple(config.get(k) for k in keys) and c.get(
        "runtime", "torch"
    ) == config.get("runtime", "torch")


def _best_by_runtime(table) -> list[tuple[str, str, float, dict]]:
    """(model, device, batch, {label: best record or None}) for each model, device and batch
    where another runtime than PyTorch was measured."""
    rows = throughput_rows(table)
    if rows.empty or "runtime" not in rows.columns or "infer_samples_per_sec" not in rows.columns:
        return []
    rows = rows[rows["infer_samples_per_sec"].notna()]
    rows = rows.assign(device_name=rows["device_name"].fillna(rows["device"]))
    out = []
    keys = ["model", "device_name", "infer_batch_size"]
    for (model, device, batch), group in rows.groupby(keys, sort=False):
        recs = group.to_dict("records")
        best = {}
        for label, runtime, compiled in SIDE_BY_SIDE:
            mine = [
                r
                for r in recs
                if _runtime(r) == runtime and (r.get("compiled") is True) == compiled
            ]
            best[label] = max(mine, key=lambda r: r["infer_samples_per_sec"]) if mine else None
        if best["ONNX Runtime"] is not None or best["OpenVINO"] is not None:
            out.append((model, device, batch, best))
    return out


def side_by_side(table):
    """Per model, device and batch: the best inference samples/s of each runtime and its
    speed-up over PyTorch eager; an empty frame when no other runtime was measured."""
    import pandas as pd

    out = []
    for model, device, batch, best in _best_by_runtime(table):
        eager = best["PyTorch eager"]["infer_samples_per_sec"] if best["PyTorch eager"] else None
        row = {"Model": model, "Device": device, "Batch": f"{batch:.0f}"}
        for label, r in best.items():
            sps = r["infer_samples_per_sec"] if r else None
            speedup = f" ({sps / eager:.2f}x)" if sps and eager and label != "PyTorch eager" else ""
            row[label] = "-" if sps is None else f"{sps:,.1f}{speedup}"
        row["Agreement (max abs diff, top-1)"] = _agreement_text(best)
        out.append(row)
    return pd.DataFrame(out)


def _agreement_text(best: dict) -> str:
    parts = []
    for label in ("ONNX Runtime", "OpenVINO"):
        r = best.get(label)
        if r is not None and not is_missing(r.get("max_abs_diff")):
            top1 = "same top-1" if r.get("top1_agree") is True else f"{WARN} top-1 differs"
            parts.append(f"{label}: {r['max_abs_diff']:.2g}, {top1}")
    return "; ".join(parts) or "-"


def _skipped(frame):
    if frame.empty:
        return frame
    rows = frame[(frame["harness"] == HARNESS) & (frame["status"] == "skipped")]
    return _with_config(rows)


def _with_config(rows):
    return rows.assign(
        runtime=[c.get("runtime", "torch") for c in rows["config"]],
        mode=[c.get("mode", "-") for c in rows["config"]],
        batch=[c.get("batch_size", "-") for c in rows["config"]],
        precision=[c.get("precision", "-") for c in rows["config"]],
    )


def _measurements(table) -> list[str]:
    import pandas as pd

    rows = throughput_rows(table)
    if rows.empty:
        return [
            "No throughput results yet: `python -m bench run --models chapter --harness throughput`."
        ]
    view = pd.DataFrame([_row_view(r) for r in rows.to_dict("records")])
    if (view["Compile (s)"] == "-").all():  # no compiled rows: no compile-time column
        view = view.drop(columns="Compile (s)")
    if (view["J/sample"] == "-").all():  # energy measured nowhere: no energy column
        view = view.drop(columns="J/sample")
    lines = [view.to_markdown(index=False)]
    if "J/sample" in view.columns:
        lines += ["", "J/sample: energy over the timed loop per sample (NVML's GPU board "
                  "counter, or RAPL's CPU packages); '-': not readable there (the record's "
                  "energy_note says why)."]  # fmt: skip
    if view["Of peak"].str.endswith(WARN).any():
        lines += [
            "",
            f"{WARN} above peak: the model did more multiply-accumulates per second than the "
            "run's matrix product. That is a sign of a bad peak measurement (a busy machine "
            "while it was measured, or a runtime whose kernels beat the matrix product "
            "timed), not a result; rerun on a quiet machine.",
        ]
    return lines


def _runtimes(table) -> list[str]:
    sbs = side_by_side(table)
    if sbs.empty:
        return []
    return [
        "",
        "## Runtimes side by side",
        "",
        "Best inference samples/s of each runtime per model, device and batch, and its "
        "speed-up over PyTorch eager; agreement is with PyTorch eager fp32 on the same "
        f"input. The plot is [{RUNTIME_PLOT}]({RUNTIME_PLOT}).",
        "",
        sbs.to_markdown(index=False, disable_numparse=True),
    ]


def _not_measured(frame) -> list[str]:
    """The latest throughput records that failed, and those skipped as not measurable."""
    lines = []
    bad = frame[(frame["harness"] == HARNESS) & ~frame["status"].isin(["ok", "skipped"])]
    if not bad.empty:
        lines += ["", "## Failed throughput measurements", ""]
        cols = ["model", "device", "device_name", "error"]
        if any(c.get("runtime") for c in bad["config"]):
            bad = _with_config(bad)
            cols = ["model", "device", "runtime", "mode", "batch", "error"]
        lines.append(bad[cols].to_markdown(index=False))
    skipped = _skipped(frame)
    if not skipped.empty:
        lines += ["", "## Skipped (not measurable here)", ""]
        cols = ["model", "device", "runtime", "mode", "batch", "precision", "error"]
        lines.append(skipped[cols].rename(columns={"error": "reason"}).to_markdown(index=False))
    return lines


def throughput_markdown(frame, table) -> str:
    import pandas as pd

    lines = [
        "# Throughput",
        "",
        "Generated by `python -m bench report` from `results/`; do not edit by hand.",
        "Samples/s is samples over the total timed time after a warm-up that runs until the",
        "step time is stable; step times are per batch, in ms. GMACs are fvcore's",
        "multiply-accumulates at batch 1; GMAC/s is GMACs x samples/s (x3 for training) and",
        "'Of peak' divides it by a large matrix product's GMAC/s at the same precision on the",
        f"same device, measured in the same run. The plot is [{PLOT}]({PLOT}).",
        "",
        *_measurements(table),
        *_runtimes(table),
    ]
    cands = _candidates(frame)
    if cands:
        lines += ["", "## --optimize candidates", "", pd.DataFrame(cands).to_markdown(index=False)]
    if not frame.empty:
        lines += _not_measured(frame)
    return "\n".join(lines) + "\n"


def _chapter_labels() -> dict[str, str]:
    from bench.registry.cards import load_cards

    return {
        name: card.display_name
        for name, card in load_cards().items()
        if card.in_chapter_table or card.source == "chapter"
    }


def plot_png(table) -> bytes | None:
    """Best inference samples/s per model and device against GMACs, log-log; PNG bytes."""
    rows = throughput_rows(table)
    needed = {"infer_samples_per_sec", "infer_gmacs"}
    if rows.empty or not needed <= set(rows.columns):
        return None
    rows = rows[rows["infer_samples_per_sec"].notna() & (rows["infer_gmacs"] > 0)]
    if rows.empty:
        return None
    rows = rows.assign(device_name=rows["device_name"].fillna(rows["device"]))
    keys = ["model", "device", "device_name"]  # an H200 and an H100 are two groups
    best = (
        rows.sort_values([*keys, "infer_samples_per_sec"], kind="stable")
        .groupby(keys, sort=True)
        .tail(1)
    )
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    labels = _chapter_labels()
    fig, ax = plt.subplots(figsize=(8, 6), dpi=100)
    try:
        groups = best.groupby(["device", "device_name"], sort=True)
        for marker, ((device, name), group) in zip("os^Dv<>p", groups, strict=False):
            ax.scatter(
                group["infer_gmacs"],
                group["infer_samples_per_sec"],
                marker=marker,
                label=f"{device}: {name}",
            )
            # labels of neighbouring points (in order of GMACs) go round their points in turn
            ordered = group[group["model"].isin(labels)].sort_values(["infer_gmacs", "model"])
            for i, r in enumerate(ordered.itertuples()):
                dx, dy = ((5, 4), (-5, -11), (5, -11), (-5, 4))[i % 4]
                ax.annotate(
                    labels[r.model],
                    (r.infer_gmacs, r.infer_samples_per_sec),
                    fontsize=8,
                    textcoords="offset points",
                    xytext=(dx, dy),
                    ha="left" if dx > 0 else "right",
                )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("GMACs per sample (fvcore, batch 1)")
        ax.set_ylabel("inference samples / s (best configuration measured)")
        ax.set_title("Throughput against compute")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        return png_bytes(fig)
    finally:
        plt.close(fig)


def runtimes_png(table) -> bytes | None:
    """Samples/s of each runtime per model and batch (grouped bars, log scale); PNG bytes."""
    groups = _best_by_runtime(table)
    if not groups:
        return None
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    labels = [label for label, _, _ in SIDE_BY_SIDE if any(g[3][label] for g in groups)]
    names = [f"{model}\n@{batch:.0f}" for model, _, batch, _ in groups]
    width = 0.8 / len(labels)
    fig, ax = plt.subplots(figsize=(max(8, 0.9 * len(names) + 2), 5), dpi=100)
    try:
        for i, label in enumerate(labels):
            values = [g[3][label]["infer_samples_per_sec"] if g[3][label] else 0 for g in groups]
            xs = [k + (i - (len(labels) - 1) / 2) * width for k in range(len(names))]
            ax.bar(xs, values, width, label=label)
        ax.set_xticks(range(len(names)), names, fontsize=7)
        ax.set_yscale("log")
        ax.set_ylabel("inference samples / s (best measured)")
        ax.set_title("Runtimes side by side")
        ax.grid(True, axis="y", which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        return png_bytes(fig)
    finally:
        plt.close(fig)


def throughput_section(records: Records, table, out_dir) -> list[Path]:
    """Write throughput.md and, when there is something to plot, the PNG."""
    out = Path(out_dir)
    written = []
    md = out / "throughput.md"
    atomic_write_text(md, throughput_markdown(records.latest, table))
    written.append(md)
    png = plot_png(table)
    if png is not None:
        atomic_write_bytes(out / PLOT, png)
        written.append(out / PLOT)
    png = runtimes_png(table)
    if png is not None:
        atomic_write_bytes(out / RUNTIME_PLOT, png)
        written.append(out / RUNTIME_PLOT)
    return written

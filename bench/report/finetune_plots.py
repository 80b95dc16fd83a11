"""The fine-tune report's plots: learning curves per model and accuracy against GMACs.

Drawn with matplotlib's Agg backend without a timestamp or version in their metadata, so the
same results give byte-identical files. No torch here.
"""

from __future__ import annotations

import re
from pathlib import Path

from bench.report.fmt import fmt_number, is_missing
from bench.report.plot import png_bytes
from bench.report.trained import data_label, init_label, train_images
from bench.storage import atomic_write_bytes


def _gmacs(table, model: str, img_size) -> float | None:
    """MACs of the model from the flops harness: at the fine-tune size if measured there,
    else at any size, scaled by the pixel ratio (convolutional models scale with area)."""
    if table.empty or "infer_gmacs" not in table.columns:
        return None
    rows = table[(table["model"] == model) & table["infer_gmacs"].notna()]
    if "harness" in rows.columns:
        rows = rows[rows["harness"].isna()]
    if rows.empty:
        return None
    same = rows[rows["infer_img_size"] == img_size] if "infer_img_size" in rows.columns else rows
    if not same.empty:
        return float(same.iloc[0]["infer_gmacs"])
    row = rows.iloc[0]
    size = row.get("infer_img_size")
    if size and img_size and not is_missing(size):
        return float(row["infer_gmacs"]) * (float(img_size) / float(size)) ** 2
    return None


def curve_name(model: str) -> str:
    return f"finetune_curve_{re.sub(r'[^A-Za-z0-9_.-]+', '-', model)}.png"


def _label(r: dict) -> str:
    return (
        f"{init_label(r)}, {train_images(r)} img, lr {fmt_number(r.get('lr'), 'g')}, "
        f"aug {r.get('augment')}, {r.get('finetune_img_size')} px, bs {r.get('batch_size')}, "
        f"seed {r.get('seed')}, x{r.get('world_size', 1)} on {r.get('device_name') or r['device']}"
    )


def _save(fig, path: Path) -> None:
    atomic_write_bytes(path, png_bytes(fig, dpi=100))


def _curve_figure(plt, model: str, recs: list[dict]):
    """One model's curves: integer epochs, the legend below the axes (outside the data)."""
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(8, 4.2 + 0.22 * len(recs)))
    styles = ("-", "--", ":", "-.")
    for i, r in enumerate(recs):
        xs = [p["epoch"] for p in r["curve"]]
        ys = [p["top1"] for p in r["curve"]]
        ax.plot(xs, ys, marker="o", markersize=3, linestyle=styles[(i // 10) % 4], label=_label(r))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("held-out top-1 (%)")
    ax.set_title(f"{model}: fine-tune learning curves")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=1, frameon=False)
    fig.tight_layout()
    return fig


def plot_curves(rows: list[dict], out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    by_model: dict[str, list[dict]] = {}
    for r in rows:
        if isinstance(r.get("curve"), list) and r["curve"]:
            by_model.setdefault(r["model"], []).append(r)
    for model, recs in by_model.items():
        fig = _curve_figure(plt, model, recs)
        path = out / curve_name(model)
        _save(fig, path)
        plt.close(fig)
        written.append(path)
    return written


def _recipe(r: dict) -> tuple:
    return r.get("epochs"), r.get("finetune_img_size")


def _common_recipe(rows: list[dict]) -> tuple | None:
    """The (epochs, image size) of the most records trained on all their images: the points a plot sets side
    by side (ties go to the first in the rows' order)."""
    counts: dict[tuple, int] = {}
    for r in rows:
        if not r.get("train_limit"):
            counts[_recipe(r)] = counts.get(_recipe(r), 0) + 1
    return max(counts, key=counts.get) if counts else None


def _machine(r: dict) -> str:
    return str(r.get("device_name") or r["device"])


def _scatter(ax, points: list[tuple], colours) -> str:
    """One point per (GMACs, top-1, record); returns the machine most points come from (the
    title names it; a point from another machine names its own in the legend)."""
    markers = {"scratch": "o", "pretrained": "^"}
    counts: dict[str, int] = {}
    for _, _, r in points:
        counts[_machine(r)] = counts.get(_machine(r), 0) + 1
    most = max(sorted(counts), key=counts.get) if counts else "-"
    for i, (g, top1, r) in enumerate(sorted(points, key=lambda p: (p[0], p[1]))):
        on = f", on {_machine(r)}" if _machine(r) != most else ""
        ax.scatter(
            [g],
            [top1],
            marker=markers.get(str(r.get("init")), "s"),
            color=colours[i % 20],
            label=f"{r['model']} ({init_label(r)}{on})",
        )
    return most + (" (others: in the legend)" if len(counts) > 1 else "")


def _latest_points(rows: list[dict], table, recipe) -> list[tuple]:
    """(GMACs, top-1, record): one per model and init, the latest record of the recipe."""
    latest: dict[tuple, dict] = {}
    for r in rows:
        key = (r["model"], str(r.get("init")))
        if not r.get("train_limit") and _recipe(r) == recipe:
            if key not in latest or r["finished_utc"] > latest[key]["finished_utc"]:
                latest[key] = r
    points = []
    for r in latest.values():
        g = _gmacs(table, r["model"], r.get("finetune_img_size"))
        if g is not None and r.get("top1") is not None:
            points.append((g, r["top1"], r))
    return points


def plot_accuracy_vs_gmacs(rows: list[dict], table, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recipe = _common_recipe(rows)
    points = _latest_points(rows, table, recipe)
    path = out / "finetune_accuracy_vs_gmacs.png"
    fig, ax = plt.subplots(figsize=(10, 4.8))
    data = sorted({data_label(r) for _, _, r in points}) or ["no records"]
    where = _scatter(ax, points, plt.get_cmap("tab20").colors)
    if points:
        from matplotlib.ticker import NullFormatter

        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
    else:
        ax.text(
            0.5,
            0.5,
            "no model with both a fine-tune and a flops record",
            ha="center",
            transform=ax.transAxes,
        )
    ax.set_xlabel("GMACs per image at the fine-tune image size (log)")
    ax.set_ylabel("held-out top-1 (%)")
    epochs, px = recipe if recipe else ("-", "-")
    ax.set_title(
        f"Top-1 against compute: {'; '.join(data)}, {epochs} epochs at {px} px, fp32\n"
        f"on {where}\no trained from scratch, ^ fine-tuned from ImageNet",
        fontsize=9,
    )
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return [path]

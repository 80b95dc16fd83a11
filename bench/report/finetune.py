"""The fine-tune report section: an accuracy table, learning curves, accuracy against GMACs.

Writes ``finetune.md``, ``finetune_curve_<model>.png`` per model and
``finetune_accuracy_vs_gmacs.png``. Like every report, a pure function of the results: the
PNGs are drawn with matplotlib's Agg backend without a timestamp or version in their
metadata, so the same results give byte-identical files. No torch here.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from bench.registry.lookup import natural_key
from bench.report.fmt import (
    WARN,
    Footnotes,
    fmt_int,
    fmt_number,
    is_missing,
    is_number,
    md_table,
    wrap,
)
from bench.report.plot import png_bytes
from bench.report.records import Records
from bench.storage import atomic_write_bytes, atomic_write_text

logger = logging.getLogger(__name__)

HARNESS = "finetune"
# The columns of a record's run carried into each row (``bench.report.records``).
PROVENANCE = ("run_id", "run_date", "machine", "machine_name", "commit", "torch", "finished_utc")


def finetune_rows(frame) -> list[dict]:
    """One dict per successful fine-tune record: its config, scalar metrics and curve."""
    if frame.empty:
        return []
    ok = frame[(frame["harness"] == HARNESS) & (frame["status"] == "ok")]
    rows = []
    for rec in ok.itertuples():
        rows.append(
            {
                "model": rec.model,
                "device": rec.device,
                "device_name": rec.device_name,
                **{k: getattr(rec, k) for k in PROVENANCE},
                **rec.config,
                **rec.metrics,
                "_key": rec.config_key,
            }
        )
    rows.sort(
        key=lambda r: (
            natural_key(r["model"]),
            str(r.get("dataset")),
            str(r.get("init")),
            str(r.get("protocol")),
            int(r.get("epochs") or 0),
            r["_key"],
            str(r["device"]),
        )
    )
    return rows


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


def at_chance(r: dict) -> bool:
    """Top-1 no better than 1.5 times guessing (100 / classes %): the model did not learn."""
    classes, top1 = r.get("num_classes"), r.get("top1")
    if not classes or is_missing(top1):
        return False
    return float(top1) <= 1.5 * 100.0 / float(classes)


def train_images(r: dict) -> str:
    """How many training images a record used (its ``--train-limit`` or the full split)."""
    return fmt_int(
        r.get("train_samples") if is_number(r.get("train_samples")) else r.get("train_limit")
    )


def _init_short(r: dict) -> str:
    return "scratch" if r.get("init") == "scratch" else f"pretrained, {r.get('protocol', '-')}"


def recipe_text(r: dict) -> str:
    """Everything a fine-tune result depends on, in words."""
    return (
        f"{r.get('dataset', '-')}, {train_images(r)} training images, {_init_short(r)}, "
        f"augment {r.get('augment', '-')}, {fmt_int(r.get('epochs'))} epochs at "
        f"{fmt_int(r.get('finetune_img_size'))} px, batch {fmt_int(r.get('batch_size'))}, "
        f"lr {fmt_number(r.get('lr'), 'g')}, seed {fmt_int(r.get('seed'))}"
    )


def _top1_cell(r: dict) -> str:
    return fmt_number(r.get("top1")) + (f" {WARN} chance" if at_chance(r) else "")


def _accuracy_row(i: int, r: dict, notes: Footnotes, small: bool) -> dict:
    row = {
        "#": str(i),
        "Model": r["model"],
        "Init": _init_short(r),
        "Train images": train_images(r),
        "Epochs @ px": f"{fmt_int(r.get('epochs'))} @ {fmt_int(r.get('finetune_img_size'))}",
        "LR": fmt_number(r.get("lr"), "g"),
        "Augment": str(r.get("augment", "-")),
    }
    if small:
        row["Seed"] = fmt_int(r.get("seed"))
    row["Top-1 %"] = _top1_cell(r)
    if not small:
        row["Samples/s"] = fmt_number(r.get("train_samples_per_sec"), ",.0f")
    row["Run"] = notes.run(r)
    return row


def _detail_row(i: int, r: dict) -> dict:
    sha = r.get("init_sha256")
    weights = (
        "-"
        if r.get("init") == "scratch"
        else f"{r.get('init_source') or '?'} {sha[:12] if sha else ''}"
    )
    return {
        "#": str(i),
        "Batch": fmt_int(r.get("batch_size")),
        "Procs": fmt_int(r.get("world_size", 1)),
        "Device": str(r.get("device_name") or r.get("device")),
        "Top-5 %": fmt_number(r.get("top5")),
        "Best (epoch)": f"{fmt_number(r.get('best_top1'))} ({r.get('best_epoch', '-')})",
        "Train time (s)": fmt_number(r.get("train_time_s"), ",.1f"),
        "Samples/s": fmt_number(r.get("train_samples_per_sec"), ",.0f"),
        "Weights (sha256)": weights.strip(),
    }


def _accuracy_tables(rows: list[dict]) -> list[str]:
    notes = Footnotes()
    full = [r for r in rows if not r.get("train_limit")]
    small = [r for r in rows if r.get("train_limit")]
    numbered = list(enumerate(full + small, 1))
    lines = [
        "## Full training set",
        "",
        md_table([_accuracy_row(i, r, notes, False) for i, r in numbered[: len(full)]])
        or "No full-data runs yet.",
    ]
    if small:
        text = (
            "Runs on a stratified subset of the training images (`--train-limit`, the "
            "anti-pattern runs): not comparable with the full-data rows above."
        )
        lines += [
            "",
            "## Small training sets",
            "",
            *wrap(text),
            "",
            md_table([_accuracy_row(i, r, notes, True) for i, r in numbered[len(full) :]]),
        ]
    stuck = sorted({r["model"] for r in rows if at_chance(r)})
    if stuck:
        text = (
            f"{WARN} chance: {', '.join(stuck)} ended no better than 1.5 times guessing "
            "(100 / classes %): the model did not learn with this recipe. A lower `--lr`, or a "
            "`[finetune]` recipe in the model's card, is the usual cure."
        )
        lines += ["", *wrap(text)]
    return [
        *lines,
        "",
        "## Details of each run",
        "",
        md_table([_detail_row(i, r) for i, r in numbered]),
        "",
        *notes.lines(),
    ]


def _pair_key(r: dict) -> tuple:
    """What two records must share to show the gain of pretraining: all but the weights."""
    keys = ("dataset", "epochs", "finetune_img_size", "batch_size", "lr", "augment", "seed")
    return (
        r["model"],
        train_images(r),
        r.get("world_size"),
        r["device"],
        *(r.get(k) for k in keys),
    )


def _pretrained_vs_scratch(rows: list[dict]) -> list[str]:
    """Pairs of records that differ only in their initial weights: the gain of pretraining."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(_pair_key(r), []).append(r)
    pairs = []
    for group in groups.values():
        scratch = [r for r in group if r.get("init") == "scratch"]
        for p in (r for r in group if r.get("init") == "pretrained"):
            for s in scratch:
                pairs.append(
                    {
                        "Model": p["model"],
                        "Train images": train_images(p),
                        "Epochs @ px": f"{fmt_int(p.get('epochs'))} @ {fmt_int(p.get('finetune_img_size'))}",
                        "LR": fmt_number(p.get("lr"), "g"),
                        "Augment": str(p.get("augment", "-")),
                        "Scratch top-1 %": fmt_number(s.get("top1")),
                        "Pretrained top-1 %": f"{fmt_number(p.get('top1'))} ({p.get('protocol')})",
                        "Gain (points)": fmt_number(
                            (p.get("top1") or 0) - (s.get("top1") or 0), "+.2f"
                        ),
                    }
                )
    text = (
        "Pairs of records that agree on everything (data set, training images, epochs, image "
        "size, batch, rate, augmentation, seed, device) but the initial weights."
    )
    table = md_table(pairs) if pairs else "No pairs yet."
    return ["## Pretrained against scratch, same budget", "", *wrap(text), "", table]


def _datasets_and_plots(rows: list[dict]) -> list[str]:
    lines = ["## Data sets", ""]
    seen = {}
    for r in rows:
        seen.setdefault(r.get("dataset"), (r.get("split"), r.get("dataset_sha256")))
    for name, (split, sha) in seen.items():
        lines.append(f"- `{name}`: {split}; content sha256 `{sha}`")
    lines += ["", "## Plots", ""]
    for model in dict.fromkeys(r["model"] for r in rows):
        lines.append(f"- learning curves of {model}: `{_curve_name(model)}`")
    lines.append("- accuracy against GMACs: `finetune_accuracy_vs_gmacs.png`")
    return lines


def finetune_markdown(rows: list[dict]) -> str:
    lines = [
        "# Fine-tuned accuracy",
        "",
        "Generated by `python -m bench report` from `results/` (records of `--harness finetune`);",
        "do not edit by hand. Top-1/top-5 are percentages on the held-out split after the last",
        "epoch; *best* is the best epoch's top-1 (reported, not used to pick the model).",
        "Samples/s counts training images per second over all processes, evaluation excluded.",
        "",
    ]
    if not rows:
        return "\n".join([*lines, "No fine-tune results yet.", ""])
    lines += [
        *_accuracy_tables(rows),
        "",
        *_pretrained_vs_scratch(rows),
        "",
        *_datasets_and_plots(rows),
    ]
    return "\n".join(lines) + "\n"


def _curve_name(model: str) -> str:
    return f"finetune_curve_{re.sub(r'[^A-Za-z0-9_.-]+', '-', model)}.png"


def _label(r: dict) -> str:
    return (
        f"{_init_short(r)}, {train_images(r)} img, lr {fmt_number(r.get('lr'), 'g')}, "
        f"aug {r.get('augment')}, {r.get('finetune_img_size')} px, bs {r.get('batch_size')}, "
        f"seed {r.get('seed')}, x{r.get('world_size', 1)} {r['device']}"
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
        path = out / _curve_name(model)
        _save(fig, path)
        plt.close(fig)
        written.append(path)
    return written


def _recipe(r: dict) -> tuple:
    return r.get("epochs"), r.get("finetune_img_size")


def _common_recipe(rows: list[dict]) -> tuple | None:
    """The (epochs, image size) of the most full-data records: the points a plot sets side
    by side (ties go to the first in the rows' order)."""
    counts: dict[tuple, int] = {}
    for r in rows:
        if not r.get("train_limit"):
            counts[_recipe(r)] = counts.get(_recipe(r), 0) + 1
    return max(counts, key=counts.get) if counts else None


def plot_accuracy_vs_gmacs(rows: list[dict], table, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    recipe = _common_recipe(rows)
    latest: dict[tuple, dict] = {}
    for r in rows:  # one point per model and init: the latest record of the common recipe
        key = (r["model"], str(r.get("init")))
        if not r.get("train_limit") and _recipe(r) == recipe:
            if key not in latest or r["finished_utc"] > latest[key]["finished_utc"]:
                latest[key] = r
    points = []
    for r in latest.values():
        g = _gmacs(table, r["model"], r.get("finetune_img_size"))
        if g is not None and r.get("top1") is not None:
            points.append((g, r["top1"], r))
    path = out / "finetune_accuracy_vs_gmacs.png"
    fig, ax = plt.subplots(figsize=(9, 4.8))
    markers = {"scratch": "o", "pretrained": "^"}
    colours = plt.get_cmap("tab20").colors
    for i, (g, top1, r) in enumerate(sorted(points, key=lambda p: (p[0], p[1]))):
        ax.scatter(
            [g],
            [top1],
            marker=markers.get(str(r.get("init")), "s"),
            color=colours[i % 20],
            label=f"{r['model']} ({r.get('init')})",
        )
    if points:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    if points:
        from matplotlib.ticker import NullFormatter

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
        f"Fine-tuned accuracy against compute: full training set, {epochs} epochs at "
        f"{px} px (o scratch, ^ pretrained)",
        fontsize=9,
    )
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return [path]


def finetune_section(records: Records, table, out) -> list[Path]:
    out = Path(out)
    rows = finetune_rows(records.latest)
    path = out / "finetune.md"
    atomic_write_text(path, finetune_markdown(rows))
    written = [path]
    if rows:
        written += plot_curves(rows, out)
        written += plot_accuracy_vs_gmacs(rows, table, out)
    return written

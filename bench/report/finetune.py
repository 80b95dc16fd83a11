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
from bench.report.fmt import WARN, fmt_number, is_missing
from bench.report.plot import png_bytes
from bench.report.records import Records
from bench.storage import atomic_write_bytes, atomic_write_text

logger = logging.getLogger(__name__)

HARNESS = "finetune"


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


def _init_label(r: dict) -> str:
    if r.get("init") == "scratch":
        return "scratch"
    src = r.get("init_source") or "?"
    sha = r.get("init_sha256")
    return f"pretrained ({src}{', sha256 ' + sha[:12] if sha else ''})"


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


def _accuracy_row(r: dict) -> dict:
    return {
        "Model": r["model"],
        "Data set": r.get("dataset", "-"),
        "Protocol": r.get("protocol", "-"),
        "Init": _init_label(r),
        "Augment": r.get("augment", "-"),
        "Img": fmt_number(r.get("finetune_img_size"), "d"),
        "Epochs": fmt_number(r.get("epochs"), "d"),
        "Batch": fmt_number(r.get("batch_size"), "d"),
        "LR": fmt_number(r.get("lr"), "g"),
        "Top-1 %": fmt_number(r.get("top1")) + (f" {WARN} chance" if at_chance(r) else ""),
        "Top-5 %": fmt_number(r.get("top5")),
        "Best (epoch)": f"{fmt_number(r.get('best_top1'))} ({r.get('best_epoch', '-')})",
        "Train time (s)": fmt_number(r.get("train_time_s"), ".1f"),
        "Samples/s": fmt_number(r.get("train_samples_per_sec"), ".0f"),
        "Procs": fmt_number(r.get("world_size", 1), "d"),
        "Device": r.get("device_name") or r.get("device"),
        "Seed": fmt_number(r.get("seed"), "d"),
    }


def _accuracy_table(rows: list[dict]) -> list[str]:
    import pandas as pd

    lines = [pd.DataFrame([_accuracy_row(r) for r in rows]).to_markdown(index=False)]
    stuck = sorted({r["model"] for r in rows if at_chance(r)})
    if stuck:
        lines += [
            "",
            f"{WARN} chance: {', '.join(stuck)} ended no better than 1.5 times guessing "
            "(100 / classes %): the model did not learn with this recipe. A lower `--lr`, or a "
            "`[finetune]` recipe in the model's card, is the usual cure.",
        ]
    return lines


def _pretrained_vs_scratch(rows: list[dict]) -> list[str]:
    """Pairs of records that differ only in their initial weights: the gain of pretraining."""
    import pandas as pd

    groups: dict[tuple, dict[str, dict]] = {}
    for r in rows:
        key = (
            r["model"],
            r.get("dataset"),
            r.get("epochs"),
            r.get("finetune_img_size"),
            r.get("batch_size"),
            r.get("seed"),
            r.get("world_size"),
            r["device"],
        )
        groups.setdefault(key, {})[str(r.get("init"))] = r
    pairs = []
    for key, by_init in groups.items():
        if "scratch" in by_init and "pretrained" in by_init:
            s, p = by_init["scratch"], by_init["pretrained"]
            gain = (p.get("top1") or 0) - (s.get("top1") or 0)
            pairs.append(
                {
                    "Model": key[0],
                    "Data set": key[1],
                    "Epochs": key[2],
                    "Img": key[3],
                    "Scratch top-1 %": fmt_number(s.get("top1")),
                    f"Pretrained ({p.get('protocol')}) top-1 %": fmt_number(p.get("top1")),
                    "Gain (points)": fmt_number(gain, "+.2f"),
                }
            )
    table = pd.DataFrame(pairs).to_markdown(index=False) if pairs else "No pairs yet."
    return ["## Pretrained against scratch, same budget", "", table]


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
        *_accuracy_table(rows),
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
        f"{r.get('dataset')} {r.get('init')} {r.get('protocol')} {r.get('augment')} "
        f"{r.get('finetune_img_size')}px bs{r.get('batch_size')} lr{r.get('lr'):g} "
        f"seed{r.get('seed')} x{r.get('world_size', 1)} {r['device']}"
    )


def _save(fig, path: Path) -> None:
    atomic_write_bytes(path, png_bytes(fig, dpi=100))


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
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for r in recs:
            xs = [p["epoch"] for p in r["curve"]]
            ys = [p["top1"] for p in r["curve"]]
            ax.plot(xs, ys, marker="o", markersize=3, label=_label(r))
        ax.set_xlabel("epoch")
        ax.set_ylabel("held-out top-1 (%)")
        ax.set_title(f"{model}: fine-tune learning curves")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6, loc="lower right")
        fig.tight_layout()
        path = out / _curve_name(model)
        _save(fig, path)
        plt.close(fig)
        written.append(path)
    return written


def plot_accuracy_vs_gmacs(rows: list[dict], table, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = []
    for r in rows:
        g = _gmacs(table, r["model"], r.get("finetune_img_size"))
        if g is not None and r.get("top1") is not None:
            points.append((g, r["top1"], r))
    path = out / "finetune_accuracy_vs_gmacs.png"
    fig, ax = plt.subplots(figsize=(7, 4.5))
    markers = {"scratch": "o", "pretrained": "^"}
    for g, top1, r in points:
        ax.scatter([g], [top1], marker=markers.get(str(r.get("init")), "s"))
        ax.annotate(
            f"{r['model']} ({r.get('dataset')}, {r.get('init')}, {r.get('epochs')} ep)",
            (g, top1),
            fontsize=6,
            xytext=(3, 3),
            textcoords="offset points",
        )
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
    ax.set_title("Fine-tuned accuracy against compute (o scratch, ^ pretrained)")
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

"""The fine-tune report section: accuracy tables, learning curves, accuracy against GMACs.

Writes ``finetune.md`` (and, through ``bench.report.finetune_plots``,
``finetune_curve_<model>.png`` per model and ``finetune_accuracy_vs_gmacs.png``). The tables
are computed once as blocks (``bench.report.blocks``) that the markdown and the page both
draw. Each table holds one training set on one machine at one precision, under headings that
name them; each row says how its weights started, its input size and its recipe, and a run
whose top-1 is nearer to guessing than to 100 % is marked failed (``trained.failed``). Like
every report, a pure function of the results. No torch here.
"""

from __future__ import annotations

import logging
from pathlib import Path

from bench.report.blocks import Bullets, Heading, Para, Tbl, document
from bench.report.finetune_plots import curve_name, plot_accuracy_vs_gmacs, plot_curves
from bench.report.fmt import WARN, Footnotes, fmt_int, fmt_number, is_missing
from bench.report.records import Records
from bench.report.trained import (
    OPTIMISER,
    TOP1_INTERVAL,
    at_chance,
    by_configuration,
    data_label,
    failed,
    failed_rule,
    finetune_rows,
    held_out_label,
    init_label,
    machine_label,
    precision,
    steps_per_epoch,
    top1_over_seeds,
    train_images,
)

logger = logging.getLogger(__name__)

FAILED = f"{WARN} failed"
AT_CHANCE = f"{WARN} at chance"


def recipe_text(r: dict) -> str:
    """Everything a fine-tune result depends on, in words."""
    return (
        f"{data_label(r)}, {init_label(r)}, augment {r.get('augment', '-')}, "
        f"{fmt_int(r.get('epochs'))} epochs at {fmt_int(r.get('finetune_img_size'))} px, "
        f"batch {fmt_int(r.get('batch_size'))}, lr {fmt_number(r.get('lr'), 'g')}, "
        f"seed {fmt_int(r.get('seed'))}"
    )


def _mark(r: dict) -> str:
    """' ⚠ at chance' or ' ⚠ failed' when the record's top-1 failed (``trained.failed``)."""
    mark = AT_CHANCE if at_chance(r) else FAILED if failed(r) else ""
    return f" {mark}" if mark else ""


def top1_text(r: dict) -> str:
    """One record's held-out top-1, marked when the run failed (``trained.failed``)."""
    return f"{fmt_number(r.get('top1'))}{_mark(r)}"


def config_top1_text(group: list[dict]) -> str:
    """One configuration's top-1 over its seeds (``trained.top1_over_seeds``), marked when
    the mean failed: '97.1 ±1.0 (1 seed)', '34.5 ±3.7 (4 seeds) ⚠ failed'. The held-out count
    is in the table's heading."""
    top1 = top1_over_seeds(group)
    if top1 is None:
        return "-"
    return top1.text(with_n=False) + _mark({**group[0], "top1": top1.mean})


def latest_of(group: list[dict]) -> dict:
    """The latest record of a configuration's seeds: its run is the row's."""
    return max(group, key=lambda r: (str(r.get("finished_utc")), str(r.get("run_id"))))


def _accuracy_row(i: int, group: list[dict]) -> dict:
    r = group[0]
    return {
        "#": str(i),
        "Model": r["model"],
        "Training": init_label(r),
        "Input px": fmt_int(r.get("finetune_img_size")),
        "Epochs": fmt_int(r.get("epochs")),
        "Batch, lr": f"{fmt_int(r.get('batch_size'))}, {fmt_number(r.get('lr'), 'g')}",
        "Augment": str(r.get("augment", "-")),
        "Top-1 %": config_top1_text(group),
    }


def _detail_row(i: int, r: dict) -> dict:
    sha = r.get("init_sha256")
    weights = "-" if r.get("init") != "pretrained" else f"{r.get('init_source') or '?'} "
    weights += sha[:12] if r.get("init") == "pretrained" and sha else ""
    per_epoch = steps_per_epoch(r)
    steps = per_epoch * int(r["epochs"]) if per_epoch and r.get("epochs") else None
    return {
        "#": str(i),
        "Seed": fmt_int(r.get("seed")),
        "Procs": fmt_int(r.get("world_size", 1)),
        "Steps": fmt_int(steps),
        "Input px": fmt_int(r.get("finetune_img_size")),
        "Top-1 / top-5 %": f"{fmt_number(r.get('top1'))} / {fmt_number(r.get('top5'))}",
        "Best % (epoch)": f"{fmt_number(r.get('best_top1'))} ({r.get('best_epoch', '-')})",
        "Train s": fmt_number(r.get("train_time_s"), ",.1f"),
        "Train samples/s": fmt_number(r.get("train_samples_per_sec"), ",.0f"),
        "Weights (sha256)": weights.strip(),
    }


def _grouped(rows: list[dict], key) -> list[tuple[tuple, list[dict]]]:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(key(r), []).append(r)
    return sorted(groups.items(), key=lambda kv: tuple(map(str, kv[0])))


def data_key(r: dict) -> tuple:
    """One training set: all of a data set's training split, or one size of subset."""
    return (int(bool(r.get("train_limit"))), str(r.get("dataset")), data_label(r))


def machine_key(r: dict) -> tuple:
    """One machine at one precision: its rows are set side by side."""
    return (str(r.get("device")), str(r.get("device_name")), precision(r))


def optimiser_para(rows: list[dict]) -> Para:
    schedule = OPTIMISER
    if any(r.get("protocol") == "staged" for r in rows):
        schedule += (
            "; staged: the head alone for a quarter of the epochs, then every layer with the "
            "backbone at a lower rate, each phase with its own warm-up and decay (the peak "
            "learning rate shown is the head's)"
        )
    return Para(f"Optimiser for every row: {schedule}.")


SMALL_TEXT = (
    "A stratified, seeded subset of the training split (`--train-limit`), the anti-pattern "
    "runs (antipatterns.md): not comparable with rows trained on all the images."
)


DETAILS_TEXT = (
    "The same runs in detail, one row a seed (Steps: optimiser steps over all epochs; Best %: the "
    "best epoch's top-1; Train s: training time in seconds):"
)


def accuracy_blocks(rows: list[dict]) -> list:
    """Per training set, per machine: the accuracy table, a row per configuration (its seeds
    as one figure, ``config_top1_text``), then its runs' details, a row per seed (matched by
    #); a note naming every failed configuration."""
    blocks: list = []
    numbered_all: list[tuple[int, list[dict]]] = []
    for s, ((small, _, label), group) in enumerate(_grouped(rows, data_key), 1):
        blocks.append(Heading(f"Trained on {label}, scored on {held_out_label(group[0])}", 2))
        if small:
            blocks.append(Para(SMALL_TEXT))
        for m, (_, recs) in enumerate(_grouped(group, machine_key), 1):
            numbered = list(enumerate(by_configuration(recs), len(numbered_all) + 1))
            numbered_all += numbered
            tid = f"finetune-{s}-{m}"
            accuracy = tuple(_accuracy_row(n, g) for n, g in numbered)
            blocks += [
                Heading(f"On {machine_label(recs[0])}", 3, tid),
                optimiser_para(recs),
                Tbl(tid, accuracy, tuple(latest_of(g) for _, g in numbered)),
                Para(DETAILS_TEXT),
                Tbl(f"{tid}-details", tuple(_detail_row(n, r) for n, g in numbered for r in g)),
            ]
    return [*blocks, *_failed_notes(numbered_all)]


def _failed_notes(numbered: list[tuple[int, list[dict]]]) -> list:
    """One note per rule (it depends on the number of classes) naming the failed rows."""
    by_rule: dict[str, list[str]] = {}
    for n, group in numbered:
        top1 = top1_over_seeds(group)
        r = {**group[0], "top1": top1.mean if top1 else None}
        if failed(r):
            by_rule.setdefault(failed_rule(r), []).append(f"#{n} {r['model']}")
    return [
        Para(
            f"{FAILED}: {rule} ({', '.join(rows)}): the recipe did not teach the model the task; "
            f"a lower `--lr`, or a `[finetune]` recipe in the model's card, is the usual cure. "
            f"{AT_CHANCE}: no better than 1.5 times guessing."
        )
        for rule, rows in by_rule.items()
    ]


def _pair_key(r: dict) -> tuple:
    """What two records must share to show the gain of pretraining: all but the weights."""
    keys = ("dataset", "epochs", "finetune_img_size", "batch_size", "lr", "augment", "seed")
    return (
        r["model"],
        train_images(r),
        r.get("world_size"),
        *machine_key(r),
        *(r.get(k) for k in keys),
    )


def _pair_row(p: dict, s: dict) -> dict:
    gain = (
        p.get("top1") - s.get("top1")
        if not (is_missing(p.get("top1")) or is_missing(s.get("top1")))
        else None
    )
    return {
        "Model": p["model"],
        "Training data": data_label(p),
        "Input px": fmt_int(p.get("finetune_img_size")),
        "Epochs": fmt_int(p.get("epochs")),
        "LR (peak)": fmt_number(p.get("lr"), "g"),
        "Augment": str(p.get("augment", "-")),
        "From scratch top-1 %": top1_text(s),
        "From ImageNet top-1 %": f"{top1_text(p)} ({p.get('protocol')})",
        "Gain (points)": fmt_number(gain, "+.2f"),
    }


def pairs_blocks(rows: list[dict]) -> list:
    """Pairs of records that differ only in their initial weights: the gain of pretraining,
    one table per machine."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(_pair_key(r), []).append(r)
    pairs = []
    for group in groups.values():
        scratch = [r for r in group if r.get("init") == "scratch"]
        for p in (r for r in group if r.get("init") == "pretrained"):
            pairs += [(p, s) for s in scratch]
    blocks: list = [
        Heading("Fine-tuned from ImageNet against trained from scratch, same budget", 2),
        Para(
            "Pairs of records that agree on everything (data, training images, epochs, input "
            "size, batch, rate, augmentation, seed, machine, precision) but the initial weights."
        ),
    ]
    if not pairs:
        return [*blocks, Para("No pairs yet.")]
    by_machine = _grouped([p for p, _ in pairs], machine_key)
    for m, (key, recs) in enumerate(by_machine, 1):
        mine = [(p, s) for p, s in pairs if machine_key(p) == key]
        tid = f"finetune-pairs-{m}"
        blocks += [
            Heading(f"On {machine_label(recs[0])}", 3, tid),
            optimiser_para(recs),
            Tbl(tid, tuple(_pair_row(p, s) for p, s in mine)),
        ]
    return blocks


def _datasets_and_plots(rows: list[dict]) -> list:
    seen: dict = {}
    for r in rows:
        seen.setdefault(r.get("dataset"), (r.get("split"), r.get("dataset_sha256")))
    plots = [
        f"learning curves of {m}: `{curve_name(m)}`"
        for m in dict.fromkeys(r["model"] for r in rows)
    ]
    return [
        Heading("Data sets", 2),
        Bullets(
            tuple(
                f"`{name}`: {split}; content sha256 `{sha}`" for name, (split, sha) in seen.items()
            )
        ),
        Heading("Plots", 2),
        Bullets((*plots, "accuracy against GMACs: `finetune_accuracy_vs_gmacs.png`")),
    ]


INTRO = (
    "Generated by `python -m bench report` from `results/` (records of `--harness finetune`); do "
    "not edit by hand. Top-1/top-5 are percentages on the held-out split after the last epoch; "
    "Batch, lr: the global batch size and the peak learning rate. "
    "An accuracy row is one configuration: runs that differ only in their seed are one row, "
    f"their mean top-1 with its {TOP1_INTERVAL} (as many as the heading's held-out count); its "
    "Run is the latest seed's, and the details give each seed. *Best* is the best epoch's top-1 "
    "(reported, not used to pick the model). Train samples/s counts training images per second "
    "over all processes, evaluation excluded. Each table holds one training set on one machine "
    "at one precision."
)


def finetune_blocks(rows: list[dict]) -> list:
    """Every table of the section, for the markdown and the page alike."""
    return [*accuracy_blocks(rows), *pairs_blocks(rows)]


TITLE = "Accuracy after training: from scratch and fine-tuned"


def finetune_rows_blocks(rows: list[dict]) -> list:
    """finetune.md's blocks: one table per training set and machine, the data sets, the plots."""
    if not rows:
        return [Para("No fine-tune results yet.")]
    return [*finetune_blocks(rows), *_datasets_and_plots(rows)]


def finetune_section_blocks(records: Records, table, notes: Footnotes) -> list:
    return finetune_rows_blocks(finetune_rows(records.latest))


def finetune_markdown(rows: list[dict]) -> str:
    """finetune.md from its rows (``bench.report.trained.finetune_rows``)."""
    return document(TITLE, INTRO, finetune_rows_blocks(rows), Footnotes())


def finetune_plots(records: Records, table, out) -> list[Path]:
    """Write the learning curves and the accuracy-against-GMACs plot."""
    rows = finetune_rows(records.latest)
    if not rows:
        return []
    return [*plot_curves(rows, Path(out)), *plot_accuracy_vs_gmacs(rows, table, Path(out))]

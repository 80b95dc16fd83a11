"""The page's training tables: every fine-tune record, and the anti-pattern conditions (small
data, several seeds) summarised as mean and standard deviation."""

from __future__ import annotations

import statistics

from bench.registry.lookup import natural_key as natural
from bench.report.html.cells import device, num, provenance, row, text
from bench.report.html.chapter import ok_records
from bench.report.html.render import Cell, Row, Table, Text


def finetune_records(frame) -> list[dict]:
    return sorted(
        ok_records(frame, "finetune"),
        key=lambda r: (
            natural(r["model"]),
            str(r["config"].get("dataset")),
            str(r["config"].get("init")),
            r["config_key"],
            r["device"],
        ),
    )


def train_images(r: dict):
    return r["config"].get("train_limit") or r["metrics"].get("train_samples")


def _finetune_row(r: dict) -> Row:
    c, m = r["config"], r["metrics"]
    cells = (
        text(r["model"]),
        text(c.get("dataset")),
        num(train_images(r), "count", "not recorded"),
        text(c.get("init")),
        text(c.get("protocol")),
        text(c.get("augment")),
        num(c.get("finetune_img_size"), "count"),
        num(c.get("epochs"), "count"),
        num(c.get("batch_size"), "count"),
        num(c.get("lr"), "lr"),
        num(m.get("top1"), "top1", "not measured"),
        num(m.get("top5"), "top1", "not measured"),
        num(m.get("train_samples_per_sec"), "rate", "not measured"),
        text(device(r)),
    )
    return row(cells, r)


FINETUNE_COLUMNS = (
    "Model",
    "Data set",
    "Train images",
    "Init",
    "Protocol",
    "Augment",
    "Img",
    "Epochs",
    "Batch",
    "LR",
    "Top-1",
    "Top-5",
    "Train samples/s",
    "Device",
    "Run",
)


def finetune_blocks(frame) -> list:
    rows = tuple(_finetune_row(r) for r in finetune_records(frame))
    return [
        Text(
            "Every fine-tune configuration's latest record: top-1 and top-5 on the held-out "
            "split after the last epoch. Train images below the data set's full split are "
            "small-data runs (--train-limit, the anti-patterns)."
        ),
        Table("finetune", FINETUNE_COLUMNS, rows, empty="No fine-tune records yet."),
    ]


def _six_nine(r: dict) -> int | None:
    m = r["metrics"].get("confusion")
    if not isinstance(m, list) or len(m) < 10:
        return None
    return int(m[6][9]) + int(m[9][6])


def _condition_row(key: tuple, recs: list[dict]) -> Row:
    top1 = [float(r["metrics"]["top1"]) for r in recs]
    sixnine = [v for r in recs if (v := _six_nine(r)) is not None]
    sd = statistics.stdev(top1) if len(top1) > 1 else None
    runs = sorted({r["run_id"] for r in recs})
    cells = (
        *(text(k) if isinstance(k, str) else num(k, "count") for k in key[:4]),
        text(key[4]),
        text(key[5]),
        num(key[6], "lr"),
        num(len(recs), "count"),
        num(statistics.fmean(top1), "top1"),
        num(sd, "top1", "one seed"),
        num(statistics.fmean(sixnine) if sixnine else None, "rate", "no confusion matrix"),
        Cell(", ".join(runs), title="; ".join(provenance(r) for r in recs)),
    )
    return Row(cells, title="; ".join(provenance(r) for r in recs))


def antipattern_blocks(frame) -> list:
    groups: dict[tuple, list[dict]] = {}
    for r in finetune_records(frame):
        c = r["config"]
        if c.get("train_limit") and r["metrics"].get("top1") is not None:
            key = (
                r["model"],
                c.get("init"),
                c.get("train_limit"),
                c.get("epochs"),
                c.get("protocol"),
                c.get("augment"),
                c.get("lr"),
            )
            groups.setdefault(key, []).append(r)
    rows = tuple(_condition_row(k, v) for k, v in groups.items())
    columns = (
        "Model",
        "Init",
        "Train images",
        "Epochs",
        "Protocol",
        "Augment",
        "LR",
        "Seeds",
        "Top-1 mean",
        "Top-1 sd",
        "6↔9 errors",
        "Runs",
    )
    return [
        Text(
            "The chapter's two anti-patterns measured on small data over seeds: every layer at "
            "one rate from the start (protocol full) against the head first (staged), and no "
            "augmentation against the right one (digits) and a wrong one (rot180: digits turned "
            "over, which confuses 6 and 9). A difference of means beyond the two standard "
            "deviations added together supports a claim; reports/antipatterns.md states the "
            "verdicts."
        ),
        Table("antipatterns", columns, rows, empty="No small-data records yet."),
    ]

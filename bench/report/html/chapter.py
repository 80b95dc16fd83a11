"""The chapter's tables, measured: one row per architecture of the chapter's comparison (its
figures beside the measured ones, the best speeds and the fine-tuned accuracy, each figure
linked to the run it came from), and the table of convolution types."""

from __future__ import annotations

from bench.registry.cards import ModelCard, chapter_table, conv_table
from bench.report.chapter import best_speed, is_chapter_finetune, native_speeds
from bench.report.html.cells import device, num, provenance, run_href, text
from bench.report.html.render import Cell, Row, Table, Text
from bench.report.throughput import config_text

# The chapter's fine-tune command (docs/finetune.md): its records are the fine-tuned column.
FINETUNE_COMMAND = (
    "python -m bench run --models chapter --harness finetune --epochs 3 --img-size 64"
)
NO_WEIGHTS = "not measured: no validate record of this model (it needs --pretrained weights)"


def ok_records(frame, harness: str) -> list[dict]:
    """The successful records of one harness, oldest first (the frame's order)."""
    if frame.empty:
        return []
    rows = frame[(frame["harness"] == harness) & (frame["status"] == "ok")]
    return rows.to_dict("records")


def _static(frame, card: ModelCard, harness: str) -> dict | None:
    """The latest CPU record of a static harness, at the card's native size where there is one."""
    rows = [
        r for r in ok_records(frame, harness) if r["model"] == card.name and r["device"] == "cpu"
    ]
    native = [r for r in rows if r["config"].get("img_size") in (None, card.input_size[1])]
    pick = native or rows
    return pick[-1] if pick else None


def linked(rec: dict | None, key: str, kind: str, why: str) -> Cell:
    """A measured figure linked to its record's run, with the record's provenance on hover."""
    if rec is None:
        return num(None, kind, why)
    what = f"{rec['harness']} record of {rec['model']}; {provenance(rec)}"
    return num(rec["metrics"].get(key), kind, why, title=what, href=run_href(rec))


def _speed_cells(frame, card: ModelCard, kind: str, label: str) -> list[Cell]:
    rec = best_speed(frame, card, kind)
    why = f"no {label} throughput record of {card.name} at {card.input_size[1]} px"
    if rec is None and native_speeds(frame, card, kind):
        why = f"every {label} timing of {card.name} is too short or unsettled to trust"
    if rec is None:
        return [num(None, "rate", why), text(None, why)]
    return [
        linked(rec, "infer_samples_per_sec", "rate", why),
        Cell(config_text(rec["config"]), title=device(rec)),
    ]


def _finetuned(frame, card: ModelCard) -> dict | None:
    rows = [
        r
        for r in ok_records(frame, "finetune")
        if r["model"] == card.name and is_chapter_finetune({**r["config"], **r["metrics"]})
    ]
    return max(rows, key=lambda r: r["finished_utc"]) if rows else None


def _validated(frame, card: ModelCard) -> dict | None:
    rows = [r for r in ok_records(frame, "validate") if r["model"] == card.name]
    return max(rows, key=lambda r: r["metrics"].get("val_images") or 0) if rows else None


def _chapter_row(frame, card: ModelCard) -> Row:
    ch, pub = card.chapter, card.published
    missing = f"no record of {card.name}: run python -m bench run --models {card.name}"
    tuned = _finetuned(frame, card)
    tuned_why = f"no record of the chapter's fine-tune command for {card.name}"
    tuned_cell = linked(tuned, "top1", "top1", tuned_why)
    if tuned is not None:
        c = tuned["config"]
        tuned_cell = Cell(
            tuned_cell.text,
            tuned_cell.sort,
            f"lr {c.get('lr'):g}, batch {c.get('batch_size')}, augment "
            f"{c.get('augment')}; {provenance(tuned)}",
            tuned_cell.href,
            True,
        )
    cells = [
        Cell(card.display_name, title=card.name),
        num(card.year, "year", "no year on the card"),
        text(ch.layers if ch else None, "the chapter gives none"),
        linked(_static(frame, card, "depth"), "depth", "count", missing),
        text(ch.params if ch else None, "the chapter gives none"),
        linked(_static(frame, card, "params"), "params", "count", missing),
        num(pub.gmacs, "gmacs", "no published figure", title=pub.gmacs_source),
        linked(_static(frame, card, "flops"), "infer_gmacs", "gmacs", missing),
        text(ch.top1 if ch else None, "the chapter gives none"),
        num(pub.top1, "top1", "no published figure", title=pub.top1_source),
        linked(_validated(frame, card), "val_top1", "top1", NO_WEIGHTS),
        *_speed_cells(frame, card, "cpu", "CPU"),
        *_speed_cells(frame, card, "cuda", "GPU"),
        tuned_cell,
    ]
    return Row(tuple(cells), title=f"{card.display_name}: each measured figure links to its run")


CHAPTER_COLUMNS = (
    "Model",
    "Year",
    "Layers (chapter)",
    "Depth (measured)",
    "Params (chapter)",
    "Params (measured)",
    "GMACs (published)",
    "GMACs (measured)",
    "Top-1 (chapter)",
    "Top-1 (published)",
    "Top-1 (measured)",
    "CPU samples/s",
    "CPU configuration",
    "GPU samples/s",
    "GPU configuration",
    "Fine-tuned top-1",
)


def chapter_blocks(frame) -> list:
    rows = tuple(_chapter_row(frame, card) for card in chapter_table())
    return [
        Text(
            "One row per architecture of the chapter's table: the chapter's figure beside the "
            "measured one. Depth counts weight layers on the longest path; GMACs are fvcore's "
            "multiply-accumulates at batch 1 and the native input size; top-1 is ImageNet's "
            "(published: torchvision's or timm's weights; measured: the validate harness). "
            "Samples/s is the best inference throughput measured on each device kind, with the "
            "configuration that won. Fine-tuned top-1 is on mnist5k's held-out 1,000 digits "
            f"after '{FINETUNE_COMMAND}' (from scratch). Every measured figure links to the run "
            "it came from; hover for the record's provenance."
        ),
        Table("chapter", CHAPTER_COLUMNS, rows),
    ]


def _conv_row(frame, card: ModelCard, standard: float | None) -> Row:
    row = card.conv_table
    params, flops = _static(frame, card, "params"), _static(frame, card, "flops")
    missing = f"no record of {card.name}: run python -m bench run --models conv_types"
    macs = flops["metrics"].get("macs") if flops else None
    cells = (
        Cell(card.display_name, title=card.name),
        text(row.params),
        num(card.formula_value("params"), "count", title=card.formula.get("params", "")),
        linked(params, "params", "count", missing),
        text(row.compute),
        num(card.formula_value("macs"), "count", title=card.formula.get("macs", "")),
        linked(flops, "macs", "count", missing),
        num(macs / standard if macs and standard else None, "ratio", "no measured MACs"),
        text(row.use),
    )
    return Row(cells, title=f"{card.display_name}: measured figures link to their run")


def conv_blocks(frame) -> list:
    cards = conv_table()
    if not cards:
        return [Text("No convolution cards.")]
    dims = cards[0].dims
    first = _static(frame, cards[0], "flops")
    standard = first["metrics"].get("macs") if first else None
    columns = (
        "Type",
        "Params (chapter)",
        "Params (formula)",
        "Params (measured)",
        "Compute (chapter)",
        "MACs (formula)",
        "MACs (measured)",
        "vs standard",
        "Use",
    )
    return [
        Text(
            f"Each row of the chapter's second table built as one layer without bias, C_in = "
            f"{dims.get('C_in')}, C_out = {dims.get('C_out')}, on a {dims.get('H')}x"
            f"{dims.get('W')} input; the chapter's formulas evaluated at those sizes (hover "
            "for the formula) beside fvcore's count."
        ),
        Table("conv-types", columns, tuple(_conv_row(frame, c, standard) for c in cards)),
    ]

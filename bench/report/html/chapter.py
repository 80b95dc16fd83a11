"""The chapter's tables on the page, with chapter.md's columns, flags and verdicts: the
chapter's table judged (``verdicts``), what was measured here (speed at the native size, MNIST
top-1 trained from scratch, each figure linked to its run), and the table of convolution
types."""

from __future__ import annotations

from bench.registry.cards import ModelCard, chapter_table, conv_table
from bench.report.chapter import (
    HEADLINE_COLUMNS,
    MEASURED_COLUMNS,
    answer_text,
    best_speed,
    chapter_finetune_seeds,
    columns_text,
    finetune_text,
    mnist_note,
    mnist_top1_text,
    native_speeds,
    native_workload_text,
    rule_text,
    speed_config,
    weights_notes,
)
from bench.report.convtypes import CONV_COLUMNS
from bench.report.html.cells import by_model, device, num, provenance, row, run_href, runtime, text
from bench.report.html.render import Cell, Row, Table, Text
from bench.report.section1 import worked_example_wrong
from bench.report.trained import top1_over_seeds
from bench.report.verdicts import Judged, judge


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


def _speed_cell(frame, card: ModelCard, kind: str, label: str) -> Cell:
    """The best samples/s at the native size (the chapter's speed rule), its configuration
    and machine on hover; '-' with the reason."""
    rec = best_speed(frame, card, kind)
    why = f"not measured: no {label} throughput record of {card.name} at {card.input_size[1]} px"
    if rec is None and native_speeds(frame, card, kind):
        why = f"every {label} timing of {card.name} is too short or unsettled to trust"
    if rec is None:
        return num(None, "rate", why)
    cell = linked(rec, "infer_samples_per_sec", "rate", why)
    title = f"{device(rec)}: {speed_config(rec['config'])}; {provenance(rec)}"
    return Cell(cell.text, cell.sort, title, cell.href, True)


def _finetuned_cell(frame, card: ModelCard) -> tuple[Cell, Cell]:
    """The MNIST cell, as chapter.md writes it (its seeds' interval), with its seeds and run on
    hover and a link to the (latest) run; and the recipe cell."""
    seeds = chapter_finetune_seeds(frame, card.name)
    if not seeds:
        why = "not measured: no record of the chapter command"
        return num(None, "top1", why), text(None, "not measured")
    tuned = max(seeds, key=lambda r: (r["finished_utc"], r["run_id"]))
    top1 = top1_over_seeds(seeds)
    title = f"trained from scratch on {device(tuned)}; {mnist_note(seeds, tuned)}"
    cell = Cell(mnist_top1_text(seeds), top1.mean if top1 else "", title, run_href(tuned), True)
    return cell, Cell(f"{tuned.get('batch_size')}, {tuned.get('lr'):g}")


def _measured_row(frame, card: ModelCard) -> Row:
    missing = f"no record of {card.name}: run python -m bench run --models {card.name}"
    tuned_cell, recipe = _finetuned_cell(frame, card)
    cells = (
        Cell(card.display_name, title=card.name),
        Cell(f"{card.input_size[1]} px", sort=card.input_size[1]),
        linked(_static(frame, card, "flops"), "infer_gmacs", "gmacs", missing),
        _speed_cell(frame, card, "cpu", "CPU"),
        _speed_cell(frame, card, "cuda", "GPU"),
        tuned_cell,
        recipe,
    )
    return Row(cells, title=f"{card.display_name}: each measured figure links to its run")


def _headline_row(frame, card: ModelCard) -> tuple[Row, Judged]:
    depth, params = _static(frame, card, "depth"), _static(frame, card, "params")
    j = judge(
        card,
        depth["metrics"].get("depth") if depth else None,
        params["metrics"].get("params") if params else None,
    )
    sources = weights_notes([card])
    cells = (
        Cell(card.display_name, title=card.name),
        Cell(j.layers, title="the chapter's / measured weight layers on the longest path"),
        Cell(j.params, title="the chapter's / measured parameters"),
        Cell(j.top1, title="the chapter's ImageNet-1k top-1"),
        num(card.paper.top1, "top1", card.paper.source, title=card.paper.source),
        num(card.published.top1, "top1", card.paper.source, title=sources.get(card.name, "")),
        Cell(j.verdict),
    )
    return Row(cells, title=f"{card.display_name}: hover a top-1 for its source"), j


def chapter_blocks(frame) -> list:
    cards = [c for c in chapter_table() if c.chapter is not None]
    judged = [_headline_row(frame, card) for card in cards]
    names = [c.display_name for c in cards]
    answer = answer_text([j for _, j in judged], names, worked_example_wrong(), "chapter.md")
    return [
        Text(answer),
        Text(rule_text()),
        Table("chapter", HEADLINE_COLUMNS, tuple(r for r, _ in judged)),
        Text(
            f"{native_workload_text()} {columns_text(frame)} {finetune_text(frame)} Hover a "
            "figure for its "
            "configuration, device and run; it links to the run."
        ),
        Table("chapter-measured", MEASURED_COLUMNS, tuple(_measured_row(frame, c) for c in cards)),
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
    )
    return Row(cells, title=f"{card.display_name}: measured figures link to their run")


def conv_blocks(frame) -> list:
    cards = conv_table()
    if not cards:
        return [Text("No convolution cards.")]
    dims = cards[0].dims
    first = _static(frame, cards[0], "flops")
    standard = first["metrics"].get("macs") if first else None
    return [
        Text(
            f"Each row of the chapter's second table built as one layer without bias, C_in = "
            f"{dims.get('C_in')}, C_out = {dims.get('C_out')}, on a {dims.get('H')}x"
            f"{dims.get('W')} input; the chapter's formulas evaluated at those sizes (hover "
            "for the formula) beside fvcore's count."
        ),
        Table("conv-types", CONV_COLUMNS, tuple(_conv_row(frame, c, standard) for c in cards)),
    ]


def failures_blocks(frame) -> list:
    if frame.empty:
        return [Text("None.")]
    bad = frame[frame["status"] != "ok"].to_dict("records")
    out = [
        row(
            (
                text(r["model"]),
                text(r["harness"]),
                text(device(r)),
                text(r["status"]),
                text(
                    runtime(r["config"]) if r["harness"] == "throughput" else None, "not throughput"
                ),
                text(r.get("error"), "no message"),
            ),
            r,
        )
        for r in by_model(bad)
    ]
    columns = ("Model", "Harness", "Device", "Status", "Runtime", "Reason", "Run")
    return [Table("failures", columns, tuple(out), empty="None.")]

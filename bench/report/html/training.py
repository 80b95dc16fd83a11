"""The page's training sections: the same blocks as finetune.md and antipatterns.md (headings,
paragraphs, tables with the same columns), drawn as the page's sortable tables, each row's
run linked to the runs table with its provenance on hover."""

from __future__ import annotations

import re

from bench.registry.lookup import natural_key as natural
from bench.report.antipatterns import INTRO as ANTIPATTERN_INTRO
from bench.report.antipatterns import antipattern_blocks as antipattern_report_blocks
from bench.report.blocks import RUN, Bullets, Heading, Para, Tbl
from bench.report.finetune import INTRO as FINETUNE_INTRO
from bench.report.finetune import finetune_blocks as finetune_report_blocks
from bench.report.html.cells import row
from bench.report.html.chapter import ok_records
from bench.report.html.render import Cell, Row, Section, Table, Text
from bench.report.trained import finetune_rows

_NUMBER = re.compile(r"^[-+]?[0-9][0-9,]*(\.[0-9]+)?")
_MARKUP = re.compile(r"`|\*")


def finetune_records(frame) -> list[dict]:
    """The fine-tune records as the page's plots read them (config and metrics apart)."""
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


def _cell(text: str) -> Cell:
    """A markdown cell as a page cell: numbers sort as numbers (a mark after them kept)."""
    m = _NUMBER.match(text)
    if m:
        return Cell(text, sort=float(m.group(0).replace(",", "")), numeric=True)
    return Cell(text)


def _table(b: Tbl) -> Table:
    rows = tuple(
        row(tuple(map(_cell, r.values())), rec) if b.recs else Row(tuple(map(_cell, r.values())))
        for r, rec in zip(b.rows, b.recs or b.rows, strict=True)
    )
    return Table(b.table_id, b.columns or (RUN,), rows, empty=b.empty)


def page_blocks(blocks: list, prefix: str) -> list:
    """Report blocks as page blocks: headings become subsections (their tables follow)."""
    out: list = []
    for n, b in enumerate(blocks, 1):
        if isinstance(b, Heading):
            out.append(Section(b.anchor or f"{prefix}-{n}", b.text, []))
        elif isinstance(b, Para):
            out.append(Text(_MARKUP.sub("", b.text)))
        elif isinstance(b, Bullets):
            out.append(Text(items=tuple(_MARKUP.sub("", i) for i in b.items)))
        elif isinstance(b, Tbl):
            out.append(_table(b))
    return out


def finetune_blocks(frame) -> list:
    rows = finetune_rows(frame)
    if not rows:
        return [Text(_MARKUP.sub("", FINETUNE_INTRO)), Text("No fine-tune records yet.")]
    blocks = [Para(FINETUNE_INTRO), *finetune_report_blocks(rows)]
    return page_blocks(blocks, "finetune-part")


def antipattern_blocks(frame) -> list:
    blocks = [Para(ANTIPATTERN_INTRO), *antipattern_report_blocks(finetune_rows(frame))]
    return page_blocks(blocks, "antipatterns-part")

"""Report blocks (``bench.report.blocks``) as the page's blocks: headings become subsections,
paragraphs and bullets text, tables sortable tables with the markdown's columns (numbers sort
by value; a row's record, when given, links its run)."""

from __future__ import annotations

import re

from bench.report.blocks import RUN, Bullets, Heading, Para, Tbl
from bench.report.html.cells import row
from bench.report.html.render import Cell, Row, Section, Table, Text

_NUMBER = re.compile(r"^[-+]?[0-9][0-9,]*(\.[0-9]+)?")
MARKUP = re.compile(r"`|\*")


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
            out.append(Text(MARKUP.sub("", b.text)))
        elif isinstance(b, Bullets):
            out.append(Text(items=tuple(MARKUP.sub("", i) for i in b.items)))
        elif isinstance(b, Tbl):
            out.append(_table(b))
    return out

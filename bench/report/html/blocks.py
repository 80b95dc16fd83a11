"""Report blocks (``bench.report.blocks``) as the page's blocks: headings become subsections,
paragraphs and bullets text, tables sortable tables with the markdown's columns (numbers sort
by value; a row's record, when given, links its run). A footnote marker of the markdown
becomes its note on the cell's hover when the section's ``Footnotes`` are given."""

from __future__ import annotations

import re

from bench.report.blocks import RUN, Bullets, Code, Heading, Notes, Para, Tbl
from bench.report.fmt import Footnotes
from bench.report.html.cells import row
from bench.report.html.render import Cell, Row, Section, Table, Text

# a number at the start of a cell, a unit or mark after it ('1.12x', '9.2% D', '2.5 ⚠'), but
# not the digits that begin a word ('7d430091e283', a sha256's first 12 hex digits)
_NUMBER = re.compile(r"^[-+]?[0-9][0-9,]*(\.[0-9]+)?(e[-+]?[0-9]+)?(?![0-9A-Za-wyz_])")
MARKUP = re.compile(r"`|\*")
FOOTNOTE = re.compile(r"\[\^([^\]]+)\]")
LINK = re.compile(r"\[([^\]^][^\]]*)\]\([^)]*\)")  # [text](file): the page shows the text


def _cell(text: str, notes: Footnotes | None) -> Cell:
    """A markdown cell as a page cell: numbers sort as numbers (a mark after them kept), a
    footnote marker becomes its note on hover."""
    labels = FOOTNOTE.findall(text)
    text = FOOTNOTE.sub("", text).strip() if labels else text
    title = "; ".join(filter(None, (notes.text(k) for k in labels))) if notes else ""
    m = _NUMBER.match(text)
    if m:
        return Cell(text, sort=float(m.group(0).replace(",", "")), title=title, numeric=True)
    return Cell(text, title=title)


def _table(b: Tbl, table_id: str, notes: Footnotes | None) -> Table:
    def cells(r: dict) -> tuple[Cell, ...]:
        return tuple(_cell(v, notes) for v in r.values())

    rows = tuple(
        row(cells(r), rec) if b.recs else Row(cells(r))
        for r, rec in zip(b.rows, b.recs or b.rows, strict=True)
    )
    return Table(table_id, b.columns or (RUN,), rows, empty=b.empty)


def _unique(table_id: str, seen: set[str]) -> str:
    """``table_id``, or it with the first free '-2', '-3'... when taken (the same blocks
    always give the same ids)."""
    tid, n = table_id, 1
    while tid in seen:
        n += 1
        tid = f"{table_id}-{n}"
    seen.add(tid)
    return tid


def plain(text: str) -> str:
    """Markdown prose as the page's text: no code or emphasis marks, no footnote markers, a
    link as its text."""
    return LINK.sub(r"\1", FOOTNOTE.sub("", MARKUP.sub("", text)))


def page_blocks(blocks: list, prefix: str, notes: Footnotes | None = None) -> list:
    """Report blocks as page blocks: headings become subsections (their tables follow)."""
    out: list = []
    seen: set[str] = set()
    for n, b in enumerate(blocks, 1):
        if isinstance(b, Heading):
            out.append(Section(b.anchor or f"{prefix}-{n}", b.text, []))
        elif isinstance(b, Para):
            out.append(Text(plain(b.text)))
        elif isinstance(b, Bullets):
            out.append(Text(items=tuple(plain(i) for i in b.items)))
        elif isinstance(b, Code):
            out.append(Text(items=tuple(b.text.replace("\\\n    ", "").splitlines())))
        elif isinstance(b, Tbl):
            out.append(_table(b, _unique(b.table_id, seen), notes))
        elif not isinstance(b, Notes):
            raise TypeError(f"not a report block: {type(b).__name__}")
    return out

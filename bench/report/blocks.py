"""A report section as plain blocks that both renderers draw: the markdown here, the page in
``bench.report.html.training``. A section computes its headings, paragraphs and tables once,
so the page shows the same tables, with the same columns, as the markdown.

A table's rows are dicts (column -> cell text) with, beside each, the record it comes from:
the markdown ends the row with that record's run footnote, the page with its run link.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from bench.report.fmt import MAX_LINE, Footnotes, md_table, wrap

RUN = "Run"


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2
    anchor: str = ""  # the page's id for it


@dataclass(frozen=True)
class Para:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Tbl:
    table_id: str
    rows: tuple[dict, ...]
    recs: tuple[dict | None, ...] = ()  # the record behind each row: a Run column when given
    empty: str = "No records yet."

    @property
    def columns(self) -> tuple[str, ...]:
        if not self.rows:
            return ()
        return (*self.rows[0], RUN) if self.recs else tuple(self.rows[0])


def markdown(blocks: list, notes: Footnotes) -> list[str]:
    """The blocks as markdown lines, a blank line after each; run footnotes go to ``notes``."""
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append("#" * b.level + " " + b.text)
        elif isinstance(b, Para):
            out += wrap(b.text)
        elif isinstance(b, Bullets):
            for item in b.items:
                out += textwrap.wrap(f"- {item}", width=MAX_LINE - 10, subsequent_indent="  ",
                                     break_long_words=False, break_on_hyphens=False)  # fmt: skip
        elif isinstance(b, Tbl):
            rows = [
                {**row, RUN: notes.run(rec)} if b.recs else row
                for row, rec in zip(b.rows, b.recs or b.rows, strict=True)
            ]
            out.append(md_table(rows) or b.empty)
        else:
            raise TypeError(f"not a report block: {type(b).__name__}")
        out.append("")
    return out

"""A report section as plain blocks that both renderers draw: the markdown here, the page in
``bench.report.html.blocks``. A section computes its headings, paragraphs and tables once,
so the page shows the same tables, with the same columns, as the markdown.

A table's rows are dicts (column -> cell text) with, beside each, the record it comes from:
the markdown ends the row with that record's run footnote, the page with its run link.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass

from bench.report.fmt import MAX_LINE, Footnotes, clip, md_table, wrap

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
class Code:
    """Lines shown as typed: a fenced block in the markdown, a list on the page."""

    text: str


@dataclass(frozen=True)
class Notes:
    """Where the footnotes of the blocks above (back to the last ``Notes``) are written in the
    markdown; the page shows each note on its cells' hover instead."""


@dataclass(frozen=True)
class Tbl:
    table_id: str
    rows: tuple[dict, ...]
    recs: tuple[dict | None, ...] = ()  # the record behind each row: a Run column when given
    empty: str = "No records yet."
    clipped: tuple[tuple[str, int], ...] = ()  # (column, width): clipped in the markdown only

    @property
    def columns(self) -> tuple[str, ...]:
        if not self.rows:
            return ()
        return (*self.rows[0], RUN) if self.recs else tuple(self.rows[0])


def slug(text: str) -> str:
    """``text`` as a stable part of a page id: 'NVIDIA H100 80GB' -> 'nvidia-h100-80gb'."""
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "x"


def _md_rows(b: Tbl, notes: Footnotes) -> list[dict]:
    widths = dict(b.clipped)
    return [
        {k: clip(v, widths[k]) if k in widths else v for k, v in row.items()}
        | ({RUN: notes.run(rec)} if b.recs else {})
        for row, rec in zip(b.rows, b.recs or b.rows, strict=True)
    ]


def markdown(blocks: list, notes: Footnotes) -> list[str]:
    """The blocks as markdown lines, a blank line after each; run footnotes go to ``notes``."""
    out: list[str] = []
    since = 0
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
            out.append(md_table(_md_rows(b, notes)) or b.empty)
        elif isinstance(b, Code):
            out += ["```", *b.text.splitlines(), "```"]
        elif isinstance(b, Notes):  # the notes of the blocks since the last Notes
            written = notes.lines("\n".join(out[since:]))
            out += written
            since = len(out)
            if not written:
                continue  # no blank line for no notes
        else:
            raise TypeError(f"not a report block: {type(b).__name__}")
        out.append("")
    return out


def document(title: str, intro: str, blocks: list, notes: Footnotes) -> str:
    """A report file: its title, intro, then its blocks, and the footnotes they marked in
    ``notes`` that a ``Notes`` block has not written yet."""
    lines = [f"# {title}", "", *wrap(intro), "", *markdown(blocks, notes)]
    extra = notes.lines()
    text = "\n".join([*lines, *extra] if extra else lines)
    return text.rstrip("\n") + "\n"

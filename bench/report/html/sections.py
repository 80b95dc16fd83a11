"""The page's side of ``bench.report.sections``: each registered section's blocks drawn with
the markdown's columns and rows (``bench.report.html.blocks``)."""

from __future__ import annotations

from bench.report.fmt import Footnotes
from bench.report.html.blocks import page_blocks, plain
from bench.report.html.render import Section, Text
from bench.report.sections import SECTIONS


def registered(records, table) -> list[Section]:
    """Every registered section as a section of the page, in the registry's order."""
    out = []
    for s in SECTIONS:
        notes = Footnotes()
        blocks = page_blocks(s.blocks(records, table, notes), s.name, notes)
        out.append(Section(s.name, s.title, [Text(plain(s.intro)), *blocks]))
    return out

"""The page's side of ``bench.report.sections``: each registered section's tables drawn with
the markdown's columns and rows; numbers (with thousands separators, a unit suffix or a
sign) sort by value."""

from __future__ import annotations

import re

from bench.report.blocks import Table
from bench.report.html.render import Cell, Row, Section, Text
from bench.report.html.render import Table as PageTable
from bench.report.sections import SECTIONS
from bench.report.sections import Section as ReportSection

NUMBER = re.compile(r"[+-]?[\d,]*\.?\d+(?:[eE][+-]?\d+)?\s*(%|x|s|ms)?")


def cell(text: str) -> Cell:
    """A markdown cell as a page cell: a number sorts by its value and aligns right."""
    text = str(text)
    if NUMBER.fullmatch(text.strip()):
        value = float(re.sub(r"[,%xms\s]", "", text))
        return Cell(text, sort=value, numeric=True)
    return Cell(text)


def table_blocks(section: ReportSection, i: int, table: Table) -> list:
    tid = section.name if i == 0 else f"{section.name}-{i + 1}"
    columns = tuple(table.rows[0]) if table.rows else ()
    rows = tuple(Row(tuple(cell(v) for v in r.values())) for r in table.rows)
    blocks: list = [PageTable(tid, columns, rows, caption=table.title, empty=table.empty)]
    if table.notes:
        blocks.append(Text(items=table.notes))
    return blocks


def section_of(section: ReportSection, records, table) -> Section:
    """A registered section as a section of the page."""
    blocks: list = [Text(section.intro.replace("`", ""))]
    for i, t in enumerate(section.tables(records, table)):
        blocks += table_blocks(section, i, t)
    return Section(section.name, section.title, blocks)


def registered(records, table) -> list[Section]:
    """Every registered section, in the registry's order."""
    return [section_of(s, records, table) for s in SECTIONS]

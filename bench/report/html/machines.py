"""The page's machines: the rows of ``machines.md`` (``bench.report.machines``), drawn as a
table with the same columns."""

from __future__ import annotations

import re

from bench.report.html.render import Cell, Row, Table, Text
from bench.report.machines import INTRO, machines, note_texts
from bench.report.records import Records


def _cell(value: str) -> Cell:
    if re.fullmatch(r"[\d,]+", value):
        return Cell(value, sort=float(value.replace(",", "")), numeric=True)
    return Cell(value)


def machine_blocks(records: Records) -> list:
    found = machines(records)
    rows = tuple(Row(tuple(_cell(v) for v in m.row().values()), title=m.machine_id) for m in found)
    columns = tuple(found[0].row()) if found else ("Machine",)
    extra = tuple(f"{label}: {note}" for label, note in note_texts(found))
    text = INTRO.replace("`", "")
    return [Text(text), Table("machines", columns, rows, empty="No runs yet."), Text(items=extra)]

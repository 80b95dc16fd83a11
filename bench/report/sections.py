"""One list of report sections that the markdown files and the page both draw.

A ``Section`` computes its tables once (rows of column -> text, as the markdown shows them),
and two renderers draw the same rows: ``markdown()`` here writes ``reports/<name>.md``,
``bench.report.html.sections`` puts them on the page with the same columns. Adding a section
is one module that returns ``Table``s and one line in ``SECTIONS``. No torch here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.report.blocks import Table
from bench.report.fmt import PROSE_WIDTH, md_table, wrap
from bench.report.machines import MACHINES_INTRO, machines_tables
from bench.report.models import MODELS_INTRO, models_tables
from bench.report.records import Records
from bench.storage import atomic_write_text


@dataclass(frozen=True)
class Section:
    """A report section: ``name`` is its markdown file's stem and its anchor on the page;
    ``tables(records, table)`` computes its tables from the store as read and the tidy table
    of its latest records."""

    name: str
    title: str
    intro: str
    tables: Callable[[Records, Any], list[Table]]


SECTIONS: tuple[Section, ...] = (
    Section("models", "Measured models", MODELS_INTRO, models_tables),
    Section("machines", "Machines", MACHINES_INTRO, machines_tables),
)


def _notes(notes: tuple[str, ...]) -> list[str]:
    out = []
    for note in notes:
        lines = wrap(note, PROSE_WIDTH - 2)
        out += [f"- {lines[0]}", *(f"  {line}" for line in lines[1:])]
    return out


def markdown(section: Section, tables: list[Table]) -> str:
    """A section's markdown file: its title, intro, then each table with its notes."""
    lines = [f"# {section.title}", "", *wrap(section.intro), ""]
    for t in tables:
        if t.title:
            lines += [f"## {t.title}", ""]
        lines += [md_table(t.rows) if t.rows else t.empty, ""]
        if t.notes:
            lines += [*_notes(t.notes), ""]
    return "\n".join(lines)


def write_sections(records: Records, table, out_dir: Path) -> list[Path]:
    """Write every registered section's markdown file."""
    written = []
    for section in SECTIONS:
        path = Path(out_dir) / f"{section.name}.md"
        atomic_write_text(path, markdown(section, section.tables(records, table)))
        written.append(path)
    return written

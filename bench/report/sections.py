"""One list of report sections that the markdown files and the page both draw.

A ``Section`` computes its blocks once (``bench.report.blocks``: headings, paragraphs,
bullets and tables of column -> text), and two renderers draw the same blocks: ``markdown()``
here writes ``reports/<name>.md``, ``bench.report.html.sections`` puts them on the page with
the same columns. Adding a section is one module that returns blocks and one line in
``SECTIONS``. No torch here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.report.blocks import markdown as blocks_markdown
from bench.report.fmt import Footnotes, wrap
from bench.report.machines import MACHINES_INTRO, machines_blocks
from bench.report.models import MODELS_INTRO, models_blocks
from bench.report.records import Records
from bench.storage import atomic_write_text


@dataclass(frozen=True)
class Section:
    """A report section: ``name`` is its markdown file's stem and its anchor on the page;
    ``blocks(records, table, notes)`` computes its blocks from the store as read and the tidy
    table of its latest records, marking its footnotes in ``notes`` (``fmt.Footnotes``)."""

    name: str
    title: str
    intro: str
    blocks: Callable[[Records, Any, Footnotes], list]


SECTIONS: tuple[Section, ...] = (
    Section("models", "Measured models", MODELS_INTRO, models_blocks),
    Section("machines", "Machines", MACHINES_INTRO, machines_blocks),
)


def markdown(section: Section, blocks: list, notes: Footnotes) -> str:
    """A section's markdown file: its title, intro, then its blocks (and their footnotes)."""
    lines = [f"# {section.title}", "", *wrap(section.intro), "", *blocks_markdown(blocks, notes)]
    extra = notes.lines()
    return "\n".join([*lines, *extra, ""] if extra else lines)


def section_markdown(section: Section, records: Records | None, table) -> str:
    """A registered section's markdown file, computed from the store and its tidy table."""
    notes = Footnotes()
    return markdown(section, section.blocks(records, table, notes), notes)


def write_sections(records: Records, table, out_dir: Path) -> list[Path]:
    """Write every registered section's markdown file."""
    written = []
    for section in SECTIONS:
        path = Path(out_dir) / f"{section.name}.md"
        atomic_write_text(path, section_markdown(section, records, table))
        written.append(path)
    return written

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

from bench.report.antipatterns import INTRO as ANTIPATTERNS_INTRO
from bench.report.antipatterns import TITLE as ANTIPATTERNS_TITLE
from bench.report.antipatterns import antipatterns_section_blocks
from bench.report.blocks import document
from bench.report.finetune import INTRO as FINETUNE_INTRO
from bench.report.finetune import TITLE as FINETUNE_TITLE
from bench.report.finetune import finetune_plots, finetune_section_blocks
from bench.report.fmt import Footnotes
from bench.report.machines import MACHINES_INTRO, machines_blocks
from bench.report.models import MODELS_INTRO, models_blocks
from bench.report.records import Records
from bench.report.throughput import INTRO as THROUGHPUT_INTRO
from bench.report.throughput import throughput_plots, throughput_section_blocks
from bench.report.trends import (
    trends_plots,
    trends_section_blocks,
    trends_section_intro,
    trends_wanted,
)
from bench.storage import atomic_write_text


def _always(records: Records) -> bool:
    return True


@dataclass(frozen=True)
class Section:
    """A report section: ``name`` is its markdown file's stem and its anchor on the page;
    ``blocks(records, table, notes)`` computes its blocks from the store as read and the tidy
    table of its latest records, marking its footnotes in ``notes`` (``fmt.Footnotes``).
    ``intro`` is text, or a function of the records; ``plots(records, table, out_dir)``
    writes the PNGs its markdown links and returns their paths; ``wanted(records)`` says
    whether the markdown file is written at all (the page always shows the section)."""

    name: str
    title: str
    intro: str | Callable[[Records], str]
    blocks: Callable[[Records, Any, Footnotes], list]
    plots: Callable[[Records, Any, Path], list[Path]] | None = None
    wanted: Callable[[Records], bool] = _always

    def intro_text(self, records: Records) -> str:
        return self.intro(records) if callable(self.intro) else self.intro


SECTIONS: tuple[Section, ...] = (
    Section("throughput", "Throughput", THROUGHPUT_INTRO, throughput_section_blocks,
            throughput_plots),
    Section("finetune", FINETUNE_TITLE, FINETUNE_INTRO,
            finetune_section_blocks, finetune_plots),
    Section("antipatterns", ANTIPATTERNS_TITLE, ANTIPATTERNS_INTRO,
            antipatterns_section_blocks),
    Section("trends", "Trends", trends_section_intro, trends_section_blocks, trends_plots,
            trends_wanted),
    Section("models", "Measured models", MODELS_INTRO, models_blocks),
    Section("machines", "Machines", MACHINES_INTRO, machines_blocks),
)  # fmt: skip


def section_markdown(section: Section, records: Records | None, table) -> str:
    """A registered section's markdown file, computed from the store and its tidy table."""
    notes = Footnotes()
    blocks = section.blocks(records, table, notes)
    return document(section.title, section.intro_text(records), blocks, notes)


def write_sections(records: Records, table, out_dir: Path) -> list[Path]:
    """Write every registered section's markdown file and plots (those it wants)."""
    written = []
    for section in SECTIONS:
        if not section.wanted(records):
            continue
        path = Path(out_dir) / f"{section.name}.md"
        atomic_write_text(path, section_markdown(section, records, table))
        written.append(path)
        if section.plots is not None:
            written += section.plots(records, table, Path(out_dir))
    return written

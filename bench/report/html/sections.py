"""The page's side of ``bench.report.sections``: each registered section's blocks drawn with
the markdown's columns and rows (``bench.report.html.blocks``), with what only the page
adds around them (its own tables and figures) given by section name."""

from __future__ import annotations

from collections.abc import Callable

from bench.report.fmt import Footnotes
from bench.report.html.blocks import page_blocks, plain
from bench.report.html.render import Section, Text
from bench.report.sections import SECTIONS

# name -> (page blocks before the section's blocks, page blocks after them)
Extras = dict[str, tuple[list, list]]


def registered(records, table, extras: Extras | None = None) -> list[Section]:
    """Every registered section as a section of the page, in the registry's order."""
    extras = extras or {}
    out = []
    for s in SECTIONS:
        notes = Footnotes()
        blocks = page_blocks(s.blocks(records, table, notes), s.name, notes)
        before, after = extras.get(s.name, ([], []))
        intro = Text(plain(s.intro_text(records)))
        out.append(Section(s.name, s.title, [intro, *before, *blocks, *after]))
    return out


def page_extras(**parts: Callable[[], tuple[list, list]]) -> Extras:
    """The extras of the named sections, each computed by its function."""
    return {name.replace("_", "-"): make() for name, make in parts.items()}

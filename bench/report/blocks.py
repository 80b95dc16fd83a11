"""What a report section hands its renderers: tables of text rows. Plain data, no pandas."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Table:
    """One table of a section: its title ('' for none), its rows (column -> text, every row
    with the same columns), the notes under it (plain sentences) and what to say when empty.
    The markdown and the page draw the same rows with the same columns."""

    title: str
    rows: list[dict[str, str]]
    notes: tuple[str, ...] = ()
    empty: str = "No results yet."

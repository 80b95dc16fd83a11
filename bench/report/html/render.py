"""The page's renderer: sections of tables, figures and text in, one self-contained HTML page out.

Pure: no pandas, no matplotlib, no file access. Every table is sortable by clicking a header
and filterable by typing (``assets.SCRIPT``); images arrive as PNG bytes and are inlined as
``data:`` URIs, so the page makes no request of any kind and opens from ``file://``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from html import escape

from bench.report.html.assets import SCRIPT, STYLE

NUM = ' class="num"'
WRAP = ' class="wrap"'  # long text cells wrap instead of widening the table
WRAP_AFTER = 30


@dataclass(frozen=True)
class Cell:
    """One table cell: its text, a sort key (numbers sort by value; None: by the text), a
    tooltip, a link, and whether it is a number (right-aligned)."""

    text: str
    sort: float | str | None = None
    title: str = ""
    href: str = ""
    numeric: bool = False


@dataclass(frozen=True)
class Row:
    cells: tuple[Cell, ...]
    title: str = ""  # the row's provenance, shown on hover
    anchor: str = ""  # an id other cells link to


@dataclass(frozen=True)
class Table:
    table_id: str
    columns: tuple[str, ...]
    rows: tuple[Row, ...]
    caption: str = ""
    empty: str = "No records yet."


@dataclass(frozen=True)
class Figure:
    png: bytes
    alt: str
    caption: str = ""


@dataclass(frozen=True)
class Text:
    """A paragraph, or a bulleted list when ``items`` is given (plain text, escaped)."""

    text: str = ""
    items: tuple[str, ...] = ()


@dataclass(frozen=True)
class Section:
    section_id: str
    title: str
    blocks: list = field(default_factory=list)


def _attr(name: str, value: str) -> str:
    return f' {name}="{escape(value, quote=True)}"' if value else ""


def _sort_key(cell: Cell) -> str:
    if cell.sort is None:
        return ""
    if isinstance(cell.sort, float):
        return _attr("data-sort", repr(cell.sort))
    return _attr("data-sort", str(cell.sort))


def _cell(cell: Cell) -> str:
    text = escape(cell.text)
    if cell.href:
        text = f'<a href="{escape(cell.href, quote=True)}">{text}</a>'
    cls = NUM if cell.numeric else WRAP if len(cell.text) > WRAP_AFTER else ""
    return f"<td{cls}{_sort_key(cell)}{_attr('title', cell.title)}>{text}</td>"


def _table(table: Table) -> list[str]:
    tid = escape(table.table_id, quote=True)  # the table's id is tid-table: sections own tid
    if not table.rows:
        return [f'<p class="empty" id="{tid}-table">{escape(table.empty)}</p>']
    numeric = [any(r.cells[i].numeric for r in table.rows) for i in range(len(table.columns))]
    heads = "".join(
        f'<th scope="col"{NUM if n else ""} tabindex="0">{escape(c)}</th>'
        for c, n in zip(table.columns, numeric, strict=True)
    )
    out = [
        f'<div class="tablebox" data-table="{tid}">',
        f'<input type="search" class="filter" placeholder="filter rows (model, device, runtime,'
        f' harness...)" aria-label="filter {tid}"> <span class="count"></span>',
        f'<div class="scroll"><table class="data" id="{tid}-table">',
    ]
    if table.caption:
        out.append(f"<caption>{escape(table.caption)}</caption>")
    out.append(f"<thead><tr>{heads}</tr></thead><tbody>")
    out += [
        f"<tr{_attr('id', r.anchor)}{_attr('title', r.title)}>{''.join(map(_cell, r.cells))}</tr>"
        for r in table.rows
    ]
    out.append("</tbody></table></div></div>")
    return out


def _figure(fig: Figure) -> list[str]:
    data = base64.b64encode(fig.png).decode("ascii")
    caption = f"<figcaption>{escape(fig.caption)}</figcaption>" if fig.caption else ""
    return [
        f'<figure><img alt="{escape(fig.alt, quote=True)}" src="data:image/png;base64,{data}">'
        f"{caption}</figure>"
    ]


def _text(text: Text) -> list[str]:
    out = [f"<p>{escape(text.text)}</p>"] if text.text else []
    if text.items:
        out += ["<ul>", *(f"<li>{escape(i)}</li>" for i in text.items), "</ul>"]
    return out


def _block(block) -> list[str]:
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Figure):
        return _figure(block)
    if isinstance(block, Text):
        return _text(block)
    if isinstance(block, Section):  # a subsection
        return [
            f'<h3 id="{escape(block.section_id, quote=True)}">{escape(block.title)}</h3>',
            *(line for b in block.blocks for line in _block(b)),
        ]
    raise TypeError(f"not a block of the page: {type(block).__name__}")


def render_page(title: str, intro: str, sections: list[Section]) -> str:
    """The whole page as text: same sections, same bytes."""
    toc = "".join(
        f'<li><a href="#{escape(s.section_id, quote=True)}">{escape(s.title)}</a></li>'
        for s in sections
    )
    body = []
    for s in sections:
        body.append(f'<section id="{escape(s.section_id, quote=True)}">')
        body.append(f"<h2>{escape(s.title)}</h2>")
        body += [line for b in s.blocks for line in _block(b)]
        body.append("</section>")
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<link rel="icon" href="data:,">',
            f"<title>{escape(title)}</title>",
            f"<style>{STYLE}</style>",
            "</head><body>",
            f"<header><h1>{escape(title)}</h1><p>{escape(intro)}</p>",
            f'<nav aria-label="sections"><ol>{toc}</ol></nav></header>',
            "<main>",
            *body,
            "</main>",
            f"<script>{SCRIPT}</script>",
            "</body></html>",
            "",
        ]
    )

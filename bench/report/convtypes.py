"""The chapter's table of convolution types, in ``chapter.md``: its formulas against
measurement, in one table with the page's columns (``html/chapter.CONV_COLUMNS``). Pure
Python; no torch."""

from __future__ import annotations

from bench.registry.cards import conv_table
from bench.report.fmt import WARN, fmt_int, md_table, wrap
from bench.report.tidy import measured_for

# The table's columns, the same in chapter.md and on the page
CONV_COLUMNS = (
    "Type",
    "Params (chapter)",
    "Params (formula)",
    "Params (measured)",
    "Compute (chapter)",
    "MACs (formula)",
    "MACs (measured)",
    "vs standard",
)


def _cell(measured, expected: int) -> str:
    if measured is None:
        return "-"
    mark = "" if int(measured) == expected else f" {WARN}"
    return f"{fmt_int(measured)}{mark}"


def conv_types_markdown(table) -> list[str]:
    """The chapter's second table: each type's parameters and MACs, stated, by formula and
    measured."""
    cards = conv_table()
    if not cards:
        return []
    dims = cards[0].dims
    standard = measured_for(cards[0], table).get("macs")
    rows, stated_none = [], {}
    for card in cards:
        m = measured_for(card, table)
        row = card.conv_table
        p_formula, m_formula = card.formula_value("params"), card.formula_value("macs")
        macs = m.get("macs")
        if not row.compute.startswith("O("):
            stated_none.setdefault(card.formula["macs"], []).append(card.display_name)
        cells = (
            card.display_name,
            row.params,
            fmt_int(p_formula),
            _cell(m.get("params"), p_formula),
            row.compute,
            fmt_int(m_formula),
            _cell(macs, m_formula),
            f"{macs / standard:.3f}x" if macs and standard else "-",
        )
        rows.append(dict(zip(CONV_COLUMNS, cells, strict=True)))
    text = (
        f"One layer without bias per type (C_in = C = {dims.get('C_in')}, C_out = "
        f"{dims.get('C_out')}, {dims.get('H')}x{dims.get('W')}); where the chapter gives no "
        "formula, MACs (formula) is "
        + "; ".join(
            f"{' and '.join(names)}: {f.replace(' ', '')}" for f, names in stated_none.items()
        )
        + "."
    )
    return ["## Types of convolution", "", *wrap(text), "", md_table(rows)]

"""The chapter's table of convolution types, in ``chapter.md``: its formulas against
measurement, as two tables (parameters, then compute). Pure Python; no torch."""

from __future__ import annotations

from bench.registry.cards import conv_table
from bench.report.fmt import WARN, fmt_int, md_table, wrap
from bench.report.tidy import measured_for


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
    params_rows, macs_rows = [], []
    for card in cards:
        m = measured_for(card, table)
        row = card.conv_table
        p_formula, m_formula = card.formula_value("params"), card.formula_value("macs")
        macs = m.get("macs")
        params_rows.append(
            {
                "Type": card.display_name,
                "Params (chapter)": row.params,
                "Params (formula)": fmt_int(p_formula),
                "Params (measured)": _cell(m.get("params"), p_formula),
                "Use": row.use,
            }
        )
        macs_rows.append(
            {
                "Type": card.display_name,
                "Compute (chapter)": row.compute,
                "MACs formula": card.formula["macs"],
                "MACs (formula)": fmt_int(m_formula),
                "MACs (measured)": _cell(macs, m_formula),
                "vs standard": f"{macs / standard:.3f}x" if macs and standard else "-",
            }
        )
    text = (
        "Each row of the chapter's second table is built as one layer without bias, "
        f"C_in = C = {dims.get('C_in')}, C_out = {dims.get('C_out')}, on a "
        f"{dims.get('H')}x{dims.get('W')} input (`python -m bench run --models conv_types`). "
        "The chapter's formulas are evaluated at those sizes and set beside fvcore's count. "
        "Where the chapter gives no formula for the compute, the one used is shown."
    )
    return [
        "## Types of convolution",
        "",
        *wrap(text),
        "",
        "### Parameters",
        "",
        md_table(params_rows),
        "",
        "### Compute",
        "",
        md_table(macs_rows),
    ]

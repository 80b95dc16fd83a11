"""Formatting shared by the report sections and ``compare``: missing values, numbers and the
warning mark. Pure Python. (The natural order of model names is the registry's
``natural_key``.)"""

from __future__ import annotations

import math

# Marks a figure that disagrees with measurement, or a result to distrust.
WARN = "⚠"


def is_missing(v) -> bool:
    """None, or a NaN that pandas put in an empty cell."""
    return v is None or (isinstance(v, float) and math.isnan(v))


def is_number(v) -> bool:
    """An int or float that is not a bool and not NaN."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v)


def fmt_number(v, spec: str = ".2f") -> str:
    """``v`` formatted with ``spec``; '-' when missing. An integer spec ('d') also takes the
    floats pandas makes of integer columns."""
    if is_missing(v):
        return "-"
    if spec.endswith("d") and isinstance(v, float):
        v = int(v)
    return format(v, spec)


def metric_cell(v) -> str:
    """A metric's value as a table shows it whatever the metric: integers exactly with
    thousands separators, other numbers to 6 significant digits, '-' when not a number."""
    if not is_number(v):
        return "-"
    return f"{v:,}" if isinstance(v, int) else f"{v:.6g}"

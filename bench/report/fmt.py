"""Formatting shared by the report sections and ``compare``: missing values, numbers, and
the natural order of model names. Pure Python."""

from __future__ import annotations

import math
import re


def is_missing(v) -> bool:
    """None, or a NaN that pandas put in an empty cell."""
    return v is None or (isinstance(v, float) and math.isnan(v))


def fmt_number(v, spec: str = ".2f") -> str:
    """``v`` formatted with ``spec``; '-' when missing. An integer spec ('d') also takes the
    floats pandas makes of integer columns."""
    if is_missing(v):
        return "-"
    if spec.endswith("d") and isinstance(v, float):
        v = int(v)
    return format(v, spec)


def natural(name) -> str:
    """A sort key that puts resnet18 before resnet101 (numbers compared by value)."""
    return re.sub(r"\d+", lambda m: m.group(0).zfill(8), str(name).lower())

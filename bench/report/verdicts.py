"""The chapter's figures judged against their references, within a stated tolerance.

Each figure of the chapter's table is set beside the architecture's paper (the card's
``[paper]``) and the measurement or the weights' metadata (``[published]``). A figure is off
(``WARN``) only when it is off from every reference it can be held against, by at least the
tolerance and by more than the digits it is stated with: top-1 by ``TOP1_POINTS`` points,
parameters by ``PARAMS_SHARE`` of the reference. A layer count of other layers than the depth
harness counts (the card's ``layers_counts``) reads "counts differently", not off. Both
renderers (``chapter.md`` and the page) draw these cells and verdicts. Pure Python; no torch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bench.registry.cards import ModelCard
from bench.report.fmt import WARN, fmt_int, is_missing

TOP1_POINTS = 1.0  # a top-1 figure is off at 1 point or more from every reference
PARAMS_SHARE = 0.02  # a parameter count is off at 2% or more from every reference
COUNTS_DIFFERENTLY = "counts differently"

_UNITS = {"": 1, "K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9}


def parse_stated(text: str) -> tuple[float, float] | None:
    """'6.8M' -> (6.8e6, 0.05e6): the value and half a unit of its last stated digit.

    Trailing zeros of a whole number ('60K') are taken as not significant.
    """
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMBG]?)%?\s*", text or "")
    if not m:
        return None
    digits, unit = m.groups()
    scale = _UNITS[unit]
    if "." in digits:
        step = 10 ** -len(digits.split(".")[1])
    else:
        stripped = digits.rstrip("0") or "0"
        step = 10 ** (len(digits) - len(stripped))
    return float(digits) * scale, step * scale / 2


def close(stated: str, value: float | None, tolerance: float) -> bool | None:
    """Whether a stated figure is within ``tolerance`` of a value (less than it away) or within
    the precision it is stated with; None where either is missing."""
    parsed = parse_stated(stated)
    if parsed is None or is_missing(value):
        return None
    number, half = parsed
    gap = abs(number - float(value))
    return gap < tolerance or gap <= half + 1e-9 * max(abs(number), 1)


def human_count(n) -> str:
    if is_missing(n):
        return "-"
    n = float(n)
    for scale, unit, digits in ((1e9, "B", 2), (1e6, "M", 2), (1e3, "K", 1)):
        if n >= scale:
            return f"{n / scale:.{digits}f}{unit}"
    return f"{n:.0f}"


@dataclass(frozen=True)
class Judged:
    """One row of the chapter's table judged: its cells (plain text, no footnote marks) and
    its one-line verdict; ``off`` when any figure is off, ``holds`` when none is and every
    figure could be checked."""

    layers: str
    params: str
    top1: str
    paper: str
    weights: str
    verdict: str
    off: bool
    holds: bool


def _pct(v) -> str:
    return "-" if is_missing(v) else f"{v:g}%"


def _top1(card: ModelCard) -> tuple[str, bool]:
    stated = card.chapter.top1
    paper, weights = card.paper.top1, card.published.top1
    if parse_stated(stated) is None:
        return "", False
    by_paper = close(stated, paper, TOP1_POINTS)
    by_weights = close(stated, weights, TOP1_POINTS)
    if by_paper and by_weights:
        return "top-1 is the paper's and the weights'", False
    if by_paper or by_weights:
        return ("top-1 is the paper's" if by_paper else "top-1 is the weights'"), False
    if by_paper is None and by_weights is None:
        return "top-1 has no reference", False
    name, ref = ("the paper", paper) if paper is not None else ("the weights", weights)
    gap = parse_stated(stated)[0] - ref
    text = f"{WARN} top-1 {abs(gap):.1f} points {'above' if gap > 0 else 'below'} {name}"
    return text + (f": {card.chapter.top1_is}" if card.chapter.top1_is else ""), True


def _params(card: ModelCard, measured) -> tuple[str, bool]:
    stated, paper = card.chapter.params, card.paper.params
    if parse_stated(stated) is None:
        return "", False
    if is_missing(measured):
        return "", False
    if close(stated, measured, PARAMS_SHARE * float(measured)):
        return "", False
    if paper is not None and close(stated, paper, PARAMS_SHARE * paper):
        return "params are the paper's", False
    gap = parse_stated(stated)[0] / float(measured) - 1
    return f"{WARN} params {abs(gap):.1%} {'above' if gap > 0 else 'below'} measured", True


def _layers(card: ModelCard, depth) -> tuple[str, str, bool]:
    """The layers cell, what the verdict says of it, and whether it is off."""
    stated = card.chapter.layers
    ok = close(stated, depth, 0.0)
    if ok is False and card.chapter.layers_counts:
        counts = f"layers: {COUNTS_DIFFERENTLY} ({card.chapter.layers_counts})"
        return f"{stated} / {fmt_int(depth)}", counts, False
    if ok is False:
        return f"{stated} {WARN} / {fmt_int(depth)}", f"{WARN} layers", True
    return f"{stated} / {fmt_int(depth)}", "", False


def judge(card: ModelCard, depth=None, params=None) -> Judged:
    """A chapter row against its paper, the weights and the measured depth and parameters."""
    layers_cell, layers_text, layers_off = _layers(card, depth)
    params_text, params_off = _params(card, params)
    top1_text, top1_off = _top1(card)
    stated_params = card.chapter.params
    params_cell = f"{stated_params}{f' {WARN}' if params_off else ''} / {human_count(params)}"
    top1_cell = card.chapter.top1 + (f" {WARN}" if top1_off else "")
    off = layers_off or params_off or top1_off
    parts = [t for t in (top1_text, params_text, layers_text) if t]
    # a row holds only where every figure could be checked (the cells show a '-' otherwise)
    stated = ((params, card.chapter.params), (depth, card.chapter.layers))
    unmeasured = any(is_missing(v) and parse_stated(text) is not None for v, text in stated)
    if off or unmeasured:
        verdict = "; ".join(parts) or "not measured yet"
    else:
        verdict = ": ".join(["holds", "; ".join(parts)][: 1 + bool(parts)])
    return Judged(
        layers=layers_cell,
        params=params_cell,
        top1=top1_cell,
        paper=_pct(card.paper.top1),
        weights=_pct(card.published.top1),
        verdict=verdict,
        off=off,
        holds=not (off or unmeasured),
    )

"""The chapter's section 1, recomputed: its worked convolution, its output-size formula with
"valid" and "same" padding, and the trainable share that code example 4 prints.

Pure Python (reports import no torch). The convolution here is the cross-correlation that
``torch.nn.functional.conv2d`` computes, and the sizes are torch's; ``tests/test_section1.py``
holds every number this section shows against torch itself.
"""

from __future__ import annotations

from fractions import Fraction

from bench.report.blocks import Heading, Para, Tbl
from bench.report.blocks import markdown as blocks_markdown
from bench.report.fmt import WARN, Footnotes

# Section 1's figure, as printed: a 5x5 input, a 3x3 kernel and the 3x3 output it shows.
WORKED_INPUT = (
    (1, 0, 1, 0, 1),
    (0, 1, 0, 1, 0),
    (1, 0, 1, 0, 1),
    (0, 1, 0, 1, 0),
    (1, 0, 1, 0, 1),
)
WORKED_KERNEL = ((1, 0, 1), (0, 1, 0), (1, 0, 1))
PRINTED_OUTPUT = ((4, 3, 4), (2, 4, 3), (4, 3, 4))

# (input size, kernel size, stride): the cases the formula is checked on, valid and same.
SIZE_CASES = ((5, 3, 1), (5, 3, 2), (6, 3, 2), (7, 5, 1), (7, 5, 2), (224, 7, 2), (224, 3, 1))

TRANSFER_MODEL = "resnet50_transfer"  # code example 4's model


def cross_correlate(x, k, stride: int = 1, padding: int = 0) -> tuple[tuple[int, ...], ...]:
    """What conv2d computes for one channel: the kernel slid over the zero-padded input."""
    n, m = len(x), len(k)
    padded = [[0] * (n + 2 * padding) for _ in range(n + 2 * padding)]
    for i, row in enumerate(x):
        for j, v in enumerate(row):
            padded[i + padding][j + padding] = v
    size = (n + 2 * padding - m) // stride + 1
    return tuple(
        tuple(
            sum(
                padded[r * stride + a][c * stride + b] * k[a][b] for a in range(m) for b in range(m)
            )
            for c in range(size)
        )
        for r in range(size)
    )


def formula_size(n: int, k: int, p: int, s: int) -> Fraction:
    """The chapter's formula as printed: (n - k + 2p) / s + 1, without rounding."""
    return Fraction(n - k + 2 * p, s) + 1


def conv_size(n: int, k: int, p: int, s: int) -> int:
    """What a convolution gives (torch and every library): the formula rounded down."""
    return (n - k + 2 * p) // s + 1


def _grid(rows) -> str:
    return " / ".join(" ".join(str(v) for v in row) for row in rows)


def worked_example_wrong() -> int:
    """How many of the nine printed outputs of section 1's worked example are wrong."""
    computed = cross_correlate(WORKED_INPUT, WORKED_KERNEL)
    return sum(
        a != b
        for pr, co in zip(PRINTED_OUTPUT, computed, strict=True)
        for a, b in zip(pr, co, strict=True)
    )


def _worked_example() -> list:
    computed = cross_correlate(WORKED_INPUT, WORKED_KERNEL)
    wrong = worked_example_wrong()
    verdict = (
        "agrees with the computation."
        if not wrong
        else f"{WARN} is wrong: {wrong} of 9 values differ. Each output sums the five input "
        "values under the kernel's ones: on this checkerboard all 1 or all 0."
    )
    rows = (
        ("input 5x5", WORKED_INPUT),
        ("kernel 3x3", WORKED_KERNEL),
        ("output as printed", PRINTED_OUTPUT),
        ("output computed (stride 1, no padding)", computed),
    )
    table = tuple({"The worked example": k, "rows (top to bottom)": _grid(v)} for k, v in rows)
    return [Tbl("section1-worked", table), Para(f"The printed output {verdict}")]


def _printed(n: int, k: int, p: int, s: int) -> str:
    printed = formula_size(n, k, p, s)
    return str(printed) if printed.denominator == 1 else f"{float(printed):g} {WARN}"


def _sizes() -> list:
    rows = []
    fractional, same_broken = 0, []
    for n, k, s in SIZE_CASES:
        p = (k - 1) // 2
        fractional += sum(formula_size(n, k, q, s).denominator != 1 for q in (0, p))
        same = conv_size(n, k, p, s)
        if same != n:
            same_broken.append(f"{n} -> {same}")
        rows.append(
            {
                "input": str(n),
                "kernel": str(k),
                "stride": str(s),
                "valid: as printed": _printed(n, k, 0, s),
                "valid: conv2d": str(conv_size(n, k, 0, s)),
                "same: padding": str(p),
                "same: as printed": _printed(n, k, p, s),
                "same: conv2d": str(same),
                "same keeps size": "yes" if same == n else "no",
            }
        )
    return [
        Tbl("section1-sizes", tuple(rows)),
        Para(
            f"The output-size formula needs rounding down ({fractional} cases above), which it "
            'does not say; "same" padding (k - 1) / 2 keeps the size only at stride 1 (at '
            "stride 2: " + ", ".join(same_broken) + ")."
        ),
    ]


def _trainable_share(table) -> str:
    cols = ["params", "head_params"]
    missing = f"No `params` record of `{TRANSFER_MODEL}` with `head_params` yet."
    if table.empty or not {"model", *cols} <= set(table.columns):
        return missing
    rows = table[table["model"] == TRANSFER_MODEL].dropna(subset=cols)
    if rows.empty:
        return missing
    total, head = int(rows.iloc[0]["params"]), int(rows.iloc[0]["head_params"])
    return (
        "Code example 4 (ResNet-50, backbone frozen, new 2048 -> 512 -> 5 head) prints what "
        f"the chapter does not: measured on `{TRANSFER_MODEL}`, `全パラメータ: {total:,}` and "
        f"`学習可能: {head:,} ({head / total:.1%})`."
    )


def section1_blocks(table) -> list:
    """The section's blocks (``bench.report.blocks``): chapter.md and the page draw them."""
    return [
        Heading("The chapter's section 1, recomputed", anchor="section1"),
        *_worked_example(),
        *_sizes(),
        Para(_trainable_share(table)),
    ]


def section1_markdown(table) -> list[str]:
    """The section's markdown lines (no blank line after the last)."""
    return blocks_markdown(section1_blocks(table), Footnotes())[:-1]

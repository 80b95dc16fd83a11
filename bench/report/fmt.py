"""Formatting shared by the report sections and ``compare``: missing values, numbers, the
warning mark, markdown tables, wrapped prose and provenance footnotes. Pure Python. (The
natural order of model names is the registry's ``natural_key``.)

Every report formats a quantity through one function here, so that the same quantity reads
the same everywhere: counts with thousands separators (``fmt_int``), GMACs to 4 significant
digits (``fmt_gmacs``), samples/s to one decimal with separators (``fmt_sps``). Tables are
rendered from strings by ``md_table`` (no number parsing, so nothing is reformatted)."""

from __future__ import annotations

import math
import re
import textwrap

# Marks a figure that disagrees with measurement, or a result to distrust.
WARN = "⚠"
CHOSEN = "✓"  # the --optimize candidate a record chose
# The widest a line of a markdown report may be, in characters.
MAX_LINE = 160
# Prose is wrapped at this width.
PROSE_WIDTH = 100

_NUMERIC = re.compile(r"^[-+]?[0-9][0-9,]*(\.[0-9]+)?(e[-+]?[0-9]+)?( ?%|x)?$")


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


def fmt_int(v) -> str:
    """A count: an integer with thousands separators ('50', never '50.0'); '-' when missing."""
    return "-" if not is_number(v) else f"{round(float(v)):,}"


def fmt_gmacs(v) -> str:
    """GMACs, 4 significant digits everywhere."""
    return "-" if not is_number(v) else f"{v:.4g}"


def fmt_sps(v) -> str:
    """Samples per second: one decimal, thousands separators."""
    return fmt_number(v, ",.1f")


def fmt_pct(v, digits: int = 1) -> str:
    """A percentage already in % (top-1): '97.5%'."""
    return "-" if not is_number(v) else f"{v:.{digits}f}%"


# How each metric is shown: (short label with its unit, formatter).
METRICS = {
    "params": ("params", fmt_int),
    "depth": ("depth", fmt_int),
    "infer_gmacs": ("GMACs", fmt_gmacs),
    "infer_macts": ("activations (M)", fmt_gmacs),
    "infer_samples_per_sec": ("infer samples/s", fmt_sps),
    "train_samples_per_sec": ("train samples/s", fmt_sps),
    "median": ("median (ms)", lambda v: fmt_number(v, ",.2f")),
    "p90": ("p90 (ms)", lambda v: fmt_number(v, ",.2f")),
    "peak_mem_mb": ("peak mem (MiB)", lambda v: fmt_number(v, ",.0f")),
    "top1": ("top-1 %", lambda v: fmt_number(v, ".1f")),
    "top5": ("top-5 %", lambda v: fmt_number(v, ".1f")),
}


def metric_label(name: str) -> str:
    return METRICS.get(name, (name, None))[0]


def fmt_metric(name: str, v) -> str:
    """A metric's value in the format every report gives that quantity."""
    fmt = METRICS.get(name, (name, metric_cell))[1]
    return fmt(v) if is_number(v) else "-"


def metric_cell(v) -> str:
    """A metric's value as a table shows it whatever the metric: integers exactly with
    thousands separators, other numbers to 6 significant digits, '-' when not a number."""
    if not is_number(v):
        return "-"
    return f"{v:,}" if isinstance(v, int) else f"{v:.6g}"


def clip(text: str, width: int = 90) -> str:
    """A table cell's text cut to ``width`` characters ('...' marks the cut)."""
    return text if len(text) <= width else text[: width - 3].rstrip() + "..."


def _right_aligned(cells: list[str]) -> bool:
    values = [c.split(" [^")[0].rstrip(" " + WARN) for c in cells if c not in ("", "-")]
    return bool(values) and all(_NUMERIC.match(v) for v in values)


def md_table(rows: list[dict]) -> str:
    """A markdown table of ``rows`` (dicts with the same keys, in order), every cell shown
    as given (``str``), numeric columns aligned right, columns padded to their widest cell."""
    if not rows:
        return ""
    cols = list(rows[0])
    cells = [[str(r.get(c, "-")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells), 3) for i, c in enumerate(cols)]
    right = [_right_aligned([row[i] for row in cells]) for i in range(len(cols))]

    def line(values: list[str]) -> str:
        parts = [
            v.rjust(w) if r else v.ljust(w) for v, w, r in zip(values, widths, right, strict=True)
        ]
        return "| " + " | ".join(parts) + " |"

    rule = (
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if r else (":" + "-" * (w + 1))
            for w, r in zip(widths, right, strict=True)
        )
        + "|"
    )
    return "\n".join([line(cols), rule, *(line(row) for row in cells)])


def wrap(text: str, width: int = PROSE_WIDTH) -> list[str]:
    """A paragraph as lines of at most ``width`` characters (words are never broken)."""
    return textwrap.wrap(text, width=width, break_long_words=False, break_on_hyphens=False)


# (what a reader knows it as, the /proc/cpuinfo flags that give it): what decides which CPU
# kernels run (bf16 and INT8 speeds above all)
FLAGS_THAT_MATTER = (
    ("AVX-512", ("avx512f",)),
    ("BF16", ("avx512_bf16", "amx_bf16")),
    ("VNNI", ("avx512_vnni", "avx_vnni")),
    ("AMX", ("amx_tile",)),
)


def cpu_flags_text(flags) -> str:
    """'AVX-512, BF16, VNNI', 'no AVX-512, BF16 or VNNI', or 'CPU flags not recorded' (None)."""
    if flags is None:
        return "CPU flags not recorded"
    have = [name for name, names in FLAGS_THAT_MATTER if set(names) & set(flags)]
    return ", ".join(have) if have else "no AVX-512, BF16 or VNNI"


def provenance(get, code: bool = True) -> str:
    """A record's run in words, from ``get(column)`` of the ``Records`` columns; ids in
    markdown code unless ``code`` is False (plain text, for a tooltip). The machine is named
    by its label (CPU model, ISA level, logical CPUs; GPU), which differs when machines do."""
    q = "`" if code else ""
    where = get("machine") or get("machine_name") or "-"
    return (
        f"run {q}{get('run_id') or '-'}{q}, {get('run_date') or '-'}, {where}, "
        f"commit {q}{get('commit') or '-'}{q}, torch {get('torch') or '-'}"
    )


class Footnotes:
    """Markdown footnotes collected while a report is written: ``mark(label, text)`` returns
    the marker ``[^label]`` for a cell; ``lines()`` the notes, in the order first marked."""

    def __init__(self) -> None:
        self._notes: dict[str, str] = {}
        self._written: set[str] = set()

    def mark(self, label: str, text: str) -> str:
        self._notes.setdefault(label, text)
        return f"[^{label}]"

    def numbered(self, prefix: str, text: str) -> str:
        """The marker of a note labelled ``prefix`` and a number, the same for the same text."""
        for label, known in self._notes.items():
            if known == text and label.startswith(prefix) and label[len(prefix) :].isdigit():
                return f"[^{label}]"
        count = sum(1 for label in self._notes if label.startswith(prefix))
        return self.mark(f"{prefix}{count + 1}", text)

    def run(self, row) -> str:
        """The provenance footnote of the run a record came from (``Records`` columns)."""
        get = row.get if isinstance(row, dict) else lambda k, d=None: getattr(row, k, d)
        run_id = str(get("run_id") or "-")
        return self.mark(run_id, provenance(get))

    def text(self, label: str) -> str:
        """The text of the note marked ``[^label]`` ('' when none is)."""
        return self._notes.get(label, "")

    def lines(self, text: str | None = None) -> list[str]:
        """The notes not written yet, each wrapped (continuation lines indented, as markdown
        footnotes take them): every one in the order first marked, or those whose markers
        ``text`` holds, in the order they appear there."""
        if text is None:
            labels = list(self._notes)
        else:
            labels = [
                k for k in dict.fromkeys(re.findall(r"\[\^([^\]]+)\]", text)) if k in self._notes
            ]
        new = [(k, self._notes[k]) for k in labels if k not in self._written]
        self._written.update(k for k, _ in new)
        out = []
        for label, note in new:
            out += textwrap.wrap(
                f"[^{label}]: {note}",
                width=MAX_LINE - 10,
                subsequent_indent="    ",
                break_long_words=False,
            )
        return out

    def __bool__(self) -> bool:
        return bool(self._notes)

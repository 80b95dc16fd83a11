"""Cells of the page's tables: one format per quantity, "-" with the reason on hover, and the
provenance of the record a row comes from."""

from __future__ import annotations

from bench.harness.throughput.config import LABELS as RUNTIME_LABELS  # cheap: no torch
from bench.registry.lookup import natural_key as natural
from bench.report.fmt import is_missing
from bench.report.fmt import provenance as fmt_provenance
from bench.report.html.provenance import anchor
from bench.report.html.render import Cell, Row

# One format per quantity, everywhere on the page.
FORMATS = {
    "count": ",.0f",  # parameters, images, batch sizes, epochs
    "year": ".0f",
    "gmacs": ",.4g",  # GMACs per sample: four significant digits
    "rate": ",.1f",  # samples/s, GMAC/s
    "ms": ",.2f",  # step times
    "top1": ".2f",  # accuracy in %
    "pct": ".1f",  # other percentages (of peak, CV)
    "mib": ",.0f",  # memory
    "seconds": ",.1f",
    "ratio": ".2f",
    "lr": "g",
    "diff": ".2g",  # max abs difference of outputs
    "points": "+.1f",  # a difference of top-1s, in points
}
SUFFIX = {"top1": "%", "pct": "%", "ratio": "x"}


def text(value, why: str = "") -> Cell:
    """A text cell; '-' with ``why`` on hover when missing."""
    if is_missing(value) or value == "":
        return Cell("-", title=why)
    return Cell(str(value), sort=None)


def num(value, kind: str, why: str = "", title: str = "", href: str = "") -> Cell:
    """A number in the quantity's one format; '-' with ``why`` on hover when missing."""
    if is_missing(value) or isinstance(value, (str, bool)):
        return Cell("-", sort="", title=why, numeric=True)
    v = float(value)
    return Cell(
        format(v, FORMATS[kind]) + SUFFIX.get(kind, ""),
        sort=v,
        title=title,
        href=href,
        numeric=True,
    )


def provenance(rec: dict) -> str:
    """A record's provenance in words (from the frame's provenance columns), as a tooltip."""
    return fmt_provenance(rec.get, code=False)


def run_href(rec: dict) -> str:
    return "#" + anchor(str(rec.get("run_id", "-")))


def run_cell(rec: dict) -> Cell:
    """The run a record comes from, linked to its row in the runs table."""
    return Cell(str(rec.get("run_id", "-")), title=provenance(rec), href=run_href(rec))


def row(cells, rec: dict) -> Row:
    """A table row of ``cells`` ending with the record's run, its provenance on hover."""
    return Row((*cells, run_cell(rec)), title=provenance(rec))


def runtime(config: dict) -> str:
    """A throughput record's runtime: PyTorch's older records carry none."""
    name = config.get("runtime") or "torch"
    return RUNTIME_LABELS.get(name, str(name))


def device(rec: dict) -> str:
    name = rec.get("device_name")
    return f"{rec['device']}: {name}" if name and not is_missing(name) else str(rec["device"])


def by_model(rows: list[dict]) -> list[dict]:
    """Records in the page's order: by model (naturally), device, machine, configuration."""
    return sorted(
        rows,
        key=lambda r: (
            natural(r["model"]),
            r["device"],
            str(r.get("device_name")),
            r["config_key"],
        ),
    )

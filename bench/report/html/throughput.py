"""The page's throughput section: every configuration in one table, then throughput.md's
tables with their columns."""

from __future__ import annotations

from dataclasses import replace

from bench.report.html.cells import by_model, device, num, row, runtime, text
from bench.report.html.chapter import ok_records
from bench.report.html.render import Cell, Row, Table, Text
from bench.report.records import untrusted
from bench.report.workload import LOSSY, precision_text

LOSSY_TITLE = (
    "bf16, fp16 and INT8 change the outputs beyond rounding: not the chapter's question, "
    "which is answered at an exact precision (fp32, tf32)"
)


def _memory(r: dict, m: dict) -> Cell:
    """Peak memory in MiB: on the CPU the increase over the worker's baseline when recorded."""
    if r.get("device") == "cpu" and m.get("peak_mem_increase_mb") is not None:
        why = "CPU: the worker's peak resident memory over its baseline before the model"
        return num(m["peak_mem_increase_mb"], "mib", title=why)
    cpu = r.get("device") == "cpu"
    what = "the worker's whole peak resident memory" if cpu else "the allocator's peak"
    return num(m.get("peak_mem_mb"), "mib", "not measured", title=what)


def _precision(precision, accuracy=None) -> Cell:
    """A precision, marked '(lossy)' with why on hover where it is bf16, fp16 or INT8, and
    'accuracy not measured' for a speed-only INT8 row (``accuracy``)."""
    cell = text(precision_text(precision, accuracy) if precision else None)
    return replace(cell, title=LOSSY_TITLE) if precision in LOSSY else cell


def _speed(m: dict, mode: str) -> Cell:
    """Samples/s, marked ⚠ with the reason when the timing is too short or unsettled to trust
    (such figures are left out of the chapter table's best speed)."""
    cell = num(m.get(f"{mode}_samples_per_sec"), "rate", "not measured")
    why = untrusted(m)
    return replace(cell, text=f"{cell.text} ⚠", title=f"not to be trusted: {why}") if why else cell


def _throughput_row(r: dict) -> Row:
    c, m = r["config"], r["metrics"]
    mode = c.get("mode", "infer")
    batch = m.get(f"{mode}_batch_size", c.get("batch_size"))
    peak = m.get("frac_of_peak")
    cells = (
        text(r["model"]),
        text(device(r)),
        text(runtime(c)),
        text(mode),
        num(batch, "count"),
        num(c.get("img_size", m.get(f"{mode}_img_size")), "count", "not recorded"),
        _precision(c.get("precision"), m.get("accuracy")),
        text(c.get("layout")),
        text("yes" if c.get("compiled") else "no"),
        _speed(m, mode),
        num(m.get("median"), "ms", "not measured"),
        num(m.get("p90"), "ms", "not measured"),
        num(m.get("cv_pct"), "pct", "not measured"),
        num(m.get("achieved_gmacs_per_sec"), "rate", "no GMACs record of this model"),
        num(
            None if peak is None else 100 * peak,
            "pct",
            "no peak measured in this run",
            title=m.get("peak_method") or "",
        ),
        _memory(r, m),
    )
    return row(cells, r)


THROUGHPUT_COLUMNS = (
    "Model",
    "Device",
    "Runtime",
    "Mode",
    "Batch",
    "px",
    "Precision",
    "Layout",
    "Compiled",
    "Samples/s",
    "Step median (ms)",
    "p90 (ms)",
    "CV",
    "GMAC/s",
    "Of peak",
    "Peak mem (MiB)",
    "Run",
)


def throughput_blocks(frame) -> list:
    rows = by_model(ok_records(frame, "throughput"))
    return [
        Text(
            "Every configuration measured, its latest record. Samples/s is samples over the "
            "timed time after a warm-up until the step time is stable; step times are per "
            "batch; px is the input's height and width. GMAC/s is GMACs x samples/s (x3 for "
            "training); 'Of peak' divides it by a large matrix product's GMAC/s measured in the "
            "same run (hover for the method). (lossy) after a precision: bf16, fp16 or INT8. "
            "⚠ after samples/s: a timing too short or unsettled to trust (hover for why); such "
            "figures are not the chapter table's best speed. CPU memory is the increase over the "
            "worker's baseline where recorded, else the worker's whole peak (hover)."
        ),
        Table("throughput", THROUGHPUT_COLUMNS, tuple(_throughput_row(r) for r in rows)),
    ]

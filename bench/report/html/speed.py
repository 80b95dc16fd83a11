"""The page's measured tables: throughput (every runtime), the ``--optimize`` candidates of each
run, validate's accuracy, and the measurements that failed or were skipped."""

from __future__ import annotations

from dataclasses import replace

from bench.registry.lookup import natural_key as natural
from bench.report.html.cells import device, num, row, runtime, text
from bench.report.html.chapter import ok_records
from bench.report.html.render import Cell, Row, Table, Text
from bench.report.quantization import COMMAND, HOW, TEXT, int8_rows, not_measured
from bench.report.records import is_chosen, levers_text, untrusted
from bench.report.workload import LOSSY, precision_text

LOSSY_TITLE = (
    "bf16, fp16 and INT8 change the outputs beyond rounding: not the chapter's question, "
    "which is answered at an exact precision (fp32, tf32)"
)


def _by_model(rows: list[dict]) -> list[dict]:
    return sorted(
        rows,
        key=lambda r: (
            natural(r["model"]),
            r["device"],
            str(r.get("device_name")),
            r["config_key"],
        ),
    )


def _memory(r: dict, m: dict) -> Cell:
    """Peak memory in MiB: on the CPU the increase over the worker's baseline when recorded."""
    if r.get("device") == "cpu" and m.get("peak_mem_increase_mb") is not None:
        why = "CPU: the worker's peak resident memory over its baseline before the model"
        return num(m["peak_mem_increase_mb"], "mib", title=why)
    cpu = r.get("device") == "cpu"
    what = "the worker's whole peak resident memory" if cpu else "the allocator's peak"
    return num(m.get("peak_mem_mb"), "mib", "not measured", title=what)


def _precision(precision) -> Cell:
    """A precision, marked '(lossy)' with why on hover where it is bf16, fp16 or INT8."""
    cell = text(precision_text(precision) if precision else None)
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
        _precision(c.get("precision")),
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
    rows = _by_model(ok_records(frame, "throughput"))
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


def candidates_blocks(frame) -> list:
    """One row per candidate of every --optimize record, a run's candidates together."""
    out = []
    recs = sorted(ok_records(frame, "throughput"), key=lambda r: (r["run_id"], natural(r["model"])))
    for r in recs:
        cands = r["metrics"].get("candidates")
        if not isinstance(cands, list):
            continue
        mode = r["config"].get("mode", "infer")
        for c in cands:
            chosen = is_chosen(c, r["config"], r["metrics"])
            cells = (
                text(r["model"]),
                text(device(r)),
                num(r["config"].get("batch_size"), "count"),
                num(r["config"].get("img_size"), "count", "not recorded"),
                text(runtime(c)),
                _precision(c.get("precision")),
                text(c.get("layout")),
                text("yes" if c.get("compiled") else "no"),
                text(", ".join(levers_text(c)) or None, "none"),
                num(c.get(f"{mode}_samples_per_sec"), "rate", c.get("error") or "not measured"),
                num(c.get("max_abs_diff"), "diff", "not compared"),
                text("chosen" if chosen else None, "not chosen"),
            )
            out.append(row(cells, r))
    columns = (
        "Model",
        "Device",
        "Batch",
        "px",
        "Runtime",
        "Precision",
        "Layout",
        "Compiled",
        "Levers",
        "Samples/s",
        "Max abs diff",
        "Chosen",
        "Run",
    )
    return [
        Text(
            "Each --optimize record's candidates, grouped by run: the configuration chosen is "
            "the fastest whose outputs agree with PyTorch eager fp32 (a lossy one, marked, "
            "within the run's accuracy budget). px: the input's height and width."
        ),
        Table("candidates", columns, tuple(out), empty="No --optimize records yet."),
    ]


def validate_blocks(frame) -> list:
    out = []
    for r in _by_model(ok_records(frame, "validate")):
        c, m = r["config"], r["metrics"]
        cells = (
            text(r["model"]),
            text(c.get("val_data")),
            num(m.get("val_images"), "count"),
            num(m.get("val_top1"), "top1", "not measured"),
            num(m.get("val_top5"), "top1", "not measured"),
            text(m.get("init_source"), "no weights recorded"),
            text(c.get("transforms")),
            text(device(r)),
        )
        out.append(row(cells, r))
    columns = (
        "Model",
        "Data",
        "Images",
        "Top-1",
        "Top-5",
        "Weights",
        "Transforms",
        "Device",
        "Run",
    )
    return [
        Text("Pretrained weights scored on labelled images (--harness validate --pretrained)."),
        Table("validate", columns, tuple(out), empty="No validate records yet."),
    ]


def failures_blocks(frame) -> list:
    if frame.empty:
        return [Text("None.")]
    bad = frame[frame["status"] != "ok"].to_dict("records")
    out = [
        row(
            (
                text(r["model"]),
                text(r["harness"]),
                text(device(r)),
                text(r["status"]),
                text(
                    runtime(r["config"]) if r["harness"] == "throughput" else None, "not throughput"
                ),
                text(r.get("error"), "no message"),
            ),
            r,
        )
        for r in _by_model(bad)
    ]
    columns = ("Model", "Harness", "Device", "Status", "Runtime", "Reason", "Run")
    return [Table("failures", columns, tuple(out), empty="None.")]


def quantization_blocks(frame) -> list:
    """INT8's speed-up over the fastest other candidate that passed its checks (fp32 or bf16,
    named), its top-1 cost, and the checkpoint with the fine-tune run that made it, by
    architecture (the rows of ``bench.report.quantization``)."""
    rows = int8_rows(frame)
    out = []
    for r in rows:
        drop = num(r["drop"], "points", "not scored", title=r["images"])
        if r["over_budget"]:
            drop = replace(drop, text=f"{drop.text} ⚠", title="over the run's --accuracy-budget")
        model = replace(text(r["model"]), title=f"weights: {r['weights']}" if r["weights"] else "")
        t = r["trace"]  # the checkpoint and the fine-tune run that made it
        fp32 = num(r["fp32_top1"], "top1", "not scored", title=r["images"])
        if t.run_id is not None and t.note:  # scored otherwise than its fine-tune record
            fp32 = replace(fp32, text=f"{fp32.text} ⚠", title=t.note)
        cells = (
            model,
            text(r["device"]),
            num(r["batch"], "count"),
            num(r["img_size"], "count"),
            replace(text(t.short), title=t.note or ""),
            replace(text(t.run_id), title=t.note or ""),
            num(t.finetune_top1, "top1", t.note or ""),
            text(r["runtime"]),
            fp32,
            num(r["int8_top1"], "top1", "not scored", title=r["images"]),
            drop,
            text(r["other_label"], "none passed its checks"),
            num(r["other"], "rate", "none passed its checks"),
            num(r["int8"], "rate", r["int8_error"] or ""),
            num(r["speedup"], "ratio", "INT8 or the other not timed"),
            text(r["chosen"]),
        )
        out.append(row(cells, r["record"]))
    columns = ("Model", "Device", "Batch", "px", "Checkpoint", "Fine-tune run",
               "Fine-tune top-1", "INT8 by", "fp32 top-1",
               "INT8 top-1", "Drop (points)", "Against", "Its samples/s", "INT8 samples/s",
               "Speed-up", "Chosen", "Run")  # fmt: skip
    missing = not_measured(rows) if rows else []
    return [
        Text(TEXT.replace("*", "").replace("`", "")),
        Text(HOW, items=tuple(COMMAND.replace("\\\n    ", "").splitlines())),
        Table("quantization", columns, tuple(out), empty="No --optimize run has tried INT8 yet."),
        *([Text(f"Not measured yet: {', '.join(missing)}.")] if missing else []),
    ]

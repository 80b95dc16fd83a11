"""The section "Quantization: speed-up and accuracy cost by architecture" of ``throughput.md``.

One row per INT8 candidate (ONNX Runtime's, OpenVINO's) of the latest ``--optimize`` record per
model, device, batch and input size that tried INT8, in two tables per device:
- accuracy: the checkpoint it quantized (sha256, and the fine-tune run that made it:
  ``bench.report.checkpoints``), INT8's top-1 beside eager fp32's on the same images, the
  images it lost and gained of those scored, and the drop with its 95% paired interval (records
  from before the interval: '-');
- speed: INT8's samples/s over the fastest other candidate of the same run that passed its
  checks (fp32 agreeing with eager fp32, or bf16/fp16 agreeing and within the accuracy budget:
  eager, compiled, a runtime, folded or reparameterised), named, both timed in the same
  alternating rounds.
The chapter's models that have no such record are named, with the command that measures them.
Reads only the results (no torch).
"""

from __future__ import annotations

import math

from bench.harness.throughput.config import LABELS as RUNTIME_LABELS  # cheap: no torch
from bench.report.blocks import Code, Heading, Notes, Para, Tbl, slug
from bench.report.checkpoints import Trace, finetune_index, trace
from bench.report.fmt import (
    CHOSEN,
    WARN,
    Footnotes,
    clip,
    fmt_number,
    fmt_sps,
    is_number,
)
from bench.report.records import is_chosen
from bench.report.workload import levers_text

HARNESS = "throughput"
INT8 = "int8"
TITLE = "Quantization: speed-up and accuracy cost by architecture"
TITLE_SHORT = "INT8"
COMMAND = (
    "python -m bench run --models chapter --harness finetune --epochs 3 --img-size 64\n"
    "python -m bench run --models chapter --harness throughput --optimize --device cpu \\\n"
    "    --img-size 64 --batch-size 16 --weights checkpoints/ --val-data mnist5k"
)
TEXT = (
    "Each row is one INT8 candidate of an `--optimize` run of a model with real weights (ONNX "
    "Runtime's static QDQ quantization, or OpenVINO's through NNCF; both calibrated on real "
    "images) against eager fp32 on the same held-out images. *Checkpoint* is the first 12 hex "
    "digits of the sha256 of the file quantized, *Fine-tune (top-1)* the run whose fine-tune record "
    f"has that sha256 and, in brackets, its top-1 figure for it; {WARN} on *fp32 top-1* marks a "
    "checkpoint that this run scored otherwise, and its note says why. A checkpoint's file "
    "name hashes its configuration, not its weights: trained again (on another machine, at "
    "another commit), it keeps its name, so only the sha256 ties it to a record. "
    "*Lost/gained of N*: the images eager fp32 gets right and INT8 wrong, and the other way "
    "round, of the N scored. *Drop [95% CI]* is fp32's top-1 minus INT8's, in points (negative: "
    "INT8 scored higher), with its 95% interval from the paired images (Newcombe's, bounds "
    f"rounded outwards; `-` for runs from before it); {WARN} marks a candidate the gate refused "
    "(by the run's `--accuracy-gate`: the interval's upper end, or the drop itself, over "
    "`--accuracy-budget`; or one class for every image), which `--optimize` never chooses. "
    "*Against* is the fastest other candidate of the same run that passed its checks (fp32 "
    "agreeing with eager fp32, or bf16 agreeing and within the budget; PyTorch eager or "
    "compiled, ONNX Runtime, OpenVINO, folded or reparameterised); *Speed-up* is INT8's "
    "samples/s over its samples/s, both timed in the same alternating rounds."
)
MARKS = f"{CHOSEN} marks the INT8 candidate that `--optimize` chose."
HOW = "The chapter's models are fine-tuned on the digits at 64 px, then quantized, by these two commands:"


def _label(c: dict) -> str:
    runtime = c.get("runtime", "torch")
    parts = [str(c.get("precision")), RUNTIME_LABELS.get(runtime, runtime)]
    if runtime == "torch":
        parts.insert(1, "compiled" if c.get("compiled") else "eager")
        if c.get("layout") == "channels_last":
            parts.append("channels_last")
    return " ".join(parts + levers_text(c))


def _speed(c: dict, mode: str):
    v = c.get(f"{mode}_samples_per_sec")
    return v if is_number(v) and not c.get("error") else None


def passed_checks(c: dict) -> bool:
    """A candidate other than INT8 that may stand against INT8: it agrees with eager fp32
    (``top1_agree``) and, where a lossy one was scored, is within the accuracy budget."""
    return (
        c.get("precision") != INT8
        and bool(c.get("top1_agree"))
        and c.get("within_budget") is not False
    )


def fastest_other(cands: list[dict], mode: str) -> dict | None:
    """The fastest candidate of a run other than INT8 that passed its checks (fp32 or bf16)."""
    ok = [c for c in cands if passed_checks(c) and _speed(c, mode)]
    return max(ok, key=lambda c: _speed(c, mode)) if ok else None


def _chosen(cands: list[dict], config: dict, metrics: dict) -> str:
    """The chosen candidate in words (the record's configuration when no candidate matches)."""
    return next((_label(c) for c in cands if is_chosen(c, config, metrics)), _label(config))


def images_text(m: dict) -> str:
    """The images the gate scored and calibrated on, in words ('' when none)."""
    if not m.get("accuracy_images"):
        return ""
    return (
        f"Top-1 on {m['accuracy_images']:,} images of {m.get('accuracy_data')}; INT8 "
        f"calibrated on {m.get('calibration_images')} images of {m.get('calibration_data')}."
    )


def int8_rows(frame) -> list[dict]:
    """One plain row per INT8 candidate of the latest ``--optimize`` record per model, device,
    batch and input size that tried INT8, in the chapter's order: the figures the markdown and
    the page show, ``trace`` (the checkpoint's ``Trace``) and ``record`` (the record as a dict,
    for its provenance)."""
    index = finetune_index(frame)
    rows = []
    for rec, int8 in _latest_int8(frame):
        mode = rec.config.get("mode", "infer")
        other = fastest_other(rec.metrics["candidates"], mode)
        # one over the budget is measured and shown (its error says why it was not chosen)
        fast = int8.get(f"{mode}_samples_per_sec")
        fast = fast if is_number(fast) else None
        base = _speed(other, mode) if other else None
        runtime = int8.get("runtime", "onnxruntime")
        rows.append(
            {
                "model": rec.model,
                "runtime": RUNTIME_LABELS.get(runtime, runtime),
                "device": str(rec.device_name or rec.device),
                "batch": rec.config.get("batch_size"),
                "img_size": rec.config.get("img_size"),
                "trace": trace(frame, rec, index),
                "fp32_top1": int8.get("fp32_top1"),
                "int8_top1": int8.get("candidate_top1"),
                "drop": int8.get("top1_drop"),
                "drop_ci": (int8.get("top1_drop_low"), int8.get("top1_drop_high")),
                "lost": int8.get("images_lost"),
                "gained": int8.get("images_gained"),
                "n": int8.get("accuracy_images"),
                "over_budget": int8.get("within_budget") is False,
                "other": base,
                "other_label": _label(other) if other else None,
                "int8": fast,
                "int8_error": None if fast else str(int8.get("error") or "not timed"),
                "speedup": fast / base if fast and base else None,
                "chosen": _chosen(rec.metrics["candidates"], rec.config, rec.metrics),
                "is_chosen": is_chosen(int8, rec.config, rec.metrics),
                "images": images_text(rec.metrics.get("accuracy_gate") or rec.metrics),
                "weights": rec.metrics.get("init_file"),
                "record": rec._asdict(),
            }
        )
    return rows


def _trace_cells(t: Trace, notes: Footnotes) -> dict:
    """The checkpoint's cells: its sha256, and the fine-tune run with that run's top-1 ('-'
    with a note when none)."""
    if t.run_id is None:
        run = "-" + notes.numbered("ckpt-", f"{t.file}: {t.note}." if t.file else f"{t.note}.")
    else:
        run = f"{t.run_id} ({fmt_number(t.finetune_top1, '.1f')})"
    return {"Checkpoint": t.short, "Fine-tune (top-1)": run}


def _accuracy_row(r: dict, notes: Footnotes, once: bool) -> dict:
    """A row of the accuracy table (the run and images are named under the table when every
    row shares them, ``once``)."""
    images = notes.numbered("int8-", r["images"]) if r["images"] and not once else ""
    run = "" if once else notes.run(r["record"])
    t: Trace = r["trace"]
    differs = t.run_id is not None and t.note is not None
    fp32 = fmt_number(r["fp32_top1"], ".1f")
    if differs:
        fp32 = f"{fp32} {WARN}" + notes.numbered("ckpt-", f"{t.note}.")
    return {
        "Model": f"{r['model']}{run}",
        **_trace_cells(t, notes),
        "INT8 by": r["runtime"],
        "fp32 top-1": fp32,
        "INT8 top-1": fmt_number(r["int8_top1"], ".1f") + images,
        "Lost/gained of N": _changed(r),
        "Drop [95% CI]": (f"{WARN} " if r["over_budget"] else "") + _drop(r),
    }


def _changed(r: dict) -> str:
    """'12/7 of 1,000': the images INT8 lost and gained of those scored ('-' in older records)."""
    if not all(is_number(r[k]) for k in ("lost", "gained", "n")):
        return "-"
    return f"{r['lost']:.0f}/{r['gained']:.0f} of {r['n']:,.0f}"


def _drop(r: dict) -> str:
    """'+0.2 [-0.5, 0.9]': the drop and its 95% interval, the bounds rounded outwards so that
    the shown interval holds the recorded one ('[-]' in records from before the interval)."""
    low, high = r["drop_ci"]
    if not (is_number(low) and is_number(high)):
        return f"{fmt_number(r['drop'], '+.1f')} [-]"
    low, high = math.floor(round(10 * low, 6)) / 10, math.ceil(round(10 * high, 6)) / 10
    return f"{fmt_number(r['drop'], '+.1f')} [{low:.1f}, {high:.1f}]"


def _speed_row(r: dict, notes: Footnotes, once: bool) -> dict:
    """A row of the speed table: INT8 against the fastest other candidate that passed its
    checks, both named, at the batch and input size they were timed at (a speed names its
    workload in its own row, as every other speed table does)."""
    run = "" if once else notes.run(r["record"])
    if r["int8"]:
        int8 = fmt_sps(r["int8"]) + (f" {CHOSEN}" if r["is_chosen"] else "")
    else:
        int8 = notes.numbered("int8-error-", r["int8_error"])
    row = {"Model": f"{r['model']}{run}", "Batch x px": f"{r['batch']} x {r['img_size']}"}
    row.update(
        {
            "INT8 by": r["runtime"],
            "INT8 (samples/s)": int8,
            "Against": clip(r["other_label"] or "-", 46),
            "Its samples/s": fmt_sps(r["other"]) if r["other"] else "-",
            "Speed-up": f"{r['speedup']:.2f}x" if r["speedup"] else "-",
        }
    )
    return row


def _latest_int8(frame) -> list[tuple]:
    """(record, an INT8 candidate of it), for each INT8 candidate (one a runtime) of the latest
    --optimize record per model, device, batch and input size that tried INT8."""
    if frame.empty:
        return []
    ok = frame[(frame["harness"] == HARNESS) & (frame["status"] == "ok")]
    latest: dict[tuple, tuple] = {}
    for rec in ok.sort_values(["finished_utc", "run_id"], kind="stable").itertuples():
        cands = rec.metrics.get("candidates") if isinstance(rec.metrics, dict) else None
        int8 = [c for c in cands or [] if c.get("precision") == INT8]
        if int8:
            key = (rec.model, rec.device_name, rec.config.get("batch_size"),
                   rec.config.get("img_size"))  # fmt: skip
            latest[key] = (rec, int8)
    order = {name: i for i, name in enumerate(chapter_models())}  # the chapter's order first
    ordered = sorted(
        latest.values(),
        key=lambda p: (order.get(p[0].model, len(order)), p[0].model, str(p[0].device_name)),
    )
    return [(rec, c) for rec, int8 in ordered for c in int8]


def chapter_models() -> list[str]:
    """``--models chapter``: the chapter's table in its order, then the chapter's own models."""
    from bench.registry.cards import chapter_table, load_cards

    own = [
        name
        for name, c in load_cards().items()
        if c.source == "chapter" and not c.in_chapter_table and c.conv_table is None
    ]
    return [c.name for c in chapter_table()] + own


def not_measured(rows: list[dict]) -> list[str]:
    """The chapter's models (``--models chapter``) that no row covers."""
    measured = {r["model"] for r in rows}
    return [m for m in chapter_models() if m not in measured]


def _device_blocks(rows: list[dict], notes: Footnotes, device: str) -> list:
    """One device's two tables, what they share named once (the run, the images, the batch
    and input size), then their notes."""
    images = {r["images"] for r in rows}
    once = len(images) == 1 and len({r["record"]["run_id"] for r in rows}) == 1
    shapes = {(r["batch"], r["img_size"]) for r in rows}
    heading = f"{TITLE_SHORT} on {device}"
    if len(shapes) == 1:
        batch, px = next(iter(shapes))
        heading += f": batch {batch}, {px} px input"
    out: list = [Heading(heading, 3)]
    accuracy = tuple(_accuracy_row(r, notes, once) for r in rows)
    speed = tuple(_speed_row(r, notes, once) for r in rows)
    out += [Para("Accuracy:"), Tbl(f"int8-accuracy-{slug(device)}", accuracy),
            Para("Speed:"), Tbl(f"int8-speed-{slug(device)}", speed)]  # fmt: skip
    if once:
        shared = f"Every row comes from one run{notes.run(rows[0]['record'])}. {images.pop()}"
        out.append(Para(shared.strip()))
    return [*out, Notes()]


def quantization_blocks(frame, notes: Footnotes) -> list:
    """The section's blocks: per device, its accuracy and speed tables, then their footnotes
    (none when no run tried INT8)."""
    rows = int8_rows(frame)
    if not rows:
        return []
    out: list = [
        Heading(TITLE, anchor="quantization"),
        Para(f"{TEXT} {MARKS} {HOW}"),
        Code(COMMAND),
    ]
    for device in dict.fromkeys(r["device"] for r in rows):
        out += _device_blocks([r for r in rows if r["device"] == device], notes, device)
    weights = dict.fromkeys(r["weights"] for r in rows if r["weights"])
    if weights:
        out.append(Para(f"Weights: {', '.join(weights)}."))
    missing = not_measured(rows)
    if missing:
        out.append(Para(f"Not measured yet: {', '.join(missing)}."))
    return out

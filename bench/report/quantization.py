"""The section "Quantization: speed-up and accuracy cost by architecture" of ``throughput.md``.

One row per INT8 candidate (ONNX Runtime's, OpenVINO's) of the latest ``--optimize`` record per
model, device, batch and input size that tried INT8: its top-1 beside eager fp32's on the same images,
the drop, and INT8's samples/s over the best fp32 candidate of the same run (the fastest that
agrees with eager fp32: eager, a runtime, folded or reparameterised), both timed in the same
alternating rounds. The chapter's models that have no such record are named, with the command
that measures them. Reads only the results (no torch).
"""

from __future__ import annotations

from bench.harness.throughput.config import LABELS as RUNTIME_LABELS  # cheap: no torch
from bench.report.fmt import (
    CHOSEN,
    WARN,
    Footnotes,
    clip,
    fmt_number,
    fmt_sps,
    is_number,
    md_table,
    wrap,
)
from bench.report.records import is_chosen, levers_text

HARNESS = "throughput"
INT8 = "int8"
TITLE = "Quantization: speed-up and accuracy cost by architecture"
COMMAND = (
    "python -m bench run --models chapter --harness finetune --epochs 3 --img-size 64\n"
    "python -m bench run --models chapter --harness throughput --optimize --device cpu \\\n"
    "    --img-size 64 --batch-size 16 --weights checkpoints/ --val-data mnist5k"
)
TEXT = (
    "Each row is one INT8 candidate of an `--optimize` run of a model with real weights (ONNX "
    "Runtime's static QDQ quantization, or OpenVINO's through NNCF; both calibrated on real "
    "images) against eager fp32 on the same held-out images. *Drop* is "
    "fp32's top-1 minus INT8's, in points (negative: INT8 scored higher); "
    f"{WARN} marks a drop over the run's `--accuracy-budget`, which `--optimize` never chooses. "
    "*Best fp32* is the fastest candidate of the same run that agrees with eager fp32 (PyTorch "
    "eager or compiled, ONNX Runtime, OpenVINO, folded or reparameterised); *Speed-up* is "
    "INT8's samples/s over it, both timed in the same alternating rounds. *fp32 top-1* is the "
    "listed checkpoint's, scored in the row's run: a checkpoint trained on another CPU can score "
    "otherwise than the fine-tune report's record (its kernels round differently)."
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


def _best_fp32(cands: list[dict], mode: str) -> dict | None:
    exact = [
        c for c in cands if c.get("precision") == "fp32" and c.get("top1_agree") and _speed(c, mode)
    ]
    return max(exact, key=lambda c: _speed(c, mode)) if exact else None


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
    """One plain row per model, device, batch and input size (the latest ``--optimize`` record
    that tried INT8), in the chapter's order: the figures the markdown and the page show, and
    ``record`` (the record as a dict, for its provenance)."""
    rows = []
    for rec, int8 in _latest_int8(frame):
        mode = rec.config.get("mode", "infer")
        best = _best_fp32(rec.metrics["candidates"], mode)
        # one over the budget is measured and shown (its error says why it was not chosen)
        fast = int8.get(f"{mode}_samples_per_sec")
        fast = fast if is_number(fast) else None
        base = _speed(best, mode) if best else None
        runtime = int8.get("runtime", "onnxruntime")
        rows.append(
            {
                "model": rec.model,
                "runtime": RUNTIME_LABELS.get(runtime, runtime),
                "device": str(rec.device_name or rec.device),
                "batch": rec.config.get("batch_size"),
                "img_size": rec.config.get("img_size"),
                "fp32_top1": int8.get("fp32_top1"),
                "int8_top1": int8.get("candidate_top1"),
                "drop": int8.get("top1_drop"),
                "over_budget": int8.get("within_budget") is False,
                "best_fp32": base,
                "best_fp32_label": _label(best) if best else None,
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


def _markdown_row(r: dict, notes: Footnotes, once: bool, one_device: bool) -> dict:
    """A row of the markdown table (under 160 characters: the device name and the best fp32
    candidate's name are clipped, the run and images are named under the table when every row
    shares them, ``once``, and so is the device, ``one_device``)."""
    images = notes.numbered("int8-", r["images"]) if r["images"] and not once else ""
    run = "" if once else notes.run(r["record"])
    best = r["best_fp32"]
    label = (r["best_fp32_label"] or "").removeprefix("fp32 ")
    if r["int8"]:
        int8 = fmt_sps(r["int8"]) + (f" {CHOSEN}" if r["is_chosen"] else "")
    else:
        int8 = notes.numbered("int8-error-", r["int8_error"])
    row = {
        "Model": f"{r['model']}{run}",
        "Device": clip(r["device"], 20),
        "Batch x px": f"{r['batch']} x {r['img_size']}",
        "INT8 by": r["runtime"],
        "fp32 top-1": fmt_number(r["fp32_top1"], ".1f"),
        "INT8 top-1": fmt_number(r["int8_top1"], ".1f") + images,
        "Drop": (f"{WARN} " if r["over_budget"] else "") + fmt_number(r["drop"], "+.1f"),
        "Best fp32 (samples/s)": f"{fmt_sps(best)} ({clip(label, 30)})" if best else "-",
        "INT8 (samples/s)": int8,
        "Speed-up": f"{r['speedup']:.2f}x" if r["speedup"] else "-",
    }
    if one_device:
        del row["Device"]
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


def quantization_markdown(frame, notes: Footnotes) -> list[str]:
    """The section's lines, its new footnotes after its table (none when no run tried INT8)."""
    rows = int8_rows(frame)
    if not rows:
        return []
    images = {r["images"] for r in rows}
    once = len(images) == 1 and len({r["record"]["run_id"] for r in rows}) == 1
    devices = {r["device"] for r in rows}
    one_device = len(devices) == 1
    table = md_table([_markdown_row(r, notes, once, one_device) for r in rows])
    lines = ["", f"## {TITLE}", "", *wrap(f"{TEXT} {MARKS} {HOW}"), "", "```", COMMAND, "```"]
    lines += ["", table, ""]
    on = f" on {devices.pop()}" if one_device else ""
    if once:
        shared = f"Every row comes from one run{notes.run(rows[0]['record'])}{on}. {images.pop()}"
        lines += [*wrap(shared.strip()), ""]
    elif on:
        lines += [f"Every row was measured{on}.", ""]
    weights = dict.fromkeys(r["weights"] for r in rows if r["weights"])
    if weights:
        lines += [*wrap(f"Weights: {', '.join(weights)}."), ""]
    missing = not_measured(rows)
    if missing:
        lines += [*wrap(f"Not measured yet: {', '.join(missing)}."), ""]
    return lines + notes.lines()

"""``reports/chapter.md``: the one-page answer to the chapter's table of architectures.

A headline table first (the chapter's figures beside the measured ones, the best inference
samples/s on a CPU and a GPU, and the fine-tuned top-1 of the chapter's command), with each
figure's configuration and provenance (run, date, machine, commit, torch) as footnotes; then
the detail tables: the chapter's own models, the validate results, the convolution types and
section 1. A pure function of the records; no torch.
"""

from __future__ import annotations

import re

from bench.registry.cards import ModelCard, chapter_table, load_cards
from bench.report.convtypes import conv_types_markdown
from bench.report.finetune import finetune_rows, recipe_text
from bench.report.fmt import (
    WARN,
    Footnotes,
    clip,
    fmt_gmacs,
    fmt_int,
    fmt_pct,
    fmt_sps,
    is_missing,
    is_number,
    md_table,
    provenance,
    wrap,
)
from bench.report.records import Records, untrusted
from bench.report.section1 import section1_markdown
from bench.report.throughput import config_text
from bench.report.tidy import failures, measured_for

# The fine-tune records of the chapter's command (docs/finetune.md):
#   python -m bench run --models chapter --harness finetune --epochs 3 --img-size 64
# The chapter's fine-tune command (--models chapter --harness finetune --epochs 3 --img-size 64):
# from scratch on mnist5k's whole training split, in one process
CHAPTER_FINETUNE = {
    "dataset": "mnist5k",
    "init": "scratch",
    "epochs": 3,
    "finetune_img_size": 64,
    "world_size": 1,
}


def is_chapter_finetune(fields: dict) -> bool:
    """Whether a fine-tune record (its config and metrics in one dict) is the chapter's command."""
    return not fields.get("train_limit") and all(
        fields.get(k) == v for k, v in CHAPTER_FINETUNE.items()
    )


NO_WEIGHTS = "- (no weights)"

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


def agrees(stated: str, value: float | None) -> bool | None:
    """Whether a figure stated with its precision agrees with a value; None if no figure."""
    parsed = parse_stated(stated)
    if parsed is None or is_missing(value):
        return None
    number, half = parsed
    return abs(number - value) <= half + 1e-9 * max(abs(number), 1)


def human_count(n) -> str:
    if is_missing(n):
        return "-"
    n = float(n)
    if n >= 1e9:
        return f"{n / 1e9:.2f}B"
    if n >= 1e6:
        return f"{n / 1e6:.2f}M"
    if n >= 1e3:
        return f"{n / 1e3:.1f}K"
    return f"{n:.0f}"


def _mark(text: str, ok: bool | None) -> str:
    return f"{text} {WARN}" if ok is False else text


def _flags(card: ModelCard, measured: dict) -> list[str]:
    ch, pub = card.chapter, card.published
    params, depth, gmacs = (
        measured.get("params"),
        measured.get("depth"),
        measured.get("infer_gmacs"),
    )
    flags = []
    if ch is not None:
        if agrees(ch.params, params) is False:
            flags.append(f"params: chapter {ch.params}, measured {human_count(params)}")
        if agrees(ch.layers, depth) is False:
            flags.append(f"layers: chapter {ch.layers}, measured {fmt_int(depth)} weight layers")
        if agrees(ch.top1, pub.top1) is False:
            flags.append(f"top-1: chapter {ch.top1}, published {pub.top1:g}%")
    if pub.params is not None and params is not None and int(params) != pub.params:
        flags.append(f"params: published {pub.params:,}, measured {fmt_int(params)}")
    if pub.gmacs and gmacs is not None and abs(gmacs - pub.gmacs) > 0.01 * pub.gmacs:
        flags.append(f"GMACs: published {pub.gmacs:g}, measured {fmt_gmacs(gmacs)}")
    return flags


def _ok(frame, harness: str):
    if frame.empty:
        return frame
    return frame[(frame["harness"] == harness) & (frame["status"] == "ok")]


def native_speeds(latest, card: ModelCard, device: str) -> list[dict]:
    """The throughput records (dicts) of a chapter model on a device kind at the card's native
    input size (a 64 px run is another workload), with an inference samples/s."""
    rows = _ok(latest, "throughput")
    if rows.empty:
        return []
    rows = rows[(rows["model"] == card.name) & (rows["device"] == device)]
    return [
        r
        for r in rows.to_dict("records")
        if is_number(r["metrics"].get("infer_samples_per_sec"))
        and r["config"].get("img_size") in (None, card.input_size[1])
    ]


def best_speed(latest, card: ModelCard, device: str) -> dict | None:
    """The ``native_speeds`` record with the most inference samples/s whose timing can be
    trusted (``records.untrusted``); None when there is none."""
    trusted = [r for r in native_speeds(latest, card, device) if not untrusted(r["metrics"])]
    return max(trusted, key=lambda r: r["metrics"]["infer_samples_per_sec"], default=None)


def _chapter_finetune(latest, model: str) -> dict | None:
    """The latest fine-tune record of the chapter's command for a model (full data)."""
    rows = [r for r in finetune_rows(latest) if r["model"] == model and is_chapter_finetune(r)]
    return max(rows, key=lambda r: (r["finished_utc"], r["run_id"])) if rows else None


def _speed_cell(latest, card: ModelCard, device: str, notes: Footnotes, label: str) -> str:
    rec = best_speed(latest, card, device)
    if rec is None:
        measured = native_speeds(latest, card, device)
        if not measured:
            return "-"
        fastest = max(measured, key=lambda r: r["metrics"]["infer_samples_per_sec"])
        why = (
            f"{card.display_name}: every timing at {card.input_size[1]} px is too short or "
            f"unsettled to trust (the fastest: {untrusted(fastest['metrics'])})"
        )
        return f"- {notes.mark(label, why)}"
    text = f"{card.display_name}, {rec['device_name']}: {config_text(rec['config'])}; " + _prov(rec)
    return f"{fmt_sps(rec['metrics']['infer_samples_per_sec'])} {notes.mark(label, text)}"


def _prov(rec) -> str:
    return provenance(rec.get if isinstance(rec, dict) else lambda k: getattr(rec, k, None))


def _headline_row(i: int, card: ModelCard, records: Records, table, notes: Footnotes) -> dict:
    m = measured_for(card, table)
    ch, pub = card.chapter, card.published
    params, depth = m.get("params"), m.get("depth")
    row = {
        "Model": card.display_name,
        "Layers": f"{_mark(ch.layers, agrees(ch.layers, depth))} / {fmt_int(depth)}",
        "Params": f"{_mark(ch.params, agrees(ch.params, params))} / {human_count(params)}",
        "GMACs": fmt_gmacs(m.get("infer_gmacs")),
        "Top-1 ch. / pub.": f"{_mark(ch.top1, agrees(ch.top1, pub.top1))} / "
        + (f"{pub.top1:g}%" if pub.top1 is not None else "-"),
        "Top-1 measured": _validated(card, table) or NO_WEIGHTS,
        "CPU samples/s": _speed_cell(records.latest, card, "cpu", notes, f"c{i}"),
        "GPU samples/s": _speed_cell(records.latest, card, "cuda", notes, f"g{i}"),
        "Fine-tuned top-1": "-",
    }
    ft = _chapter_finetune(records.latest, card.name)
    if ft is not None:
        text = f"{card.display_name}: {recipe_text(ft)}; {_prov(ft)}"
        row["Fine-tuned top-1"] = f"{fmt_pct(ft.get('top1'))} {notes.mark(f'f{i}', text)}"
    return row


def _validated(card: ModelCard, table) -> str | None:
    """The validate harness's top-1 of the card's model, on the largest image set scored."""
    need = {"model", "harness", "val_top1", "val_images"}
    if table.empty or not need <= set(table.columns):
        return None
    rows = table[(table["model"] == card.name) & (table["harness"] == "validate")]
    rows = rows.dropna(subset=["val_top1"])
    if rows.empty:
        return None
    r = rows.sort_values("val_images", kind="stable").iloc[-1]
    return f"{fmt_pct(r['val_top1'])} ({fmt_int(r['val_images'])} images, {r.get('val_data', '?')})"


def _headline(records: Records, table, notes: Footnotes) -> list[str]:
    cards = [c for c in chapter_table() if c.chapter is not None]
    rows = [_headline_row(i, c, records, table, notes) for i, c in enumerate(cards, 1)]
    text = (
        "The chapter's figures beside the measured ones: *Layers* and *Params* are the "
        "chapter's / measured, *Top-1 ch. / pub.* the chapter's / published. Samples/s is the best inference "
        "throughput measured on any configuration (batch, precision, layout, runtime); the "
        "footnote of each figure names the configuration that won and the run it came from. "
        "Fine-tuned top-1 is the held-out MNIST top-1 after the chapter's command "
        f"(`--harness finetune --epochs {CHAPTER_FINETUNE['epochs']} --img-size "
        f"{CHAPTER_FINETUNE['finetune_img_size']}`, from scratch, the full training set). "
        "Measured top-1 needs ImageNet weights and labelled ImageNet images: no such weights "
        "of these models are offline here, so it is '-' (see *Validate* below for the weights "
        "that are)."
    )
    return [
        "## The chapter's table, measured",
        "",
        *wrap(text),
        "",
        md_table(rows),
        "",
        *notes.lines(),
    ]


def _details(records: Records, table, notes: Footnotes) -> list[str]:
    """Per architecture: the full counts, the input, the innovation, the provenance."""
    rows, flags, sources = [], [], []
    static = _ok(records.latest, "flops")
    for card in chapter_table():
        m = measured_for(card, table)
        ch = card.chapter
        runs = static[static["model"] == card.name] if not static.empty else static
        prov = notes.run(runs.iloc[-1].to_dict()) if not runs.empty else ""
        rows.append(
            {
                "Model": f"{card.display_name} {prov}".strip(),
                "Year": str(card.year) if card.year else "-",
                "Input": "x".join(map(str, card.input_size)),
                "Depth (measured)": fmt_int(m.get("depth")),
                "Params (measured)": fmt_int(m.get("params")),
                "GMACs": fmt_gmacs(m.get("infer_gmacs")),
                "Key innovation": ch.innovation if ch else "",
            }
        )
        flags += [f"- **{card.display_name}**: {f}" for f in _flags(card, m)]
        if card.published.top1_source:
            sources.append(f"- {card.display_name}: top-1 from {card.published.top1_source}")
    return [
        "## Details of the architectures",
        "",
        *wrap(
            "Depth counts weight layers (convolutions, linear layers) on the longest path "
            "from input to output; GMACs are multiply-accumulates (fvcore's convention, "
            "attention included) at batch 1 and the model's native input size. The footnote "
            "of each model is the run of its flops record."
        ),
        "",
        md_table(rows),
        "",
        *notes.lines(),
        "",
        "### Disagreements",
        "",
        *(flags or ["None."]),
        "",
        "### Sources of the published figures",
        "",
        *sources,
    ]


def _params_check(params, card: ModelCard) -> str:
    if params is None or card.published.params is None:
        return "-"
    if int(params) == card.published.params:
        return "matches card"
    return f"card says {card.published.params:,} {WARN}"


def _own_models(table) -> list[str]:
    """The chapter's own models (not in its tables): measured against their cards."""
    rows = []
    for card in load_cards().values():
        if card.source != "chapter" or card.in_chapter_table or card.conv_table is not None:
            continue
        m = measured_for(card, table)
        rows.append(
            {
                "Model": f"{card.display_name} (`{card.name}`)",
                "Input": "x".join(map(str, card.input_size)),
                "Params (measured)": fmt_int(m.get("params")),
                "Params vs card": _params_check(m.get("params"), card),
                "Depth (measured)": fmt_int(m.get("depth")),
                "GMACs": fmt_gmacs(m.get("infer_gmacs")),
                "Activations (M)": fmt_gmacs(m.get("infer_macts")),
            }
        )
    return ["## The chapter's own models", "", md_table(rows)]


def validate_markdown(latest, notes: Footnotes) -> list[str]:
    """The validate harness's records: ImageNet weights scored on labelled images."""
    lines = ["## Validate: ImageNet weights on labelled images", ""]
    rows = _ok(latest, "validate")
    if rows.empty:
        return [
            *lines,
            "No validate records yet: `python -m bench run --harness validate "
            "--pretrained --val-data photos`.",
        ]
    out = []
    for rec in rows.sort_values(["model", "run_id"], kind="stable").itertuples():
        m, c = rec.metrics, rec.config
        out.append(
            {
                "Model": rec.model,
                "Weights": str(m.get("init_source") or "-"),
                "Images": f"{c.get('val_data', '-')}: {fmt_int(m.get('val_images'))}",
                "Top-1": fmt_pct(m.get("val_top1")),
                "Top-5": fmt_pct(m.get("val_top5")),
                "Run": notes.run(rec._asdict()),
            }
        )
    text = (
        "Top-1 and top-5 of the offline ImageNet weights on the labelled images named "
        "(`photos`: a handful of photographs, so each image is a large share of the score)."
    )
    return [*lines, *wrap(text), "", md_table(out), "", *notes.lines()]


def chapter_markdown(records: Records, table) -> str:
    fails = failures(records.latest)
    notes = Footnotes()
    lines = [
        "# The chapter's comparison, measured",
        "",
        "Generated by `python -m bench report` from `results/`; do not edit by hand.",
        *wrap(
            f"{WARN} marks a figure of the chapter that disagrees with measurement or "
            "publication beyond the precision it is stated with (half a unit of its last digit)."
        ),
        "",
        *_headline(records, table, notes),
        "",
        *_details(records, table, notes),
        "",
        *validate_markdown(records.latest, notes),
        "",
        *_own_models(table),
        "",
        *conv_types_markdown(table),
        "",
        *section1_markdown(table),
    ]
    if not fails.empty:
        rows = [{k: clip(str(v)) for k, v in r.items()} for r in fails.to_dict("records")]
        lines += ["", "## Failed measurements", "", md_table(rows)]
    return "\n".join(lines) + "\n"

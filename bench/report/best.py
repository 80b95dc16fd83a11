"""The best inference samples/s per workload, for ``reports/throughput.md`` and the plots.

A best figure answers one question, and rows that answer different ones never share a table
(``bench.report.workload`` defines a measurement's workload):

- the chapter's question (``workload.answers_question``): per machine and model, the fastest
  trusted record at the model card's native input size and channels, with ImageNet weights or
  random initialisation, at an exact precision (fp32, tf32);
- every other workload, one table per machine, input size and weights ('INT8 / fp32 on
  checkpoints trained on mnist5k at 64 px'): the fastest trusted record of each model, its
  precision named and a lossy one marked.

Rows are the tidy table's (flat) or the records' (``config`` and ``metrics``); pure Python.
"""

from __future__ import annotations

from bench.harness.throughput.config import LABELS as RUNTIME_LABELS  # cheap: no torch
from bench.report.blocks import Heading, Para, Tbl, slug
from bench.report.fmt import fmt_int, fmt_number, fmt_sps, is_missing, is_number
from bench.report.records import untrusted
from bench.report.workload import (
    LOSSY_MARK,
    SCENARIO,
    answers_question,
    build_words,
    precision_text,
    workload_key,
)

QUESTION = "the chapter's question"
# The order precisions are named in a title: lossy first, as the reader must see them first.
PRECISION_ORDER = ("int8", "fp16", "bf16", "tf32", "fp32")
QUESTION_TEXT = (
    "The chapter's question: each model at its model card's native input size and channels, "
    "with ImageNet weights or random initialisation (no checkpoint trained on other data), at an "
    "exact precision (fp32, or tf32 where a GPU's fp32 matrix products use it), among the records "
    "whose timing can be trusted (see 'Every measurement: timing'). chapter.md's speed columns "
    "follow the same rule. One table per machine."
)
OTHER_TEXT = (
    "Every other workload, one table per machine, input size and weights: the fastest trusted "
    f"record of each model, whatever its precision. {LOSSY_MARK} after a precision: bf16, fp16 "
    "and INT8 change the outputs beyond rounding (an --optimize run keeps such a candidate only "
    "where its top-1 stays within the run's accuracy budget), so these figures do not answer the "
    "chapter's question and are not set beside its table's. A speed-up of INT8 over its run's "
    "best exact candidate is in the quantization table."
)


def metrics_of(r: dict) -> dict:
    """A record row's metrics, or a tidy row itself."""
    m = r.get("metrics")
    return m if isinstance(m, dict) else r


def machine_of(r: dict) -> str:
    """The machine a row was measured on, as the reports name it (its device's name)."""
    name = r.get("device_name")
    return str(r.get("device") if is_missing(name) or not name else name)


def by_machine(rows: list[dict]) -> list[tuple[str, list[dict]]]:
    """``rows`` grouped by machine (sorted by name), each group in the rows' order."""
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(machine_of(r), []).append(r)
    return sorted(groups.items())


def scenario_words(scenario: str, m: dict) -> list[str]:
    """A scenario other than sync in words, with its headline: 'single-stream p90 4.20 ms',
    'offline 4 inst x 2 thr' (PyTorch's instances and their threads) or 'offline 2 str 8 req'
    (a runtime's streams and requests); nothing for sync, so that its rows read as before."""
    if scenario == SCENARIO:
        return []
    if scenario == "single-stream":
        return [f"single-stream p90 {fmt_number(m.get('latency_p90_ms'), ',.2f')} ms"]
    words = [scenario]
    if not is_missing(m.get("offline_instances")):
        words.append(f"{fmt_int(m['offline_instances'])} inst")
        words.append(f"x {fmt_int(m.get('threads_per_instance'))} thr")
    for key, unit in (("offline_streams", "str"), ("offline_requests", "req")):
        if not is_missing(m.get(key)):
            words.append(f"{fmt_int(m[key])} {unit}")
    return words


def short_config(r: dict) -> str:
    """How a row was measured, less its input size (a column of its own): 'bs 16 int8 (lossy)
    nchw OpenVINO (optimize)', led by its scenario when not sync (``scenario_words``); eager or
    compiled for PyTorch only (another runtime runs its own graph); 'malloc system' when
    timed under ``--malloc system``."""
    w = workload_key(r)
    batch = fmt_int(w.batch)
    if r.get("batch_size_reduced") is True:
        batch += f" (asked {fmt_int(r.get('batch_size'))})"
    parts = [
        *scenario_words(w.scenario, metrics_of(r)),
        f"{'' if w.mode == 'infer' else w.mode + ' '}bs {batch}",
        precision_text(w.precision, metrics_of(r).get("accuracy")),
        w.layout,
        *build_words(w.runtime, "compiled" in w.levers),
        RUNTIME_LABELS.get(w.runtime, w.runtime),
        *(lever for lever in w.levers if lever != "compiled"),
        # glibc left to return freed memory (docs/throughput.md, Method: Allocator); runs
        # before --malloc have no key and read as they did
        *(["malloc system"] if metrics_of(r).get("malloc") == "system" else []),
    ]
    return " ".join(parts) + (" (optimize)" if r.get("optimize") is True else "")


def workload_class(r: dict) -> tuple:
    """Which best table a row belongs to: (0, QUESTION) for the chapter's question, else
    (1, input size, weights in words)."""
    w = workload_key(r)
    if answers_question(w):
        return (0, QUESTION)
    return (1, w.img_size or 0, w.weights_kind())


def best_rows(rows: list[dict]) -> dict[tuple, dict[str, dict[str, dict]]]:
    """{workload class: {machine: {model: the fastest trusted inference row}}}, classes in
    order (the chapter's question first), machines and models in the rows' order."""
    best: dict[tuple, dict[str, dict[str, dict]]] = {}
    for r in rows:
        m = metrics_of(r)
        sps = m.get("infer_samples_per_sec")
        if workload_key(r).mode != "infer" or not is_number(sps) or untrusted(m):
            continue
        mine = best.setdefault(workload_class(r), {}).setdefault(machine_of(r), {})
        model = str(r["model"])
        if model not in mine or sps > metrics_of(mine[model])["infer_samples_per_sec"]:
            mine[model] = r
    return {k: best[k] for k in sorted(best)}


def _title(cls: tuple, rows: list[dict]) -> str:
    """'INT8 / fp32 on checkpoints at 64 px', naming the data the checkpoints were trained on
    where every row names the same: 'INT8 on checkpoints trained on mnist5k at 64 px'."""
    keys = [workload_key(r) for r in rows]
    found = {w.precision for w in keys}
    order = [p for p in PRECISION_ORDER if p in found] + sorted(found - set(PRECISION_ORDER))
    names = " / ".join("INT8" if p == "int8" else p for p in order)
    data = {w.data for w in keys}
    trained = f" trained on {data.pop()}" if len(data) == 1 and None not in data else ""
    return f"{names} on {cls[2]}{trained} at {cls[1]} px"


def _row(r: dict, weights: bool) -> dict:
    w = workload_key(r)
    m = metrics_of(r)
    out = {"Model": w.model}
    if weights:
        out["Weights (sha256)"] = (w.weights_sha256 or "-")[:12]
    return out | {
        "px": fmt_int(w.img_size),
        "Samples/s": fmt_sps(m["infer_samples_per_sec"]),
        "Configuration": short_config(r),
        "Step median (ms)": fmt_number(m.get("median"), ",.2f"),
    }


def _table(table_id: str, found: list[dict], weights: bool) -> Tbl:
    return Tbl(table_id, tuple(_row(r, weights) for r in found), tuple(found))


def best_blocks(rows: list[dict]) -> list:
    """The best tables: the chapter's question per machine, then every other workload."""
    best = best_rows(rows)
    out: list = [Heading("Best inference samples/s: " + QUESTION), Para(QUESTION_TEXT)]
    question = best.pop((0, QUESTION), {})
    for machine, models in question.items():
        out += [Heading(machine, 3), _table(f"best-{slug(machine)}", list(models.values()), False)]
    others = sorted({m for machines in best.values() for m in machines} - set(question))
    if others:
        out.append(
            Para(
                f"No trusted exact-precision record at a model's native input size on "
                f"{', '.join(others)}: the figures measured there are other workloads' (below)."
            )
        )
    elif not question:
        out.append(Para("No trusted exact-precision record at a model's native input size yet."))
    if best:
        out += [Heading("Best inference samples/s: other workloads"), Para(OTHER_TEXT)]
    for cls, machines in best.items():
        for machine, models in machines.items():
            found = list(models.values())
            checkpoints = any(workload_key(r).weights_sha256 for r in found)
            tid = f"best-{slug(machine)}-{cls[1]}px-{slug(cls[2])}"
            out += [Heading(f"{machine}: {_title(cls, found)}", 3), _table(tid, found, checkpoints)]
    return out

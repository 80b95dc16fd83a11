"""``--optimize``: every supported layout x precision, batch norm folded, compiled (only with
--compile; the PyTorch levers are built by ``levers``), a reparameterisable model's inference
form, the other runtimes, and the lossy candidates (INT8 through each runtime that has it, fp16 on CUDA).

Each measured candidate is timed ``optimize_rounds`` times (the rounds in alternating order,
lossy and exact candidates alike) and its figure is the median over its rounds
(``rounds.median_of_rounds``, the estimator of ``run --repeats``; every round's samples/s
stays in ``rounds_samples_per_sec``): the best of N rounds over many candidates would favour
whichever was lucky once. The eligible candidate of the highest median wins, unless its timing
is untrusted (``bench.stats.untrusted``): then it is timed once more and, if still untrusted,
the fastest trusted one wins and the record says so. Eligible: an exact candidate whose
outputs agree with eager fp32 in every round, or a lossy one that passes the accuracy gate
(its drop of top-1 on real images against eager fp32's within ``--accuracy-budget`` by
``--accuracy-gate``'s rule: ``bench.harness.throughput.gate``); bf16, which agrees to its
tolerance, must also pass the gate when the run can score it. In the offline scenario each
runtime's fastest candidate is tried again at every concurrency of ``concurrency_levels``
(PyTorch's instances, another runtime's requests)."""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass, replace

from bench.errors import BenchError, error_text
from bench.harness.throughput.backend import free_memory, supports_bf16
from bench.harness.throughput.config import TORCH, Settings
from bench.harness.throughput.gate import lossy_skip_reason
from bench.harness.throughput.levers import compiled, eager_grid, folded
from bench.harness.throughput.measure import Candidate
from bench.harness.throughput.model_run import ModelRun
from bench.harness.throughput.offline import usable_cores
from bench.harness.throughput.quantize import INT8, LOSSY, measure_int8, torch_gate
from bench.harness.throughput.rounds import median_of_rounds
from bench.harness.throughput.runtimes import int8_skip_reason, names, skip_reason
from bench.harness.throughput.sessions import measure_candidate, scenario_of
from bench.stats import log_t_test, untrusted

logger = logging.getLogger(__name__)

SPEEDUP_CONFIDENCE = 0.95  # of optimize_speedup's interval

TRAINING, INFERENCE = "training", "inference"  # a model's form (bench.harness.reparam)
# the accuracy gate as the record names it once, and what each gated candidate's row keeps
GATE_KEYS = ("accuracy_data", "accuracy_images", "calibration_data", "calibration_images",
             "fp32_top1", "accuracy_rule", "accuracy_budget", "accuracy_budget_pct")  # fmt: skip
GATE_ROW_KEYS = ("fp32_top1", "candidate_top1", "top1_drop", "top1_drop_low", "top1_drop_high",
                 "accuracy_images", "images_lost", "images_gained", "mcnemar_p",
                 "accuracy_rule", "accuracy_budget", "within_budget")  # fmt: skip


@dataclass(frozen=True)
class Option:
    """A candidate and the form of the model it runs."""

    cand: Candidate
    form: str = TRAINING


# an option, its metrics (None when not measured) and why not (or why it is never chosen)
Result = tuple[Option, dict | None, str | None]


def optimize(run: ModelRun, asked: Candidate, batch: int) -> tuple[dict, Candidate]:
    """The eligible candidate of the highest median samples/s over its rounds, re-measured
    once when untrusted (``_choose``): its metrics (with ``optimize_speedup`` over eager fp32
    NCHW and its interval, the accuracy gate's images and every candidate's row) and that
    candidate."""
    key = f"{asked.mode}_samples_per_sec"
    eager = [Option(cand) for cand in eager_grid(asked, run.device)]
    first = _first_round(run, asked, eager, batch)
    timings = _rounds(run, first, batch, asked.mode)
    results = [
        _merged(o, rounds, err, key) for (o, _, err), rounds in zip(first, timings, strict=True)
    ]
    if not _usable(results):
        why = next((err for _, _, err in results if err), "no candidate agreed with eager")
        raise BenchError(f"--optimize: no candidate measured and agreeing: {why}")
    i, notes = _choose(run, results, timings, batch, asked.mode)
    best, metrics = results[i][0], dict(results[i][1])
    base = next((j for j, (o, m, _) in enumerate(results) if m is not None and o == eager[0]), None)
    metrics.update(_speedup(timings, i, base, key), **notes)
    if best.form == INFERENCE:
        metrics["model_form"] = INFERENCE
    gated = [m for _, m, _ in results if m is not None and "fp32_top1" in m]
    if gated:  # the images every lossy candidate was scored on, and eager fp32's top-1
        metrics["accuracy_gate"] = {k: gated[0][k] for k in GATE_KEYS if k in gated[0]}
    metrics["candidates"] = [_candidate_row(o, m, err, key) for o, m, err in results]
    return metrics, best.cand


def _rounds(run: ModelRun, first: list[Result], batch: int, mode: str) -> list[list[dict]]:
    """Every candidate's timings (none for one skipped or failed in the first round): the
    first round's, then ``optimize_rounds`` - 1 more rounds, each in the other order from the
    one before (a round that fails leaves the others)."""
    timings = [[m] if m is not None else [] for _, m, _ in first]
    for r in range(1, run.settings.optimize_rounds):
        order = range(len(first)) if r % 2 == 0 else reversed(range(len(first)))
        for i in order:
            if timings[i]:
                _again(run, first[i][0], timings[i], batch, mode)
    return timings


def _again(run: ModelRun, opt: Option, rounds: list[dict], batch: int, mode: str) -> None:
    """One more timing of a candidate, added to its ``rounds`` unless it failed."""
    again = _try(run, opt, batch, mode)[1]
    if again is not None:
        rounds.append(again)


def _merged(opt: Option, rounds: list[dict], err: str | None, key: str) -> Result:
    """A candidate's rounds as one result: the median over them (``median_of_rounds``, the
    estimator of ``run --repeats``); it agrees with eager fp32 only if every round did."""
    if not rounds:
        return opt, None, err
    m = median_of_rounds(rounds, key)
    if any(r.get("agrees") is False for r in rounds):
        m["agrees"] = False
        diffs = [r["max_abs_diff"] for r in rounds if r.get("max_abs_diff") is not None]
        m["max_abs_diff"] = max(diffs) if diffs else m.get("max_abs_diff")
    return opt, m, err


def _choose(run: ModelRun, results: list[Result], timings, batch: int, mode: str):
    """The index of the chosen candidate and the notes for the record. The fastest eligible
    candidate by median is chosen when its timing is trusted (``bench.stats.untrusted``);
    an untrusted one is measured once more (its rounds and median updated in place) and
    judged again; one still untrusted gives way to the fastest trusted candidate, and the
    record says so (``optimize_untrusted``; ``optimize_remeasured`` names the re-measured)."""
    key = f"{mode}_samples_per_sec"
    again: list[int] = []
    while True:
        ok = [j for j, (o, m, _) in enumerate(results) if _eligible(o, m)]
        i = max(ok, key=lambda j: results[j][1][key])
        why = untrusted(results[i][1])
        if not why or i in again:
            break
        again.append(i)
        _again(run, results[i][0], timings[i], batch, mode)
        results[i] = _merged(results[i][0], timings[i], results[i][2], key)
    notes = {"optimize_remeasured": [_label(results[j][0]) for j in again]} if again else {}
    if not why:
        return i, notes
    trusted = [j for j in ok if not untrusted(results[j][1])]
    pick = max(trusted, key=lambda j: results[j][1][key]) if trusted else i
    notes["optimize_untrusted"] = (
        f"the fastest, {_label(results[i][0])} ({results[i][1][key]:g} samples/s), is "
        f"untrusted after a re-measure ({why}): "
        + ("chose the fastest trusted candidate" if trusted else "no candidate is trusted")
    )
    return pick, notes


def _label(opt: Option) -> str:
    """A candidate in words: 'openvino bf16 nchw', with its levers and form."""
    c = opt.cand
    words = [c.runtime, c.precision, c.layout]
    words += [f"compiled ({c.compile_mode or 'default'})"] if c.compiled else []
    words += ["batch norm folded"] if c.fold_bn else []
    words += ["inference form"] if opt.form == INFERENCE else []
    words += [f"concurrency {c.concurrency}"] if c.concurrency is not None else []
    return " ".join(words)


def _speedup(timings, chosen: int, base: int | None, key: str) -> dict:
    """``optimize_speedup``: the chosen candidate's median samples/s over eager fp32 NCHW's,
    and ``optimize_speedup_low``/``_high``: the 95 % t interval on the logs of the two
    candidates' rounds (``bench.stats.log_t_test``: of the ratio of their geometric means;
    None with fewer than two rounds a side; 1 and 1 when the baseline is chosen)."""
    out = dict.fromkeys(("optimize_speedup", "optimize_speedup_low", "optimize_speedup_high"))
    if base is None:
        return out
    speeds = [[r[key] for r in timings[j]] for j in (base, chosen)]
    out["optimize_speedup"] = round(statistics.median(speeds[1]) / statistics.median(speeds[0]), 3)
    if chosen == base:
        out["optimize_speedup_low"] = out["optimize_speedup_high"] = 1.0
    elif min(map(len, speeds)) >= 2:
        _, _, low, high, _ = log_t_test(*speeds, SPEEDUP_CONFIDENCE)
        out["optimize_speedup_low"], out["optimize_speedup_high"] = round(low, 3), round(high, 3)
    return out


def _first_round(run: ModelRun, asked: Candidate, eager: list[Option], batch: int):
    """Every candidate timed once: eager PyTorch, batch norm folded into the best eager one,
    the inference form, compiled (the best so far, in each of the device's compile modes, with
    --compile), the other runtimes, then INT8; what cannot run here is a skipped result."""
    key = f"{asked.mode}_samples_per_sec"
    results: list[Result] = []
    for opt in eager:
        reason = _eager_skip(run, opt.cand)
        results.append((opt, None, reason) if reason else _try(run, opt, batch, asked.mode))
    best = _best(results, key)
    for cand in folded(best.cand if best else None, run.model):
        results.append(_try(run, Option(cand), batch, asked.mode))
    if asked.mode == "infer" and _inference_form(run) is not None:
        results.append(_try(run, replace(eager[0], form=INFERENCE), batch, asked.mode))
    if run.settings.compile and (best := _best(results, key)) is not None:
        for cand in compiled(best.cand, run.device):
            results.append(_try(run, Option(cand, best.form), batch, asked.mode))
    for runtime in _optimize_runtimes(run.settings):
        for p in ("fp32", "bf16"):
            opt = Option(replace(asked, precision=p, channels_last=False, compiled=False,
                                 runtime=runtime))  # fmt: skip
            reason = skip_reason(runtime, asked.mode, run.device, p, False, scenario_of(run))
            results.append((opt, None, reason) if reason else _try(run, opt, batch, asked.mode))
    if run.settings.scenario == "offline":
        results += _concurrency_round(run, results, batch, asked.mode)
    for runtime in _optimize_runtimes(run.settings):
        int8 = Option(replace(asked, precision=INT8, channels_last=False, compiled=False,
                              runtime=runtime))  # fmt: skip
        reason = _int8_skip(run, asked.mode, runtime)
        results.append((int8, None, reason) if reason else _try(run, int8, batch, asked.mode))
    return results


def concurrency_levels(cores: int) -> list[int]:
    """The offline concurrencies --optimize tries: 1, 2, 4, ... and the cores themselves."""
    levels = [1 << i for i in range(cores.bit_length()) if 1 << i <= cores]
    return levels + ([cores] if cores not in levels else [])


def _concurrency_round(run: ModelRun, results: list[Result], batch: int, mode: str):
    """The offline scenario's concurrency searched: each runtime's fastest candidate so far
    (at the runtime's own concurrency) again at every level of ``concurrency_levels`` over
    the usable cores: PyTorch's instances, another runtime's requests."""
    key = f"{mode}_samples_per_sec"
    levels = concurrency_levels(len(usable_cores(run.settings.threads)))
    out: list[Result] = []
    for runtime in dict.fromkeys(o.cand.runtime for o, _ in _usable(results)):
        best, m = max(((o, m) for o, m in _usable(results) if o.cand.runtime == runtime),
                      key=lambda om: om[1][key])  # fmt: skip
        ran = _concurrency_ran(m)
        for n in levels:
            if n == ran:  # the runtime's own choice measured it already
                continue
            opt = replace(best, cand=replace(best.cand, concurrency=n))
            out.append(_try(run, opt, batch, mode))
    return out


def _concurrency_ran(m: dict) -> int | None:
    """The concurrency an offline timing ran at, as its record states it: PyTorch's instances,
    another runtime's requests (None where it does not say)."""
    return m.get("offline_instances") or m.get("offline_requests")


def _best(results: list[Result], key: str) -> Option | None:
    """The fastest measured candidate that may be chosen, or None."""
    ok = _usable(results)
    return max(ok, key=lambda om: om[1][key])[0] if ok else None


def _eager_skip(run: ModelRun, cand: Candidate) -> str | None:
    if cand.precision == "bf16" and not supports_bf16(run.device):
        return "skipped: no native BF16 on this device"
    if cand.precision in LOSSY:
        return lossy_skip_reason(run.settings)
    return None


def _int8_skip(run: ModelRun, mode: str, runtime: str) -> str | None:
    """Why ``runtime``'s INT8 candidate cannot be measured here, or None."""
    return int8_skip_reason(runtime, mode, run.device) or lossy_skip_reason(run.settings)


def _inference_form(run: ModelRun):
    from bench.harness.reparam import job_inference_form

    return job_inference_form(run.job, run.model)


def _folded_run(run: ModelRun) -> ModelRun:
    """The model in its inference form, sharing the run's eager fp32 references (of the
    training form) and peak samples."""
    if "folded_run" not in run.job.cache:
        from bench.harness.counting import count_macs

        folded = _inference_form(run)
        try:
            gmacs = count_macs(folded, run.job.example_input(1))["macs"] / 1e9
        except Exception:
            gmacs = None
        run.job.cache["folded_run"] = ModelRun(run.job, run.settings, run.device, folded, gmacs,
                                               run.samples, _references=run._references)  # fmt: skip
    return run.job.cache["folded_run"]


def _measure(run: ModelRun, opt: Option, batch: int, mode: str) -> dict:
    """A candidate's metrics: the inference form's, INT8's, or PyTorch's and the other
    runtimes' (a reduced-precision PyTorch one with its top-1 when the run can score it)."""
    cand = opt.cand
    if opt.form == INFERENCE:
        run.reference(batch)  # of the training form, before the folded run shares it
        return measure_candidate(_folded_run(run), cand, batch, compare=True)
    if cand.precision == INT8:
        return measure_int8(run, cand, batch)
    metrics = measure_candidate(run, cand, batch, compare=mode == "infer")
    gate = lossy_skip_reason(run.settings) is None
    if gate and cand.runtime == TORCH and cand.precision != "fp32" and mode == "infer":
        metrics.update(torch_gate(run, cand, batch))
    return metrics


def _try(run: ModelRun, opt: Option, batch: int, mode: str) -> Result:
    """One timing of a candidate (compared with eager fp32 for inference); a failure is its
    one-line error."""
    try:
        return opt, _measure(run, opt, batch, mode), None
    except Exception as e:
        failure = error_text(e)
    logger.warning("%s: candidate %s failed: %s", run.job.spec.name, opt, failure)
    free_memory(run.device)  # outside the except: the traceback no longer holds the tensors
    return opt, None, failure


def _eligible(opt: Option, m: dict | None) -> bool:
    """Whether a measured candidate may be chosen: a lossy one only within the accuracy
    budget; an exact one when it agrees with eager (and, if it was scored, within budget)."""
    if m is None or m.get("within_budget") is False:
        return False
    if opt.cand.precision in LOSSY:
        return m.get("within_budget") is True
    return m.get("agrees", True)


def _usable(results: list[Result]) -> list[tuple[Option, dict]]:
    """Measured candidates that may be chosen (``_eligible``)."""
    return [(o, m) for o, m, _ in results if _eligible(o, m)]


def _never_chosen(opt: Option, m: dict) -> str | None:
    """Why a measured candidate is shown but never chosen, or None."""
    if m.get("within_budget") is False:
        return f"{m['gate_refusal']}: never chosen"
    if opt.cand.precision not in LOSSY and m.get("agrees") is False:
        return (
            f"disagrees with eager fp32 (max_abs_diff {m.get('max_abs_diff')}, tolerance "
            f"{m.get('agree_tolerance')}, top-1 agree {m.get('top1_agree')}): never chosen"
        )
    return None


def _candidate_row(opt: Option, m: dict | None, err: str | None, key: str) -> dict:
    """One candidate as the record's ``candidates`` list shows it."""
    c = opt.cand
    if m is not None:
        err = _never_chosen(opt, m) or err
    m = m or {}
    row = {
        "runtime": c.runtime,
        "precision": c.precision,
        "layout": c.layout,
        "compiled": c.compiled,
        "form": opt.form,
        key: m.get(key),
        "rounds_samples_per_sec": m.get("rounds_samples_per_sec"),
        f"{c.mode}_batch_size": m.get(f"{c.mode}_batch_size"),
        "max_abs_diff": m.get("max_abs_diff"),
        "top1_agree": m.get("top1_agree"),
        "export_time_s": m.get("export_time_s"),
        "error": err,
    }
    if c.compile_mode is not None:  # only then: the rows of earlier runs keep their keys
        row["compile_mode"] = c.compile_mode
    if c.fold_bn:
        row["fold_bn"] = True
    if c.concurrency is not None:  # the offline scenario's search (PyTorch's instances, ...)
        row["concurrency"] = c.concurrency
    if "fp32_top1" in m:
        row.update({k: m[k] for k in GATE_ROW_KEYS if k in m})
    return row


def _optimize_runtimes(s: Settings) -> tuple[str, ...]:
    """The other runtimes --optimize tries: those --runtime names, or every one by default."""
    named = [r for r in s.runtimes if r != TORCH]
    return tuple(named) if named else tuple(r for r in names() if r != TORCH)

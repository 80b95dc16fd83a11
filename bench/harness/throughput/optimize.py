"""``--optimize``: every supported layout x precision, batch norm folded, compiled (only with
--compile), as ``levers`` builds them, then the other runtimes; each measured candidate is
timed ``optimize_rounds`` times (the rounds in alternating order) and keeps its best; the
fastest whose outputs agree with eager fp32 wins."""

from __future__ import annotations

import logging
from dataclasses import replace

from bench.errors import BenchError, error_text
from bench.harness.throughput.backend import free_memory, supports_bf16
from bench.harness.throughput.config import RUNTIMES, TORCH, Settings
from bench.harness.throughput.levers import compiled, eager_grid, folded
from bench.harness.throughput.measure import Candidate
from bench.harness.throughput.model_run import ModelRun
from bench.harness.throughput.runtimes import measure_candidate, skip_reason

logger = logging.getLogger(__name__)

# a candidate, its metrics (None when not measured) and why not (or why it is never chosen)
Result = tuple[Candidate, dict | None, str | None]


def optimize(run: ModelRun, asked: Candidate, batch: int) -> tuple[dict, Candidate]:
    """The fastest agreeing candidate's metrics (with ``optimize_speedup`` over eager fp32
    NCHW and every candidate's row) and that candidate."""
    key = f"{asked.mode}_samples_per_sec"
    eager = eager_grid(asked, run.device)
    results = _first_round(run, asked, eager, batch)
    for r in range(1, run.settings.optimize_rounds):  # again, in the other order: each one's best
        order = range(len(results)) if r % 2 == 0 else reversed(range(len(results)))
        for i in order:
            cand, first, _ = results[i]
            if first is not None:
                results[i] = _better(results[i], _try(run, cand, batch, asked.mode), key)
    ok = _usable(results)
    if not ok:
        first = next((err for _, _, err in results if err), "no candidate agreed with eager")
        raise BenchError(f"--optimize: no candidate measured and agreeing: {first}")
    best, metrics = max(ok, key=lambda cm: cm[1][key])
    baseline = next((m for c, m, _ in results if m is not None and c == eager[0]), None)
    metrics = dict(metrics)
    metrics["optimize_speedup"] = round(metrics[key] / baseline[key], 3) if baseline else None
    metrics["candidates"] = [_candidate_row(c, m, err, key) for c, m, err in results]
    return metrics, best


def _first_round(run: ModelRun, asked: Candidate, eager: list[Candidate], batch: int):
    """Every candidate timed once: eager PyTorch, batch norm folded into the best eager one,
    compiled (the best so far, in each of the device's compile modes, with --compile), then
    the other runtimes; what cannot run here is a skipped result (``levers``)."""
    key = f"{asked.mode}_samples_per_sec"
    results: list[Result] = []
    for cand in eager:
        if cand.precision == "bf16" and not supports_bf16(run.device):
            results.append((cand, None, "skipped: no native BF16 on this device"))
            continue
        results.append(_try(run, cand, batch, asked.mode))
    for cand in folded(_best(results, key), run.model):
        results.append(_try(run, cand, batch, asked.mode))
    if run.settings.compile:
        for cand in compiled(_best(results, key), run.device):
            results.append(_try(run, cand, batch, asked.mode))
    for runtime in _optimize_runtimes(run.settings):
        for p in ("fp32", "bf16"):
            cand = replace(asked, precision=p, channels_last=False, compiled=False, runtime=runtime)
            reason = skip_reason(runtime, asked.mode, run.device, p, False)
            if reason:
                results.append((cand, None, reason))
                continue
            results.append(_try(run, cand, batch, asked.mode))
    return results


def _best(results: list[Result], key: str) -> Candidate | None:
    """The fastest measured candidate that agrees with eager, or None."""
    ok = _usable(results)
    return max(ok, key=lambda cm: cm[1][key])[0] if ok else None


def _try(run: ModelRun, cand: Candidate, batch: int, mode: str) -> Result:
    """One timing of a candidate (compared with eager fp32 for inference); a failure is its
    one-line error."""
    try:
        return cand, measure_candidate(run, cand, batch, compare=mode == "infer"), None
    except Exception as e:
        failure = error_text(e)
    logger.warning("%s: candidate %s failed: %s", run.job.spec.name, cand, failure)
    free_memory(run.device)  # outside the except: the traceback no longer holds the tensors
    return cand, None, failure


def _better(kept: Result, again: Result, key: str) -> Result:
    """A candidate's two timings as one: the faster metrics, with every round's samples/s
    (``rounds_samples_per_sec``); a round that failed leaves the other."""
    cand, first, err = kept
    second = again[1]
    if second is None:
        return kept
    speeds = [*first.get("rounds_samples_per_sec", [first[key]]), second[key]]
    best = dict(second if second[key] > first[key] else first)
    best["rounds_samples_per_sec"] = speeds
    return cand, best, err


def _usable(results: list[Result]) -> list[tuple[Candidate, dict]]:
    """Measured candidates whose outputs agree with eager (a disagreeing one never wins)."""
    return [(c, m) for c, m, _ in results if m is not None and m.get("agrees", True)]


def _candidate_row(c: Candidate, m: dict | None, err: str | None, key: str) -> dict:
    """One candidate as the record's ``candidates`` list shows it."""
    if m is not None and m.get("agrees") is False:
        err = (
            f"disagrees with eager fp32 (max_abs_diff {m.get('max_abs_diff')}, tolerance "
            f"{m.get('agree_tolerance')}, top-1 agree {m.get('top1_agree')}): never chosen"
        )
    m = m or {}
    row = {
        "runtime": c.runtime,
        "precision": c.precision,
        "layout": c.layout,
        "compiled": c.compiled,
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
    return row


def _optimize_runtimes(s: Settings) -> tuple[str, ...]:
    """The other runtimes --optimize tries: those --runtime names, or every one by default."""
    named = [r for r in s.runtimes if r != TORCH]
    return tuple(named) if named else tuple(r for r in RUNTIMES if r != TORCH)

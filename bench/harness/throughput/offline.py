"""PyTorch's offline scenario: N instances of the model at once, each in a worker process of
its own, pinned to its own cores (``os.sched_setaffinity``) with torch's threads set to its
share of them, as TorchBench's CPU user benchmark runs several instances.

The usable cores (this process's affinity, or the first ``--threads`` of them) are split
evenly: ``threads_per_instance`` = cores // N, the rest left idle. Every instance warms up on
its own, waits at a barrier for the others, then runs the timed loop for at least
``--min-time`` seconds and ``--min-steps`` steps; the scenario's samples/s is the sum of the
instances' (batch x steps / seconds each), and the step-time statistics are over every
instance's steps. Workers are spawned (a fresh interpreter: no OpenMP pool inherited through
``fork``) and receive the model and the input by pickling. Inference only, eager only.
"""

from __future__ import annotations

import os
import queue as queue_module
from dataclasses import dataclass

from bench.errors import BenchError, error_text
from bench.harness.samples import kept_step_times
from bench.harness.throughput.allocator import malloc_policy, minor_faults
from bench.harness.throughput.backend import dtype, peak_rss_mb
from bench.harness.throughput.runtimes.base import OFFLINE, scenario_info, scenario_record
from bench.harness.throughput.timing import CpuTimer, StepStats, WarmupPolicy, timed_loop, warm_up

CORES_PER_INSTANCE = 4  # without a concurrency: one instance per 4 cores (at least one)
BARRIER_SLACK_S = 120.0  # beyond the warm-up's limit, before a stuck instance fails the run


@dataclass(frozen=True)
class Layout:
    """Which cores each instance runs on."""

    cores: tuple[tuple[int, ...], ...]

    @property
    def instances(self) -> int:
        return len(self.cores)

    @property
    def threads_per_instance(self) -> int:
        return len(self.cores[0])

    def info(self) -> dict:
        """The scenario's keys (``scenario_info`` of the session contract)."""
        return scenario_info(OFFLINE, instances=self.instances,
                             threads_per_instance=self.threads_per_instance)  # fmt: skip


def usable_cores(threads: int | None = None) -> tuple[int, ...]:
    """The cores this process may run on (its affinity), the first ``threads`` of them."""
    cores = tuple(sorted(os.sched_getaffinity(0)))
    return cores[:threads] if threads else cores


def layout(cores: tuple[int, ...], concurrency: int | None) -> Layout:
    """``concurrency`` instances (None: one per ``CORES_PER_INSTANCE`` cores), each on an
    equal share of ``cores``; more instances than cores is a BenchError."""
    n = concurrency if concurrency is not None else max(1, len(cores) // CORES_PER_INSTANCE)
    if n < 1 or n > len(cores):
        raise BenchError(
            f"offline: {n} instances on {len(cores)} cores; ask for at most one per core."
        )
    k = len(cores) // n
    return Layout(tuple(tuple(cores[i * k : (i + 1) * k]) for i in range(n)))


def _instance(index, cores, model, x, precision, plan, barrier, results) -> None:
    """One worker: pinned, warmed up, then timed after every instance is ready."""
    try:
        import torch

        os.sched_setaffinity(0, cores)
        torch.set_num_threads(len(cores))
        enabled = precision != "fp32"

        def step():
            with torch.autocast("cpu", dtype=dtype(precision), enabled=enabled):
                return model(x)

        warmup, min_steps, min_time_s, malloc, wait_s = plan
        with torch.inference_mode(), malloc_policy(malloc):
            warm, stable = warm_up(step, lambda: None, warmup)
            barrier.wait(wait_s)
            timer = CpuTimer()
            faults = minor_faults()
            total = timed_loop(step, timer, min_steps, min_time_s)
            faults = minor_faults() - faults
        results.put((index, {"times_ms": timer.times_ms, "total": total, "warm": len(warm),
                             "stable": stable, "rss": peak_rss_mb(),
                             "faults": faults}))  # fmt: skip
    except Exception as e:
        barrier.abort()  # the others stop waiting
        results.put((index, {"error": error_text(e)}))


def _collect(procs, results, limit_s: float) -> dict[int, dict]:
    """Every instance's result from ``results``; an instance that ended without one (killed,
    crashed) or a run past ``limit_s`` seconds is a BenchError."""
    import time

    got: dict[int, dict] = {}
    deadline = time.monotonic() + limit_s
    while len(got) < len(procs):
        try:
            i, r = results.get(timeout=1.0)
            got[i] = r
            continue
        except queue_module.Empty:
            pass
        ended = [i for i, p in enumerate(procs) if i not in got and p.exitcode is not None]
        while ended:  # what an instance sent just before it ended may still be in the pipe
            try:
                i, r = results.get(timeout=2.0)
                got[i] = r
            except queue_module.Empty:
                break
        dead = [i for i in ended if i not in got]
        if dead or time.monotonic() > deadline:
            why = f"exit code {procs[dead[0]].exitcode}" if dead else f"no result in {limit_s:g} s"
            raise BenchError(f"offline: instance {(dead or [len(got)])[0]} gave no result ({why})")
    return got


def run_instances(model, x, precision: str, lay: Layout, plan: tuple) -> list[dict]:
    """Every instance's result (``times_ms``, ``total``, ``warm``, ``stable``, ``rss``,
    ``faults``), in order; a failed or silent instance is a BenchError naming it. ``plan``:
    (warm-up policy, min steps, min seconds, malloc policy: ``allocator``)."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    warmup, min_time_s = plan[0], plan[2]
    wait_s = warmup.max_time_s + BARRIER_SLACK_S
    barrier, results = ctx.Barrier(lay.instances), ctx.Queue()
    args = (model, x, precision, (*plan, wait_s), barrier, results)
    procs = [ctx.Process(target=_instance, args=(i, c, *args)) for i, c in enumerate(lay.cores)]
    for p in procs:
        p.start()
    try:
        got = _collect(procs, results, wait_s + 10 * min_time_s + BARRIER_SLACK_S)
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    failed = [f"instance {i}: {r['error']}" for i, r in sorted(got.items()) if "error" in r]
    if failed:
        raise BenchError("offline: " + "; ".join(failed))
    return [got[i] for i in range(lay.instances)]


def offline_metrics(results: list[dict], batch: int, lay: Layout) -> dict:
    """The instances as one timing: samples/s summed over them, step statistics over every
    instance's steps, the longest instance's seconds, and the instances' resident memory
    summed (``peak_mem_mb``)."""
    times = [t for r in results for t in r["times_ms"]]
    stats = StepStats.from_times(times)
    rate = sum(batch * len(r["times_ms"]) / r["total"] for r in results)
    kept, capped = kept_step_times(times)
    info = lay.info()
    return {
        "samples_per_sec": round(rate, 3),
        "step_time": round(stats.mean, 4),
        **stats.as_dict(),
        "total_time_s": round(max(r["total"] for r in results), 4),
        "step_times_ms": kept,
        "step_times_capped": capped,
        "warmup_steps": max(r["warm"] for r in results),
        "warmup_stable": all(r["stable"] for r in results),
        "page_faults_per_step": round(sum(r["faults"] for r in results) / max(len(times), 1)),
        "compile_time_s": None,
        "peak_mem_mb": round(sum(r["rss"] for r in results), 1),
        "peak_mem_reserved_mb": None,
        **scenario_record(info),
    }


def time_offline(model, x, precision: str, concurrency: int | None, s) -> dict:
    """PyTorch's offline timing of ``model`` on ``x`` (on the CPU), as ``time_steps``'s
    metrics with the scenario's keys."""
    lay = layout(usable_cores(s.threads), concurrency)
    plan = (s.warmup if isinstance(s.warmup, WarmupPolicy) else WarmupPolicy(), s.min_steps,
            s.min_time_s, s.malloc)  # fmt: skip
    results = run_instances(model, x, precision, lay, plan)
    return offline_metrics(results, int(x.shape[0]), lay)

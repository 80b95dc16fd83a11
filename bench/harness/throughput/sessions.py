"""A runtime's session timed: the one path for fp32, bf16 and INT8 sessions of every runtime
beside PyTorch (``bench.harness.throughput.runtimes``), and a candidate measured in its runtime.

The export (or conversion, or quantization) is timed apart (``export_time_s``) and never inside
the timed loop; a session runs on one fixed input, with the thread count PyTorch is given. The
loop is PyTorch's (``time_steps``: perf_counter; a session's calls are blocking), and samples/s
is ``samples_per_call`` x calls / seconds, so that an offline wave of several requests counts
each of them. A runtime's outputs are compared with PyTorch eager fp32's on the same input
(``bench.harness.throughput.reference``). What a runtime cannot do here (a precision, a layout,
training, a device) is a reason string for a skipped row, never a silent fallback.
"""

from __future__ import annotations

import contextlib
import logging

from bench.harness.throughput.backend import backend_settings, sync_fn
from bench.harness.throughput.config import TORCH
from bench.harness.throughput.measure import Candidate, measure_torch, time_steps, timed_metrics
from bench.harness.throughput.model_run import ModelRun
from bench.harness.throughput.peak import peak_metrics
from bench.harness.throughput.reference import agreement
from bench.harness.throughput.runtimes import get, label, step
from bench.harness.throughput.runtimes.base import SYNC, Session, scenario_record

logger = logging.getLogger(__name__)


def scenario_of(run: ModelRun) -> str:
    """The run's scenario (``--scenario``)."""
    return run.settings.scenario


def open_session(runtime: str, model, x, threads: int, device: str, precision: str,
                 scenario: str = SYNC, concurrency: int | None = None) -> Session:  # fmt: skip
    """The model exported for ``runtime`` at ``x``'s shape and a first inference run (so a
    runtime that rejects the graph fails here, named, not in the timed loop)."""
    model = model.eval().float().cpu()  # exported from the CPU; the session picks its device
    session = get(runtime).open_session(model, x, threads, device, precision, scenario,
                                        concurrency)  # fmt: skip
    try:
        with step(f"{label(runtime)} first inference"):
            session.infer()
    except BaseException:
        session.close()
        raise
    return session


def scenario_metrics(session: Session) -> dict:
    """The record's keys of a session's scenario (none for a sync one: older records match)."""
    info = session.scenario_info or {}
    if info.get("scenario", SYNC) == SYNC:
        return {}
    return scenario_record(info)


def device_memory() -> dict:
    """A CUDA session's memory after the timed loop, from NVML: this process's use of the GPU
    (a runtime's arena grows and is kept, so after the loop is its peak), else the whole
    device's; where NVML cannot say, None and why (``peak_mem_source``)."""
    import os

    out = {"peak_mem_mb": None, "peak_mem_reserved_mb": None}
    try:
        import pynvml

        from bench.harness.energy import nvml_handle

        handle = nvml_handle()
        procs = pynvml.nvmlDeviceGetComputeRunningProcesses(handle)
        mine = [p.usedGpuMemory for p in procs if p.pid == os.getpid() and p.usedGpuMemory]
        if mine:
            used, source = sum(mine), "nvml: this process's GPU memory after the loop"
        else:  # another PID namespace (a container): the device's, all processes
            used = pynvml.nvmlDeviceGetMemoryInfo(handle).used
            source = "nvml: the GPU's memory in use after the loop (all processes)"
    except Exception as e:
        return {**out, "peak_mem_source": f"unavailable: {type(e).__name__}: {e}"}
    return {**out, "peak_mem_mb": round(used / 2**20, 1), "peak_mem_source": source}


def time_session(run: ModelRun, cand: Candidate, batch: int, session: Session, what: str) -> dict:
    """Warm up and time the session with PyTorch's loop (``session.timed``, else ``infer``;
    on CUDA with its timer and energy, and memory from NVML): the row's timing metrics, the
    backend, threads, version, provider, export time and scenario."""
    device = session.device
    call = session.timed or session.infer
    sync = sync_fn(device) if device == "cuda" else (lambda: None)
    with step(f"{what} timing"):
        raw = time_steps(call, sync, session.samples_per_call, device, run.settings, False,
                         contextlib.nullcontext())  # fmt: skip
    metrics = timed_metrics(raw, cand.mode, batch, batch, run)
    metrics.update(backend_settings("cpu"))
    if device == "cuda":  # the runtime's allocator is not torch's: what NVML sees
        metrics.update(device_memory())
    metrics.update(threads=session.threads, runtime_version=session.version)
    metrics.update(provider=session.provider, export_time_s=round(session.export_time_s, 3))
    metrics.update(scenario_metrics(session))
    return metrics


def measure_runtime(run: ModelRun, cand: Candidate, batch: int) -> dict:
    """A runtime beside PyTorch: export once, run once, time the session, then its agreement
    with eager fp32 and the fraction of peak."""
    import torch

    x = run.job.example_input(batch)
    threads = torch.get_num_threads()
    model = run.model_for(cand.mode)
    concurrency = cand.concurrency
    session = open_session(cand.runtime, model, x, threads, run.device, cand.precision,
                           scenario_of(run), concurrency)  # fmt: skip
    what = label(cand.runtime)
    try:
        metrics = time_session(run, cand, batch, session, what)
        with step(f"{what} agreement check"):
            metrics.update(agreement(run.reference(batch), session.infer(), cand.precision))
    finally:
        session.close()
    metrics.update(peak_metrics(run, cand.mode, cand.precision, metrics))
    return metrics


def measure_candidate(run: ModelRun, cand: Candidate, batch: int, compare: bool = True) -> dict:
    """A candidate's row metrics in its own runtime. ``compare``: whether a PyTorch
    candidate's outputs are checked against eager fp32 (another runtime's always are)."""
    if cand.runtime == TORCH:
        return measure_torch(run, cand, batch, compare)
    return measure_runtime(run, cand, batch)

"""One candidate timed in PyTorch: warm-up, the timed loop, memory, and the batch size
halved on out of memory (``measure_torch``); the loop is also the other runtimes'."""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass

from bench.errors import BenchError, OutOfMemoryError, error_text
from bench.harness.energy import EnergyMeter
from bench.harness.samples import kept_step_times
from bench.harness.throughput.allocator import KEEP, minor_faults, release_freed_memory
from bench.harness.throughput.backend import (
    backend_settings,
    dtype,
    free_memory,
    is_oom,
    peak_rss_mb,
    sync_fn,
)
from bench.harness.throughput.config import TORCH, Settings, min_steps_of
from bench.harness.throughput.levers import compile_model, fold_conv_bn
from bench.harness.throughput.loadgen import under_loadgen
from bench.harness.throughput.model_run import ModelRun
from bench.harness.throughput.offline import time_offline
from bench.harness.throughput.peak import peak_metrics
from bench.harness.throughput.reference import agreement, first_tensor
from bench.harness.throughput.timing import (
    CpuTimer,
    CudaTimer,
    StepStats,
    collector_paused,
    timed_loop,
    warm_up,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Candidate:
    """What one timing runs: mode, precision, layout, compiled or not, and the runtime."""

    mode: str
    precision: str
    channels_last: bool
    compiled: bool
    runtime: str = TORCH
    compile_mode: str | None = None  # torch.compile's mode; None is its default
    fold_bn: bool = False  # batch norm folded into the convolution before it (inference)
    # the offline scenario's concurrency: PyTorch's instances, another runtime's requests;
    # None: the runtime's own choice
    concurrency: int | None = None

    @property
    def layout(self) -> str:
        return "channels_last" if self.channels_last else "nchw"


def _train_step(model, x, autocast, device: str):
    """A closure running forward, backward and an SGD step."""
    import torch
    import torch.nn.functional as F

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=1e-4, momentum=0.9)
    fp16 = autocast.keywords.get("dtype") is torch.float16
    scaler = torch.amp.GradScaler(device) if fp16 else None
    target: list = []

    def train_step():
        opt.zero_grad(set_to_none=True)
        with autocast():
            out = first_tensor(model(x))
            if out.dim() == 2:
                if not target:
                    gen = torch.Generator().manual_seed(0)
                    labels = torch.randint(0, out.shape[1], (out.shape[0],), generator=gen)
                    target.append(labels.to(out.device))
                loss = F.cross_entropy(out.float(), target[0])
            else:
                loss = out.float().mean()
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()

    return train_step


def _make_step(model, x, mode: str, autocast, device: str):
    """A closure running one step; for train, forward + backward + SGD step."""
    if mode == "train":
        return _train_step(model, x, autocast, device)

    def infer_step():
        with autocast():
            return model(x)

    return infer_step


def measure_at(run: ModelRun, cand: Candidate, batch: int, compare: bool = False) -> dict:
    """Warm up, then time one candidate at one batch size; metrics (no error handling). With
    ``compare``, an inference candidate's outputs are compared with the model's eager fp32
    reference after the timed loop."""
    import functools

    import torch

    device = run.device
    x = run.job.example_input(batch).to(device)
    model = run.model_for(cand.mode).to(device)
    model.train(cand.mode == "train")
    if cand.fold_bn:
        model = fold_conv_bn(model)
    if cand.channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    else:
        model = model.to(memory_format=torch.contiguous_format)
    autocast = functools.partial(
        torch.autocast,
        device_type=device,
        dtype=dtype(cand.precision),
        enabled=cand.precision != "fp32",
    )
    if run.settings.scenario == "offline" and cand.mode == "infer":
        return _offline_at(run, model, x, cand, batch, compare)
    runner = compile_model(model, cand.compile_mode) if cand.compiled else model
    step = _make_step(runner, x, cand.mode, autocast, device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    grad = torch.inference_mode() if cand.mode == "infer" else contextlib.nullcontext()
    try:
        metrics = time_steps(
            step, sync_fn(device), batch, device, run.settings, cand.compiled, grad
        )
        if compare and cand.mode == "infer":
            with torch.inference_mode():
                out = first_tensor(step()).float().cpu().numpy()
            metrics.update(agreement(run.reference(batch), out, cand.precision))
        return metrics
    finally:
        if cand.compiled:  # also after a failure: a retry must not inherit dynamic shapes
            import torch._dynamo

            torch._dynamo.reset()


def _offline_at(run: ModelRun, model, x, cand: Candidate, batch: int, compare: bool) -> dict:
    """The offline scenario in PyTorch: instances pinned to their cores (``offline``), the
    agreement with eager fp32 checked here on one batch after the timing."""
    import torch

    if run.device != "cpu":
        raise BenchError(
            "--scenario offline pins PyTorch instances to CPU cores; measure it with --device cpu"
        )
    if run.settings.loadgen:
        raise BenchError(
            "--loadgen with PyTorch's offline scenario: its instances run in worker processes "
            "that LoadGen cannot drive; use --runtime onnxruntime or openvino, or drop --loadgen"
        )
    metrics = time_offline(model, x, cand.precision, cand.concurrency, run.settings)
    if compare:
        enabled = cand.precision != "fp32"
        autocast = torch.autocast("cpu", dtype=dtype(cand.precision), enabled=enabled)
        with torch.inference_mode(), autocast:
            out = first_tensor(model(x)).float().cpu().numpy()
        metrics.update(agreement(run.reference(batch), out, cand.precision))
    return metrics


def latency_metrics(stats: StepStats, s: Settings) -> dict:
    """Single-stream's headline: p50, p90 and p99 of the query latency (ms) and the number
    of queries; the other scenarios' records say their scenario."""
    out: dict = {"scenario": s.scenario}
    if s.scenario == "single-stream":
        out.update(
            latency_p50_ms=round(stats.median, 4),
            latency_p90_ms=round(stats.p90, 4),
            latency_p99_ms=round(stats.p99, 4),
            queries=stats.rounds,
        )
    return out


def _memory(device: str) -> dict:
    """Peak memory of the timing: allocated and reserved on a GPU, resident on the CPU."""
    import torch

    if device == "cuda":
        return {
            "peak_mem_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1),
            "peak_mem_reserved_mb": round(torch.cuda.max_memory_reserved() / 2**20, 1),
        }
    return {"peak_mem_mb": round(peak_rss_mb(), 1), "peak_mem_reserved_mb": None}


def time_steps(step, sync, batch: int, device: str, s: Settings, compiled: bool, grad) -> dict:
    """Under ``grad``: compile (timed apart), warm up and time ``step`` (Python's collector
    run before and paused during: ``collector_paused``; under ``--malloc keep`` the memory
    freed before returned first: ``bench.harness.throughput.allocator``); samples/s, step-time
    statistics, the step times themselves (``step_times_ms``, capped), energy and this
    process's page faults per step over the timed loop (``page_faults_per_step``: memory
    faulted in again; none once warm under ``keep``) and peak memory."""
    with grad:
        compile_time = None
        if compiled:
            t0 = time.perf_counter()
            step()
            sync()
            compile_time = time.perf_counter() - t0
        if s.malloc == KEEP:  # what earlier timings freed goes back: each starts alike
            release_freed_memory()
        with collector_paused():  # warm-up and timed steps free of earlier garbage
            warm, stable = warm_up(step, sync, s.warmup)
            timer = CudaTimer() if device == "cuda" else CpuTimer()
            meter = EnergyMeter(device)
            faults = minor_faults()
            meter.start()
            if s.loadgen:  # LoadGen issues the queries; its samples/s is the record's
                total, extra = under_loadgen(step, batch, s, warm, timer)
            else:
                total, extra = timed_loop(step, timer, min_steps_of(s), s.min_time_s), {}
            energy = meter.stop(total, batch * len(timer.times_ms))
            faults = minor_faults() - faults
    stats = StepStats.from_times(timer.times_ms)
    kept, capped = kept_step_times(timer.times_ms)
    rate = extra.pop("samples_per_sec", None) or batch * stats.rounds / total
    return {
        "samples_per_sec": round(rate, 3),
        "step_time": round(stats.mean, 4),
        **stats.as_dict(),
        "total_time_s": round(total, 4),
        "step_times_ms": kept,
        "step_times_capped": capped,
        **energy,
        "warmup_steps": len(warm),
        "warmup_stable": stable,
        "page_faults_per_step": round(faults / max(stats.rounds, 1)),
        "compile_time_s": round(compile_time, 3) if compile_time is not None else None,
        **_memory(device),
        **latency_metrics(stats, s),
        **extra,
    }


def measure_or_oom(run: ModelRun, cand: Candidate, batch: int, compare: bool = False):
    """``measure_at``'s metrics, or None and the error (its class and one line) on out of
    memory; any other failure is raised. The failed attempt's memory is freed *after* the
    ``except`` block: inside it, the traceback still holds the attempt's frames and tensors."""
    try:
        return measure_at(run, cand, batch, compare), None
    except Exception as e:
        if not is_oom(e):
            raise
        failure = type(e).__name__, error_text(e, limit=200)
    free_memory(run.device)  # the exception and its frames are gone by now
    return None, failure


def measure_with_backoff(run: ModelRun, cand: Candidate, batch: int, compare: bool = False):
    """``measure_at``, halving the batch on out of memory unless ``--no-retry``; the metrics
    and the batch size they were measured at."""
    requested = batch
    while True:
        metrics, oom = measure_or_oom(run, cand, batch, compare)
        if oom is None:
            return metrics, batch
        kind, failure = oom
        if not run.settings.retry:
            raise OutOfMemoryError(
                f"Out of memory at batch size {batch} ({kind}); drop "
                "--no-retry to let the batch size back off, or pass a smaller --batch-size."
            )
        if batch == 1:
            raise OutOfMemoryError(
                f"Out of memory even at batch size 1 (asked for {requested}): "
                f"{failure.split(': ', 1)[-1]}"
            )
        logger.warning(
            "%s: out of memory at batch size %d, retrying with %d",
            run.job.spec.name,
            batch,
            batch // 2,
        )
        batch //= 2


def timed_metrics(raw: dict, mode: str, batch: int, used: int, run: ModelRun) -> dict:
    """A timing's metrics named for its mode, with the batch size asked for and used, and on
    the CPU the peak resident memory over the process's baseline before the model
    (``peak_mem_increase_mb``; ``peak_mem_mb`` stays the whole process's peak). PyTorch's
    offline instances run in worker processes: their ``peak_mem_mb`` is their resident sets
    summed, and this process's increase would say nothing of them, so it is left out."""
    raw = dict(raw)
    metrics = {
        f"{mode}_samples_per_sec": raw.pop("samples_per_sec"),
        f"{mode}_step_time": raw.pop("step_time"),
        f"{mode}_batch_size": used,
        f"{mode}_img_size": run.job.input_size[1],
        "batch_size_reduced": used != batch,
        **raw,
    }
    increase = run.memory_increase_mb()
    if increase is not None and raw.get("offline_instances") is None:  # not the instances'
        metrics["peak_mem_increase_mb"] = increase
    return metrics


def measure_torch(run: ModelRun, cand: Candidate, batch: int, compare: bool = False) -> dict:
    """A PyTorch candidate's row metrics: timing, backend settings and fraction of peak."""
    import torch

    raw, used = measure_with_backoff(run, cand, batch, compare)
    metrics = timed_metrics(raw, cand.mode, batch, used, run)
    metrics.update(backend_settings(run.device), runtime_version=torch.__version__)
    metrics.update(provider=run.device)
    metrics.update(peak_metrics(run, cand.mode, cand.precision, metrics))
    return metrics

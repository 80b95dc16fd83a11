"""Inference and training throughput, with step-time statistics, memory and fraction of peak.

Method (the defaults are those of ``python -m bench run --help``):

- warm up until the median step time of the last 3 steps is within 5 % of the 3 before
  (at most 50 steps or 30 s), then time at least ``--min-steps`` steps and at least
  ``--min-time`` seconds; samples per second is samples over the total timed time.
- CUDA: CUDA events per step and one synchronisation before and after the loop; CPU:
  ``perf_counter``. ``torch.compile`` is triggered and timed (``compile_time_s``) before
  warm-up, never inside the timed loop.
- out of memory: the batch size is halved and retried (``batch_size_reduced``) unless
  ``--no-retry``.
- fraction of peak: a large matrix product at the same precision on the same device gives
  ``peak_gmacs_per_sec``: one figure per (machine, device, precision) per run, the best of
  samples spread over the run: one before the first model in the parent process
  (``prepare``, best of several timings, handed to every worker) and one after each timed
  candidate in the model's worker (the model's best is ``peak_sample_gmacs_per_sec``); when
  the run ends, ``finalize`` sets every row to its run's best. A shared machine's speed
  drifts by 10-20 % over tens of seconds, so one sample at the start is not its peak. ``achieved_gmacs_per_sec``
  is the model's MACs (fvcore, batch 1) times samples per second (training counts 3x the
  forward MACs, the usual estimate).
- runtimes (``--runtime``): PyTorch, ONNX Runtime and OpenVINO (``bench.harness.runtimes``);
  one record per (mode, batch, runtime), with the runtime's agreement with PyTorch eager fp32.

The runner measures each model in its own process (``isolate = True``; see
``bench.isolate``). This module is cheap to import: torch is imported inside functions.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import logging
import math
import os
import resource
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from bench.errors import BenchError, ConfigError
from bench.harness.base import Job, Measurement, RunConfig
from bench.harness.device import check_device, device_name
from bench.harness.options import positive_float, positive_int
from bench.harness.runtimes import (
    LABELS,
    RUNTIMES,
    TORCH,
    agreement,
    open_session,
    parse_runtimes,
    require,
    skip_reason,
    validate,
    version,
)
from bench.harness.runtimes import (
    step as runtime_step,
)
from bench.harness.timing import (
    CpuTimer,
    CudaTimer,
    StepStats,
    WarmupPolicy,
    timed_loop,
    warm_up,
)

logger = logging.getLogger(__name__)

MODES = ("infer", "train")
DEFAULT_BATCH = {"cuda": 256, "cpu": 16}
DEFAULT_MIN_TIME_S = 2.0
DEFAULT_MIN_STEPS = 10
TRAIN_MACS_FACTOR = 3  # forward + backward (about twice the forward)
PEAK_REPEATS = 10  # timings of the run's peak, the best kept
PEAK_MIN_TIME_S = 1.0
PEAK_SAMPLE_S = 0.5  # a sample of the peak after each timed candidate (at most --min-time)
SETTLED = "the run's best: its first measurement or a sample after a timed configuration"


class OutOfMemoryError(BenchError):
    """A measurement ran out of memory and could not (or was told not to) back off."""


# -- options ----------------------------------------------------------------------------
def _modes(text: str) -> list[str]:
    modes = [t.strip() for t in text.split(",") if t.strip()]
    bad = [m for m in modes if m not in MODES]
    if not modes or bad:
        raise argparse.ArgumentTypeError(
            f"expected 'infer', 'train' or 'infer,train', got '{text}'"
        )
    return sorted(dict.fromkeys(modes), key=MODES.index)


def _seconds(text: str) -> float:
    return positive_float(text, "a positive number of seconds")


@dataclass(frozen=True)
class ThroughputConfig:
    """The throughput harness's own options (the run-wide ones are in ``RunConfig``)."""

    channels_last: bool = False
    compile: bool = False
    modes: tuple[str, ...] = ("infer",)
    threads: int | None = None
    min_time_s: float = DEFAULT_MIN_TIME_S
    min_steps: int = DEFAULT_MIN_STEPS
    retry: bool = True
    optimize: bool = False
    optimize_rounds: int = 2
    runtimes: tuple[str, ...] = (TORCH,)
    # the run's matrix-product peaks, set by ThroughputHarness.prepare (not an option, and
    # not compared by --resume): (device, precision, tf32, gmacs_per_sec, method) each
    peaks: tuple[tuple, ...] = field(default=(), metadata={"measured": True})

    def __post_init__(self):
        object.__setattr__(self, "runtimes", validate(self.runtimes))
        object.__setattr__(self, "peaks", tuple(tuple(p) for p in self.peaks))
        modes = (self.modes,) if isinstance(self.modes, str) else tuple(self.modes)
        if not modes or any(m not in MODES for m in modes):
            raise ConfigError(f"--mode {','.join(modes)}: expected 'infer', 'train' or both.")
        object.__setattr__(self, "modes", tuple(sorted(dict.fromkeys(modes), key=MODES.index)))
        if self.threads is not None and int(self.threads) <= 0:
            raise ConfigError(f"--threads {self.threads}: expected a positive whole number.")
        if not self.min_time_s > 0 or int(self.min_steps) <= 0:
            raise ConfigError("--min-time and --min-steps must be positive.")
        if int(self.optimize_rounds) <= 0:
            raise ConfigError(
                f"--optimize-rounds {self.optimize_rounds}: expected a positive whole number."
            )


def add_arguments(group) -> None:
    d = ThroughputConfig()
    S = argparse.SUPPRESS  # defaults live in ThroughputConfig, defined once
    group.add_argument("--channels-last", dest="channels_last", action="store_true", default=S,
                       help="channels_last memory format for the model and input")  # fmt: skip
    group.add_argument("--compile", action="store_true", default=S,
                       help="torch.compile the model; compile time is reported on its own "
                       "(compile_time_s)")  # fmt: skip
    group.add_argument("--mode", dest="modes", type=_modes, default=S, metavar="infer,train",
                       help="infer (forward under inference_mode) and/or train (forward, "
                       "backward, SGD step) (default: infer)")  # fmt: skip
    group.add_argument("--threads", type=positive_int, default=S,
                       help="CPU threads for torch (default: torch's own, usually the "
                       "physical cores)")  # fmt: skip
    group.add_argument("--min-time", dest="min_time_s", type=_seconds, default=S, metavar="S",
                       help=f"time at least S seconds per measurement, after warm-up (default: "
                       f"{d.min_time_s:g}); warm-up runs until the median of the last 3 step "
                       f"times is within 5%% of the 3 before (at most {WarmupPolicy.max_steps} "
                       f"steps or {WarmupPolicy.max_time_s:g} s)")  # fmt: skip
    group.add_argument("--min-steps", dest="min_steps", type=positive_int, default=S,
                       metavar="N", help=f"time at least N steps per measurement (default: "
                       f"{d.min_steps})")  # fmt: skip
    group.add_argument("--no-retry", dest="retry", action="store_false", default=S,
                       help="fail on out of memory instead of halving the batch size and "
                       "retrying")  # fmt: skip
    group.add_argument("--optimize", action="store_true", default=S,
                       help="per model, try {NCHW, channels_last} x {fp32, bf16 where the "
                       "device supports it} (and compiled, with --compile), ONNX Runtime and "
                       "OpenVINO when installed (or those --runtime names), and keep the fastest "
                       "whose outputs agree with eager fp32; every candidate is recorded")  # fmt: skip
    group.add_argument("--optimize-rounds", dest="optimize_rounds", type=positive_int,
                       default=S, metavar="N",
                       help=f"with --optimize, time every candidate N times, in turn and in "
                       f"alternating order, and keep each one's best, so that a slow spell of "
                       f"the machine does not decide the pick (default: {d.optimize_rounds})")  # fmt: skip
    group.add_argument("--runtime", dest="runtimes", type=parse_runtimes, default=S,
                       metavar="torch,onnxruntime,openvino",
                       help=f"runtimes to measure, a comma list is a sweep, or 'all' (default: "
                       f"{','.join(d.runtimes)}); ONNX Runtime and OpenVINO need "
                       f"'cnn-bench[runtimes]'")  # fmt: skip


@dataclass(frozen=True)
class Settings(ThroughputConfig):
    """What one measurement needs: the harness's configuration with the run's device,
    batches and precision (``Settings.of(run, config)``)."""

    device: str = "auto"
    batch_sizes: tuple[int, ...] | None = None
    precision: str = "fp32"
    warmup: WarmupPolicy = field(default_factory=WarmupPolicy)

    @classmethod
    def of(cls, run: RunConfig, config: ThroughputConfig) -> Settings:
        own = {f.name: getattr(config, f.name) for f in fields(config)}
        return cls(device=run.device, batch_sizes=run.batch_sizes, precision=run.precision, **own)


# -- the device -------------------------------------------------------------------------
def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether the CPU has BF16 instructions (AVX512-BF16 or AMX-BF16)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
            break
    return bool({"avx512_bf16", "amx_bf16"} & flags)


def supports_bf16(device: str) -> bool:
    import torch

    if device == "cuda":
        return torch.cuda.is_bf16_supported()
    return cpu_has_native_bf16()


def backend_settings(device: str) -> dict:
    """Thread count, cudnn.benchmark and TF32 as they are for this measurement."""
    import torch

    info = {"threads": torch.get_num_threads()}
    if device == "cuda":
        info.update(
            cudnn_benchmark=bool(torch.backends.cudnn.benchmark),
            tf32=bool(torch.backends.cuda.matmul.allow_tf32),
            cudnn_tf32=bool(torch.backends.cudnn.allow_tf32),
        )
    else:
        info.update(cudnn_benchmark=None, tf32=None, cudnn_tf32=None)
    return info


def _dtype(precision: str):
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def sync_fn(device: str):
    import torch

    if device == "cuda":
        return torch.cuda.synchronize
    return lambda: None


def model_tf32(device: str, precision: str) -> bool:
    """Whether an fp32 model may run in TF32 here: cuDNN's convolutions (on by default) or
    matrix products (off by default) allow it. The peak is timed the same way, so that a model
    is never compared with a slower kind of arithmetic than its own (of peak above 100%)."""
    if device != "cuda" or precision != "fp32":
        return False
    import torch

    return bool(torch.backends.cudnn.allow_tf32 or torch.backends.cuda.matmul.allow_tf32)


@contextlib.contextmanager
def _matmul_tf32(enabled: bool):
    """``torch.backends.cuda.matmul.allow_tf32`` set for the block, restored after."""
    import torch

    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


def _time_products(a, b, out, device: str, reps: int) -> float:
    """Seconds per product over ``reps`` back-to-back products: CUDA events around the
    whole batch on a GPU (no host clock, no per-product synchronisation), perf_counter on
    the CPU."""
    import torch

    if device == "cuda":
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(reps):
            torch.mm(a, b, out=out)
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3 / reps
    t0 = time.perf_counter()
    for _ in range(reps):
        torch.mm(a, b, out=out)
    return (time.perf_counter() - t0) / reps


_PEAK_CACHE: dict[tuple[str, str, bool], dict] = {}


def matmul_peak(
    device: str,
    precision: str,
    tf32: bool = False,
    min_time_s: float = 0.3,
    repeats: int = 3,
    cache: bool = True,
) -> dict:
    """The device's achievable multiply-accumulates per second: a large square product at
    the model's precision (and, for fp32 on CUDA, its TF32 setting), best of ``repeats``
    timings of at least 20 ms each (and ``min_time_s`` in all). Returns the figure and how
    it was measured, cached per (device, precision, tf32) for the process unless ``cache``
    is False (a fresh sample).

    On a CPU of up to 8 threads the product is 1024 wide: it keeps every thread busy, and
    its many short timings catch a shared machine's fast moments better than a few long
    ones (2048 wide: the best of 1 s varied by 25 % between processes on a 2-core VM)."""
    key = (device, precision, bool(tf32))
    if cache and key in _PEAK_CACHE:
        return _PEAK_CACHE[key]
    import torch

    n = 8192 if device == "cuda" else (1024 if torch.get_num_threads() <= 8 else 2048)
    gen = torch.Generator(device=device).manual_seed(0)
    a = torch.randn((n, n), device=device, dtype=_dtype(precision), generator=gen)
    b = torch.randn((n, n), device=device, dtype=_dtype(precision), generator=gen)
    out = torch.empty_like(a)
    with torch.inference_mode(), _matmul_tf32(bool(tf32)):
        reps = 1
        first = _time_products(a, b, out, device, 1)  # also the warm-up
        if device == "cuda":  # batches of products lasting at least 20 ms each
            first = _time_products(a, b, out, device, 3)
            reps = max(1, math.ceil(0.02 / max(first, 1e-6)))
        times, total = [], 0.0
        while len(times) < repeats or (total < min_time_s and len(times) < 100):
            dt = _time_products(a, b, out, device, reps)
            times.append(dt)
            total += dt * reps
    best = min(times)
    info = {
        "peak_gmacs_per_sec": round(n**3 / best / 1e9, 2),
        "peak_method": f"{n}x{n}x{n} {precision} matmul"
        + (" (TF32)" if tf32 else "")
        + f", best of {len(times)} timings of {reps} product(s)"
        + (", CUDA events" if device == "cuda" else ", perf_counter"),
        "peak_tf32": bool(tf32),
    }
    if cache:
        _PEAK_CACHE[key] = info
    return info


def run_peaks(device: str, precisions, threads: int | None = None) -> tuple[tuple, ...]:
    """The run's peaks, one per (device, precision, tf32): ``PEAK_REPEATS`` timings or
    ``PEAK_MIN_TIME_S`` in all, the best kept, with the models' thread count."""
    out = []
    with torch_threads(threads):
        for precision in dict.fromkeys(precisions):
            tf32 = model_tf32(device, precision)
            info = matmul_peak(device, precision, tf32, PEAK_MIN_TIME_S, PEAK_REPEATS)
            method = f"{info['peak_method']}; once per run, before the first model"
            out.append((device, precision, tf32, info["peak_gmacs_per_sec"], method))
    return tuple(out)


def peak_for(s, device: str, precision: str) -> dict:
    """The run's peak for this device and precision (``Settings.peaks``); measured here, in
    this process, only when the run has none (Python callers that skip ``prepare``)."""
    tf32 = model_tf32(device, precision)
    for d, p, t, gmacs, method in s.peaks:
        if (d, p, bool(t)) == (device, precision, tf32):
            return {"peak_gmacs_per_sec": gmacs, "peak_method": method, "peak_tf32": bool(t)}
    info = dict(matmul_peak(device, precision, tf32))
    info["peak_method"] += "; in the model's own process"
    return info


# -- memory -----------------------------------------------------------------------------
def is_oom(exc: BaseException) -> bool:
    """An out-of-memory error: torch.cuda.OutOfMemoryError or the CPU allocator's message."""
    try:
        import torch

        if isinstance(exc, torch.cuda.OutOfMemoryError):
            return True
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    if isinstance(exc, (RuntimeError, MemoryError)):
        text = str(exc)
        return isinstance(exc, MemoryError) or any(
            s in text for s in ("out of memory", "DefaultCPUAllocator", "can't allocate memory")
        )
    return False


def _free_memory(device: str) -> None:
    import gc

    import torch

    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


def peak_rss_mb() -> float:
    """The process's peak resident set size so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- one measurement ----------------------------------------------------------------------
@dataclass(frozen=True)
class Candidate:
    mode: str
    precision: str
    channels_last: bool
    compiled: bool
    runtime: str = TORCH

    @property
    def layout(self) -> str:
        return "channels_last" if self.channels_last else "nchw"


def _first_tensor(out):
    if isinstance(out, (tuple, list)):
        return _first_tensor(out[0])
    if isinstance(out, dict):
        return _first_tensor(next(iter(out.values())))
    return out


def _make_step(model, x, mode: str, autocast, device: str):
    """A closure running one step; for train, forward + backward + SGD step."""
    import torch
    import torch.nn.functional as F

    if mode == "infer":

        def infer_step():
            with autocast():
                return model(x)

        return infer_step

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=1e-4, momentum=0.9)
    scaler = (
        torch.amp.GradScaler(device) if autocast.keywords.get("dtype") is torch.float16 else None
    )
    target: list = []

    def train_step():
        opt.zero_grad(set_to_none=True)
        with autocast():
            out = _first_tensor(model(x))
            if out.dim() == 2:
                if not target:
                    gen = torch.Generator().manual_seed(0)
                    target.append(
                        torch.randint(0, out.shape[1], (out.shape[0],), generator=gen).to(
                            out.device
                        )
                    )
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


def measure_at(
    model, job: Job, cand: Candidate, batch: int, device: str, s: Settings, reference=None
) -> dict:
    """Warm up, then time one candidate at one batch size; metrics (no error handling). With
    ``reference`` (batch -> eager fp32 outputs), the candidate's outputs are compared with it
    after the timed loop."""
    import functools

    import torch

    x = job.example_input(batch).to(device)
    model = model.to(device)
    if cand.channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    else:
        model = model.to(memory_format=torch.contiguous_format)
    model.train(cand.mode == "train")
    autocast = functools.partial(
        torch.autocast, device_type=device, dtype=_dtype(cand.precision),
        enabled=cand.precision != "fp32",
    )  # fmt: skip
    runner = torch.compile(model) if cand.compiled else model
    step = _make_step(runner, x, cand.mode, autocast, device)
    sync = sync_fn(device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    grad = torch.inference_mode() if cand.mode == "infer" else contextlib.nullcontext()
    try:
        metrics = _time_candidate(step, sync, batch, device, s, cand.compiled, grad)
        if reference is not None and cand.mode == "infer":
            with torch.inference_mode():
                out = _first_tensor(step()).float().cpu().numpy()
            metrics.update(agreement(reference(batch), out, cand.precision))
        return metrics
    finally:
        if cand.compiled:  # also after a failure: a retry must not inherit dynamic shapes
            import torch._dynamo

            torch._dynamo.reset()


def _time_candidate(step, sync, batch: int, device: str, s: Settings, compiled: bool, grad):
    import torch

    with grad:
        compile_time = None
        if compiled:
            t0 = time.perf_counter()
            step()
            sync()
            compile_time = time.perf_counter() - t0
        warm, stable = warm_up(step, sync, s.warmup)
        timer = CudaTimer() if device == "cuda" else CpuTimer()
        total = timed_loop(step, timer, s.min_steps, s.min_time_s)
    stats = StepStats.from_times(timer.times_ms)
    rounds = stats.rounds
    metrics = {
        "samples_per_sec": round(batch * rounds / total, 3),
        "step_time": round(stats.mean, 4),
        **stats.as_dict(),
        "total_time_s": round(total, 4),
        "warmup_steps": len(warm),
        "warmup_stable": stable,
        "compile_time_s": round(compile_time, 3) if compile_time is not None else None,
    }
    if device == "cuda":
        metrics["peak_mem_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        metrics["peak_mem_reserved_mb"] = round(torch.cuda.max_memory_reserved() / 2**20, 1)
    else:
        metrics["peak_mem_mb"] = round(peak_rss_mb(), 1)
        metrics["peak_mem_reserved_mb"] = None
    return metrics


def measure_with_backoff(
    model, job: Job, cand: Candidate, batch: int, device: str, s: Settings, reference=None
):
    """``measure_at``, halving the batch on out of memory unless ``--no-retry``.

    The failed attempt's memory is freed *after* its ``except`` block: inside it, the
    traceback still holds the attempt's frames and with them its tensors.
    """
    requested = batch
    while True:
        try:
            return measure_at(model, job, cand, batch, device, s, reference=reference), batch
        except Exception as e:
            if not is_oom(e):
                raise
            failure = f"{e.__class__.__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
        _free_memory(device)  # the exception and its frames are gone by now
        if not s.retry:
            raise OutOfMemoryError(
                f"Out of memory at batch size {batch} ({failure.split(':')[0]}); drop "
                "--no-retry to let the batch size back off, or pass a smaller --batch-size."
            )
        if batch == 1:
            raise OutOfMemoryError(
                f"Out of memory even at batch size 1 (asked for {requested}): "
                f"{failure.split(': ', 1)[-1]}"
            )
        logger.warning(
            "%s: out of memory at batch size %d, retrying with %d",
            job.spec.name, batch, batch // 2,
        )  # fmt: skip
        batch //= 2


@contextlib.contextmanager
def torch_threads(n: int | None):
    import torch

    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n:
            torch.set_num_threads(before)


def _gmacs(model, job: Job) -> float | None:
    """MACs per sample: the flops harness's count from this run, else counted here."""
    from bench.harness.flops import count_macs

    macs = job.measured.get("flops", {}).get("macs")
    if macs is not None:
        return macs / 1e9
    try:
        return count_macs(model, job.example_input(1))["macs"] / 1e9
    except Exception as e:
        logger.warning("%s: MACs not counted (%s); no fraction of peak", job.spec.name, e)
        return None


class _Reference:
    """PyTorch eager fp32 NCHW outputs on the harness's own input, once per batch size: what
    every other runtime, precision and layout is compared with."""

    def __init__(self, model, job: Job, device: str):
        self.model, self.job, self.device = model, job, device
        self._cache: dict[int, object] = {}

    def __call__(self, batch: int):
        if batch not in self._cache:
            import torch

            model = self.model.to(self.device).to(memory_format=torch.contiguous_format).eval()
            with torch.inference_mode():
                out = _first_tensor(model(self.job.example_input(batch).to(self.device)))
            self._cache[batch] = out.float().cpu().numpy()
        return self._cache[batch]


def _config(job: Job, batch: int, cand: Candidate, optimize: bool) -> dict:
    """A record's configuration; ``runtime`` only when it is not PyTorch, so that PyTorch's
    records keep the keys they had before runtimes existed (reports and ``compare`` match
    them across versions)."""
    config = {
        "img_size": job.input_size[1], "batch_size": batch, "mode": cand.mode,
        "precision": cand.precision, "layout": cand.layout, "compiled": cand.compiled,
        "optimize": optimize,
    }  # fmt: skip
    if cand.runtime != TORCH:
        config["runtime"] = cand.runtime
    return config


def _optimize_runtimes(s: Settings) -> tuple[str, ...]:
    """The other runtimes --optimize tries: those --runtime names, or every one by default."""
    named = [r for r in s.runtimes if r != TORCH]
    return tuple(named) if named else tuple(r for r in RUNTIMES if r != TORCH)


def _is_plain(cand: Candidate) -> bool:
    """PyTorch eager fp32 NCHW: the reference itself, compared with nothing."""
    return (cand.runtime, cand.precision, cand.channels_last, cand.compiled) == (
        TORCH, "fp32", False, False
    )  # fmt: skip


class ThroughputHarness:
    name = "throughput"
    isolate = True  # the runner measures each model in its own process (bench.isolate)

    add_arguments = staticmethod(add_arguments)

    @staticmethod
    def configure(options: dict, run: RunConfig) -> ThroughputConfig:
        return ThroughputConfig(**options)

    @staticmethod
    def preflight(config: ThroughputConfig) -> None:
        """A runtime asked for by name must be installed (exit 2 before any model)."""
        require(config.runtimes)

    @staticmethod
    def prepare(config: ThroughputConfig, run: RunConfig) -> ThroughputConfig:
        """Measure the run's matrix-product peak(s) once, before the first model: at the
        run's precision, and fp32 (the other runtimes' precision) and bf16 where it is
        native under --optimize."""
        device = check_device(run.device)
        precisions = [run.precision]
        if config.optimize or set(config.runtimes) != {TORCH}:
            precisions.append("fp32")
        if config.optimize and supports_bf16(device):
            precisions.append("bf16")
        return replace(config, peaks=run_peaks(device, precisions, config.threads))

    @staticmethod
    def finalize(config: ThroughputConfig, records: list[dict]) -> list[dict]:
        """When the run ends: every row against its run's best peak (``settle_peaks``)."""
        return settle_peaks(records, config.peaks)

    @staticmethod
    def device_for(run: RunConfig) -> str:
        """The device this harness measures on ('cuda' or 'cpu')."""
        return check_device(run.device)

    def measure(self, job: Job) -> list[Measurement]:
        config = job.config if job.config is not None else ThroughputConfig()
        s = Settings.of(job.run, config)
        device = check_device(s.device)
        with torch_threads(s.threads):
            return self._measure(job, s, device)

    def _measure(self, job: Job, s: Settings, device: str) -> list[Measurement]:
        import torch

        if device == "cuda":
            torch.backends.cudnn.benchmark = True
            if "LOCAL_RANK" in os.environ:  # under torchrun: this rank's own GPU, not cuda:0
                torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        model = job.model()
        gmacs = _gmacs(model, job)
        name = device_name(device)
        _MODEL_SAMPLES.clear()
        batches = s.batch_sizes or (DEFAULT_BATCH[device],)
        reference = _Reference(model, job, device)
        out = []
        for mode in s.modes:
            base = model if mode == "infer" else copy.deepcopy(model)
            for batch in batches:
                asked = Candidate(mode, s.precision, s.channels_last, s.compile)
                if s.optimize:
                    metrics, cand = self._optimize(
                        base, job, asked, batch, device, s, gmacs, reference
                    )
                    out.append(Measurement(_config(job, batch, cand, True), metrics, device, name))
                    continue
                for runtime in s.runtimes:
                    cand = replace(asked, runtime=runtime)
                    m = self._row(base, job, cand, batch, device, s, gmacs, reference)
                    m.device, m.device_name = device, name
                    out.append(m)
            if device == "cuda":
                _free_memory(device)
        _share_model_peak(out, device)
        return out

    def _row(self, model, job, cand: Candidate, batch, device, s, gmacs, reference) -> Measurement:
        """One (mode, batch, runtime) row: measured, skipped (why) or failed (which step)."""
        config = _config(job, batch, cand, False)
        if cand.runtime == TORCH:  # a failure here fails the model, as it always has
            ref = None if _is_plain(cand) else reference
            return Measurement(config, self._one(model, job, cand, batch, device, s, gmacs, ref))
        info = {"runtime_version": version(cand.runtime)}
        reason = skip_reason(cand.runtime, cand.mode, device, cand.precision, cand.channels_last)
        if reason:
            return Measurement(config, info, status="skipped", error=reason)
        from bench.errors import error_text

        try:
            metrics = self._one(model, job, cand, batch, device, s, gmacs, reference)
        except Exception as e:
            failure = error_text(e)
        else:
            return Measurement(config, metrics)
        logger.warning("%s: %s failed: %s", job.spec.name, LABELS[cand.runtime], failure)
        _free_memory(device)
        return Measurement(config, info, status="error", error=failure)

    def _one(self, model, job, cand: Candidate, batch, device, s, gmacs, reference=None) -> dict:
        if cand.runtime != TORCH:
            return self._runtime_one(model, job, cand, batch, device, s, gmacs, reference)
        import torch

        raw, used = measure_with_backoff(model, job, cand, batch, device, s, reference)
        metrics = _timed_metrics(raw, cand.mode, batch, used, job)
        metrics.update(backend_settings(device), runtime_version=torch.__version__, provider=device)
        metrics.update(_peak_metrics(s, device, cand, gmacs, metrics))
        return metrics

    def _runtime_one(self, model, job, cand: Candidate, batch, device, s, gmacs, reference):
        """ONNX Runtime or OpenVINO: export once, run once (agreement), then time the
        session with the same warm-up and loop as PyTorch (perf_counter; runs are blocking)."""
        import torch

        x = job.example_input(batch)
        threads = torch.get_num_threads()
        session = open_session(cand.runtime, model, x, threads, device, cand.precision)
        label = LABELS[cand.runtime]
        with runtime_step(f"{label} timing"):
            raw = _time_candidate(
                session.infer, lambda: None, batch, "cpu", s, False, contextlib.nullcontext()
            )
        metrics = _timed_metrics(raw, cand.mode, batch, batch, job)
        metrics.update(backend_settings("cpu"))
        metrics.update(
            threads=session.threads, runtime_version=session.version, provider=session.provider,
            export_time_s=round(session.export_time_s, 3),
        )  # fmt: skip
        with runtime_step(f"{label} agreement check"):
            metrics.update(agreement(reference(batch), session.infer(), cand.precision))
        metrics.update(_peak_metrics(s, device, cand, gmacs, metrics))
        return metrics

    def _optimize(self, model, job, asked: Candidate, batch, device, s, gmacs, reference):
        """Every supported layout x precision (compiled only with --compile), then the other
        runtimes; each measured candidate is timed ``optimize_rounds`` times (the rounds in
        alternating order) and keeps its best; the fastest whose outputs agree with eager
        fp32 wins."""
        key = f"{asked.mode}_samples_per_sec"
        ref = reference if asked.mode == "infer" else None
        eager = [
            replace(asked, precision=p, channels_last=cl, compiled=False, runtime=TORCH)
            for cl in (False, True)
            for p in ("fp32", "bf16")
        ]
        results: list[tuple[Candidate, dict | None, str | None]] = []
        for cand in eager:
            if cand.precision == "bf16" and not supports_bf16(device):
                results.append((cand, None, "skipped: no native BF16 on this device"))
                continue
            results.append(self._try(model, job, cand, batch, device, s, gmacs, ref))
        if s.compile and _usable(results, key):
            best_eager = max(_usable(results, key), key=lambda cm: cm[1][key])[0]
            compiled = replace(best_eager, compiled=True)
            results.append(self._try(model, job, compiled, batch, device, s, gmacs, ref))
        for runtime in _optimize_runtimes(s):
            for p in ("fp32", "bf16"):
                cand = replace(asked, precision=p, channels_last=False, compiled=False,
                               runtime=runtime)  # fmt: skip
                reason = skip_reason(runtime, asked.mode, device, p, False)
                if reason:
                    results.append((cand, None, reason))
                    continue
                results.append(self._try(model, job, cand, batch, device, s, gmacs, reference))
        for r in range(1, s.optimize_rounds):  # again, in the other order: each one's best
            order = range(len(results)) if r % 2 == 0 else reversed(range(len(results)))
            for i in order:
                cand, first, _ = results[i]
                if first is None:
                    continue
                again = self._try(model, job, cand, batch, device, s, gmacs,
                                  reference if cand.runtime != TORCH else ref)  # fmt: skip
                results[i] = _better(results[i], again, key)
        ok = _usable(results, key)
        if not ok:
            first = next((err for _, _, err in results if err), "no candidate agreed with eager")
            raise BenchError(f"--optimize: no candidate measured and agreeing: {first}")
        best, metrics = max(ok, key=lambda cm: cm[1][key])
        baseline = next((m for c, m, _ in results if m is not None and c == eager[0]), None)
        metrics = dict(metrics)
        metrics["optimize_speedup"] = round(metrics[key] / baseline[key], 3) if baseline else None
        metrics["candidates"] = [_candidate_row(c, m, err, key) for c, m, err in results]
        return metrics, best

    def _try(self, model, job, cand, batch, device, s, gmacs, reference=None):
        from bench.errors import error_text

        try:
            return cand, self._one(model, job, cand, batch, device, s, gmacs, reference), None
        except Exception as e:
            failure = error_text(e)
        logger.warning("%s: candidate %s failed: %s", job.spec.name, cand, failure)
        _free_memory(device)  # outside the except: the traceback no longer holds the tensors
        return cand, None, failure


def _better(kept: tuple, again: tuple, key: str) -> tuple:
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


def _usable(results, key: str) -> list[tuple[Candidate, dict]]:
    """Measured candidates whose outputs agree with eager (a disagreeing one never wins)."""
    return [(c, m) for c, m, _ in results if m is not None and m.get("agrees", True)]


def _candidate_row(c: Candidate, m: dict | None, err: str | None, key: str) -> dict:
    if m is not None and m.get("agrees") is False:
        err = (
            f"disagrees with eager fp32 (max_abs_diff {m.get('max_abs_diff')}, tolerance "
            f"{m.get('agree_tolerance')}, top-1 agree {m.get('top1_agree')}): never chosen"
        )
    return {
        "runtime": c.runtime, "precision": c.precision, "layout": c.layout,
        "compiled": c.compiled, key: m[key] if m else None,
        "rounds_samples_per_sec": m.get("rounds_samples_per_sec") if m else None,
        f"{c.mode}_batch_size": m[f"{c.mode}_batch_size"] if m else None,
        "max_abs_diff": m.get("max_abs_diff") if m else None,
        "top1_agree": m.get("top1_agree") if m else None,
        "export_time_s": m.get("export_time_s") if m else None,
        "error": err,
    }  # fmt: skip


def _timed_metrics(raw: dict, mode: str, batch: int, used: int, job: Job) -> dict:
    raw = dict(raw)
    return {
        f"{mode}_samples_per_sec": raw.pop("samples_per_sec"),
        f"{mode}_step_time": raw.pop("step_time"),
        f"{mode}_batch_size": used,
        f"{mode}_img_size": job.input_size[1],
        "batch_size_reduced": used != batch,
        **raw,
    }


_MODEL_SAMPLES: dict[tuple, float] = {}  # this model's peak samples so far, best per key


def _peak_metrics(s, device: str, cand: Candidate, gmacs, metrics: dict) -> dict:
    """Achieved GMAC/s and its fraction of the peak at the candidate's precision: the run's
    first measurement or, if better, a sample taken right after this candidate's timings
    (or an earlier candidate's of the same model)."""
    info = peak_for(s, device, cand.precision)
    key = (device, cand.precision, bool(info["peak_tf32"]))
    # no longer than the timing it follows (a quick --min-time run stays quick)
    span = min(PEAK_SAMPLE_S, s.min_time_s)
    fresh = matmul_peak(device, cand.precision, key[2], span, 3, cache=False)
    sample = fresh["peak_gmacs_per_sec"]
    _MODEL_SAMPLES[key] = max(_MODEL_SAMPLES.get(key, 0.0), sample)
    peak = max(info["peak_gmacs_per_sec"], _MODEL_SAMPLES[key])
    factor = 1 if cand.mode == "infer" else TRAIN_MACS_FACTOR
    sps = metrics[f"{cand.mode}_samples_per_sec"]
    achieved = gmacs * factor * sps if gmacs is not None else None
    out = {
        "infer_gmacs": round(gmacs, 4) if gmacs is not None else None,
        "achieved_gmacs_per_sec": round(achieved, 3) if achieved is not None else None,
        "peak_method": info["peak_method"],
        "peak_precision": cand.precision,
        "peak_tf32": info["peak_tf32"],
        "peak_sample_gmacs_per_sec": sample,
    }
    _set_peak(out, peak)  # peak_gmacs_per_sec and frac_of_peak
    return out


def _share_model_peak(out: list[Measurement], device: str) -> None:
    """Every row of this model against the best peak sample of the model (``finalize``
    later sets the run's best over every model's)."""
    for m in out:
        met = m.metrics or {}
        if met.get("peak_precision") is None:
            continue
        key = (device, met["peak_precision"], bool(met.get("peak_tf32")))
        met["peak_sample_gmacs_per_sec"] = _MODEL_SAMPLES.get(key, met["peak_sample_gmacs_per_sec"])
        _set_peak(met, max(met["peak_gmacs_per_sec"], met["peak_sample_gmacs_per_sec"]))


def _set_peak(metrics: dict, peak: float) -> None:
    achieved = metrics.get("achieved_gmacs_per_sec")
    metrics["peak_gmacs_per_sec"] = round(peak, 2)
    metrics["frac_of_peak"] = (
        round(achieved / peak, 4) if achieved is not None and peak > 0 else None
    )


def settle_peaks(records: list[dict], peaks=()) -> list[dict]:
    """One peak per (machine, device, precision, TF32) for the whole run: the best of the
    run's first measurement (``peaks``, taken on the driver's machine) and every model's
    sample, set on every ok row of this harness with its fraction of peak recomputed. Rows
    measured on another machine (a ``machine`` field, from Ray) are settled among
    themselves."""

    def key(r: dict, precision, tf32) -> tuple:
        machine = r.get("machine") or {}
        return (machine.get("id"), machine.get("node"), r.get("device"), precision, bool(tf32))

    rows = [
        r for r in records
        if r.get("status") == "ok" and (r.get("metrics") or {}).get("peak_precision")
    ]  # fmt: skip
    best: dict[tuple, float] = {(None, None, d, p, bool(t)): g for d, p, t, g, _ in peaks}
    for r in rows:
        met = r["metrics"]
        k = key(r, met["peak_precision"], met.get("peak_tf32"))
        for g in (met.get("peak_gmacs_per_sec"), met.get("peak_sample_gmacs_per_sec")):
            if g:
                best[k] = max(best.get(k, 0.0), g)
    for r in rows:
        met = r["metrics"]
        _set_peak(met, best[key(r, met["peak_precision"], met.get("peak_tf32"))])
        method = met.get("peak_method", "").split("; ")[0]
        met["peak_method"] = f"{method}; {SETTLED}"
    return records

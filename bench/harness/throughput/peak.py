"""The run's peak: a large matrix product at a model's precision on its device gives
``peak_gmacs_per_sec``, one figure per (machine, device, precision, TF32) per run, the best of
a first measurement before the first model (``run_peaks``) and samples after each timed
candidate (``peak_metrics``); ``settle_peaks`` sets every row to its run's best."""

from __future__ import annotations

import contextlib
import math
import time

from bench.harness.throughput.backend import dtype, model_tf32, torch_threads
from bench.harness.throughput.config import Settings
from bench.harness.throughput.model_run import ModelRun

TRAIN_MACS_FACTOR = 3  # forward + backward (about twice the forward)
PEAK_REPEATS = 10  # timings of the run's peak, the best kept
PEAK_MIN_TIME_S = 1.0
INT8 = "int8"  # its peak: int8 x int8 -> int32 products (torch._int_mm)
PEAK_SAMPLE_S = 0.5  # a sample of the peak after each timed candidate (at most --min-time)
SETTLED = "the run's best: its first measurement or a sample after a timed configuration"

_PEAK_CACHE: dict[tuple[str, str, bool], dict] = {}


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

    mm = torch._int_mm if a.dtype == torch.int8 else torch.mm
    if device == "cuda":
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(reps):
            mm(a, b, out=out)
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3 / reps
    t0 = time.perf_counter()
    for _ in range(reps):
        mm(a, b, out=out)
    return (time.perf_counter() - t0) / reps


def _operands(n: int, device: str, precision: str):
    """(a, b, out) of an n x n product at ``precision``: int8 operands into an int32 output
    (``torch._int_mm``, the INT8 kernels: VNNI or AMX on a CPU that has them), else floats
    of the precision's dtype."""
    import torch

    gen = torch.Generator(device=device).manual_seed(0)
    if precision == INT8:
        a, b = (torch.randint(-128, 128, (n, n), device=device, dtype=torch.int8, generator=gen)
                for _ in range(2))  # fmt: skip
        return a, b, torch.empty((n, n), device=device, dtype=torch.int32)
    a = torch.randn((n, n), device=device, dtype=dtype(precision), generator=gen)
    b = torch.randn((n, n), device=device, dtype=dtype(precision), generator=gen)
    return a, b, torch.empty_like(a)


def _product_timings(n: int, device: str, precision: str, tf32: bool, min_time_s, repeats):
    """Seconds per n x n x n product, ``repeats`` timings or ``min_time_s`` in all (at most
    100), and the products per timing."""
    import torch

    a, b, out = _operands(n, device, precision)
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
    return times, reps


def matmul_peak(
    device: str,
    precision: str,
    tf32: bool = False,
    min_time_s: float = 0.3,
    repeats: int = 3,
    cache: bool = True,
) -> dict:
    """The device's achievable multiply-accumulates per second: a large square product at
    the model's precision (int8: ``torch._int_mm``, int8 operands into int32; and, for fp32
    on CUDA, its TF32 setting), best of ``repeats``
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
    times, reps = _product_timings(n, device, precision, tf32, min_time_s, repeats)
    info = {
        "peak_gmacs_per_sec": round(n**3 / min(times) / 1e9, 2),
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
            try:
                info = matmul_peak(device, precision, tf32, PEAK_MIN_TIME_S, PEAK_REPEATS)
            except Exception:
                if precision != INT8:
                    raise
                continue  # no INT8 product here: its rows give no fraction of peak
            method = f"{info['peak_method']}; once per run, before the first model"
            out.append((device, precision, tf32, info["peak_gmacs_per_sec"], method))
    return tuple(out)


def peak_for(s: Settings, device: str, precision: str) -> dict:
    """The run's peak for this device and precision (``Settings.peaks``); measured here, in
    this process, only when the run has none (Python callers that skip ``prepare``)."""
    tf32 = model_tf32(device, precision)
    for d, p, t, gmacs, method in s.peaks:
        if (d, p, bool(t)) == (device, precision, tf32):
            return {"peak_gmacs_per_sec": gmacs, "peak_method": method, "peak_tf32": bool(t)}
    info = dict(matmul_peak(device, precision, tf32))
    info["peak_method"] += "; in the model's own process"
    return info


def peak_metrics(run: ModelRun, mode: str, precision: str, metrics: dict) -> dict:
    """Achieved GMAC/s and its fraction of the peak at the candidate's precision: the run's
    first measurement or, if better, a sample taken right after this candidate's timings
    (or an earlier candidate's of the same model). An INT8 row's peak is an INT8 product's;
    where none can be measured its fraction is None ('-'), never another precision's."""
    factor = 1 if mode == "infer" else TRAIN_MACS_FACTOR
    gmacs, sps = run.gmacs, metrics[f"{mode}_samples_per_sec"]
    achieved = gmacs * factor * sps if gmacs is not None else None
    out = {
        "infer_gmacs": round(gmacs, 4) if gmacs is not None else None,
        "achieved_gmacs_per_sec": round(achieved, 3) if achieved is not None else None,
    }
    try:
        info = peak_for(run.settings, run.device, precision)
        key = (run.device, precision, bool(info["peak_tf32"]))
        # no longer than the timing it follows (a quick --min-time run stays quick)
        span = min(PEAK_SAMPLE_S, run.settings.min_time_s)
        sample = matmul_peak(run.device, precision, key[2], span, 3, cache=False)
    except Exception as e:
        if precision != INT8:
            raise
        return {**out, "frac_of_peak": None, "peak_method": f"no int8 peak measured here ({e})"}
    best_sample = run.keep_sample(key, sample["peak_gmacs_per_sec"])
    out |= {
        "peak_method": info["peak_method"],
        "peak_precision": precision,
        "peak_tf32": info["peak_tf32"],
        "peak_sample_gmacs_per_sec": sample["peak_gmacs_per_sec"],
    }
    _set_peak(out, max(info["peak_gmacs_per_sec"], best_sample))
    return out


def share_model_peak(run: ModelRun, rows: list) -> None:
    """Every measurement of this model against the model's best peak sample (``settle_peaks``
    later sets the run's best over every model's)."""
    for m in rows:
        met = m.metrics or {}
        if met.get("peak_precision") is None:
            continue
        key = (run.device, met["peak_precision"], bool(met.get("peak_tf32")))
        met["peak_sample_gmacs_per_sec"] = run.samples.get(key, met["peak_sample_gmacs_per_sec"])
        _set_peak(met, max(met["peak_gmacs_per_sec"], met["peak_sample_gmacs_per_sec"]))


def _set_peak(metrics: dict, peak: float) -> None:
    """``peak_gmacs_per_sec`` and ``frac_of_peak`` against ``peak``."""
    achieved = metrics.get("achieved_gmacs_per_sec")
    metrics["peak_gmacs_per_sec"] = round(peak, 2)
    metrics["frac_of_peak"] = (
        round(achieved / peak, 4) if achieved is not None and peak > 0 else None
    )


def _settle_key(record: dict) -> tuple:
    """A record's peak: (machine id, node, device, precision, TF32)."""
    machine = record.get("machine") or {}
    met = record["metrics"]
    precision, tf32 = met["peak_precision"], met.get("peak_tf32")
    return (machine.get("id"), machine.get("node"), record.get("device"), precision, bool(tf32))


def settle_peaks(records: list[dict], peaks=()) -> list[dict]:
    """One peak per (machine, device, precision, TF32) for the whole run: the best of the
    run's first measurement (``peaks``, taken on the driver's machine) and every model's
    sample, set on every ok row of this harness with its fraction of peak recomputed. Rows
    measured on another machine (a ``machine`` field, from Ray) are settled among
    themselves."""
    rows = [
        r
        for r in records
        if r.get("status") == "ok" and (r.get("metrics") or {}).get("peak_precision")
    ]
    best: dict[tuple, float] = {(None, None, d, p, bool(t)): g for d, p, t, g, _ in peaks}
    for r in rows:
        met, k = r["metrics"], _settle_key(r)
        for g in (met.get("peak_gmacs_per_sec"), met.get("peak_sample_gmacs_per_sec")):
            if g:
                best[k] = max(best.get(k, 0.0), g)
    for r in rows:
        met = r["metrics"]
        _set_peak(met, best[_settle_key(r)])
        method = met.get("peak_method", "").split("; ")[0]
        met["peak_method"] = f"{method}; {SETTLED}"
    return records

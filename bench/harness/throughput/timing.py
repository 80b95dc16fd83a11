"""Step timing and its statistics. Pure Python; torch only inside the CUDA timer.

The statistics carry pytest-benchmark's names (``min``, ``max``, ``mean``, ``stddev``,
``median``, ``iqr``, ``rounds``) with the percentiles ``p90``, ``p95`` and ``p99``, in
milliseconds per step; ``cv_pct`` is the coefficient of variation in percent.
"""

from __future__ import annotations

import contextlib
import gc
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between ranks (numpy's default)."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0..100")
    pos = (len(sorted_values) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


@dataclass(frozen=True)
class StepStats:
    """Statistics of step times in milliseconds."""

    min: float
    max: float
    mean: float
    stddev: float
    median: float
    iqr: float
    p90: float
    p95: float
    p99: float
    cv_pct: float
    rounds: int

    @classmethod
    def from_times(cls, times_ms: Sequence[float]) -> StepStats:
        if not times_ms:
            raise ValueError("no step times to summarise")
        s = sorted(float(t) for t in times_ms)
        mean = statistics.fmean(s)
        stddev = statistics.stdev(s) if len(s) > 1 else 0.0
        return cls(
            min=s[0],
            max=s[-1],
            mean=mean,
            stddev=stddev,
            median=statistics.median(s),
            iqr=percentile(s, 75) - percentile(s, 25),
            p90=percentile(s, 90),
            p95=percentile(s, 95),
            p99=percentile(s, 99),
            cv_pct=100.0 * stddev / mean if mean > 0 else 0.0,
            rounds=len(s),
        )

    def as_dict(self, digits: int = 4) -> dict:
        return {
            k: (round(v, digits) if isinstance(v, float) else v) for k, v in asdict(self).items()
        }


def is_stable(times: Sequence[float], window: int = 3, tolerance: float = 0.05) -> bool:
    """Whether the median of the last ``window`` steps is within ``tolerance`` of the window before."""
    if len(times) < 2 * window:
        return False
    last = statistics.median(times[-window:])
    before = statistics.median(times[-2 * window : -window])
    return abs(last - before) <= tolerance * max(before, 1e-12)


@dataclass(frozen=True)
class WarmupPolicy:
    """Warm up until the step time is stable, within limits. Defaults documented in --help."""

    window: int = 3  # steps compared with the window before
    tolerance: float = 0.05  # relative change of the median step time that counts as stable
    min_steps: int = 2
    max_steps: int = 50
    max_time_s: float = 30.0


def warm_up(
    step: Callable[[], object],
    sync: Callable[[], object],
    policy: WarmupPolicy = WarmupPolicy(),
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[list[float], bool]:
    """Run ``step`` until stable; returns the warm-up step times (s) and whether it settled."""
    times: list[float] = []
    start = clock()
    while True:
        t0 = clock()
        step()
        sync()
        times.append(clock() - t0)
        if len(times) >= policy.min_steps and is_stable(times, policy.window, policy.tolerance):
            return times, True
        if len(times) >= policy.max_steps or clock() - start >= policy.max_time_s:
            return times, False


class CpuTimer:
    """Per-step wall time with ``perf_counter``."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter):
        self.clock = clock
        self._t0 = 0.0
        self.times_ms: list[float] = []

    def begin(self) -> None:
        self.times_ms = []
        self._start = self.clock()

    def elapsed(self) -> float:
        return self.clock() - self._start

    def step_start(self) -> None:
        self._t0 = self.clock()

    def step_end(self) -> None:
        self.times_ms.append((self.clock() - self._t0) * 1e3)

    def finish(self) -> float:
        """Total timed seconds."""
        return self.clock() - self._start


class CudaTimer:
    """Per-step times from CUDA events; the loop synchronises only before and after."""

    def __init__(self, device=None):
        import torch

        self.torch = torch
        self.device = device
        self._events: list[tuple] = []
        self.times_ms: list[float] = []

    def begin(self) -> None:
        self.torch.cuda.synchronize(self.device)
        self._events = []
        self._start = time.perf_counter()

    def elapsed(self) -> float:
        # host time; the host runs ahead of the device by at most the launch queue
        return time.perf_counter() - self._start

    def step_start(self) -> None:
        ev = self.torch.cuda.Event(enable_timing=True)
        ev.record()
        self._events.append((ev, None))

    def step_end(self) -> None:
        ev = self.torch.cuda.Event(enable_timing=True)
        ev.record()
        self._events[-1] = (self._events[-1][0], ev)

    def finish(self) -> float:
        self.torch.cuda.synchronize(self.device)
        total = time.perf_counter() - self._start
        self.times_ms = [a.elapsed_time(b) for a, b in self._events]
        return total


@contextlib.contextmanager
def collector_paused():
    """Collect the garbage earlier timings left (a candidate's session, compiled model or
    exported graph caught in a reference cycle keeps its memory, and with it possibly its
    threads, until a collection), then keep Python's cyclic collector out of the block (as
    ``timeit`` does): a full collection of an earlier candidate's objects must not land in
    this one's timed steps. The collector's state is restored after the block."""
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def timed_loop(step: Callable[[], object], timer, min_steps: int, min_time_s: float) -> float:
    """Run ``step`` at least ``min_steps`` times and at least ``min_time_s``; total seconds."""
    timer.begin()
    n = 0
    while n < min_steps or timer.elapsed() < min_time_s:
        timer.step_start()
        step()
        timer.step_end()
        n += 1
    return timer.finish()

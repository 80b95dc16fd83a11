"""Raw step times as records keep them: float32 precision, at most ``MAX_STEP_TIMES`` values
(evenly subsampled beyond that), so that a later test can be run on them (``bench compare``)
and a record stays small."""

from __future__ import annotations

from collections.abc import Sequence

MAX_STEP_TIMES = 1000


def float32(value: float) -> float:
    """``value`` to a float32's precision (7 significant digits), short in JSON."""
    return float(f"{float(value):.7g}")


def kept_step_times(times_ms: Sequence[float], cap: int = MAX_STEP_TIMES) -> tuple[list, bool]:
    """The step times a record keeps and whether they were capped: every one when there are
    at most ``cap``, else ``cap`` of them evenly spread over the run (first and last
    included), in the order they were timed."""
    n = len(times_ms)
    if n <= cap:
        return [float32(t) for t in times_ms], False
    if cap == 1:
        return [float32(times_ms[0])], True
    picks = [round(i * (n - 1) / (cap - 1)) for i in range(cap)]
    return [float32(times_ms[i]) for i in picks], True

"""``--batch-search``: the batch size that gives a model its best throughput here.

From the batch asked for (``--batch-size``, else the device's default), the batch is doubled
while samples/s rises by more than ``NOISE_MARGIN`` and memory allows (at most
``MAX_BATCH``). Out of memory, the batch backs off in timm's steps
(``timm.utils.decay_batch_step``: 1024, 768, 512, 384, ...): below the batch asked for when
that one did not fit, or between the last batch that fitted and the one that did not. Every
timing is one point of the trail (batch size -> samples/s, or the out-of-memory error), which
the model's rows carry as ``batch_search``; the rows are then measured at the chosen batch.
"""

from __future__ import annotations

import logging

from bench.errors import OutOfMemoryError
from bench.harness.throughput.measure import Candidate, measure_or_oom
from bench.harness.throughput.model_run import ModelRun

logger = logging.getLogger(__name__)

NOISE_MARGIN = 0.03  # a larger batch must be this much faster to count as faster
MAX_BATCH = 4096
MEMORY_HEADROOM = 0.9  # a doubling is not tried when it would need more of the GPU's memory


def _point(run: ModelRun, cand: Candidate, batch: int, trail: list[dict]) -> dict | None:
    """One timing at ``batch`` added to ``trail``; its metrics, or None on out of memory."""
    metrics, oom = measure_or_oom(run, cand, batch)
    speed = metrics["samples_per_sec"] if metrics else None
    trail.append({"batch_size": batch, "samples_per_sec": speed, "error": oom and oom[1]})
    logger.info("%s: batch search %d -> %s", run.job.spec.name, batch, speed or oom[1])
    return metrics


def _fits_double(run: ModelRun, metrics: dict) -> bool:
    """Whether twice the batch would fit by the timing's peak memory (on CUDA; elsewhere the
    allocator's out-of-memory error decides)."""
    if run.device != "cuda" or metrics.get("peak_mem_reserved_mb") is None:
        return True
    import torch

    total_mb = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory / 2**20
    return 2 * metrics["peak_mem_reserved_mb"] <= MEMORY_HEADROOM * total_mb


def _decay(batch: int) -> int:
    from timm.utils import decay_batch_step

    return decay_batch_step(batch)


def _grow(run: ModelRun, cand: Candidate, batch: int, trail: list[dict]):
    """Double from ``batch`` while faster; (best batch, its samples/s, first batch out of
    memory or None); (None, 0, batch) when ``batch`` itself does not fit."""
    best, best_speed = None, 0.0
    while True:
        metrics = _point(run, cand, batch, trail)
        if metrics is None:
            return best, best_speed, batch
        speed = metrics["samples_per_sec"]
        if best is not None and speed <= best_speed * (1 + NOISE_MARGIN):
            return best, best_speed, None
        best, best_speed = batch, speed
        if 2 * batch > MAX_BATCH or not _fits_double(run, metrics):
            return best, best_speed, None
        batch *= 2


def search_batch(run: ModelRun, cand: Candidate, start: int) -> tuple[int, list[dict]]:
    """The batch size with the best samples/s for ``cand``, and the search's trail."""
    trail: list[dict] = []
    best, best_speed, oom_at = _grow(run, cand, start, trail)
    if oom_at is not None:  # back off below the batch that did not fit, above the best one
        batch = _decay(oom_at)
        while batch > (best or 0):
            metrics = _point(run, cand, batch, trail)
            if metrics is not None:
                if best is None or metrics["samples_per_sec"] > best_speed * (1 + NOISE_MARGIN):
                    best = batch
                break
            batch = _decay(batch)
    if best is None:
        raise OutOfMemoryError(f"Out of memory even at batch size 1 (asked for {start}).")
    return best, trail

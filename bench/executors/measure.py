"""What a worker does with a task (here, or in a Ray worker): every harness of the group on
one model, built once; each harness that asks for it in its own process (``isolate``)."""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Sequence
from typing import Any

from bench.environment import utc_now
from bench.errors import error_text
from bench.executors.isolate import run_isolated, should_isolate
from bench.executors.records import make_record, placement
from bench.executors.task import Task
from bench.harness import HarnessEntry
from bench.harness.base import Job, Measurement, RunConfig, as_measurements
from bench.registry import ModelSpec

logger = logging.getLogger(__name__)


def _measure_one(harness, entry: HarnessEntry, job: Job) -> list[Measurement]:
    """One harness on one model: in its own process when it asks for it."""
    if should_isolate(harness, job.run):  # its own process, with a timeout
        return run_isolated(job.spec, entry, job.run, job.config, measured=job.measured)
    return as_measurements(entry.name, harness.measure(job))


def measure_model(
    spec: ModelSpec,
    harnesses: Sequence[HarnessEntry],
    run: RunConfig,
    configs: dict[str, Any],
    measured: dict[str, dict[str, Any]] | None = None,
) -> list[dict]:
    """Every harness on one model (built once); never raises for a harness's failure."""
    job = Job(spec, run, measured=dict(measured or {}))
    # harnesses that only count (params, flops, depth) let the model be built without
    # initialisers (bench.harness.build); one that needs real values keeps them
    job.skip_init = all(entry.counts_only for entry in harnesses)
    records = []
    for entry in harnesses:
        start = time.perf_counter()
        harness = None
        try:
            harness = entry.cls()
            job.config = configs.get(entry.name)
            measurements = _measure_one(harness, entry, job)
        except Exception as e:
            logger.debug("%s/%s failed:\n%s", spec.name, entry.name, traceback.format_exc())
            device, device_name = placement(harness, run) if harness else ("cpu", None)
            records.append(
                make_record(spec, entry.name, "error", error=error_text(e), device=device,
                            device_name=device_name,
                            duration_s=round(time.perf_counter() - start, 3),
                            finished_utc=utc_now())
            )  # fmt: skip
            continue
        duration = round(time.perf_counter() - start, 3)
        if measurements:
            job.measured[entry.name] = measurements[0].metrics
        for m in measurements:
            records.append(
                make_record(spec, entry.name, m.status, error=m.error, device=m.device,
                            device_name=m.device_name, config=m.config, metrics=m.metrics,
                            duration_s=duration, finished_utc=utc_now())
            )  # fmt: skip
    if job.build_seconds is not None:
        for r in records:
            r["build_s"] = round(job.build_seconds, 3)
    job.release()
    return records


def measure_task(task: Task) -> list[dict]:
    """What a worker runs for a task (here, or in a Ray worker)."""
    return measure_model(task.spec, task.harnesses, task.run, task.configs, task.measured)

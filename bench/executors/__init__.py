"""How the work of a run is carried out: where each (model, harness group) is measured.

A run is cut into tasks, one per (model, harness group). Harnesses that only count
(``params``, ``flops``, ``depth``: ``counts_only = True``) share a group, so that the model is
built once for all of them; any other harness (``throughput``, ``finetune``, a plugin's) is
timed, a group of its own, so that an executor can give it a whole machine. The groups of one model
run in order, each seeing the metrics of the groups before it (``Job.measured``).

An executor measures tasks and hands back their records as they complete; the driver
(``bench.runner``) alone writes them. ``local`` measures here, one task after another; ``ray``
(``bench.executors.ray``, the optional extra ``cnn-bench[ray]``) sends each task to a Ray
cluster.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.environment import utc_now
from bench.errors import ConfigError, error_text
from bench.harness import get_harness, harness_target
from bench.harness.base import EXECUTORS, Job, Measurement, RunConfig, as_measurements
from bench.isolate import run_isolated, should_isolate
from bench.registry import ModelSpec

logger = logging.getLogger(__name__)

__all__ = ["EXECUTORS", "LocalExecutor", "Task", "execute", "make_executor", "measure_model"]


@dataclass
class Task:
    """One model and one group of harnesses, with what it needs to be measured anywhere."""

    spec: ModelSpec
    harnesses: tuple[str, ...]
    run: RunConfig
    configs: dict[str, Any]
    measured: dict[str, dict[str, Any]] = field(default_factory=dict)
    timed: bool = False  # a timed harness: nothing else may run beside it
    # where each harness is ("module:Class"), so that a worker elsewhere finds harnesses
    # registered from Python (bench.harness.HARNESSES) in the driver only
    targets: dict[str, str] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, tuple[str, ...]]:
        return (self.spec.name, self.harnesses)


def harness_groups(harnesses: Sequence[str]) -> list[tuple[tuple[str, ...], bool]]:
    """The harnesses cut into (group, timed): untimed neighbours together, each timed one alone."""
    groups: list[tuple[tuple[str, ...], bool]] = []
    for name in harnesses:
        timed = not getattr(get_harness(name), "counts_only", False)
        if not timed and groups and not groups[-1][1]:
            groups[-1] = ((*groups[-1][0], name), False)
        else:
            groups.append(((name,), timed))
    return groups


def placement(harness, run: RunConfig) -> tuple[str, str | None]:
    """Where a harness measures (device, device name); ``cpu`` for the harnesses that say
    nothing (``device_for``). Error rows carry it too, so that a failure on the GPU is a CUDA
    row, not a CPU one."""
    where = getattr(harness, "device_for", None)
    if where is None:
        return "cpu", None
    try:
        from bench.harness.device import device_name

        device = where(run)
        return device, device_name(device)
    except Exception:
        return run.device, None


def make_record(spec: ModelSpec, harness: str, status: str, **fields) -> dict[str, Any]:
    return {
        "model": spec.name,
        "source": spec.source,
        "harness": harness,
        "status": status,
        "error": fields.pop("error", None),
        "device": fields.pop("device", "cpu"),
        "device_name": fields.pop("device_name", None),
        "config": fields.pop("config", {}),
        "metrics": fields.pop("metrics", {}),
        **fields,
    }


def error_records(task: Task, error: str, duration_s: float = 0.0) -> list[dict]:
    """One error row per harness of a task that gave no records (its worker died, say)."""
    rows = []
    for name in task.harnesses:
        try:
            device, device_name = placement(get_harness(name), task.run)
        except Exception:
            device, device_name = "cpu", None
        rows.append(
            make_record(task.spec, name, "error", error=error, device=device,
                        device_name=device_name, duration_s=round(duration_s, 3),
                        finished_utc=utc_now())
        )  # fmt: skip
    return rows


def _class(name: str):
    try:
        return get_harness(name)
    except Exception:
        return None


def _measure_one(harness, name: str, job: Job, config) -> list[Measurement]:
    """One harness on one model: in its own process when it asks for it."""
    if should_isolate(harness, job.run):  # its own process, with a timeout
        return run_isolated(job.spec, name, job.run, config, measured=job.measured)
    return as_measurements(name, harness.measure(job))


def measure_model(
    spec: ModelSpec,
    harnesses: Sequence[str],
    run: RunConfig,
    configs: dict[str, Any],
    measured: dict[str, dict[str, Any]] | None = None,
) -> list[dict]:
    """Every harness on one model (built once); never raises for a harness's failure."""
    job = Job(spec, run, measured=dict(measured or {}))
    # harnesses that only count (params, flops, depth) let the model be built without
    # initialisers (bench.harness.build); one that needs real values keeps them
    job.skip_init = all(getattr(_class(n), "counts_only", False) for n in harnesses)
    records = []
    for name in harnesses:
        start = time.perf_counter()
        harness = None
        try:
            harness = get_harness(name)
            job.config = configs.get(name)
            measurements = _measure_one(harness, name, job, job.config)
        except Exception as e:
            logger.debug("%s/%s failed:\n%s", spec.name, name, traceback.format_exc())
            device, device_name = placement(harness, run) if harness else ("cpu", None)
            records.append(
                make_record(spec, name, "error", error=error_text(e), device=device,
                            device_name=device_name,
                            duration_s=round(time.perf_counter() - start, 3),
                            finished_utc=utc_now())
            )  # fmt: skip
            continue
        duration = round(time.perf_counter() - start, 3)
        if measurements:
            job.measured[name] = measurements[0].metrics
        for m in measurements:
            records.append(
                make_record(spec, name, m.status, error=m.error, device=m.device,
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
    from bench.harness import HARNESSES, harness_names

    known = harness_names()
    for name, target in task.targets.items():
        if name not in known:
            HARNESSES[name] = target
    return measure_model(task.spec, task.harnesses, task.run, task.configs, task.measured)


class LocalExecutor:
    """Measures here, one task after another, in the order submitted."""

    name = "local"

    def __init__(self) -> None:
        self._queue: list[Task] = []

    def submit(self, task: Task, follow_up: bool = False) -> None:
        # a model's next group runs straight after its previous one, as it always has
        self._queue.insert(0, task) if follow_up else self._queue.append(task)

    def pending(self) -> int:
        return len(self._queue)

    def next_done(self) -> tuple[Task, list[dict]]:
        task = self._queue.pop(0)
        return task, measure_task(task)

    def close(self) -> None:
        self._queue.clear()


def make_executor(run: RunConfig):
    """The executor ``run.executor`` names (Ray is imported only when asked for)."""
    if run.executor == "local":
        return LocalExecutor()
    if run.executor == "ray":
        from bench.executors.ray import RayExecutor

        return RayExecutor(run)
    raise ConfigError(f"--executor {run.executor}: expected one of {', '.join(EXECUTORS)}.")


def execute(
    executor,
    work: Sequence[tuple[ModelSpec, Sequence[str], dict[str, dict[str, Any]]]],
    run: RunConfig,
    configs: dict[str, Any],
) -> Iterator[tuple[ModelSpec, list[dict], bool]]:
    """Measure ``work`` (model, harnesses to measure, metrics already known) on ``executor``;
    yields (model, records, model finished) as each task completes. A model's groups are
    submitted one after another, each with the metrics of those before it."""
    plans: dict[str, list[tuple[tuple[str, ...], bool]]] = {}
    known: dict[str, dict[str, dict[str, Any]]] = {}
    for spec, harnesses, measured in work:
        plans[spec.name] = harness_groups(harnesses)
        known[spec.name] = dict(measured)

    def submit_next(spec: ModelSpec, follow_up: bool) -> bool:
        if not plans[spec.name]:
            return False
        group, timed = plans[spec.name].pop(0)
        targets = {n: harness_target(n) for n in group}
        task = Task(spec, group, run, configs, dict(known[spec.name]), timed, targets)
        executor.submit(task, follow_up=follow_up)
        return True

    for spec, _, _ in work:
        submit_next(spec, follow_up=False)
    while executor.pending():
        task, records = executor.next_done()
        for r in records:
            if r["status"] == "ok" and r["harness"] not in known[task.spec.name]:
                known[task.spec.name][r["harness"]] = r["metrics"]
        more = submit_next(task.spec, follow_up=True)
        yield task.spec, records, not more

"""Driving a sweep on an executor: each model's harness groups submitted in order, each with
the metrics of the groups before it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from bench.executors.base import Executor
from bench.executors.task import Task, harness_groups
from bench.harness import HarnessEntry, resolve_harness
from bench.harness.base import RunConfig
from bench.registry import ModelSpec


def execute(
    executor: Executor,
    work: Sequence[tuple[ModelSpec, Sequence[str], dict[str, dict[str, Any]]]],
    run: RunConfig,
    configs: dict[str, Any],
) -> Iterator[tuple[ModelSpec, list[dict], bool]]:
    """Measure ``work`` (model, harnesses to measure, metrics already known) on ``executor``;
    yields (model, records, model finished) as each task completes. Each harness is resolved
    once, here; a model's groups are submitted one after another, each with the metrics of
    those before it."""
    resolved = {n: resolve_harness(n) for _, names, _ in work for n in names}
    plans: dict[str, list[tuple[tuple[HarnessEntry, ...], bool]]] = {}
    known: dict[str, dict[str, dict[str, Any]]] = {}
    for spec, names, measured in work:
        plans[spec.name] = harness_groups([resolved[n] for n in names])
        known[spec.name] = dict(measured)

    def submit_next(spec: ModelSpec, follow_up: bool) -> bool:
        if not plans[spec.name]:
            return False
        group, timed = plans[spec.name].pop(0)
        task = Task(spec, group, run, configs, dict(known[spec.name]), timed)
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

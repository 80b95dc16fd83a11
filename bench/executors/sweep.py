"""Driving a sweep on an executor: each model's harness groups submitted in order, each with
the metrics of the groups before it; under ``run --repeats N``, the groups whose harness can
repeat (hooks ``round_config`` and ``merge_rounds``) measured N times, in rounds that go over
the models forward, then backward, then forward..., and merged into one record per
configuration by their harness."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from bench.executors.base import Executor
from bench.executors.task import Task, harness_groups
from bench.harness import HarnessEntry, call_hook, harness_hook, resolve_harness
from bench.harness.base import RunConfig
from bench.registry import ModelSpec

Work = Sequence[tuple[ModelSpec, Sequence[str], dict[str, dict[str, Any]]]]


def repeatable(name: str) -> bool:
    """Whether the harness ``name`` can measure in repeated rounds."""
    return all(harness_hook(name, h) is not None for h in ("round_config", "merge_rounds"))


def round_configs(configs: dict[str, Any], repeats: int) -> list[dict[str, Any]]:
    """Each round's harness configurations (one round unless ``repeats`` > 1): a repeatable
    harness's as its ``round_config`` hook gives it (which may refuse, a ``ConfigError``,
    before anything is measured); the others' as they are."""
    if repeats <= 1:
        return [configs]
    return [
        {n: call_hook(n, "round_config", c, r) if repeatable(n) else c for n, c in configs.items()}
        for r in range(repeats)
    ]


def execute(
    executor: Executor,
    work: Work,
    run: RunConfig,
    configs: dict[str, Any],
    rounds: Sequence[dict[str, Any]] = (),
) -> Iterator[tuple[ModelSpec, list[dict], bool]]:
    """Measure ``work`` (model, harnesses to measure, metrics already known) on ``executor``;
    yields (model, records, model finished) as each task completes. Each harness is resolved
    once, here; a model's groups are submitted one after another, each with the metrics of
    those before it. ``rounds`` (``round_configs``, two or more): the repeatable groups'
    first round is measured so, and their records held until the other rounds are done."""
    resolved = {n: resolve_harness(n) for _, names, _ in work for n in names}
    plans: dict[str, list[tuple[tuple[HarnessEntry, ...], bool]]] = {}
    known: dict[str, dict[str, dict[str, Any]]] = {}
    for spec, names, measured in work:
        plans[spec.name] = harness_groups([resolved[n] for n in names])
        known[spec.name] = dict(measured)
    first = rounds[0] if len(rounds) > 1 else configs
    held: dict[str, list[tuple[Task, list[dict]]]] = {}

    def submit_next(spec: ModelSpec, follow_up: bool) -> bool:
        if not plans[spec.name]:
            return False
        group, timed = plans[spec.name].pop(0)
        task = Task(spec, group, run, first, dict(known[spec.name]), timed)
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
        if len(rounds) > 1 and _repeats(task) and any(r["status"] == "ok" for r in records):
            held.setdefault(task.spec.name, []).append((task, records))
            records = []
        yield task.spec, records, not more and task.spec.name not in held
    if held:
        yield from _more_rounds(executor, work, held, rounds)


def _repeats(task: Task) -> bool:
    return len(task.harnesses) == 1 and repeatable(task.harnesses[0].name)


def _more_rounds(executor: Executor, work: Work, held, rounds) -> Iterator:
    """Rounds 2..N of the held groups, every model's in one round before the next round
    starts, backward in the second round, forward in the third...; then each model's
    groups merged by their harness, the model finished."""
    order = [spec.name for spec, _, _ in work if spec.name in held]
    measured: dict[tuple, list[list[dict]]] = {
        (name, i): [records] for name in order for i, (_, records) in enumerate(held[name])
    }
    for r in range(1, len(rounds)):
        for name in order if r % 2 == 0 else reversed(order):
            for task, _ in held[name]:
                again = Task(task.spec, task.harnesses, task.run, rounds[r], task.measured,
                             task.timed)  # fmt: skip
                executor.submit(again)
        while executor.pending():  # the round ends before the next one starts
            task, records = executor.next_done()
            group = next(i for i, (t, _) in enumerate(held[task.spec.name])
                         if t.harnesses == task.harnesses)  # fmt: skip
            measured[(task.spec.name, group)].append(records)
    for spec, _, _ in work:
        for i, (task, _) in enumerate(held.get(spec.name, ())):
            merge = harness_hook(task.harnesses[0].name, "merge_rounds")
            yield spec, merge(measured[(spec.name, i)]), i == len(held[spec.name]) - 1

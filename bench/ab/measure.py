"""Two option sets of the throughput harness measured in one run, alternately.

Round r goes over the models forward when r is even and backward when it is odd (as ``run
--repeats`` does), and measures each model with both arms back to back: A then B in an even
round, B then A in an odd one. Each model is therefore measured A B B A A B B A ...; with an
even number of rounds each arm runs first as often as second, and a drift that is linear in
time adds as much to one arm's mean as to the other's. The local executor measures one task
after another, in this order; nothing runs beside a measurement.

Each arm's rounds of a model are merged by the harness (``merge_rounds``: one record per
configuration, every round's samples/s kept in the order they ran) and labelled
``config["ab"]`` ("A" or "B"), so that the two arms' records of one configuration stay apart in
the reports; both arms' records go into one run document, whose header holds the option sets
and the order measured (``config.ab``)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from bench.environment import utc_now
from bench.executors import Executor, Task
from bench.harness import call_hook, config_as_dict, harness_hook, resolve_harness
from bench.harness.base import RunConfig
from bench.registry import ModelSpec
from bench.runner import run_header
from bench.storage import ResultStore, RunDocument

logger = logging.getLogger(__name__)

HARNESS = "throughput"  # the one harness that measures in rounds
LABELS = ("A", "B")


@dataclass(frozen=True)
class Arm:
    """One option set: its label, the options as given, and what they configure."""

    label: str
    options: tuple[str, ...]
    run: RunConfig
    config: Any  # the harness's configuration, prepared (its peak measured)


def schedule(models: Sequence[str], rounds: int) -> list[tuple[int, str, int]]:
    """(round, model, arm index) in the order they are measured."""
    order = []
    for r in range(rounds):
        forward = r % 2 == 0
        for model in models if forward else list(reversed(models)):
            order += [(r, model, i) for i in ((0, 1) if forward else (1, 0))]
    return order


def round_configs(arm: Arm, rounds: int) -> list[Any]:
    """The arm's configuration of each round (the harness may refuse, ``ConfigError``, before
    anything is measured: ``--optimize``, ``--batch-search``)."""
    return [call_hook(HARNESS, "round_config", arm.config, r) for r in range(rounds)]


def _header(specs, arms: Sequence[Arm], rounds: int) -> dict[str, Any]:
    header = run_header(specs, [HARNESS], arms[0].run, {HARNESS: arms[0].config}, rounds)
    header["config"]["ab"] = {
        "rounds": rounds,
        "arms": {a.label: _arm_header(a) for a in arms},
        "order": [],  # [model, arm] as measured
    }
    return header


def _arm_header(arm: Arm) -> dict[str, Any]:
    return {
        "options": list(arm.options),
        "run": arm.run.as_dict(),
        "harness_config": config_as_dict(arm.config),
    }


Progress = Callable[[int, int, str, str, list[dict]], None]


def measure_ab(
    specs: Sequence[ModelSpec],
    arms: Sequence[Arm],
    rounds: int,
    store: ResultStore,
    executor: Executor,
    on_measured: Progress | None = None,
) -> RunDocument:
    """Measure every model with both arms in ``rounds`` alternating rounds, on ``executor``
    (one task at a time, so the order holds); the run document, finished."""
    configs = {a.label: round_configs(a, rounds) for a in arms}  # refusals come first
    entry = resolve_harness(HARNESS)
    doc = store.new_run(_header(specs, arms, rounds))
    order = doc.header["config"]["ab"]["order"]
    by_name = {s.name: s for s in specs}
    plan = schedule([s.name for s in specs], rounds)
    measured: dict[tuple[str, str], list[list[dict]]] = {}
    try:
        for i, (r, name, a) in enumerate(plan, 1):
            arm = arms[a]
            task = Task(by_name[name], (entry,), arm.run, {HARNESS: configs[arm.label][r]},
                        {}, timed=True)  # fmt: skip
            executor.submit(task)
            _, records = executor.next_done()
            measured.setdefault((name, arm.label), []).append(records)
            order.append([name, arm.label])
            if on_measured:
                on_measured(i, len(plan), name, arm.label, records)
    except KeyboardInterrupt:
        _close(doc, specs, arms, measured, "interrupted")
        raise
    _close(doc, specs, arms, measured, "complete")
    return doc


def _close(doc: RunDocument, specs, arms: Sequence[Arm], measured, status: str) -> None:
    """Each arm's rounds merged into its records, labelled, settled, written."""
    merge = harness_hook(HARNESS, "merge_rounds")
    by_arm: dict[str, list[dict]] = {a.label: [] for a in arms}
    for spec in specs:
        for arm in arms:
            rounds = measured.get((spec.name, arm.label))
            for rec in merge(rounds) if rounds else ():
                rec["config"] = {**(rec.get("config") or {}), "ab": arm.label}
                by_arm[arm.label].append(rec)
    for arm in arms:  # each arm against its own peak (its threads, its precision)
        try:
            call_hook(HARNESS, "finalize", arm.config, by_arm[arm.label], default=None)
        except Exception as e:  # the records stand as measured; the run still finishes
            logger.warning("arm %s: could not settle its peaks: %s", arm.label, e)
    for spec in specs:
        doc.add([r for a in arms for r in by_arm[a.label] if r.get("model") == spec.name])
    doc.finish(status, utc_now())

"""A task: one model and one group of harnesses, each resolved once (class and target), with
everything it needs to be measured anywhere (here, in a Ray worker)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.harness import HarnessEntry
from bench.harness.base import RunConfig
from bench.registry import ModelSpec


@dataclass
class Task:
    """One model and one group of harnesses, with what it needs to be measured anywhere."""

    spec: ModelSpec
    # each harness as resolved in the driver: a worker elsewhere uses its class (or, in an
    # isolated child, its "module:Class" target) and never looks a name up again
    harnesses: tuple[HarnessEntry, ...]
    run: RunConfig
    configs: dict[str, Any]
    measured: dict[str, dict[str, Any]] = field(default_factory=dict)
    timed: bool = False  # a timed harness: nothing else may run beside it

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(h.name for h in self.harnesses)

    @property
    def key(self) -> tuple[str, tuple[str, ...]]:
        return (self.spec.name, self.names)


def harness_groups(
    harnesses: Sequence[HarnessEntry],
) -> list[tuple[tuple[HarnessEntry, ...], bool]]:
    """The harnesses cut into (group, timed): untimed neighbours together, each timed one alone."""
    groups: list[tuple[tuple[HarnessEntry, ...], bool]] = []
    for entry in harnesses:
        timed = not entry.counts_only
        if not timed and groups and not groups[-1][1]:
            groups[-1] = ((*groups[-1][0], entry), False)
        else:
            groups.append(((entry,), timed))
    return groups

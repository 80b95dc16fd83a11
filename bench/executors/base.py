"""The executor contract, which the local and the Ray executors both keep, and the one way to
open an executor: ``open_executor``, whose ``with`` block owns it and closes it however the
block ends."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from bench.executors.task import Task
from bench.harness.base import RunConfig


@runtime_checkable
class Executor(Protocol):
    """Measures tasks and hands back their records as they complete; never writes them."""

    name: str

    def submit(self, task: Task, follow_up: bool = False) -> None:
        """Queue ``task``; ``follow_up``: the next group of a model just measured."""

    def pending(self) -> int:
        """How many tasks were submitted and not yet handed back."""

    def next_done(self) -> tuple[Task, list[dict]]:
        """Wait for the next finished task: it and its records (error rows if it failed)."""

    def close(self) -> None:
        """Drop what is pending and release what the executor started (a local Ray)."""


@contextlib.contextmanager
def open_executor(run: RunConfig) -> Iterator[Executor]:
    """The executor ``run.execution.executor`` names, closed when the block ends (Ray is
    imported only when asked for)."""
    if run.execution.executor == "ray":  # a name ExecutionConfig checked: local or ray
        from bench.executors.ray import RayExecutor

        executor: Executor = RayExecutor(run)
    else:
        from bench.executors.local import LocalExecutor

        executor = LocalExecutor()
    try:
        yield executor
    finally:
        executor.close()

"""The local executor: measures here, one task after another."""

from __future__ import annotations

from bench.executors.measure import measure_task
from bench.executors.task import Task


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

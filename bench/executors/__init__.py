"""How the work of a run is carried out: where each (model, harness group) is measured.

A run is cut into tasks (``task``), one per (model, harness group). Harnesses that only count
(``params``, ``flops``, ``depth``: ``counts_only = True``) share a group, so that the model is
built once for all of them; any other harness (``throughput``, ``finetune``, a plugin's) is
timed, a group of its own, so that an executor can give it a whole machine. The groups of one
model run in order, each seeing the metrics of the groups before it (``Job.measured``;
``sweep``).

An executor (the contract: ``base.Executor``) measures tasks (``measure``) and hands back their
records (``records``) as they complete; the driver (``bench.runner``) alone writes them.
``local`` measures here, one task after another; ``ray`` (``bench.executors.ray``, the optional
extra ``cnn-bench[ray]``) sends each task to a Ray cluster. A harness that asks for it is
measured in a process of its own (``isolate``).
"""

from __future__ import annotations

from bench.executors.base import Executor, open_executor
from bench.executors.local import LocalExecutor
from bench.executors.measure import measure_model, measure_task
from bench.executors.sweep import execute, round_configs
from bench.executors.task import Task, harness_groups

__all__ = [
    "Executor",
    "LocalExecutor",
    "Task",
    "execute",
    "harness_groups",
    "measure_model",
    "measure_task",
    "open_executor",
    "round_configs",
]

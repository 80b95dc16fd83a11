"""The records a task gives: one per measured configuration, or an error row per harness."""

from __future__ import annotations

from typing import Any

from bench.environment import utc_now
from bench.executors.task import Task
from bench.harness.base import RunConfig
from bench.registry import ModelSpec


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
    for entry in task.harnesses:
        try:
            device, device_name = placement(entry.cls(), task.run)
        except Exception:
            device, device_name = "cpu", None
        rows.append(
            make_record(task.spec, entry.name, "error", error=error, device=device,
                        device_name=device_name, duration_s=round(duration_s, 3),
                        finished_utc=utc_now())
        )  # fmt: skip
    return rows

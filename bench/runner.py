"""How a run is carried out: every model through every harness, failures as rows.

Records reach the store as each model completes. A harness that raises becomes a record
with ``status: error`` and the run goes on with the next harness and model.
"""

from __future__ import annotations

import logging
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import bench
from bench.dist import is_main_process
from bench.environment import environment, utc_now
from bench.errors import error_text
from bench.harness import get_harness
from bench.harness.base import Job, Measurement
from bench.isolate import run_isolated, should_isolate
from bench.registry.lookup import ModelSpec
from bench.storage import ResultStore, RunDocument

logger = logging.getLogger(__name__)


def placement(harness, options: dict) -> tuple[str, str | None]:
    """Where a harness measures (device, device name) for these options; ``cpu`` for the
    harnesses that say nothing (``device_for``). Error rows carry it too, so that a failure
    on the GPU is a CUDA row, not a CPU one."""
    where = getattr(harness, "device_for", None)
    if where is None:
        return "cpu", None
    try:
        from bench.harness.device import device_name

        device = where(options)
        return device, device_name(device)
    except Exception:  # noqa: BLE001 - the error row is written all the same
        return str(options.get("device") or "cpu"), None


def _record(spec: ModelSpec, harness: str, status: str, **fields) -> dict[str, Any]:
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


def measure_model(spec: ModelSpec, harnesses: Sequence[str], options: dict) -> list[dict]:
    """Every harness on one model (built once); never raises for a harness's failure."""
    job = Job(spec, options)
    records = []
    for name in harnesses:
        start = time.perf_counter()
        harness = None
        try:
            harness = get_harness(name)
            if should_isolate(harness, options):  # its own process, with a timeout
                measurements: list[Measurement] = run_isolated(
                    spec, name, options, measured=job.measured
                )
            else:
                measurements = harness.measure(job)
        except Exception as e:  # noqa: BLE001 - a failure is a row, the run goes on
            logger.debug("%s/%s failed:\n%s", spec.name, name, traceback.format_exc())
            device, device_name = placement(harness, options) if harness else ("cpu", None)
            records.append(
                _record(
                    spec,
                    name,
                    "error",
                    error=error_text(e),
                    device=device,
                    device_name=device_name,
                    duration_s=round(time.perf_counter() - start, 3),
                    finished_utc=utc_now(),
                )  # fmt: skip
            )
            continue
        duration = round(time.perf_counter() - start, 3)
        if measurements:
            job.measured[name] = measurements[0].metrics
        for m in measurements:
            records.append(
                _record(
                    spec,
                    name,
                    "ok",
                    device=m.device,
                    device_name=m.device_name,
                    config=m.config,
                    metrics=m.metrics,
                    duration_s=duration,
                    finished_utc=utc_now(),
                )  # fmt: skip
            )
    if job.build_seconds is not None:
        for r in records:
            r["build_s"] = round(job.build_seconds, 3)
    job.release()
    return records


def run(
    specs: Sequence[ModelSpec],
    harnesses: Sequence[str],
    options: dict,
    store: ResultStore,
    on_model: Callable[[ModelSpec, list[dict]], None] | None = None,
) -> RunDocument:
    header = {
        "tool": {"name": "cnn-bench", "version": bench.__version__},
        "run_id": uuid.uuid4().hex[:8],
        "started_utc": utc_now(),
        "finished_utc": None,
        "status": "running",
        **environment(),
        "config": {"models": [s.name for s in specs], "harnesses": list(harnesses), **options},
    }
    doc = store.new_run(header, write=is_main_process())
    try:
        for spec in specs:
            records = measure_model(spec, harnesses, options)
            doc.add(records)
            if on_model:
                on_model(spec, records)
    except KeyboardInterrupt:
        doc.finish("interrupted", utc_now())
        raise
    doc.finish("complete", utc_now())
    return doc

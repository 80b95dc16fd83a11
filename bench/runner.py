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
from bench.harness import config_as_dict, get_harness, preflight, prepare
from bench.harness import configure as configure_harness
from bench.harness.base import Job, Measurement, RunConfig, as_measurements
from bench.isolate import run_isolated, should_isolate
from bench.registry import ModelSpec
from bench.storage import ResultStore, RunDocument

__all__ = ["RunConfig", "configure", "measure_model", "run"]

logger = logging.getLogger(__name__)


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


def _measure_one(harness, name: str, job: Job, config) -> list[Measurement]:
    """One harness on one model: in its own process when it asks for it."""
    if should_isolate(harness, job.run):  # its own process, with a timeout
        return run_isolated(job.spec, name, job.run, config, measured=job.measured)
    return as_measurements(name, harness.measure(job))


def measure_model(
    spec: ModelSpec, harnesses: Sequence[str], run: RunConfig, configs: dict[str, Any]
) -> list[dict]:
    """Every harness on one model (built once); never raises for a harness's failure."""
    job = Job(spec, run)
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
                _record(spec, name, "error", error=error_text(e), device=device,
                        device_name=device_name, duration_s=round(time.perf_counter() - start, 3),
                        finished_utc=utc_now())
            )  # fmt: skip
            continue
        duration = round(time.perf_counter() - start, 3)
        if measurements:
            job.measured[name] = measurements[0].metrics
        for m in measurements:
            records.append(
                _record(spec, name, m.status, error=m.error, device=m.device,
                        device_name=m.device_name, config=m.config, metrics=m.metrics,
                        duration_s=duration, finished_utc=utc_now())
            )  # fmt: skip
    if job.build_seconds is not None:
        for r in records:
            r["build_s"] = round(job.build_seconds, 3)
    job.release()
    return records


def configure(harnesses: Sequence[str], run: RunConfig, options=None) -> dict[str, Any]:
    """Each harness's typed configuration, validated and pre-flighted before the first model
    (bad values: a ``BenchError``, one line and exit 2 at the CLI). ``options`` holds each
    harness's own option values by harness name; a harness not in it gets its defaults. Then,
    once every harness is valid, each harness's ``prepare`` (once per run, before the first
    model: the throughput harness's peak) gives the configuration every job gets."""
    options = options or {}
    configs = {}
    for name in harnesses:
        configs[name] = configure_harness(name, options.get(name, {}), run)
        preflight(name, configs[name])
    for name in harnesses:
        configs[name] = prepare(name, configs[name], run)
    return configs


def run(
    specs: Sequence[ModelSpec],
    harnesses: Sequence[str],
    run_config: RunConfig,
    store: ResultStore,
    on_model: Callable[[ModelSpec, list[dict]], None] | None = None,
    configs: dict[str, Any] | None = None,
) -> RunDocument:
    """Measure every model with every harness; records reach the store as each model ends."""
    if configs is None:
        configs = configure(harnesses, run_config)
    header = {
        "tool": {"name": "cnn-bench", "version": bench.__version__},
        "run_id": uuid.uuid4().hex[:8],
        "started_utc": utc_now(),
        "finished_utc": None,
        "status": "running",
        **environment(),
        "config": {
            "models": [s.name for s in specs],
            "harnesses": list(harnesses),
            "run": run_config.as_dict(),
            "harness_config": {n: config_as_dict(configs.get(n)) for n in harnesses},
        },
    }
    doc = store.new_run(header, write=is_main_process())
    try:
        for spec in specs:
            records = measure_model(spec, harnesses, run_config, configs)
            doc.add(records)
            if on_model:
                on_model(spec, records)
    except KeyboardInterrupt:
        doc.finish("interrupted", utc_now())
        raise
    doc.finish("complete", utc_now())
    return doc

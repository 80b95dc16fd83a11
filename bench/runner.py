"""How a run is carried out: every model through every harness, failures as rows.

The executor (``bench.executors``: here, or on Ray) measures; this module alone writes the
run document, as each task's records arrive. An executor given to ``run`` belongs to its
caller; one ``run`` opens itself, it closes. A harness that raises becomes a record with
``status: error`` and the run goes on with the next harness and model.

``--resume`` adds to an existing run document: a (model, harness) whose stored records are
all ``ok`` is skipped (a harness's configurations are only known once it has measured, so
the unit skipped is the model and harness, not each configuration), the rest is measured and
appended, and the run ends ``complete`` as one run. The earlier records of a (model, harness)
measured again stay in the document, marked ``superseded: true`` when the new ones arrive;
``completed`` and the reports read past them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from bench.dist import is_main_process
from bench.environment import environment, utc_now
from bench.errors import ConfigError
from bench.executors import Executor, execute, open_executor, round_configs
from bench.harness import (
    call_hook,
    config_as_dict,
    config_from_options,
    config_options,
    harness_hook,
)
from bench.harness.base import RunConfig
from bench.registry import ModelSpec
from bench.storage import ResultStore, RunDocument
from bench.version import __version__

__all__ = ["completed", "harness_configs", "resume_into", "run", "run_header"]

logger = logging.getLogger(__name__)


def harness_configs(
    harnesses: Sequence[str], run: RunConfig, options=None, left_out: dict[str, str] | None = None
) -> dict[str, Any]:
    """Each harness's typed configuration, validated and pre-flighted before the first model
    (bad values: a ``BenchError``, one line and exit 2 at the CLI). ``options`` holds each
    harness's own option values by harness name; a harness not in it gets its defaults. Then,
    once every harness is valid, each harness's ``prepare`` (once per run, before the first
    model: the throughput harness's peak) gives the configuration every job gets.

    ``left_out`` (``--harness all``): a harness that cannot run with these options (its
    configuration or pre-flight raises a ``ConfigError``) is left out, with the reason
    recorded there, instead of stopping the run."""
    options = options or {}
    configs = {}
    for name in harnesses:
        try:
            config = config_from_options(name, options.get(name, {}), run)
            call_hook(name, "preflight", config, default=None)
        except ConfigError as e:
            if left_out is None:
                raise
            left_out[name] = str(e)
            continue
        configs[name] = config
    for name in configs:
        configs[name] = call_hook(name, "prepare", configs[name], run,
                                  doing="preparing the run failed: ")  # fmt: skip
    return configs


def run_header(specs, harnesses, run_config: RunConfig, configs, repeats: int,
               argv=None) -> dict[str, Any]:  # fmt: skip
    header = {
        "tool": {"name": "cnn-bench", "version": __version__},
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
    if repeats > 1:  # only then: a run of one round reads as runs always have
        header["config"]["repeats"] = repeats
    if argv is not None:  # the command line given (the Python API's equivalent one)
        header["argv"] = [str(a) for a in argv]
    return header


def _measured_as(run: dict[str, Any]) -> dict[str, Any]:
    return RunConfig.from_dict(run).measured_as() if run else {}


def _plain(value: Any) -> Any:
    """As the run document stores it (tuples become lists)."""
    return json.loads(json.dumps(value, default=str))


def _same_options(stored: dict[str, Any], config) -> bool:
    """Whether a stored harness configuration was given the options ``config`` has (the
    fields a harness measured for its run, like the peaks, are not options)."""
    now = _plain(config_options(config))
    return {k: v for k, v in _plain(stored).items() if k in now} == now


def resume_into(
    doc: RunDocument, specs, harnesses, run_config: RunConfig, configs, repeats: int = 1
) -> None:
    """Check that ``doc`` measured what this run would, and widen its model and harness
    lists; a run measured another way is a ``ConfigError`` (nothing is written)."""
    config = doc.header.get("config") or {}
    if config.get("repeats", 1) != repeats:
        raise ConfigError(
            f"--resume {doc.header.get('run_id')}: that run was measured with --repeats "
            f"{config.get('repeats', 1)}; give the same, or run without --resume."
        )
    before = _measured_as(config.get("run") or {})
    if before != run_config.measured_as():
        changed = sorted(k for k in before if before[k] != run_config.measured_as().get(k))
        raise ConfigError(
            f"--resume {doc.header.get('run_id')}: that run was measured with other run "
            f"options ({', '.join(changed)}); give the same options, or run without --resume."
        )
    stored = config.get("harness_config") or {}
    for name in harnesses:
        if name in stored and not _same_options(stored[name], configs.get(name)):
            raise ConfigError(
                f"--resume {doc.header.get('run_id')}: harness '{name}' was configured "
                "differently in that run; give the same options, or run without --resume."
            )
    config["models"] = list(dict.fromkeys([*config.get("models", []), *(s.name for s in specs)]))
    config["harnesses"] = list(dict.fromkeys([*config.get("harnesses", []), *harnesses]))
    config.setdefault("harness_config", {}).update(
        {n: config_as_dict(configs.get(n)) for n in harnesses if n not in stored}
    )
    doc.header["config"] = config
    doc.header.setdefault("resumed_utc", []).append(utc_now())
    doc.header["status"] = "running"
    doc.header["finished_utc"] = None


def completed(records: Sequence[dict]) -> dict[str, dict[str, dict[str, Any]]]:
    """model -> harness -> metrics, for each (model, harness) whose records are all ok: what
    a resumed run skips (and hands, as ``Job.measured``, to the harnesses still to come)."""
    status: dict[tuple[str, str], bool] = {}
    metrics: dict[tuple[str, str], dict[str, Any]] = {}
    for r in records:
        if r.get("superseded"):
            continue
        key = (r.get("model"), r.get("harness"))
        status[key] = status.get(key, True) and r.get("status") == "ok"
        metrics.setdefault(key, r.get("metrics") or {})
    done: dict[str, dict[str, dict[str, Any]]] = {}
    for (model, harness), ok in status.items():
        if ok:
            done.setdefault(model, {})[harness] = metrics[(model, harness)]
    return done


def supersede(earlier: Sequence[dict], records: Sequence[dict]) -> None:
    """Mark ``superseded: true`` on each record of ``earlier`` (the records a resumed run
    started with) whose model and harness ``records`` measure again: a resumed run measures a
    (model, harness) whole, so the new records replace all of the old."""
    again = {(r.get("model"), r.get("harness")) for r in records}
    for r in earlier:
        if (r.get("model"), r.get("harness")) in again:
            r["superseded"] = True


def plan(specs, harnesses, done) -> list[tuple[ModelSpec, list[str], dict]]:
    """(model, harnesses still to measure, metrics already measured) for each model left."""
    work = []
    for spec in specs:
        measured = done.get(spec.name, {})
        todo = [h for h in harnesses if h not in measured]
        if todo:
            work.append((spec, todo, measured))
    return work


def run(
    specs: Sequence[ModelSpec],
    harnesses: Sequence[str],
    run_config: RunConfig,
    store: ResultStore,
    on_model: Callable[[ModelSpec, list[dict]], None] | None = None,
    configs: dict[str, Any] | None = None,
    resume: RunDocument | None = None,
    on_plan: Callable[[list[tuple[ModelSpec, list[str], dict]]], None] | None = None,
    executor: Executor | None = None,
    repeats: int = 1,
    argv: Sequence[str] | None = None,
) -> RunDocument:
    """Measure every model with every harness; records reach the store as tasks end.
    ``resume``: an existing run (``ResultStore.open_run``) to complete instead of a new one.
    ``repeats``: rounds of each repeatable harness (``bench.executors.sweep``), interleaved
    over the models and merged into one record per configuration. ``argv``: the command
    line to record (default: this process's), from which ``--resume`` reads the options."""
    if configs is None:
        configs = harness_configs(harnesses, run_config)
    rounds = round_configs(configs, repeats)  # a refusal comes before anything is written
    if resume is not None:
        resume_into(resume, specs, harnesses, run_config, configs, repeats)
        doc = resume
        doc.write = is_main_process()
        doc.save()
    else:
        header = run_header(specs, harnesses, run_config, configs, repeats, argv)
        doc = store.new_run(header, write=is_main_process())
    earlier = list(doc.records)  # a resumed run's records so far (none in a new run)
    work = plan(specs, harnesses, completed(doc.records) if resume is not None else {})
    if on_plan:
        on_plan(work)
    opened = contextlib.nullcontext(executor) if executor else open_executor(run_config)
    by_model: dict[str, list[dict]] = {}
    try:
        with opened as on:
            for spec, records, finished in execute(on, work, run_config, configs, rounds):
                supersede(earlier, records)
                doc.add(records)
                by_model.setdefault(spec.name, []).extend(records)
                if finished and on_model:
                    on_model(spec, by_model.pop(spec.name))
    except KeyboardInterrupt:
        _finalize(doc, configs)
        doc.finish("interrupted", utc_now())
        raise
    _finalize(doc, configs)
    doc.finish("complete", utc_now())
    return doc


def _finalize(doc: RunDocument, configs: dict[str, Any]) -> None:
    """Each harness's last word on its records of the whole run (a resumed one included),
    before the document is finished."""
    for name, config in configs.items():
        try:
            hook = harness_hook(name, "finalize")
            if hook is not None:
                hook(config, [r for r in doc.records
                              if r.get("harness") == name and not r.get("superseded")])  # fmt: skip
        except Exception as e:  # the records stand as measured; the run still finishes
            logger.warning("harness '%s' could not finalize its records: %s", name, e)

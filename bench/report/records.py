"""The one reader of stored results, for every report section and for ``bench compare``.

``read_records(path)`` reads a results store folder (every readable run document under
``<machine>/``) or one run document, once, and returns ``Records`` (without the records that
a resumed run measured again: ``superseded``):

- ``records.history``: every record of every run, one row each (a pandas DataFrame);
- ``records.latest``: the latest record per (model, harness, device, device name,
  configuration), the rows the reports show (``latest(frame)`` of any part of the history);
- ``records.runs``: each run document's provenance, a ``Run`` by ``results_file``.

Columns of ``history`` and ``latest``:

==============  =====================================================================
model           the model's name as measured
source          where the model came from: 'timm', 'torchvision', 'chapter', a plugin
harness         'params', 'flops', 'depth', 'throughput', 'validate', 'finetune', ...
status          'ok', 'skipped', or how it failed ('error', 'timeout', ...)
error           why it failed or was skipped (None when ok)
device          'cpu' or 'cuda'
device_name     the CPU or GPU model (the run's CPU when the record names none)
config          the record's configuration (a dict)
config_key      that configuration as sorted JSON: part of a record's identity
metrics         the record's measurements (a dict)
finished_utc    when the record was written (its run's start when it has no time)
run_id          the run's id (the last part of the document's file name)
run_date        the run's start date (UTC, YYYY-MM-DD), '-' when unknown
machine         the machine's id (the run document's ``machine.id``)
machine_name    the machine's GPU name, else its CPU name
cpu             the machine's CPU name (None when unrecorded)
cpu_features    the CPU's kernel flags in words: 'AVX-512, BF16, VNNI', 'no AVX-512, BF16
                or VNNI' (None when unrecorded)
commit          the run's git commit: 7 hex digits, '+' when the checkout had uncommitted
                changes, '-' when unknown
torch           the run's torch version, '-' when unknown
results_file    the run document's path inside the store (its file name for one document)
==============  =====================================================================

Pure Python and pandas (imported where used); no torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from bench.report.fmt import cpu_flags_text
from bench.report.workload import INFERENCE_FORM, levers_text  # noqa: F401 (re-exported)
from bench.storage import ResultStore, read_document

# What makes two records measurements of the same thing: the latest of them is shown.
RECORD_KEY = ("model", "harness", "device", "device_name", "config_key")
# What ``--optimize`` chooses and stores in a record's configuration (``compile_mode`` and
# ``fold_bn`` only when a lever was pulled; the inference form is the record's
# ``metrics['model_form']``).
OPTIMIZE_CHOICES = ("precision", "layout", "compiled", "runtime", "compile_mode", "fold_bn")
# A timing of less than this (seconds, all timed rounds together) is too short to trust.
MIN_TIMED_S = 1.0
# Step times that vary more than this (coefficient of variation, %) are too unsettled to trust.
MAX_CV_PCT = 25.0


@dataclass(frozen=True)
class Run:
    """One run document's provenance, read from its header."""

    results_file: str
    run_id: str  # '-' when the document has none
    started_utc: str  # '' when unknown
    status: str  # 'complete', 'interrupted', 'running', ...
    machine: str | None
    machine_name: str | None  # its GPU's name, else its CPU's
    commit: str
    torch: str
    cpu: str | None = None  # the machine's CPU model
    cpu_flags: tuple[str, ...] | None = None  # its AVX-512/BF16/VNNI/AMX flags; None: unrecorded
    versions: tuple[tuple[str, str], ...] = ()  # (library, version) as recorded

    @property
    def date(self) -> str:
        """The start date (UTC), '-' when unknown."""
        return self.started_utc[:10] or "-"

    @property
    def cpu_features(self) -> str | None:
        """The CPU's kernel flags in words (``fmt.cpu_flags_text``), None when unrecorded."""
        return None if self.cpu_flags is None else cpu_flags_text(self.cpu_flags)


@dataclass
class Records:
    """A store read once: see the module's docstring for the columns."""

    history: Any  # pandas.DataFrame
    runs: dict[str, Run] = field(default_factory=dict)

    @cached_property
    def latest(self):
        """The latest record per (model, harness, device, device name, configuration)."""
        return latest(self.history)


def _commit(info) -> str:
    if not isinstance(info, dict) or not info.get("id"):
        return "-"
    return str(info["id"])[:7] + ("+" if info.get("dirty") else "")


def _run_of(doc: dict) -> Run:
    """A run document's provenance."""
    machine = doc.get("machine") or {}
    gpu = machine.get("gpu")
    versions = doc.get("versions") or {}
    return Run(
        results_file=doc["_path"],
        run_id=str(doc.get("run_id") or "-"),
        started_utc=str(doc.get("started_utc") or ""),
        status=str(doc.get("status") or "-"),
        machine=machine.get("id"),
        machine_name=(gpu.get("name") if isinstance(gpu, dict) else None) or machine.get("cpu"),
        commit=_commit(doc.get("commit")),
        torch=str(versions.get("torch") or "-"),
        cpu=machine.get("cpu"),
        cpu_flags=tuple(flags) if isinstance(flags := machine.get("cpu_flags"), list) else None,
        versions=tuple((str(k), str(v)) for k, v in versions.items() if v),
    )


def _rows(doc: dict, run: Run) -> list[dict]:
    machine = doc.get("machine") or {}
    rows = []
    for rec in doc["records"]:
        if not isinstance(rec, dict) or "model" not in rec or "harness" not in rec:
            continue
        if rec.get("superseded"):  # measured again by a resumed run (bench.runner)
            continue
        config = rec.get("config") or {}
        rows.append(
            {
                "model": rec["model"],
                "source": rec.get("source"),
                "harness": rec["harness"],
                "status": rec.get("status", "ok"),
                "error": rec.get("error"),
                "device": rec.get("device", "cpu"),
                "device_name": rec.get("device_name") or machine.get("cpu"),
                "config": config,
                "config_key": json.dumps(config, sort_keys=True),
                "metrics": rec.get("metrics") or {},
                "finished_utc": rec.get("finished_utc") or doc.get("started_utc") or "",
                "run_id": doc.get("run_id"),
                "run_date": run.date,
                "machine": run.machine,
                "machine_name": run.machine_name,
                "cpu": run.cpu,
                "cpu_features": run.cpu_features,
                "commit": run.commit,
                "torch": run.torch,
                "results_file": run.results_file,
            }
        )
    return rows


def _documents(path: Path) -> list[dict]:
    if path.is_file():
        doc = read_document(path)
        return [] if doc is None else [{**doc, "_path": path.name}]
    return list(ResultStore(path).load())


def read_records(path: str | Path) -> Records:
    """Every record of a results store folder, or of one run document, read once.

    An unreadable document is skipped with a warning (the store's rule)."""
    import pandas as pd

    rows, runs = [], {}
    for doc in _documents(Path(path)):
        run = _run_of(doc)
        runs[run.results_file] = run
        rows += _rows(doc, run)
    return Records(pd.DataFrame(rows), runs)


def latest(frame):
    """Keep the latest record per (model, harness, device, device name, configuration): an
    H200's row and an H100's are two rows, though both are 'cuda'. An ``--optimize`` record's
    configuration is the one asked for, not the winner it stores: a rerun of the same
    ``--optimize`` replaces the previous result even when another candidate won."""
    if frame.empty:
        return frame
    import pandas as pd

    frame = frame.sort_values(["finished_utc", "run_id"], kind="stable")
    configs = frame["config"] if "config" in frame.columns else [None] * len(frame)
    identity = pd.Series(
        [_asked(c, k) for c, k in zip(configs, frame["config_key"], strict=True)],
        index=frame.index,
    )
    keys = [k for k in RECORD_KEY if k != "config_key"]
    keep = ~frame.assign(_identity=identity).duplicated([*keys, "_identity"], keep="last")
    return frame[keep].reset_index(drop=True)


def is_chosen(candidate: dict, config: dict, metrics: dict | None = None) -> bool:
    """Whether an ``--optimize`` candidate is the one its record chose: the record's
    configuration (one without a runtime is PyTorch's) and, from its ``metrics``, the model's
    form."""

    def choice(d: dict, form) -> tuple:
        return (
            *(d.get(k) for k in OPTIMIZE_CHOICES if k != "runtime"),
            d.get("runtime") or "torch",
            form == INFERENCE_FORM,
        )

    model_form = (metrics or {}).get("model_form")
    return choice(candidate, candidate.get("form")) == choice(config, model_form)


def _asked(config: dict, key: str) -> str:
    """The configuration a record answers: its key, less what ``--optimize`` chose."""
    if not isinstance(config, dict) or config.get("optimize") is not True:
        return key
    asked = {k: v for k, v in config.items() if k not in OPTIMIZE_CHOICES}
    return json.dumps(asked, sort_keys=True)


def untrusted(metrics: dict) -> str:
    """Why a record's timing is too short or unsettled to trust ('' when it is fine, or when
    the record has no timing)."""
    why = []
    total = metrics.get("total_time_s")
    if isinstance(total, (int, float)) and not isinstance(total, bool) and total < MIN_TIMED_S:
        why.append(f"timed {total:.2f} s < {MIN_TIMED_S:g} s")
    if metrics.get("warmup_stable") is False:
        why.append("warm-up did not stabilise")
    cv = metrics.get("cv_pct")
    if isinstance(cv, (int, float)) and not isinstance(cv, bool) and cv > MAX_CV_PCT:
        why.append(f"step times vary {cv:.0f}% > {MAX_CV_PCT:g}%")
    return "; ".join(why)

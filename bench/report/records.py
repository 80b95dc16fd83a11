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
device_name     the device's label: a CPU as 'model · ISA level · N vCPU' (the run's CPU when the
                record names none), a GPU by its model
config          the record's configuration (a dict)
config_key      that configuration as sorted JSON: part of a record's identity
metrics         the record's measurements (a dict)
finished_utc    when the record was written (its run's start when it has no time)
run_id          the run's id (the last part of the document's file name)
run_date        the run's start date (UTC, YYYY-MM-DD), '-' when unknown
machine         the machine's label (``environment.machine_key``): 'AMD EPYC · AVX2 · 2 vCPU',
                'NVIDIA H200 · Intel Xeon · flags not recorded · 16 vCPU'
machine_id      the machine's id, recomputed from what the document records (CPU model, ISA
                level, logical CPUs, GPU model and count), not the id it was stored under
machine_name    the machine's GPU, else its CPU label
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

from bench.environment import machine_key
from bench.report.fmt import cpu_flags_text
from bench.report.workload import INFERENCE_FORM
from bench.stats import UNTRUSTED_RULE as UNTRUSTED_RULE  # the rule of trust, defined
from bench.stats import untrusted as untrusted  # once below the harness (--optimize) and here
from bench.storage import ResultStore, read_document

# What makes two records measurements of the same thing: the latest of them is shown.
RECORD_KEY = ("model", "harness", "device", "device_name", "config_key")
# What ``--optimize`` chooses and stores in a record's configuration (``compile_mode`` and
# ``fold_bn`` only when a lever was pulled; the inference form is the record's
# ``metrics['model_form']``).
OPTIMIZE_CHOICES = ("precision", "layout", "compiled", "runtime", "compile_mode", "fold_bn")


@dataclass(frozen=True)
class Run:
    """One run document's provenance, read from its header."""

    results_file: str
    run_id: str  # '-' when the document has none
    started_utc: str  # '' when unknown
    status: str  # 'complete', 'interrupted', 'running', ...
    machine: str | None  # the machine's label (environment.machine_key)
    machine_name: str | None  # its GPU's name, else its CPU's label
    commit: str
    torch: str
    cpu: str | None = None  # the machine's CPU model
    cpu_flags: tuple[str, ...] | None = None  # its AVX-512/BF16/VNNI/AMX flags; None: unrecorded
    versions: tuple[tuple[str, str], ...] = ()  # (library, version) as recorded
    machine_id: str | None = None  # recomputed from what the document records
    cpu_label: str | None = None  # 'AMD EPYC · AVX2 · 2 vCPU': the device label of CPU rows
    release: str | None = None  # the kernel release: a VM's image, a hint where flags are absent
    flags_evidence: str | None = None  # what the run's records prove of unrecorded flags

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
    _derived: dict = field(default_factory=dict, repr=False, compare=False)

    @cached_property
    def latest(self):
        """The latest record per (model, harness, device, device name, configuration)."""
        return latest(self.history)

    def derived(self, fn):
        """``fn(self)``, computed once for this store as read: several sections (and both
        renderers) read one derived table without computing it again."""
        if fn not in self._derived:
            self._derived[fn] = fn(self)
        return self._derived[fn]


def _commit(info) -> str:
    if not isinstance(info, dict) or not info.get("id"):
        return "-"
    return str(info["id"])[:7] + ("+" if info.get("dirty") else "")


def cpu_label(machine: dict) -> str:
    """A machine's CPU as a device label: 'AMD EPYC · AVX-512 BF16 VNNI · 2 vCPU'."""
    return machine_key({**machine, "gpu": None})[1]


# What a run's own records prove of a CPU whose flags were not recorded: (text in the
# document, lower case) -> what it proves.
FLAG_EVIDENCE = (
    ("no native bf16", "no native BF16: the run skipped a bf16 candidate for want of it"),
)


def flags_evidence(doc: dict) -> str | None:
    """What a run document without CPU flags proves of them from its own records, e.g. a
    bf16 candidate skipped for want of native BF16; None when the flags were recorded or
    nothing is proven."""
    if (doc.get("machine") or {}).get("cpu_flags") is not None:
        return None
    text = json.dumps(doc.get("records") or [], sort_keys=True).lower()
    found = [proof for needle, proof in FLAG_EVIDENCE if needle in text]
    return "; ".join(found) or None


def _run_of(doc: dict) -> Run:
    """A run document's provenance. A machine's id and label are recomputed from what the
    document records, so two CPUs sold under one name with other flags are two machines
    (runs stored before the id named the ISA level carry an id without it)."""
    machine = doc.get("machine") or {}
    gpu = machine.get("gpu")
    versions = doc.get("versions") or {}
    machine_id, label = machine_key(machine) if machine else (None, None)
    return Run(
        results_file=doc["_path"],
        run_id=str(doc.get("run_id") or "-"),
        started_utc=str(doc.get("started_utc") or ""),
        status=str(doc.get("status") or "-"),
        machine=label,
        machine_id=machine_id,
        cpu_label=cpu_label(machine) if machine else None,
        machine_name=(gpu.get("name") if isinstance(gpu, dict) else None)
        or (cpu_label(machine) if machine else None),
        commit=_commit(doc.get("commit")),
        torch=str(versions.get("torch") or "-"),
        cpu=machine.get("cpu"),
        cpu_flags=tuple(flags) if isinstance(flags := machine.get("cpu_flags"), list) else None,
        versions=tuple((str(k), str(v)) for k, v in versions.items() if v),
        release=machine.get("release"),
        flags_evidence=flags_evidence(doc),
    )


def _device_label(rec: dict, run: Run) -> str | None:
    """A record's device in words: its GPU by model; a CPU as ``cpu_label``. A record
    measured on another machine (a Ray worker's, in its ``machine`` field) is named by
    that machine."""
    if rec.get("device") == "cuda":
        return rec.get("device_name")
    own = rec.get("machine")
    if isinstance(own, dict) and own:
        return cpu_label(own)
    return run.cpu_label or rec.get("device_name")


def _rows(doc: dict, run: Run) -> list[dict]:
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
                "device_name": _device_label(rec, run),
                "config": config,
                "config_key": json.dumps(config, sort_keys=True),
                "metrics": rec.get("metrics") or {},
                "finished_utc": rec.get("finished_utc") or doc.get("started_utc") or "",
                "run_id": doc.get("run_id"),
                "run_date": run.date,
                "machine": run.machine,
                "machine_id": run.machine_id,
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

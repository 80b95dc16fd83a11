"""Where each record comes from: its run's id, start date, machine, commit and torch version,
read from the run documents of the store. Also every record of every run (not only the
latest per configuration), for the trends. No torch here."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from bench.storage import ResultStore

PROVENANCE_COLUMNS = ("run_id", "run_date", "machine", "commit", "torch")


@dataclass(frozen=True)
class Run:
    """One run document's header: what every record of the run shares."""

    path: str  # the document's path inside the store
    run_id: str
    started_utc: str
    machine: str
    commit: str
    torch: str
    command: str
    records: tuple[dict, ...]

    @property
    def date(self) -> str:
        return self.started_utc[:16].replace("T", " ") or "-"

    @property
    def anchor(self) -> str:
        return f"run-{self.run_id}"

    def text(self) -> str:
        return (
            f"run {self.run_id}, {self.date} UTC, {self.machine}, commit {self.commit}, "
            f"torch {self.torch}"
        )


def _commit(info) -> str:
    if not isinstance(info, dict) or not info.get("id"):
        return "-"
    return str(info["id"])[:7] + ("+" if info.get("dirty") else "")


def load_runs(results_dir: str | Path) -> list[Run]:
    """Every readable run document of the store, oldest first."""
    runs = []
    for doc in ResultStore(results_dir).load():
        machine = doc.get("machine") or {}
        versions = doc.get("versions") or {}
        records = tuple(r for r in doc["records"] if isinstance(r, dict) and "model" in r)
        runs.append(
            Run(
                path=doc["_path"],
                run_id=str(doc.get("run_id") or "-"),
                started_utc=str(doc.get("started_utc") or ""),
                machine=str(machine.get("id") or "-"),
                commit=_commit(doc.get("commit")),
                torch=str(versions.get("torch") or "-"),
                command=" ".join(["python -m bench", *map(str, doc.get("argv") or [])]),
                records=records,
            )
        )
    return sorted(runs, key=lambda r: (r.started_utc, r.run_id, r.path))


def with_provenance(frame, runs: list[Run]):
    """``frame`` (one row per record, with ``results_file``) with the provenance columns of
    its run added: run_id, run_date, machine, commit, torch."""
    if frame.empty:
        return frame.assign(**{c: [] for c in PROVENANCE_COLUMNS})
    by_path = {r.path: r for r in runs}
    missing = Run("", "-", "", "-", "-", "-", "", ())
    found = [by_path.get(p, missing) for p in frame["results_file"]]
    return frame.assign(
        run_id=[r.run_id for r in found],
        run_date=[r.date for r in found],
        machine=[r.machine for r in found],
        commit=[r.commit for r in found],
        torch=[r.torch for r in found],
    )


def history(runs: list[Run]):
    """Every record of every run as a frame (the columns the trends read)."""
    import pandas as pd

    rows = []
    for run in runs:
        for rec in run.records:
            config = rec.get("config") or {}
            rows.append(
                {
                    "model": rec["model"],
                    "harness": rec.get("harness"),
                    "status": rec.get("status", "ok"),
                    "device": rec.get("device", "cpu"),
                    "config": config,
                    "config_key": json.dumps(config, sort_keys=True),
                    "metrics": rec.get("metrics") or {},
                    "finished_utc": rec.get("finished_utc") or run.started_utc,
                    "run_id": run.run_id,
                    "results_file": run.path,
                }
            )
    return pd.DataFrame(rows)

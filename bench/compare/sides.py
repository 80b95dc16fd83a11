"""What each side of a comparison holds: a run id, a run document, a store folder or a timm
CSV, read into entries (records through ``bench.report.records``) with the runs they come
from, and the spread rule for records without samples."""

from __future__ import annotations

import difflib
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import ConfigError
from bench.report.records import Run, latest, read_records, untrusted
from bench.stats import combined_spread, samples_of, spread_of

logger = logging.getLogger(__name__)


@dataclass
class Entry:
    """One record (or one row of a timm CSV): its identity and its numeric metrics."""

    model: str
    harness: str = ""
    device: str = ""
    config: dict = field(default_factory=dict)
    status: str = "ok"
    error: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    device_name: str = ""  # the CPU or GPU model; '' for a timm CSV row
    run: str = ""  # the run document it comes from (a key of its Side's runs)
    samples: dict[str, list[float]] = field(default_factory=dict)  # stats.samples_of
    untrusted: str = ""  # why its timing is not to be trusted (records.untrusted); '' if it is

    @property
    def key(self) -> tuple:
        return (self.model, self.harness, self.device, json.dumps(self.config, sort_keys=True))


@dataclass
class Side:
    label: str
    entries: list[Entry]
    by_name: bool = False  # a timm CSV: matched on the model name alone
    runs: dict[str, Run] = field(default_factory=dict)  # by results file
    name: str = ""  # a short name for a column: the run id, else the label

    @property
    def column(self) -> str:
        return self.name or self.label


def noise_spread(entry: Entry) -> float:
    """The relative spread of a record's step times, as a fraction (0 when it has none): the
    fall-back rule for records that carry no samples (``bench.stats.spread_of``)."""
    return spread_of(entry.metrics)


def combined_noise(base: Entry, new: Entry) -> float:
    """Both sides' spreads added in quadrature, as a fraction (``bench.stats.combined_spread``)."""
    return combined_spread(base.metrics, new.metrics)


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return None if isinstance(v, float) and math.isnan(v) else v


def _numbers(values: dict) -> dict[str, float]:
    numbers = {k: _number(v) for k, v in values.items()}
    return {k: v for k, v in numbers.items() if v is not None}


def _entries(frame) -> list[Entry]:
    return [
        Entry(
            rec.model,
            rec.harness,
            rec.device,
            rec.config,
            rec.status,
            rec.error,
            _numbers(rec.metrics),
            str(rec.device_name or ""),
            rec.results_file,
            samples_of(rec.metrics),
            untrusted(rec.metrics),
        )
        for rec in latest(frame).itertuples()
    ]


def _runs_of(records, frame) -> dict[str, Run]:
    files = set(frame["results_file"])
    return {f: run for f, run in records.runs.items() if f in files}


def _store_side(root: Path, all_runs: bool) -> Side:
    records = read_records(root)
    if records.history.empty:
        raise ConfigError(
            f"No results in {root}/: expected <machine>/<time>_<run id>.json documents. "
            "Give the results store folder, a run document, a run id or a timm CSV."
        )
    if all_runs:
        return Side(f"{root} (all runs)", _entries(records.history), runs=records.runs)
    complete = [run for run in records.runs.values() if run.status == "complete"]
    if not complete:
        raise ConfigError(f"No complete run in {root}/. Pass --all to compare every run.")
    run = max(complete, key=lambda r: (r.started_utc, r.run_id))
    frame = records.history[records.history["results_file"] == run.results_file]
    label = f"{root} (latest complete run {run.run_id})"
    return Side(label, _entries(frame), runs=_runs_of(records, frame), name=run.run_id)


def store_run_sides(root: Path) -> list[Side]:
    """Every run of a store folder, one Side each, oldest first (``compare --all STORE``)."""
    if not root.is_dir():
        raise ConfigError(
            f"--all with one argument takes a results store folder; {root} is not one."
        )
    records = read_records(root)
    sides = []
    for run in sorted(records.runs.values(), key=lambda r: (r.started_utc, r.run_id)):
        frame = records.history
        frame = frame[frame["results_file"] == run.results_file] if not frame.empty else frame
        if frame.empty:
            continue
        status = "" if run.status == "complete" else f", {run.status}"
        label = f"run {run.run_id} ({run.results_file}{status})"
        sides.append(Side(label, _entries(frame), runs={run.results_file: run}, name=run.run_id))
    return sides


def _file_side(path: Path) -> Side:
    """One run document anywhere on disk."""
    records = read_records(path)
    frame = records.history
    if frame.empty:
        raise ConfigError(
            f"{path} is not a cnn-bench results document (or has no records). Give a file "
            "written by 'python -m bench run', a store folder, a run id or a timm CSV."
        )
    name = next(iter(records.runs.values())).run_id
    return Side(str(path), _entries(frame), runs=records.runs, name=name)


def _run_side(run_id: str, results: Path) -> Side:
    records = read_records(results) if results.is_dir() else None
    frame = None if records is None else records.history
    if frame is None or frame.empty:
        raise ConfigError(
            f"'{run_id}' is not a file or folder, and there is no results store at "
            f"{results}/ to look it up as a run id. Pass --results DIR."
        )
    ids = sorted(set(frame["run_id"].dropna()))
    found = [i for i in ids if i == run_id] or [i for i in ids if i.startswith(run_id)]
    if len(found) != 1:
        close = difflib.get_close_matches(run_id, ids, n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        what = "matches several runs" if found else "is no run id"
        raise ConfigError(
            f"'{run_id}' {what} in {results}/ and is not a file or folder.{hint} Run ids are "
            "the last part of the results file names (<time>_<run id>.json)."
        )
    frame = frame[frame["run_id"] == found[0]]
    label = f"run {found[0]} ({frame['results_file'].iloc[0]})"
    return Side(label, _entries(frame), runs=_runs_of(records, frame), name=found[0])


def _timm_side(path: Path) -> Side:
    import pandas as pd

    try:
        table = pd.read_csv(path)
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise ConfigError(f"Cannot read {path} as CSV: {e}") from e
    if "model" not in table.columns:
        raise ConfigError(
            f"{path} has no 'model' column: expected a timm results CSV "
            "(model, top1, param_count, ... or model, infer_samples_per_sec, ...)."
        )
    entries, seen = [], set()
    for row in table.to_dict("records"):
        name = str(row.pop("model"))
        if name in seen:
            logger.warning("%s lists %s more than once; the first row is used", path, name)
            continue
        seen.add(name)
        entries.append(Entry(model=name, metrics=_numbers(row)))
    return Side(f"{path} (timm CSV)", entries, by_name=True, name=path.name)


def load_side(spec: str, results: str | Path = "results", all_runs: bool = False) -> Side:
    """A run id, a run document, a store folder or a timm CSV, as a Side."""
    path = Path(spec)
    if path.is_dir():
        return _store_side(path, all_runs)
    if path.is_file():
        return _timm_side(path) if path.suffix.lower() == ".csv" else _file_side(path)
    return _run_side(spec, Path(results))

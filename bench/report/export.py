"""Stored results in other tools' formats: ``python -m bench export``.

Every format starts from the same table: the tidy table (``tidy.tidy``, results.csv's columns)
of the latest records (``records.read_records``) of one run document or of a whole store.

- ``github-action-benchmark``: the custom JSON of github-action-benchmark, a list of
  ``{name, unit, value, range, extra}``, one entry per throughput measurement. The action reads
  one direction per file (its ``tool`` setting), so ``direction='bigger'`` gives samples/s and
  the accuracy gate's top-1 in % (``customBiggerIsBetter``) and ``direction='smaller'`` the
  step time in ms (``customSmallerIsBetter``).
- ``timm-csv``: timm's benchmark CSV (``model, infer_samples_per_sec, infer_step_time,
  infer_batch_size, infer_img_size, ...``), one table per (device, precision, layout, runtime
  and levers).
- ``jsonl``: the tidy table, one JSON object per line, empty cells as null.

Pure Python and pandas; no torch.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from pathlib import Path

from bench.errors import ConfigError, DataError
from bench.report.fmt import is_missing, is_number
from bench.report.records import read_records
from bench.report.tidy import tidy
from bench.report.workload import RANDOM_INIT, SCENARIO, workload_key

FORMATS = ("github-action-benchmark", "timm-csv", "jsonl")
DIRECTIONS = ("bigger", "smaller")
# a run's provenance, carried in each github-action-benchmark entry's ``extra``
PROVENANCE = ("run_id", "run_date", "machine", "device_name", "commit", "torch")
# timm's benchmark.py columns, in its order; a column no row fills is left out
TIMM_INFER = ("infer_samples_per_sec", "infer_step_time", "infer_batch_size", "infer_img_size",
              "infer_gmacs", "infer_macts")  # fmt: skip
TIMM_TRAIN = ("train_samples_per_sec", "train_step_time", "train_batch_size", "train_img_size")


@contextlib.contextmanager
def _held_warnings(name: str):
    """The warnings of logger ``name`` kept in a list instead of printed: an export's error
    says why its one document could not be read, in one line."""
    held: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            held.append(record.getMessage())

    log, handler = logging.getLogger(name), Keep(logging.WARNING)
    log.addHandler(handler)
    before, log.propagate = log.propagate, False
    try:
        yield held
    finally:
        log.removeHandler(handler)
        log.propagate = before


def load_table(path: str | Path):
    """The tidy table of a run document or a store folder; bad input is a ConfigError or
    a DataError."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p} does not exist. Give a run document (.json) or a results store.")
    if p.is_file() and p.suffix.lower() != ".json":
        raise ConfigError(f"{p} is not a run document (.json). Give one, or a results store.")
    if p.is_file():
        with _held_warnings("bench.storage") as held:
            records = read_records(p)
        why = f" ({held[0]})" if held else ""
    else:
        records, why = read_records(p), ""
    if not records.runs:
        what = "a run document" if p.is_file() else "a results store"
        raise DataError(
            f"{p} is not {what}: no run document could be read{why}. Give a file written by "
            "'python -m bench run' or its --out folder."
        )
    return tidy(records.latest)


def _throughput(table):
    if "harness" not in table.columns:
        return table.iloc[0:0]
    rows = table[table["harness"] == "throughput"]
    return rows[rows["mode"].notna()] if "mode" in rows.columns else rows.iloc[0:0]


def _device(row: dict) -> str:
    label = row.get("device_name")
    return label if isinstance(label, str) else str(row.get("device"))


def _how(row: dict, w, weights_file: bool = True) -> list[str]:
    """How a measurement ran beyond its precision and layout: runtime, levers, an --optimize
    search's winner (the same workload as the plain record, measured by the search), and the
    weights when they were read from somewhere (their file and the data they were checked on,
    or only their kind)."""
    out = [w.runtime, *w.levers]
    if w.scenario != SCENARIO:  # sync, the scenario of every earlier record, goes unnamed
        out.insert(0, w.scenario)
    if row.get("optimize") is True:
        out.append("optimize winner")
    if w.weights_source != RANDOM_INIT:
        out.append(f"weights {w.weights}" if weights_file and w.weights else w.weights_kind())
    if weights_file and w.data:
        out.append(f"data {w.data}")
    return out


def workload_name(row: dict, metric: str) -> str:
    """An entry's name: the model, the metric, its workload in words, and the device it ran
    on: 'lenet5 throughput [infer 32px batch 16 fp32 nchw torch] on AMD EPYC · AVX2 · 2 vCPU'."""
    w = workload_key(row)
    size = f"{w.img_size}px" if w.img_size else None
    batch = f"batch {w.batch}" if w.batch else None
    parts = [w.mode, size, batch, w.precision, w.layout, *_how(row, w)]
    return f"{w.model} {metric} [{' '.join(p for p in parts if p)}] on {_device(row)}"


def _extra(row: dict) -> str:
    return "; ".join(f"{k}: {row[k]}" for k in PROVENANCE if not is_missing(row.get(k)))


def _spread(value: float, row: dict, per_step: bool) -> str | None:
    """'± x': one standard deviation of the step times (ms), or its share of samples/s."""
    if per_step:
        sd = row.get("stddev")
        return f"± {sd:.4g}" if is_number(sd) else None
    cv = row.get("cv_pct")
    return f"± {value * cv / 100:.4g}" if is_number(cv) else None


def _entry(name: str, unit: str, value, row: dict, spread: str | None) -> dict:
    out = {"name": name, "unit": unit, "value": float(value)}
    if spread:
        out["range"] = spread
    out["extra"] = _extra(row)
    return out


def github_action_benchmark(table, direction: str = "bigger") -> list[dict]:
    """github-action-benchmark's custom entries of the table's throughput rows."""
    if direction not in DIRECTIONS:
        raise ConfigError(f"Unknown direction '{direction}'; use one of {', '.join(DIRECTIONS)}.")
    entries = []
    for row in _throughput(table).to_dict("records"):
        mode = row["mode"]
        sps, step = row.get(f"{mode}_samples_per_sec"), row.get(f"{mode}_step_time")
        if direction == "smaller":
            if is_number(step):
                entries.append(
                    _entry(
                        workload_name(row, "step time"), "ms", step, row, _spread(step, row, True)
                    )
                )
            continue
        if is_number(sps):
            entries.append(_entry(workload_name(row, "throughput"), "samples/s", sps, row,
                                  _spread(sps, row, False)))  # fmt: skip
        if is_number(row.get("candidate_top1")):
            entries.append(
                _entry(workload_name(row, "top-1"), "%", row["candidate_top1"], row, None)
            )
    return entries


def _group(row: dict) -> tuple[str, ...]:
    w = workload_key(row)
    return (_device(row), w.precision, w.layout, "-".join(_how(row, w, weights_file=False)))


def _timm_rows(rows: list[dict]) -> list[dict]:
    """One row per (model, input size, batch): inference and training side by side."""
    merged: dict[tuple, dict] = {}
    for row in rows:
        w = workload_key(row)
        out = merged.setdefault((row["model"], w.img_size, w.batch), {"model": row["model"]})
        own = [c for c in TIMM_INFER + TIMM_TRAIN if c.startswith(w.mode)]
        out.update({c: row[c] for c in own if not is_missing(row.get(c))})
        out[f"{w.mode}_img_size"], out[f"{w.mode}_batch_size"] = w.img_size, w.batch
        for col in ("infer_gmacs", "infer_macts"):  # the model's, beside either mode
            if is_number(row.get(col)):
                out.setdefault(col, row[col])
        if is_number(row.get("param_count")):
            out["param_count"] = round(row["param_count"], 2)  # millions, as timm writes it
    return list(merged.values())


def timm_tables(table) -> dict[tuple[str, ...], object]:
    """timm benchmark CSV tables by (device, precision, layout, runtime and levers)."""
    import pandas as pd

    groups: dict[tuple, list[dict]] = {}
    for row in _throughput(table).to_dict("records"):
        groups.setdefault(_group(row), []).append(row)
    out = {}
    for key, rows in sorted(groups.items()):
        frame = pd.DataFrame(_timm_rows(rows))
        cols = ["model", *TIMM_INFER, *TIMM_TRAIN, "param_count"]
        out[key] = frame[[c for c in cols if c in frame.columns]]
    return out


def timm_file_name(stem: Path, key: tuple[str, ...]) -> Path:
    """Where one of several timm tables goes: 'STEM-<device>-<precision>-<layout>-<runtime>.csv'
    beside ``stem`` (its .csv suffix dropped)."""
    from bench.storage import slug

    base = stem.with_suffix("") if stem.suffix.lower() == ".csv" else stem
    return base.with_name(f"{base.name}-{slug('-'.join(key))}.csv")


def jsonl(table) -> str:
    """The tidy table, one JSON object per line; empty cells (NaN) are null."""
    lines = []
    for row in table.to_dict("records"):
        clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}
        lines.append(json.dumps(clean, default=_plain, ensure_ascii=False))
    return "".join(line + "\n" for line in lines)


def _plain(v):
    """numpy scalars as Python numbers (json cannot write them)."""
    item = getattr(v, "item", None)
    if item is None:
        raise TypeError(f"cannot write {type(v).__name__} as JSON")
    out = item()
    return None if isinstance(out, float) and math.isnan(out) else out


def _texts(path: str | Path, fmt: str, direction: str) -> dict[tuple[str, ...], str]:
    """Each file's text, by its timm group (the key () for a one-file format)."""
    if fmt not in FORMATS:
        raise ConfigError(f"Unknown format '{fmt}'; use one of {', '.join(FORMATS)}.")
    table = load_table(path)
    if fmt == "jsonl":
        return {(): jsonl(table)}
    if fmt == "github-action-benchmark":
        entries = github_action_benchmark(table, direction)
        return {(): json.dumps(entries, indent=2, ensure_ascii=False) + "\n"}
    tables = timm_tables(table)
    if not tables:
        raise DataError(f"{path} holds no throughput measurement to write as a timm CSV.")
    texts = {key: t.to_csv(index=False) for key, t in tables.items()}
    return {(): next(iter(texts.values()))} if len(texts) == 1 else texts


def export(
    path: str | Path, fmt: str, out: str | Path | None = None, direction: str = "bigger"
) -> tuple[str | None, list[Path]]:
    """Write ``path``'s results in ``fmt``: (the text for stdout when ``out`` is None, else
    None; the files written). A timm-csv of several tables writes one file per table beside
    ``out``, which is then a stem (``timm_file_name``); without ``out`` that is an error."""
    texts = _texts(path, fmt, direction)
    if out is None:
        if len(texts) > 1:
            raise ConfigError(
                f"{path} gives {len(texts)} timm CSV tables (one per device, precision, layout "
                "and runtime); pass --out STEM to write them as STEM-<table>.csv."
            )
        return next(iter(texts.values())), []
    target = Path(out)
    if target.is_dir():
        raise ConfigError(f"--out {target} is a folder; give a file name (a stem for timm-csv).")
    target.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for key, text in texts.items():
        file = timm_file_name(target, key) if key else target
        file.write_text(text, encoding="utf-8")
        written.append(file)
    return None, written

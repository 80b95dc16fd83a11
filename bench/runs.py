"""The runs saved in a results store, one row each: ``python -m bench runs [STORE] [-k PATTERN]``.

Read through ``bench.report.records`` like every report; pure Python and pandas, no torch.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path

from bench.errors import ConfigError
from bench.registry.lookup import natural_key
from bench.report.records import read_records

SHOWN_MODELS = 4  # more are counted, not named


def _matches(pattern: str, names: list[str]) -> bool:
    """A wildcard matches a whole name; plain text matches any part of one."""
    wild = pattern if any(c in pattern for c in "*?[") else f"*{pattern}*"
    return any(fnmatchcase(n.lower(), wild.lower()) for n in names)


def _names(values) -> list[str]:
    return sorted({str(v) for v in values}, key=natural_key)


def list_runs(store: Path, keyword: str | None = None) -> list[dict[str, str]]:
    """One row per run document (id, date, machine, models, harnesses, status), oldest first;
    with ``keyword``, only runs with a model or harness that matches it."""
    if not store.is_dir():
        raise ConfigError(
            f"No results store at {store}/. Pass the store folder (default: results/)."
        )
    records = read_records(store)
    history = records.history
    rows = []
    for run in sorted(records.runs.values(), key=lambda r: (r.started_utc, r.run_id)):
        mine = history[history["results_file"] == run.results_file] if len(history) else history
        models = _names(mine["model"]) if len(mine) else []
        harnesses = _names(mine["harness"]) if len(mine) else []
        if keyword and not _matches(keyword, models + harnesses):
            continue
        more = f" (+{len(models) - SHOWN_MODELS})" if len(models) > SHOWN_MODELS else ""
        rows.append(
            {
                "id": run.run_id,
                "date": run.started_utc[:16].replace("T", " ") or "-",
                "machine": run.machine_name or "-",
                "models": ", ".join(models[:SHOWN_MODELS]) + more if models else "-",
                "harnesses": ", ".join(harnesses) or "-",
                "status": run.status,
            }
        )
    return rows


def runs_table(store: Path, keyword: str | None = None) -> str:
    """``list_runs`` as a GitHub-style table; no run to show is an error."""
    from tabulate import tabulate

    rows = list_runs(store, keyword)
    if not rows:
        like = f" with a model or harness like '{keyword}'" if keyword else ""
        raise ConfigError(f"No run in {store}/{like}.")
    return tabulate([list(r.values()) for r in rows], headers=list(rows[0]), tablefmt="github")

"""The runs of the store as the page shows them: each run's provenance (``Records.runs``) with
its anchor, a sentence saying where it comes from, and how many records it holds."""

from __future__ import annotations

from bench.report.records import Records, Run


def anchor(run_id: str) -> str:
    """The id of a run's row in the page's runs table (every Run cell links to it)."""
    return f"run-{run_id}"


def run_text(run: Run) -> str:
    return (
        f"run {run.run_id}, {run.date} UTC, {run.machine or '-'}, commit {run.commit}, "
        f"torch {run.torch}"
    )


def runs_oldest_first(records: Records) -> list[tuple[Run, int]]:
    """Every run of the store, oldest first, with the number of records it holds."""
    history = records.history
    counts = history["results_file"].value_counts().to_dict() if not history.empty else {}
    runs = sorted(records.runs.values(), key=lambda r: (r.started_utc, r.run_id, r.results_file))
    return [(r, int(counts.get(r.results_file, 0))) for r in runs]

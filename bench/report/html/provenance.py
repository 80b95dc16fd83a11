"""The runs of the store as the page shows them: each run's provenance (``Records.runs``) with
its anchor, a sentence saying where it comes from, and how many records it holds."""

from __future__ import annotations

from bench.report.fmt import provenance
from bench.report.records import Records, Run


def anchor(run_id: str) -> str:
    """The id of a run's row in the page's runs table (every Run cell links to it)."""
    return f"run-{run_id}"


def run_text(run: Run) -> str:
    """A run's provenance in words, as a record's is written (``fmt.provenance``)."""
    fields = {"run_date": run.date}
    return provenance(lambda k: fields[k] if k in fields else getattr(run, k, None), code=False)


def runs_oldest_first(records: Records) -> list[tuple[Run, int]]:
    """Every run of the store, oldest first, with the number of records it holds."""
    history = records.history
    counts = history["results_file"].value_counts().to_dict() if not history.empty else {}
    runs = sorted(records.runs.values(), key=lambda r: (r.started_utc, r.run_id, r.results_file))
    return [(r, int(counts.get(r.results_file, 0))) for r in runs]

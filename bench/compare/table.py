"""The comparison's rows and how they are written: markdown, CSV or JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from bench.compare.metrics import Change, change_text
from bench.compare.sides import Side
from bench.report.fmt import metric_cell


@dataclass
class Row:
    """One line of the comparison: a metric of a matched pair, or an unmatched record."""

    model: str
    harness: str
    device: str
    config: str
    metric: str
    base: float | None
    new: float | None
    change: Change | None
    noise_pct: float | None
    verdict: str
    failed: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "harness": self.harness,
            "device": self.device,
            "config": self.config,
            "metric": self.metric,
            "base": self.base,
            "new": self.new,
            "change": self.change.abs if self.change else None,
            "change_pct": self.change.pct if self.change else None,
            "noise_pct": self.noise_pct,
            "verdict": self.verdict,
            "failed": self.failed,
        }

    def where(self) -> str:
        return " ".join(p for p in (self.harness, self.device, self.config) if p)


COLUMNS = tuple(Row("", "", "", "", "", None, None, None, None, "").as_dict())


@dataclass
class Comparison:
    base: Side
    new: Side
    rows: list[Row] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def render(self, fmt: str = "markdown") -> str:
        if fmt == "json":
            doc = {
                "base": self.base.label,
                "new": self.new.label,
                "rows": [r.as_dict() for r in self.rows],
                "failures": self.failures,
            }
            return json.dumps(doc, indent=1) + "\n"
        import pandas as pd

        table = pd.DataFrame([r.as_dict() for r in self.rows], columns=list(COLUMNS))
        if fmt == "csv":
            return table.to_csv(index=False, lineterminator="\n")
        return _markdown(self)


def _matched_view(rows: list[Row]) -> list[dict[str, str]]:
    return [
        {
            "model": r.model,
            "where": r.where(),
            "metric": r.metric,
            "base": metric_cell(r.base),
            "new": metric_cell(r.new),
            "change": change_text(r.change),
            "verdict": r.verdict,
        }
        for r in rows
    ]


def _markdown(cmp: Comparison, limit: int = 30) -> str:
    import pandas as pd

    lines = [f"Base: {cmp.base.label}", f"New:  {cmp.new.label}", ""]
    matched = [r for r in cmp.rows if not r.verdict.startswith("only in")]
    if matched:
        view = pd.DataFrame(_matched_view(matched))
        lines.append(view.to_markdown(index=False, disable_numparse=True))
    else:
        lines.append("No metric in common.")
    for side in ("base", "new"):
        only = [r for r in cmp.rows if r.verdict == f"only in {side}"]
        if only:
            names = [f"{r.model} [{r.where()}]" if r.where() else r.model for r in only]
            more = f", ... and {len(names) - limit} more" if len(names) > limit else ""
            lines += ["", f"Only in {side} ({len(names)}): {', '.join(names[:limit])}{more}"]
    if cmp.failures:
        lines += ["", "Thresholds crossed:", *(f"- {f}" for f in cmp.failures)]
    return "\n".join(lines) + "\n"

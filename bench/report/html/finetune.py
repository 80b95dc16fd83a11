"""The fine-tune records as the page's learning curves read them (finetune.md's tables reach
the page through ``bench.report.sections``)."""

from __future__ import annotations

from bench.registry.lookup import natural_key as natural
from bench.report.html.chapter import ok_records


def finetune_records(frame) -> list[dict]:
    """The fine-tune records as the page's plots read them (config and metrics apart)."""
    return sorted(
        ok_records(frame, "finetune"),
        key=lambda r: (
            natural(r["model"]),
            str(r["config"].get("dataset")),
            str(r["config"].get("init")),
            r["config_key"],
            r["device"],
        ),
    )

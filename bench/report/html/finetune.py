"""The page's fine-tune section: finetune.md's blocks (headings, paragraphs, tables with the
same columns) drawn as the page's sortable tables, each row's run linked to the runs table."""

from __future__ import annotations

from bench.registry.lookup import natural_key as natural
from bench.report.blocks import Para
from bench.report.finetune import INTRO as FINETUNE_INTRO
from bench.report.finetune import finetune_blocks as finetune_report_blocks
from bench.report.html.blocks import page_blocks, plain
from bench.report.html.chapter import ok_records
from bench.report.html.render import Text
from bench.report.trained import finetune_rows


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


def finetune_blocks(frame) -> list:
    rows = finetune_rows(frame)
    if not rows:
        return [Text(plain(FINETUNE_INTRO)), Text("No fine-tune records yet.")]
    blocks = [Para(FINETUNE_INTRO), *finetune_report_blocks(rows)]
    return page_blocks(blocks, "finetune-part")

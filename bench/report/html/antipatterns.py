"""The page's anti-patterns section: antipatterns.md's blocks with the same columns."""

from __future__ import annotations

from bench.report.antipatterns import INTRO as ANTIPATTERN_INTRO
from bench.report.antipatterns import antipattern_blocks as antipattern_report_blocks
from bench.report.blocks import Para
from bench.report.html.blocks import page_blocks
from bench.report.trained import finetune_rows


def antipattern_blocks(frame) -> list:
    blocks = [Para(ANTIPATTERN_INTRO), *antipattern_report_blocks(finetune_rows(frame))]
    return page_blocks(blocks, "antipatterns-part")

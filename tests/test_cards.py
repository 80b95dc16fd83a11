"""The model cards held against the harnesses (after torchvision's test_extended_models).

Every card's published parameter count must equal the measured count exactly, its GMACs be
within 1% of the measurement, and its depth (where it states one) equal the measured depth.
The cards of the convolution types hold the chapter's formulas instead: evaluated at the
layer's sizes they must give the measured parameters and MACs exactly.
All mismatches are collected and reported in one failure.
"""

from __future__ import annotations

import re

import pytest

from bench.harness.base import Job
from bench.harness.depth import DepthHarness
from bench.harness.flops import FlopsHarness
from bench.harness.params import ParamsHarness
from bench.registry.cards import chapter_table, load_cards
from bench.registry.lookup import Registry


@pytest.mark.slow
def test_cards_match_measurements():
    registry = Registry()
    problems = []
    for card in load_cards().values():
        job = Job(registry.get(card.name))
        pub = card.published
        params = ParamsHarness().measure(job)[0].metrics["params"]
        expected = pub.params if pub.params is not None else card.formula_value("params")
        if params != expected:
            problems.append(f"{card.name}: params card {expected:,} measured {params:,}")
        if card.formula.get("macs"):
            macs = FlopsHarness().measure(job)[0].metrics["macs"]
            if macs != card.formula_value("macs"):
                problems.append(
                    f"{card.name}: MACs formula {card.formula_value('macs'):,} measured {macs:,}"
                )
        if pub.gmacs is not None:
            gmacs = FlopsHarness().measure(job)[0].metrics["infer_gmacs"]
            if abs(gmacs - pub.gmacs) > 0.01 * pub.gmacs:
                problems.append(f"{card.name}: GMACs card {pub.gmacs} measured {gmacs:.4f}")
        if pub.depth is not None:
            depth = DepthHarness().measure(job)[0].metrics["depth"]
            if depth != pub.depth:
                problems.append(f"{card.name}: depth card {pub.depth} measured {depth}")
        job.release()
    assert not problems, "cards disagree with measurement:\n" + "\n".join(problems)


def test_card_figures_quoting_torchvision_match_its_metadata():
    """A card that cites torchvision's weight metadata must quote it exactly."""
    import torchvision.models as tvm

    problems = []
    for card in load_cards().values():
        pub = card.published
        for field, meta_key in (("params", "num_params"), ("gmacs", "_ops"), ("top1", "acc@1")):
            source = getattr(pub, f"{field}_source")
            m = re.match(r"torchvision (\w+)\.(\w+) meta", source)
            if not m:
                continue
            weights = getattr(tvm, m.group(1))[m.group(2)]
            meta = weights.meta["_metrics"]["ImageNet-1K"] if meta_key == "acc@1" else weights.meta
            if meta[meta_key] != getattr(pub, field):
                problems.append(
                    f"{card.name}.{field}: card {getattr(pub, field)} torchvision {meta[meta_key]}"
                )
    assert not problems, "\n".join(problems)


def test_every_chapter_card_names_its_papers_figures():
    """The paper's top-1 sits beside the weights' in chapter.md: each card of the chapter's table
    says where its paper's figures come from (a table), or why it has none, and never quotes
    torchvision's weights as the paper."""
    problems = []
    for card in chapter_table():
        paper = card.paper
        if not paper.source:
            problems.append(f"{card.name}: [paper] has no source")
        elif paper.top1 is not None and "Table" not in paper.source:
            problems.append(f"{card.name}: [paper] top1 names no table: {paper.source}")
        elif paper.top1 is None and "no " not in paper.source:
            problems.append(f"{card.name}: [paper] gives no top-1 and does not say why")
        if "torchvision" in paper.source:
            problems.append(f"{card.name}: [paper] quotes torchvision, not the paper")
        if paper.top1 is not None and paper.top1 == card.published.top1:
            problems.append(f"{card.name}: [paper] top1 is the weights' figure")
    assert not problems, "\n".join(problems)

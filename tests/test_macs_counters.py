"""A MACs figure for every model that runs: fvcore's, else torch's FlopCounterMode's, labelled."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch import nn

from bench.errors import CountError
from bench.harness.base import Job
from bench.harness.depth import DepthHarness
from bench.harness.flops import FlopsHarness
from bench.registry import ModelSpec


class ClassAttention(nn.Module):
    """A class-attention block's shape: the patch tokens and the class token as two inputs."""

    def __init__(self, dim):
        super().__init__()
        self.q, self.kv = nn.Linear(dim, dim), nn.Linear(dim, 2 * dim)

    def forward(self, x, cls_token):
        k, v = self.kv(x).chunk(2, dim=-1)
        scores = (self.q(cls_token) @ k.transpose(1, 2)).softmax(-1)
        return cls_token + scores @ v


class TinyCaiT(nn.Module):
    """CaiT's pattern: the class token, a parameter, expanded to the batch (a view that under
    no_grad still requires grad and has no gradient function) and handed to a submodule."""

    def __init__(self, dim=4):
        super().__init__()
        self.embed = nn.Linear(3, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.block = ClassAttention(dim)

    def forward(self, x):
        x = self.embed(x.flatten(2).transpose(1, 2))  # (1, 16, dim)
        cls_token = self.block(x, self.cls_token.expand(x.shape[0], -1, -1))
        return cls_token[:, 0]


@dataclass
class Output:
    logits: torch.Tensor


class Untraceable(nn.Module):
    """A model whose output torch.jit.trace, fvcore's tracer, refuses (an object, not tensors);
    FlopCounterMode, which watches the model run, counts it."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3)

    def forward(self, x):
        return Output(self.conv(x))


def tiny_job(model: nn.Module) -> Job:
    spec = ModelSpec(name="tiny", source="test", input_size=(3, 4, 4), builder=lambda **kw: model)
    return Job(spec)


TINY_CAIT_MACS = 16 * 3 * 4 + 4 * 4 + 16 * 4 * 8 + 16 * 4 + 16 * 4  # embed, q, kv, q k^T, s v


def test_a_model_whose_class_token_view_requires_grad_is_counted_by_both_counters():
    # timm's CaiT failed the flops and depth harnesses: "AssertionError: Expected gradient
    # function to be set" from FlopCounterMode's module tracker
    job = tiny_job(TinyCaiT())
    (m,) = FlopsHarness().measure(job)
    assert m.metrics["macs_counter"] == "fvcore"
    assert m.metrics["macs"] == TINY_CAIT_MACS
    assert m.metrics["flopcounter_gmacs"] == round(TINY_CAIT_MACS / 1e9, 6)
    assert "flopcounter_error" not in m.metrics
    assert DepthHarness().measure(job)[0].metrics["depth"] == 3  # embed, kv, q k^T
    assert all(p.requires_grad for p in job.model().parameters()), "parameters left frozen"


def test_a_model_fvcore_cannot_trace_gets_flopcounters_figure_labelled():
    (m,) = FlopsHarness().measure(tiny_job(Untraceable()))
    conv = 2 * 3 * 9 * 2 * 2
    assert m.metrics["macs_counter"] == "torch.flop_counter"
    assert m.metrics["macs"] == conv
    assert m.metrics["infer_gmacs"] == m.metrics["flopcounter_gmacs"] == round(conv / 1e9, 6)
    assert m.metrics["fvcore_error"].startswith("RuntimeError: ")
    assert "infer_macts" not in m.metrics  # activations are fvcore's count only


def test_a_model_fvcore_traces_keeps_fvcores_figure():
    model = nn.Sequential(nn.Conv2d(3, 2, 3), nn.BatchNorm2d(2)).eval()
    (m,) = FlopsHarness().measure(tiny_job(model))
    conv, norm = 2 * 3 * 9 * 2 * 2, 2 * 2 * 2 * 2  # fvcore: batch norm 2 per element
    assert m.metrics["macs_counter"] == "fvcore"
    assert m.metrics["macs"] == conv + norm
    assert m.metrics["flopcounter_gmacs"] == round(conv / 1e9, 6)
    assert "fvcore_error" not in m.metrics


def test_a_model_neither_counter_can_count_names_both_failures():
    class Broken(nn.Module):
        def forward(self, x):
            raise ValueError("no forward here")

    with pytest.raises(CountError, match=r"fvcore: ValueError.*FlopCounterMode: ValueError"):
        FlopsHarness().measure(tiny_job(Broken()))


def models_md(*rows: dict) -> str:
    import pandas as pd

    from bench.report.sections import SECTIONS, section_markdown

    (models,) = [s for s in SECTIONS if s.name == "models"]
    table = pd.DataFrame([{"source": "timm", "params": 10, **r} for r in rows])
    return section_markdown(models, None, table)


def test_models_md_labels_a_figure_flopcounter_gave():
    text = models_md(
        {"model": "traced", "macs_counter": "fvcore", "infer_gmacs": 1.5, "flopcounter_gmacs": 1.4},
        {
            "model": "untraced",
            "macs_counter": "torch.flop_counter",
            "infer_gmacs": 2.5,
            "flopcounter_gmacs": 2.5,
            "fvcore_error": "RuntimeError: Only tuples, lists and Variables are supported",
        },
    )
    lines = text.splitlines()
    (marked,) = [line for line in lines if "[^flopcounter]" in line and line.startswith("|")]
    assert marked.startswith("| untraced")
    assert "2.5 [^flopcounter]" in marked
    assert any(
        line.startswith("[^flopcounter]: Counted by torch's FlopCounterMode") for line in lines
    )
    (second,) = [line for line in lines if line.startswith("| untraced") and "not traced" in line]
    assert "not traced: RuntimeError: Only tuples" in second
    assert second.split("|")[2].strip() == "-", "fvcore's column shows fvcore's figure only"
    assert max(len(line) for line in lines) <= 160


def test_models_md_stays_quiet_when_fvcore_counted():
    text = models_md(
        {"model": "traced", "macs_counter": "fvcore", "infer_gmacs": 1.5},
        {"model": "old", "infer_gmacs": 0.5},
    )
    assert "[^" not in text
    assert "not traced" not in text


def test_models_md_fits_a_screen_with_timms_uncounted_ops():
    # bat_resnext26ts at fvcore's count: 10 kinds of op uncounted, a 129-character cell
    ops = (
        "adaptive_max_pool2dx16 addx16 divx16 eyex12 feature_dropoutx8 max_pool2dx1 mulx60 "
        "sigmoidx16 silu_x27 sumx16"
    )
    name = "vit_large_patch14_clip_quickgelu_336.openai_ft_in12k"[:50]
    text = models_md({"model": name, "infer_gmacs": 191.1, "uncounted_ops": ops})
    assert max(len(line) for line in text.splitlines()) <= 160
    assert "adaptive_max_pool2dx16 addx16" in text

"""MACs for every model that runs: both counters on models that tripped one of them."""

from __future__ import annotations

import torch
from torch import nn

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


def tiny_job(model: nn.Module) -> Job:
    spec = ModelSpec(name="tiny", source="test", input_size=(3, 4, 4), builder=lambda **kw: model)
    return Job(spec)


TINY_CAIT_MACS = 16 * 3 * 4 + 4 * 4 + 16 * 4 * 8 + 16 * 4 + 16 * 4  # embed, q, kv, q k^T, s v


def test_a_model_whose_class_token_view_requires_grad_is_counted_by_both_counters():
    # timm's CaiT failed the flops and depth harnesses: "AssertionError: Expected gradient
    # function to be set" from FlopCounterMode's module tracker
    job = tiny_job(TinyCaiT())
    (m,) = FlopsHarness().measure(job)
    assert m.metrics["macs"] == TINY_CAIT_MACS
    assert m.metrics["flopcounter_gmacs"] == round(TINY_CAIT_MACS / 1e9, 6)
    assert DepthHarness().measure(job)[0].metrics["depth"] == 3  # embed, kv, q k^T
    assert all(p.requires_grad for p in job.model().parameters()), "parameters left frozen"

"""Params, MACs and depth on tiny models whose answers are known by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.harness.counting import count_macs, flopcounter_mode, measure_depth, sdpa_macs
from bench.harness.params import count_parameters


def count_flopcounter(model, example) -> int:
    """FLOPs as torch's FlopCounterMode counts them (2 per multiply-accumulate), with the
    attention formulas cnn-bench adds: an independent count beside fvcore's."""
    with torch.no_grad(), flopcounter_mode() as counter:
        model(example)
    return int(counter.get_total_flops())


class Branchy(nn.Module):
    """A main branch of three convs beside a one-conv shortcut, then a linear head."""

    def __init__(self):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1),
            nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1),
        )  # fmt: skip
        self.shortcut = nn.Conv2d(3, 4, 1)
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        y = self.main(x)
        y += self.shortcut(x)  # in-place add keeps the deeper branch
        return self.head(y.mean((2, 3)))


class SelfAttention(nn.Module):
    def __init__(self, dim=8, heads=2):
        super().__init__()
        self.qkv, self.proj, self.heads = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim), heads

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        x = nn.functional.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


def test_depth_counts_the_longest_branch_once():
    assert measure_depth(Branchy().eval(), torch.randn(1, 3, 8, 8)) == 4


def test_depth_ignores_weightless_matmuls():
    # qkv and proj count; q @ k and attn @ v (both from the input) do not
    assert measure_depth(SelfAttention().eval(), torch.randn(1, 5, 8)) == 2


def test_depth_counts_a_functional_weight_matmul():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(4, 4))

        def forward(self, x):
            return (x @ self.w) @ self.w.t()

    assert measure_depth(Functional(), torch.randn(2, 4)) == 2


def test_params_count_shared_weights_once():
    shared = nn.Linear(4, 4)
    model = nn.Sequential(shared, shared)
    model[0].bias.requires_grad = False
    assert count_parameters(model) == (20, 16)


def test_sdpa_formula():
    assert sdpa_macs([2, 3, 5, 4], [2, 3, 7, 4], [2, 3, 7, 6]) == 2 * 3 * 5 * 7 * (4 + 6)


@pytest.mark.parametrize("fast_path", [False, True])
def test_attention_is_counted_by_fvcore_and_flopcounter(fast_path):
    e, n, heads = 16, 10, 4
    linear = 3 * n * e * e + n * e * e  # in-projection and out-projection
    attention = 2 * n * n * e
    if fast_path:  # nn.MultiheadAttention's fused kernel, as torchvision's ViT uses it
        mha = nn.MultiheadAttention(e, heads, batch_first=True).eval()

        class Wrap(nn.Module):
            def __init__(self):
                super().__init__()
                self.mha = mha

            def forward(self, x):
                return self.mha(x, x, x, need_weights=False)[0]

        model = Wrap().eval()
    else:
        model = SelfAttention(e, heads).eval()
    x = torch.randn(1, n, e)
    assert count_macs(model, x)["macs"] == linear + attention
    assert count_flopcounter(model, x) == 2 * (linear + attention)


def test_transformer_encoder_layer_fast_path_is_counted():
    e, n, hidden = 16, 6, 32
    layer = nn.TransformerEncoderLayer(e, 2, hidden, batch_first=True).eval()
    x = torch.randn(1, n, e)
    expected = 4 * n * e * e + 2 * n * n * e + 2 * n * e * hidden
    assert count_flopcounter(layer, x) == 2 * expected
    fv = count_macs(layer, x)
    norms = 2 * 5 * n * e  # fvcore counts layer norm as 5 per element
    assert fv["macs"] in (expected, expected + norms)


def test_uncounted_ops_are_listed():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.MaxPool2d(2)).eval()
    fv = count_macs(model, torch.randn(1, 1, 8, 8))
    assert fv["macs"] == 2 * 9 * 6 * 6
    assert fv["uncounted_ops"] == {"aten::max_pool2d": 1}

"""Every number of the chapter's section 1 that the report shows, held against torch."""

from __future__ import annotations

import pytest

from bench.report import section1 as s1

torch = pytest.importorskip("torch")
F = torch.nn.functional


def test_worked_example_is_what_conv2d_computes():
    x = torch.tensor(s1.WORKED_INPUT, dtype=torch.float32)[None, None]
    k = torch.tensor(s1.WORKED_KERNEL, dtype=torch.float32)[None, None]
    expected = F.conv2d(x, k)[0, 0].round().int().tolist()
    assert [list(r) for r in s1.cross_correlate(s1.WORKED_INPUT, s1.WORKED_KERNEL)] == expected
    assert expected != [list(r) for r in s1.PRINTED_OUTPUT]  # the chapter's figure is off


@pytest.mark.parametrize("padding", [0, 1])
@pytest.mark.parametrize("stride", [1, 2])
def test_cross_correlation_with_padding_and_stride(padding, stride):
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 5, (7, 7), generator=gen)
    k = torch.randint(-2, 3, (3, 3), generator=gen)
    mine = s1.cross_correlate(x.tolist(), k.tolist(), stride=stride, padding=padding)
    ref = F.conv2d(x[None, None].float(), k[None, None].float(), stride=stride, padding=padding)
    assert [list(r) for r in mine] == ref[0, 0].round().int().tolist()


@pytest.mark.parametrize(("n", "k", "s"), s1.SIZE_CASES)
def test_output_sizes_are_torchs(n, k, s):
    x = torch.zeros(1, 1, n, n)
    for p in (0, (k - 1) // 2):
        conv = torch.nn.Conv2d(1, 1, k, stride=s, padding=p)
        assert conv(x).shape[-1] == s1.conv_size(n, k, p, s)
    if s == 1:  # torch's own padding="same" (stride 1 only) keeps the size, as p = (k-1)/2 does
        same = torch.nn.Conv2d(1, 1, k, padding="same")
        assert same(x).shape[-1] == n == s1.conv_size(n, k, (k - 1) // 2, 1)


def test_trainable_share_is_the_frozen_transfer_models():
    """head_params of the params harness is what example 4 counts as trainable when frozen."""
    from bench.harness import get_harness, make_job
    from bench.registry import Registry

    spec = Registry().get("resnet50_transfer")
    (m,) = get_harness("params").measure(make_job(spec, "params"))
    frozen = spec.build(freeze_backbone=True)
    trainable = sum(p.numel() for p in frozen.parameters() if p.requires_grad)
    assert m.metrics["head_params"] == trainable == 1_051_653

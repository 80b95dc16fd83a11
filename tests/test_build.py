"""The static harnesses' cheap build (``bench.harness.build``): parameters on the meta
device, zeroed memory for the passes that run the model, a real build where that would lose
values, and parameters counted for a model too large to build."""

from __future__ import annotations

import pytest

from bench.errors import ModelTooLargeError
from bench.harness import build, get_harness, make_job
from bench.registry.lookup import ModelSpec

torch = pytest.importorskip("torch")
nn = torch.nn


def tiny(pretrained=False, **kwargs):
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))


class MaskFromWeights(nn.Module):
    """A buffer computed in ``__init__`` from a parameter (as Swin-S3's attention masks):
    built with meta parameters, the buffer lands on meta and its values are lost."""

    def __init__(self):
        super().__init__()
        self.net = tiny()
        self.register_buffer("mask", (self.net[0].weight.detach().sum() > -1e9).float())

    def forward(self, x):
        return self.net(x) * self.mask


def mask_from_weights(pretrained=False, **kwargs):
    return MaskFromWeights()


def _job(builder, harness="flops"):
    spec = ModelSpec(name=builder.__name__, source="test", input_size=(1, 8, 8), builder=builder)
    return make_job(spec, harness, device="cpu", isolate=False)


def test_uninitialised_build_counts_the_same_parameters_and_materialises_zeros():
    spec = ModelSpec(name="tiny", source="test", input_size=(1, 8, 8), builder=tiny)
    meta = build.build_uninitialised(spec)
    assert all(p.is_meta for p in meta.parameters())
    real = tiny()
    assert sum(p.numel() for p in meta.parameters()) == sum(p.numel() for p in real.parameters())
    model = build.materialise(meta)
    assert not any(p.is_meta for p in model.parameters())
    assert all(not p.detach().any() for p in model.parameters())


def test_a_value_computed_from_a_meta_parameter_is_built_for_real():
    spec = ModelSpec(name="m", source="test", input_size=(1, 8, 8), builder=mask_from_weights)
    assert build.left_on_meta(build.build_uninitialised(spec)) == "mask"
    job = _job(mask_from_weights)
    job.skip_init = True
    model = job.model()
    assert build.left_on_meta(model) is None
    assert float(model.mask) == 1.0  # the value __init__ computed, not a zero
    (m,) = get_harness("flops").measure(job)
    assert m.status == "ok"
    assert m.metrics["macs"] == 4 * 36 * 9 + 144 * 10  # conv and linear


def test_a_model_too_large_to_build_still_has_its_parameters_counted(monkeypatch):
    monkeypatch.setattr(build, "available_memory_bytes", lambda: 1024)  # 1 KiB left
    job = _job(tiny, "params")
    job.skip_init = True
    with pytest.raises(ModelTooLargeError, match="larger machine"):
        job.model()
    meta = job.meta_model()
    assert sum(p.numel() for p in meta.parameters()) == sum(p.numel() for p in tiny().parameters())

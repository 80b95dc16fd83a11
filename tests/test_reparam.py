"""Reparameterisable models: both forms counted by the static harnesses, and the inference
form computing what the training form computes."""

from __future__ import annotations

import pytest

from bench.harness.base import Job, RunConfig
from bench.harness.flops import FlopsHarness
from bench.harness.params import ParamsHarness
from bench.harness.reparam import inference_form, reparameterisable
from bench.registry.lookup import Registry


@pytest.fixture(scope="module")
def registry():
    return Registry()


def test_params_and_flops_report_both_forms(registry):
    job = Job(registry.get("mobileone_s0"), RunConfig(device="cpu", img_size=64))
    (p,) = ParamsHarness().measure(job)
    (f,) = FlopsHarness().measure(job)
    assert p.metrics["params_inference"] == 2_078_504  # timm publishes 2.08M
    assert p.metrics["param_count_inference"] == 2.079
    assert p.metrics["params"] > p.metrics["params_inference"]
    assert 0 < f.metrics["infer_gmacs_inference"] < f.metrics["infer_gmacs"]


def test_plain_model_has_no_inference_form(registry):
    job = Job(registry.get("resnet10t"), RunConfig(device="cpu", img_size=64))
    (p,) = ParamsHarness().measure(job)
    (f,) = FlopsHarness().measure(job)
    assert "params_inference" not in p.metrics
    assert "infer_gmacs_inference" not in f.metrics


def test_inference_form_agrees_with_training_form(registry):
    import torch

    from bench.harness.throughput.reference import FP32_TOLERANCE

    torch.manual_seed(0)
    model = registry.get("mobileone_s0").build(pretrained=False).eval()
    assert reparameterisable(model)
    before = sum(t.numel() for t in model.parameters())
    folded = inference_form(model)
    assert sum(t.numel() for t in model.parameters()) == before  # the model is left as it is
    assert sum(t.numel() for t in folded.parameters()) < before
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        a, b = model(x), folded(x)
    assert float((a - b).abs().max()) <= FP32_TOLERANCE * max(1.0, float(a.abs().max()))

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


@pytest.mark.slow
def test_optimize_times_the_inference_form_as_an_exact_candidate(registry):
    from dataclasses import replace

    from bench.harness.throughput.config import Settings, ThroughputConfig
    from bench.harness.throughput.measure import Candidate
    from bench.harness.throughput.model_run import ModelRun
    from bench.harness.throughput.optimize import INFERENCE, Option, _candidate_row, _try
    from bench.harness.throughput.timing import WarmupPolicy

    config = ThroughputConfig(optimize=True, min_time_s=0.02, min_steps=2)
    run = RunConfig(device="cpu", batch_sizes=(2,), img_size=64)
    quick = WarmupPolicy(min_steps=1, max_steps=3, max_time_s=0.5)
    settings = replace(Settings.of(run, config), warmup=quick)
    model_run = ModelRun.build(Job(registry.get("mobileone_s0"), run, config), settings, "cpu")
    option = Option(Candidate("infer", "fp32", False, False), form=INFERENCE)
    opt, metrics, err = _try(model_run, option, 2, "infer")
    assert err is None
    assert metrics["agrees"] is True  # within the fp32 tolerance of the training form
    row = _candidate_row(opt, metrics, err, "infer_samples_per_sec")
    assert row["form"] == INFERENCE
    assert row["error"] is None
    assert row["infer_samples_per_sec"] > 0

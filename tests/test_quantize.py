"""--optimize's lossy candidates: INT8 through ONNX Runtime, gated by top-1 on real images."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bench.harness.base import Job, RunConfig
from bench.harness.throughput.config import Settings, ThroughputConfig
from bench.harness.throughput.measure import Candidate
from bench.harness.throughput.model_run import ModelRun
from bench.harness.throughput.optimize import optimize
from bench.harness.throughput.quantize import measure_int8
from bench.harness.throughput.timing import WarmupPolicy
from bench.registry.lookup import Registry

pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.slow  # trains a small model, exports and quantizes it
SIZE = 8  # the digits' own size


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """simple_cnn trained for a few epochs on scikit-learn's 8x8 digits (a state dict)."""
    import torch
    import torch.nn.functional as F

    from bench.harness.datasets import load_digits
    from bench.harness.throughput.gate import _Prep

    data = load_digits()
    mean, std = data.mean_std()
    x = _Prep((1, SIZE, SIZE), 1, 1, mean, std)(data.x_train)
    torch.manual_seed(0)
    model = Registry().get("simple_cnn").build(num_classes=10)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(5):
        model.train()
        for idx in torch.randperm(len(x)).split(64):
            opt.zero_grad()
            F.cross_entropy(model(x[idx]), data.y_train[idx]).backward()
            opt.step()
    path = tmp_path_factory.mktemp("w") / "simple_cnn_digits.pth"
    torch.save(model.state_dict(), path)
    return str(path)


def _run(rounds: int = 1, runtimes=("onnxruntime",), **options) -> ModelRun:
    options.setdefault("accuracy_min_images", 360)  # the digits' held-out split
    config = ThroughputConfig(optimize=True, optimize_rounds=rounds, runtimes=runtimes,
                              min_time_s=0.02, min_steps=2, **options)  # fmt: skip
    run = RunConfig(device="cpu", batch_sizes=(16,), img_size=SIZE)
    job = Job(Registry().get("simple_cnn"), run, config)
    quick = WarmupPolicy(min_steps=1, max_steps=3, max_time_s=0.5)
    return ModelRun.build(job, replace(Settings.of(run, config), warmup=quick), "cpu")


def _int8_row(metrics: dict, runtime: str = "onnxruntime") -> dict:
    (row,) = [r for r in metrics["candidates"] if r["precision"] == "int8"
              and r["runtime"] == runtime]  # fmt: skip
    return row


def test_int8_of_a_trained_model_is_within_budget_by_the_point_rule(trained):
    run = _run(rounds=2, weights=trained, val_data="digits", accuracy_rule="point")
    metrics, _ = optimize(run, Candidate("infer", "fp32", False, False), 16)
    row = _int8_row(metrics)
    assert row["within_budget"] is True
    assert row["error"] is None
    assert row["fp32_top1"] > 80
    assert row["top1_drop"] <= 0.5
    # the paired figures are recorded whatever the rule
    assert (row["accuracy_images"], row["accuracy_rule"]) == (360, "point")
    assert row["images_lost"] - row["images_gained"] == round(row["top1_drop"] * 360 / 100)
    assert row["top1_drop_low"] <= row["top1_drop"] <= row["top1_drop_high"]
    assert 0 < row["mcnemar_p"] <= 1
    # timed in the same rounds as the others (and once more if untrusted as the fastest)
    again = "onnxruntime int8 nchw" in metrics.get("optimize_remeasured", [])
    assert len(row["rounds_samples_per_sec"]) == 2 + again
    gate = metrics["accuracy_gate"]
    assert gate["accuracy_images"] == 360
    assert gate["calibration_images"] == 128
    assert gate["calibration_data"] == "digits training split"  # disjoint from held-out


def test_int8_offline_is_timed_in_waves_and_judged_by_the_gate(trained):
    run = _run(weights=trained, val_data="digits", accuracy_rule="point", scenario="offline")
    metrics, _ = optimize(run, Candidate("infer", "fp32", False, False), 16)
    row = _int8_row(metrics)
    assert row["error"] is None  # no longer skipped offline
    assert row["infer_samples_per_sec"] > 0
    assert row["within_budget"] is True
    m = measure_int8(run, Candidate("infer", "int8", False, False, "onnxruntime"), 16)
    assert m["scenario"] == "offline"  # a wave of concurrent requests, like fp32's
    assert m["offline_requests"] >= 1
    assert m["infer_samples_per_sec"] > 0


def test_the_interval_rule_refuses_int8_that_360_images_cannot_bound(trained):
    """On the digits' 360 held-out images even an INT8 that loses nothing has an interval
    reaching about a point: over a budget of 0.5, measured and shown, never chosen."""
    run = _run(weights=trained, val_data="digits", accuracy_budget=0.5)
    metrics, chosen = optimize(run, Candidate("infer", "fp32", False, False), 16)
    row = _int8_row(metrics)
    assert (row["accuracy_rule"], row["accuracy_budget"]) == ("interval", 0.5)
    assert row["top1_drop_high"] > 0.5
    assert row["within_budget"] is False
    assert "its upper end is over the budget of 0.5: never chosen" in row["error"]
    assert row["infer_samples_per_sec"] > 0
    assert chosen.precision != "int8"
    assert metrics["accuracy_gate"]["accuracy_rule"] == "interval"


def test_openvino_int8_through_nncf_is_scored_and_timed(trained):
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    run = _run(runtimes=("openvino",), weights=trained, val_data="digits", accuracy_budget=3.0)
    metrics, _ = optimize(run, Candidate("infer", "fp32", False, False), 16)
    row = _int8_row(metrics, "openvino")
    assert row["error"] is None
    assert row["infer_samples_per_sec"] > 0
    assert row["fp32_top1"] > 80
    assert row["within_budget"] is True  # int8 of a small convnet on the digits keeps its top-1


def test_int8_calibrated_on_a_constant_image_is_never_chosen(trained):
    run = _run(weights=trained, val_data="digits", accuracy_budget=0.5)
    data = run.gate.data()
    run.gate._data = replace(data, calibration=data.calibration[:1].mul(0).add(5).expand_as(
        data.calibration).contiguous())  # fmt: skip
    metrics, chosen = optimize(run, Candidate("infer", "fp32", False, False), 16)
    row = _int8_row(metrics)
    assert row["within_budget"] is False
    assert row["top1_drop"] > 0.5
    assert row["infer_samples_per_sec"] > 0  # measured and shown
    assert "over the budget" in row["error"]
    assert "never chosen" in row["error"]
    assert chosen.precision != "int8"


def test_without_weights_or_data_int8_is_skipped_with_the_reason():
    metrics, chosen = optimize(_run(), Candidate("infer", "fp32", False, False), 16)
    row = _int8_row(metrics)
    assert row["infer_samples_per_sec"] is None
    assert row["error"].startswith("skipped: a lossy candidate needs real weights")
    assert "--val-data" in row["error"]
    assert chosen.precision != "int8"


def test_a_folder_of_finetune_checkpoints_quantizes_each_model_with_its_own(tmp_path):
    """The chapter's quantization command in small: fine-tune, then ``--optimize --weights
    FOLDER --val-data``; the model without a checkpoint is a row with the reason, and the report
    sets INT8 beside the best fp32 candidate."""
    import json
    import subprocess
    import sys

    from bench.report.generate import generate

    ck, results = tmp_path / "ck", tmp_path / "results"
    common = ["--img-size", "16", "--out", str(results), "--no-progress", "--no-isolate"]
    subprocess.run([sys.executable, "-m", "bench", "run", "--models", "simple_cnn", "--harness",
                    "finetune", "--dataset", "digits", "--epochs", "1", "--checkpoint-dir",
                    str(ck), *common], check=True, capture_output=True)  # fmt: skip
    (checkpoint,) = ck.glob("simple_cnn-*.pt")
    done = subprocess.run([sys.executable, "-m", "bench", "run", "--models", "simple_cnn,lenet5",
                           "--harness", "throughput", "--optimize", "--runtime", "onnxruntime",
                           "--device", "cpu", "--batch-size", "16", "--min-time", "0.05",
                           "--min-steps", "2", "--optimize-rounds", "1", "--weights", str(ck),
                           "--val-data", "digits", "--accuracy-min-images", "360", *common],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 1, done.stderr  # one model failed: a row, and the run went on
    assert "failed: 1 of 2 model(s): lenet5" in done.stderr + done.stdout
    records = {}
    for doc in results.glob("*/*.json"):
        for r in json.loads(doc.read_text())["records"]:
            records[(r["model"], r["harness"])] = r
    ok = records[("simple_cnn", "throughput")]
    assert ok["status"] == "ok"
    assert ok["metrics"]["init_file"] == checkpoint.name  # the record names the checkpoint
    assert _int8_row(ok["metrics"])["candidate_top1"] is not None
    failed = records[("lenet5", "throughput")]
    assert failed["status"] == "error"
    assert (
        "no finished fine-tune checkpoint of 'lenet5' (data set digits, 16 px)" in failed["error"]
    )
    md = (tmp_path / "reports").joinpath("throughput.md")
    generate(results, md.parent)
    section = md.read_text().split("## Quantization: speed-up and accuracy cost by architecture")[1]
    assert "| simple_cnn " in section
    assert "Every row comes from one run" in section
    assert "lenet5" in section.split("Not measured yet:")[1]


def test_openvino_int8_without_its_quantizer_is_skipped_naming_the_package(monkeypatch):
    """What a runtime's INT8 candidate needs beyond the runtime (NNCF for OpenVINO) is checked
    like the runtime itself: missing, the candidate is a skipped row that names it."""
    pytest.importorskip("openvino")
    from bench.harness.throughput import runtimes

    monkeypatch.setattr(runtimes.get("openvino"), "int8_packages", {"no_such_quantizer": "nncf"})
    metrics, _ = optimize(
        _run(runtimes=("openvino",)), Candidate("infer", "fp32", False, False), 16
    )
    row = _int8_row(metrics, "openvino")
    assert row["infer_samples_per_sec"] is None
    assert row["error"] == (
        "skipped: OpenVINO INT8 needs nncf, not installed (pip install 'cnn-bench[runtimes]')"
    )


def test_an_openvino_int8_speed_run_writes_only_its_progress_to_stderr(tmp_path):
    """NNCF imports its torch backend, and with a CUDA build of torch on a CPU machine that
    import warns about a missing CUDA runtime; the isolated worker used to relay it as a
    warning of the run."""
    from conftest import run_cli

    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    done = run_cli("run", "--models", "simple_cnn", "--harness", "throughput", "--device", "cpu",
                   "--runtime", "openvino", "--precision", "int8", "--img-size", "16",
                   "--batch-size", "2", "--min-time", "0.05", "--min-steps", "2",
                   "--no-progress", "--out", str(tmp_path))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == ["[1/1] simple_cnn: ok"]

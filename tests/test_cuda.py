"""The CUDA paths on a GPU (skipped elsewhere): run with ``python -m pytest -m gpu``."""

from __future__ import annotations

import pytest
from torch import nn

from bench.harness import get_harness, make_job
from bench.registry import ModelSpec

pytestmark = pytest.mark.gpu


def tiny(pretrained=False, num_classes=10, in_chans=3, **kwargs):
    return nn.Sequential(
        nn.Conv2d(in_chans, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(8, num_classes),
    )  # fmt: skip


def _spec() -> ModelSpec:
    return ModelSpec(name="tiny", source="test", input_size=(3, 32, 32), builder=tiny)


def test_throughput_on_cuda_uses_events_and_records_the_gpu():
    job = make_job(_spec(), "throughput", device="cuda", batch_sizes=(8,), precision="bf16",
                   isolate=False, min_time_s=0.05, min_steps=3, channels_last=True)  # fmt: skip
    (m,) = get_harness("throughput").measure(job)
    assert m.device == "cuda"
    assert m.device_name
    assert m.metrics["peak_mem_mb"] > 0
    assert "CUDA events" in m.metrics["peak_method"]
    assert m.metrics["frac_of_peak"] < 1


def test_fp32_peak_follows_the_models_tf32_setting():
    import torch

    from bench.harness.throughput.backend import model_tf32
    from bench.harness.throughput.peak import matmul_peak

    assert model_tf32("cuda", "fp32") == bool(
        torch.backends.cudnn.allow_tf32 or torch.backends.cuda.matmul.allow_tf32
    )
    info = matmul_peak("cuda", "fp32", tf32=True, min_time_s=0.05)
    assert info["peak_tf32"] is True


def test_finetune_on_cuda_one_epoch(tmp_path):
    job = make_job(_spec(), "finetune", device="cuda", img_size=16, batch_sizes=(64,),
                   dataset="digits", epochs=2, progress=False,
                   checkpoint_dir=str(tmp_path))  # fmt: skip
    (m,) = get_harness("finetune").measure(job)
    assert m.device == "cuda"
    assert m.metrics["speed_epochs"] == 1
    assert m.metrics["top1"] > 10


def test_onnxruntime_on_cuda_binds_its_input_on_the_device():
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("needs onnxruntime-gpu (ONNX Runtime's CUDA provider)")
    job = make_job(_spec(), "throughput", device="cuda", batch_sizes=(8,), isolate=False,
                   runtimes=("onnxruntime",), min_time_s=0.05, min_steps=3)  # fmt: skip
    (m,) = get_harness("throughput").measure(job)
    assert m.status == "ok", m.error
    assert m.metrics["provider"] == "CUDAExecutionProvider"
    assert m.metrics["agrees"] is True
    source = m.metrics["energy_source"]  # the GPU's counter, never the CPU packages'
    assert source is None or source.startswith("nvml")
    assert m.metrics["peak_mem_source"].startswith(("nvml", "unavailable"))

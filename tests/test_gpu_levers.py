"""The GPU levers on a GPU (skipped elsewhere; run with ``python -m pytest -m gpu``): the CUDA
candidates of --optimize, --batch-search, and a fine-tune step with no host synchronisation."""

from __future__ import annotations

import pytest
from test_cuda import tiny  # the same tiny network as the other CUDA tests

from bench.harness import get_harness, make_job
from bench.registry import ModelSpec

pytestmark = pytest.mark.gpu


def _job(**options):
    spec = ModelSpec(name="tiny", source="test", input_size=(3, 32, 32), builder=tiny)
    base = dict(device="cuda", batch_sizes=(8,), isolate=False, min_time_s=0.05, min_steps=3)
    return make_job(spec, "throughput", **{**base, **options})


def test_optimize_on_cuda_tries_fp16_folding_and_every_compile_mode():
    job = _job(optimize=True, compile=True, optimize_rounds=1, runtimes=("torch",))
    (m,) = get_harness("throughput").measure(job)
    rows = [c for c in m.metrics["candidates"] if c["runtime"] == "torch"]
    assert {r["precision"] for r in rows} >= {"fp32", "bf16", "fp16"}
    assert any(r.get("fold_bn") and r["error"] is None for r in rows)
    modes = [r.get("compile_mode") for r in rows if r["compiled"]]
    assert modes == [None, "reduce-overhead", "max-autotune"]
    assert m.metrics["agrees"] is True


def test_batch_search_on_cuda_records_its_trail():
    rows = get_harness("throughput").measure(_job(batch_search=True, modes=("infer", "train")))
    assert [m.config["mode"] for m in rows] == ["infer", "train"]
    for m in rows:
        trail = m.metrics["batch_search"]
        assert trail[0]["batch_size"] == 8
        assert m.config["batch_size"] in {p["batch_size"] for p in trail}


def test_finetune_step_never_synchronises_with_the_host():
    import torch

    from bench.harness.datasets import load_dataset
    from bench.harness.finetune.config import TrainConfig
    from bench.harness.finetune.state import set_up
    from bench.harness.finetune.train import _enter_phase, _step

    data = load_dataset("digits")
    cfg = TrainConfig(device="cuda", img_size=16, batch_size=32, augment="chapter", amp="bf16",
                      progress=False, epochs=1)  # fmt: skip
    model = tiny(in_chans=3)
    loop = set_up(model, data, cfg, 3, (0.5,) * 3, (0.25,) * 3)
    _enter_phase(loop, 0)
    assert loop.optimizer.defaults["fused"] is True
    assert loop.gen.device.type == "cuda"
    order = torch.arange(128, device="cuda")
    sums = torch.zeros(3, dtype=torch.float64, device="cuda")
    _step(loop, order[:32], sums)  # the first step sets CUDA's libraries up
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for i in range(32, 128, 32):
            _step(loop, order[i : i + 32], sums)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert float(sums[2]) == 128

"""The runtime harness's overhead over a bare loop on the same session (issue 8).

    flock -x /tmp/cnn-bench-cpu.lock python -m pytest benchmarks/test_runtime_overhead.py \
        --benchmark-enable -s

For ONNX Runtime and OpenVINO, ResNet-18 at 224, batch 8, fp32 on the CPU: the harness's
samples/s against the plainest loop (``perf_counter`` around back-to-back ``infer()`` calls)
on the very session the harness opened, interleaved over five rounds (bare, harness, bare,
harness, ...; best of each, so that a slow spell of a shared VM hits both sides alike). Prints one ``FLOOR`` line per runtime; the floor is 0.97 (the harness adds <= 3 %).
"""

from __future__ import annotations

import time

import pytest
from overhead import check_overhead

import bench.harness.throughput.sessions as rt
from bench.harness import get_harness, make_job

torch = pytest.importorskip("torch")

BATCH = 8
ROUNDS = 5
SETTINGS = {"device": "cpu", "batch_sizes": (BATCH,), "img_size": 224, "min_time_s": 2.0,
            "min_steps": 10, "isolate": False}  # fmt: skip


@pytest.fixture(scope="module")
def resnet18_spec():
    from bench.registry.lookup import Registry

    return Registry().get("resnet18")


def _bare(infer, min_steps: int, min_time: float) -> float:
    for _ in range(3):
        infer()
    n, start = 0, time.perf_counter()
    while n < min_steps or time.perf_counter() - start < min_time:
        infer()
        n += 1
    return BATCH * n / (time.perf_counter() - start)


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_floor_runtime_overhead_vs_bare_loop(benchmark, resnet18_spec, runtime, monkeypatch):
    pytest.importorskip(runtime)
    sessions = []
    real = rt.open_session

    def keep(*args, **kwargs):
        sessions.append(real(*args, **kwargs))
        return sessions[-1]

    monkeypatch.setattr(rt, "open_session", keep)
    job = make_job(resnet18_spec, "throughput", runtimes=(runtime,), **SETTINGS)
    job.model()
    bare, harness = [], []
    for _ in range(ROUNDS):
        (m,) = get_harness("throughput").measure(job)
        assert m.status == "ok", m.error
        harness.append(m.metrics["infer_samples_per_sec"])
        bare.append(_bare(sessions[-1].infer, SETTINGS["min_steps"], SETTINGS["min_time_s"]))
    benchmark.pedantic(sessions[-1].infer, rounds=5, warmup_rounds=1)
    label = (
        f"runtime overhead: {runtime} resnet18 b{BATCH} 224 fp32 cpu ({m.metrics['threads']} "
        "threads): bare loop on the harness's session"
    )
    check_overhead(benchmark, label, bare, harness)

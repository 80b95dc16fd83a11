"""The throughput harness's floors on this machine (issue 3), as pytest-benchmark tests.

    flock /tmp/cnn-bench-cpu.lock python -m pytest benchmarks/test_floors.py --benchmark-enable -s

Each floor prints one line starting with ``FLOOR``. ResNet-50 at 224, batch 16, fp32 on the
CPU: (1) the harness's samples/s against a bare ``torch.inference_mode()`` loop timed in the
same process, interleaved (bare, harness, bare, harness; best of each); (2) three
back-to-back harness runs agree within 5 %; (3) ``--optimize`` against plain NCHW fp32 in the
same run (2.5x on a CPU with native BF16, 1.4x without); (4) a model that raises, one that
runs out of memory and one that hangs each become a row while the others are measured.
"""

from __future__ import annotations

import time

import pytest
from overhead import check_overhead

from bench.harness import get_harness, make_job, split_options
from bench.harness.throughput.backend import cpu_has_native_bf16
from bench.registry.lookup import ModelSpec

torch = pytest.importorskip("torch")
nn = torch.nn

BATCH = 16
SETTINGS = {"device": "cpu", "batch_sizes": (BATCH,), "img_size": 224, "min_time_s": 10.0,
            "min_steps": 10, "isolate": False}  # fmt: skip


@pytest.fixture(scope="module")
def resnet50_job():
    from bench.registry.lookup import Registry

    spec = Registry().get("resnet50")
    job = make_job(spec, "throughput", **SETTINGS)
    job.model()
    return job


def _harness(job, **options) -> dict:
    job.run, job.config = split_options("throughput", **{**SETTINGS, **options})
    (m,) = get_harness("throughput").measure(job)
    return m.metrics


def _bare_loop(model, x, min_steps: int, min_time: float) -> float:
    """samples/s of the plainest loop: warm-up 3 steps, then perf_counter around the rest."""
    with torch.inference_mode():
        for _ in range(3):
            model(x)
        n, start = 0, time.perf_counter()
        while n < min_steps or time.perf_counter() - start < min_time:
            model(x)
            n += 1
        return BATCH * n / (time.perf_counter() - start)


def test_floor_overhead_vs_bare_loop(benchmark, resnet50_job):
    model = resnet50_job.model().eval()
    x = resnet50_job.example_input(BATCH)
    bare, harness = [], []
    for _ in range(2):
        bare.append(_bare_loop(model, x, SETTINGS["min_steps"], SETTINGS["min_time_s"]))
        harness.append(_harness(resnet50_job)["infer_samples_per_sec"])

    def step():
        with torch.inference_mode():
            model(x)

    # the saved JSON's timing: one bare step (for --benchmark-compare across commits)
    benchmark.pedantic(step, rounds=5, warmup_rounds=1)
    check_overhead(
        benchmark, f"1 overhead: resnet50 b{BATCH} 224 fp32 cpu: bare inference_mode loop",
        bare, harness,
    )  # fmt: skip


def test_floor_stability_three_runs(benchmark, resnet50_job):
    runs = benchmark.pedantic(
        lambda: [_harness(resnet50_job)["infer_samples_per_sec"] for _ in range(3)],
        rounds=1,
        iterations=1,
    )
    spread = (max(runs) - min(runs)) / max(runs)
    benchmark.extra_info.update(runs=runs, spread=spread)
    print(
        f"\nFLOOR 2 stability: three back-to-back harness runs {' / '.join(f'{v:.2f}' for v in runs)}"
        f" img/s; (max - min) / max = {100 * spread:.2f}% (floor 5%) -> "
        f"{'PASS' if spread <= 0.05 else 'FAIL'}"
    )
    assert spread <= 0.05


def test_floor_optimize(benchmark, resnet50_job):
    metrics = benchmark.pedantic(
        lambda: _harness(resnet50_job, optimize=True, compile=True), rounds=1, iterations=1
    )
    floor = 2.5 if cpu_has_native_bf16() else 1.4
    speedup = metrics["optimize_speedup"]
    lines = [
        f"  {c['layout']:13} {c['precision']:4} compiled={c['compiled']!s:5} "
        + (f"{c['infer_samples_per_sec']:.2f} img/s" if c["infer_samples_per_sec"] else c["error"])
        for c in metrics["candidates"]
    ]
    benchmark.extra_info.update(candidates=metrics["candidates"], speedup=speedup)
    print(
        f"\nFLOOR 3 optimize: resnet50 b{BATCH} 224 cpu, native BF16: {cpu_has_native_bf16()}; "
        "candidates:\n" + "\n".join(lines) + f"\n  best / NCHW fp32 = {speedup:.3f}x "
        f"(floor {floor}x) -> {'PASS' if speedup >= floor else 'FAIL'}"
    )
    assert speedup >= floor


# -- floor 4: robustness, with tiny fake models measured in their own processes ---------
def tiny(pretrained=False, **kwargs):
    return nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 6 * 6, 10))


class _Fails(nn.Module):
    def __init__(self, how: str):
        super().__init__()
        self.how = how
        self.net = tiny()

    def forward(self, x):
        if self.how == "raise":
            raise ValueError("this model raises on purpose")
        if self.how == "oom":
            raise RuntimeError(
                "DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 TiB"
            )
        if self.how == "hang":
            time.sleep(3600)
        return self.net(x)


def raises(pretrained=False, **kwargs):
    return _Fails("raise")


def runs_out_of_memory(pretrained=False, **kwargs):
    return _Fails("oom")


def hangs(pretrained=False, **kwargs):
    return _Fails("hang")


def test_floor_robustness(benchmark, tmp_path):
    from bench.runner import run
    from bench.storage import ResultStore

    builders = [tiny, raises, runs_out_of_memory, hangs]
    specs = [ModelSpec(b.__name__, "test", (3, 8, 8), builder=b) for b in builders]
    specs.append(ModelSpec("tiny_again", "test", (3, 8, 8), builder=tiny))
    run_config, cfg = split_options(
        "throughput", device="cpu", batch_sizes=(4,), min_time_s=0.1, min_steps=3, threads=1,
        model_timeout_s=40,
    )  # fmt: skip
    doc = benchmark.pedantic(
        lambda: run(specs, ["throughput"], run_config, ResultStore(tmp_path),
                    configs={"throughput": cfg}),
        rounds=1, iterations=1,
    )  # fmt: skip
    rows = {r["model"]: r for r in doc.records}
    print("\nFLOOR 4 robustness: one run, each model in its own process:")
    for name, r in rows.items():
        print(f"  {name:20} {r['status']:5} {r['error'] or ''}")
    ok = rows["tiny"]["status"] == rows["tiny_again"]["status"] == "ok"
    failed = all(rows[n]["status"] == "error" for n in ("raises", "runs_out_of_memory", "hangs"))
    print(f"  -> {'PASS' if ok and failed and len(rows) == 5 else 'FAIL'}")
    assert ok
    assert failed
    assert len(rows) == 5

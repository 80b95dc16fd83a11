"""Speed of cnn-bench's own machinery: FLOP counting of the chapter set, report generation.

python -m pytest benchmarks/test_bench_suite.py --benchmark-enable --benchmark-autosave
python -m pytest benchmarks/test_bench_suite.py --benchmark-enable --benchmark-compare
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def chapter_models():
    from bench.registry.lookup import Registry

    built = []
    for spec in Registry().resolve("chapter"):
        from bench.harness.base import Job

        job = Job(spec)
        built.append((spec.name, job.model(), job.example_input(1)))
    return built


def test_flop_counting_of_the_chapter_set(benchmark, chapter_models):
    from bench.harness.counting import count_macs

    def count_all():
        return {name: count_macs(model, x)["macs"] for name, model, x in chapter_models}

    macs = benchmark.pedantic(count_all, rounds=2, iterations=1, warmup_rounds=0)
    benchmark.extra_info["gmacs"] = {k: round(v / 1e9, 4) for k, v in macs.items()}
    assert all(v > 0 for v in macs.values())


def _synthetic_store(root, models: int = 40):
    from bench.storage import ResultStore

    store = ResultStore(root)
    doc = store.new_run({"run_id": "bench", "started_utc": "2026-01-01T00:00:00Z",
                         "machine": {"id": "bench-machine", "cpu": "CPU"}})  # fmt: skip
    records = []
    for i in range(models):
        name = f"model{i}"
        base = {"model": name, "source": "timm", "status": "ok", "error": None, "device": "cpu",
                "finished_utc": "2026-01-01T00:00:00Z"}  # fmt: skip
        records.append({**base, "harness": "params", "config": {},
                        "metrics": {"params": 1000 * (i + 1), "param_count": 0.001 * (i + 1)}})  # fmt: skip
        records.append({**base, "harness": "flops", "config": {"img_size": 224, "batch_size": 1},
                        "metrics": {"infer_gmacs": 0.1 * (i + 1)}})  # fmt: skip
        for batch in (1, 16, 64):
            records.append({**base, "harness": "throughput",
                            "config": {"img_size": 224, "batch_size": batch, "mode": "infer",
                                       "precision": "fp32", "layout": "nchw", "compiled": False,
                                       "optimize": False},
                            "metrics": {"infer_samples_per_sec": 100.0 / (i + 1) * batch ** 0.5,
                                        "infer_batch_size": batch, "infer_img_size": 224,
                                        "infer_gmacs": 0.1 * (i + 1), "median": 10.0,
                                        "frac_of_peak": 0.1}})  # fmt: skip
    doc.add(records)
    json.dumps(doc.as_dict())
    return root


def test_report_generation(benchmark, tmp_path):
    from bench.report.generate import generate

    results = _synthetic_store(tmp_path / "results")
    written = benchmark.pedantic(
        lambda: generate(results, tmp_path / "reports"), rounds=3, iterations=1, warmup_rounds=1
    )
    assert any(p.name == "throughput.md" for p in written)

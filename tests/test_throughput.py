"""The throughput harness: statistics, options, structure and invariants of its records.

Never speed: tiny models, a few steps, one thread. Models the workers must rebuild are
module-level builders of this module (workers import it by name).
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import pytest

from bench.errors import ConfigError, OutOfMemoryError
from bench.harness import DEFAULT_HARNESSES, get_harness, harness_target, make_job, split_options
from bench.harness.base import RunConfig
from bench.harness.device import DeviceError, check_device
from bench.harness.throughput import ThroughputConfig
from bench.harness.throughput.backend import cpu_has_native_bf16, is_oom
from bench.harness.throughput.timing import (
    CpuTimer,
    StepStats,
    WarmupPolicy,
    is_stable,
    percentile,
    timed_loop,
    warm_up,
)
from bench.registry.lookup import ModelSpec

torch = pytest.importorskip("torch")
nn = torch.nn

FAST = {"min_time_s": 0.01, "min_steps": 3, "threads": 1, "batch_sizes": (4,), "isolate": False}
OOM_MESSAGE = (
    "DefaultCPUAllocator: can't allocate memory: you tried to allocate 1099511627776 bytes"
)


# -- fake models (module level: picklable for the isolated worker) ----------------------
def tiny(pretrained=False, **kwargs):
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10)
    )


class _OOMAbove(nn.Module):
    """Runs out of memory (as the CPU allocator says it) above a batch size."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit = limit
        self.net = tiny()

    def forward(self, x):
        if x.shape[0] > self.limit:
            raise RuntimeError(OOM_MESSAGE)
        return self.net(x)


def oom_above_2(pretrained=False, **kwargs):
    return _OOMAbove(2)


def oom_always(pretrained=False, **kwargs):
    return _OOMAbove(0)


class _Raises(nn.Module):
    def forward(self, x):
        raise ValueError("forward fails on purpose")


def raises(pretrained=False, **kwargs):
    return _Raises()


class _Holds64MiB(nn.Module):
    """A tiny network beside a 64 MiB buffer: its memory is known."""

    def __init__(self):
        super().__init__()
        self.net = tiny()
        self.register_buffer("ballast", torch.ones(16 * 2**20))  # 16 Mi float32: 64 MiB

    def forward(self, x):
        return self.net(x)


def holds_64mib(pretrained=False, **kwargs):
    return _Holds64MiB()


def tiny_chans(pretrained=False, in_chans=3, num_classes=10, **kwargs):
    return nn.Sequential(
        nn.Conv2d(in_chans, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, num_classes)
    )


def _spec(builder, name=None) -> ModelSpec:
    return ModelSpec(
        name=name or builder.__name__, source="test", input_size=(1, 8, 8), builder=builder
    )


def _measure(builder, **options):
    return get_harness("throughput").measure(
        make_job(_spec(builder), "throughput", **{**FAST, **options})
    )


# -- registration -------------------------------------------------------------------------
def test_registered_and_default():
    assert harness_target("throughput") == "bench.harness.throughput:ThroughputHarness"
    assert "throughput" in DEFAULT_HARNESSES
    assert get_harness("throughput").isolate is True


# -- statistics ---------------------------------------------------------------------------
def test_percentile_interpolates_like_numpy():
    values = [1.0, 2.0, 3.0, 4.0, 10.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 10.0
    assert percentile(values, 50) == 3.0
    assert percentile(values, 90) == pytest.approx(7.6)
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_step_stats_names_and_values():
    times = [10.0, 12.0, 11.0, 13.0, 30.0]
    s = StepStats.from_times(times).as_dict()
    assert list(s) == [
        "min",
        "max",
        "mean",
        "stddev",
        "median",
        "iqr",
        "p90",
        "p95",
        "p99",
        "cv_pct",
        "rounds",
    ]
    assert s["min"] == 10
    assert s["max"] == 30
    assert s["rounds"] == 5
    assert s["median"] == 12
    assert s["mean"] == pytest.approx(statistics.fmean(times))
    assert s["stddev"] == pytest.approx(statistics.stdev(times), abs=1e-4)
    assert s["iqr"] == pytest.approx(13 - 11)
    assert s["cv_pct"] == pytest.approx(
        100 * statistics.stdev(times) / statistics.fmean(times), abs=1e-3
    )
    assert s["min"] <= s["median"] <= s["p90"] <= s["p95"] <= s["p99"] <= s["max"]
    one = StepStats.from_times([5.0])
    assert one.stddev == 0
    assert one.cv_pct == 0
    assert one.iqr == 0


def test_is_stable():
    assert not is_stable([1, 1, 1, 1, 1])  # fewer than two windows
    assert is_stable([9, 5, 1.0, 1.0, 1.0, 1.02, 1.01, 1.0])
    assert not is_stable([1.0, 1.0, 1.0, 2.0, 2.0, 2.0])


class FakeClock:
    """A clock that each step advances by a scripted amount."""

    def __init__(self, durations):
        self.now = 0.0
        self.durations = list(durations)
        self.calls = 0

    def __call__(self):
        return self.now

    def step(self):
        self.now += self.durations[min(self.calls, len(self.durations) - 1)]
        self.calls += 1


def test_warm_up_runs_until_stable_not_a_fixed_count():
    clock = FakeClock([5, 3, 2, 1.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    times, stable = warm_up(clock.step, lambda: None, WarmupPolicy(), clock=clock)
    assert stable
    # medians of [1.5, 1, 1] and [1, 1, 1] agree: stops at step 9, not before, not after
    assert len(times) == 9


def test_warm_up_gives_up_at_its_limits():
    clock = FakeClock([1.0, 2.0] * 100)  # never settles
    times, stable = warm_up(clock.step, lambda: None, WarmupPolicy(max_steps=12), clock=clock)
    assert not stable
    assert len(times) == 12
    clock = FakeClock([1.0, 2.0] * 100)
    times, stable = warm_up(clock.step, lambda: None, WarmupPolicy(max_time_s=10), clock=clock)
    assert not stable
    assert sum(times) >= 10


def test_timed_loop_honours_min_steps_and_min_time():
    clock = FakeClock([0.5])
    timer = CpuTimer(clock)
    total = timed_loop(clock.step, timer, min_steps=3, min_time_s=10)
    assert len(timer.times_ms) == 20
    assert total == pytest.approx(10)
    assert timer.times_ms[0] == pytest.approx(500)
    clock = FakeClock([5.0])
    timer = CpuTimer(clock)
    timed_loop(clock.step, timer, min_steps=4, min_time_s=1)
    assert len(timer.times_ms) == 4


# -- options and devices -----------------------------------------------------------------
def test_configs_validate_python_callers():
    run = RunConfig(batch_sizes=[1, 32])
    assert run.batch_sizes == (1, 32)
    cfg = ThroughputConfig(modes=["train", "infer"])
    assert cfg.modes == ("infer", "train")
    assert cfg.retry
    for bad in ({"device": "tpu"}, {"precision": "fp8"}, {"batch_sizes": [0]}):
        with pytest.raises(ConfigError):
            RunConfig(**bad)
    for bad in ({"modes": ["eval"]}, {"threads": 0}, {"min_time_s": 0}):
        with pytest.raises(ConfigError):
            ThroughputConfig(**bad)


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="checks the message for a machine without CUDA"
)
def test_cuda_without_cuda_is_a_clear_error():
    assert check_device("auto") == "cpu"
    with pytest.raises(DeviceError, match=r"CUDA is not available.*--device cpu"):
        check_device("cuda")


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="checks the message for a machine without CUDA"
)
def test_cli_device_cuda_without_cuda_exits_2_with_one_line():
    from conftest import run_cli

    r = run_cli("run", "--models", "lenet5", "--harness", "throughput", "--device", "cuda")
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "CUDA is not available" in lines[0]


@pytest.mark.parametrize(("flag", "value"), [("--batch-size", "0,8"), ("--batch-size", "x"),
                                        ("--mode", "eval"), ("--min-time", "-1")])  # fmt: skip
def test_cli_bad_values_exit_2(flag, value):
    from conftest import run_cli

    r = run_cli("run", "--models", "lenet5", "--harness", "throughput", flag, value)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1
    assert flag in r.stderr


def test_bf16_flags_from_cpuinfo():
    assert cpu_has_native_bf16("flags\t: fpu avx2 avx512f avx512_bf16\n")
    assert cpu_has_native_bf16("flags\t: fpu amx_bf16\n")
    assert not cpu_has_native_bf16("flags\t: fpu avx avx2\n")


def test_oom_is_recognised():
    assert is_oom(RuntimeError(OOM_MESSAGE))
    assert is_oom(RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert is_oom(torch.cuda.OutOfMemoryError("CUDA out of memory"))
    assert not is_oom(RuntimeError("shape mismatch"))
    assert not is_oom(ValueError("out of memory"))


# -- records: structure and invariants -----------------------------------------------------
def test_infer_record_structure_and_invariants():
    (m,) = _measure(tiny)
    assert m.device == "cpu"
    assert m.device_name
    assert m.config == {
        "img_size": 8, "batch_size": 4, "mode": "infer", "precision": "fp32",
        "layout": "nchw", "compiled": False, "optimize": False,
    }  # fmt: skip
    x = m.metrics
    for key in ("infer_samples_per_sec", "infer_step_time", "infer_batch_size", "infer_img_size",
                "min", "max", "mean", "stddev", "median", "iqr", "p90", "p99", "cv_pct", "rounds",
                "peak_mem_mb", "batch_size_reduced", "threads", "cudnn_benchmark", "tf32",
                "compile_time_s", "peak_gmacs_per_sec", "achieved_gmacs_per_sec", "frac_of_peak",
                "infer_gmacs", "warmup_steps", "warmup_stable"):  # fmt: skip
        assert key in x, key
    assert x["infer_batch_size"] == 4
    assert x["batch_size_reduced"] is False
    assert x["threads"] == 1
    assert x["rounds"] >= 3
    assert x["warmup_steps"] >= 2
    assert x["min"] <= x["median"] <= x["p90"] <= x["p99"] <= x["max"]
    assert x["infer_samples_per_sec"] == pytest.approx(
        4 * x["rounds"] / x["total_time_s"], rel=1e-2
    )
    assert x["infer_step_time"] == x["mean"]
    assert x["infer_gmacs"] >= 0
    assert x["peak_gmacs_per_sec"] > 0
    assert x["peak_mem_mb"] > 0
    assert x["achieved_gmacs_per_sec"] > 0  # infer_gmacs is rounded to 4 places, this is not
    assert x["frac_of_peak"] == pytest.approx(
        x["achieved_gmacs_per_sec"] / x["peak_gmacs_per_sec"], rel=1e-2, abs=1e-4
    )
    assert 0 < x["frac_of_peak"] < 1
    assert x["compile_time_s"] is None
    assert x["cudnn_benchmark"] is None


def test_sweep_train_mode_and_channels_last():
    ms = _measure(tiny, batch_sizes=(2, 4), modes=("infer", "train"), channels_last=True)
    assert [(m.config["mode"], m.config["batch_size"]) for m in ms] == [
        ("infer", 2), ("infer", 4), ("train", 2), ("train", 4),
    ]  # fmt: skip
    train = ms[-1].metrics
    assert train["train_batch_size"] == 4
    assert train["train_samples_per_sec"] > 0
    assert "infer_samples_per_sec" not in train
    assert all(m.config["layout"] == "channels_last" for m in ms)


def test_out_of_memory_backs_off_and_says_so():
    (m,) = _measure(oom_above_2, batch_sizes=(8,))
    assert m.config["batch_size"] == 8
    assert m.metrics["infer_batch_size"] == 2
    assert m.metrics["batch_size_reduced"] is True


def test_no_retry_fails_on_out_of_memory():
    with pytest.raises(OutOfMemoryError, match="--no-retry"):
        _measure(oom_above_2, batch_sizes=(8,), retry=False)
    with pytest.raises(OutOfMemoryError, match="even at batch size 1"):
        _measure(oom_always)


def test_optimize_records_every_candidate_and_keeps_the_fastest():
    (m,) = _measure(tiny, optimize=True)
    cands = m.metrics["candidates"]
    folded = [c for c in cands if c.get("fold_bn")]  # tiny has a convolution + batch norm
    assert len(folded) == 1
    assert cands.index(folded[0]) == 4  # right after the eager ones
    assert folded[0]["error"] is None  # measured, and agrees with eager fp32
    cands = [c for c in cands if not c.get("fold_bn")]
    assert [(c["runtime"], c["layout"], c["precision"]) for c in cands] == [
        ("torch", "nchw", "fp32"), ("torch", "nchw", "bf16"), ("torch", "channels_last", "fp32"),
        ("torch", "channels_last", "bf16"), ("onnxruntime", "nchw", "fp32"),
        ("onnxruntime", "nchw", "bf16"), ("openvino", "nchw", "fp32"), ("openvino", "nchw", "bf16"),
        ("onnxruntime", "nchw", "int8"), ("openvino", "nchw", "int8"),
    ]  # fmt: skip
    for lossy in cands[-2:]:  # no real weights, no images
        assert lossy["error"].startswith("skipped"), lossy["error"]
    measured = [c for c in cands if c["infer_samples_per_sec"] is not None]
    best = max(measured, key=lambda c: c["infer_samples_per_sec"])
    chosen = (m.config.get("runtime", "torch"), m.config["layout"], m.config["precision"])
    assert chosen == (best["runtime"], best["layout"], best["precision"])
    assert m.config["optimize"] is True
    assert m.metrics["optimize_speedup"] >= 1.0
    torch_bf16 = [c for c in cands if c["precision"] == "bf16" and c["runtime"] == "torch"]
    if cpu_has_native_bf16():  # measured here: a time, or a failure that is not a skip
        for c in torch_bf16:
            assert c["infer_samples_per_sec"] is not None or not c["error"].startswith("skipped")
        assert any(c["infer_samples_per_sec"] for c in torch_bf16)
    else:
        assert all(c["error"].startswith("skipped") for c in cands if c["precision"] == "bf16")


def test_isolated_run_makes_failures_rows(tmp_path):
    from bench.runner import run
    from bench.storage import ResultStore

    specs = [_spec(raises), _spec(oom_always), _spec(tiny)]
    run_config, cfg = split_options(
        "throughput", **{**FAST, "isolate": True, "model_timeout_s": 120}
    )
    doc = run(specs, ["throughput"], run_config, ResultStore(tmp_path), configs={"throughput": cfg})
    rows = {r["model"]: r for r in doc.records}
    assert rows["raises"]["status"] == "error"
    assert "forward fails on purpose" in rows["raises"]["error"]
    assert rows["oom_always"]["status"] == "error"
    assert "Out of memory" in rows["oom_always"]["error"]
    assert rows["tiny"]["status"] == "ok"
    assert not math.isnan(rows["tiny"]["metrics"]["infer_samples_per_sec"])


def test_cuda_timer_pairs_events_per_step_and_syncs_only_around_the_loop():
    """CudaTimer's bookkeeping with a stand-in for torch.cuda (no GPU needed)."""
    from types import SimpleNamespace

    from bench.harness.throughput.timing import CudaTimer

    clock = FakeClock([0.25])
    syncs = []

    class Event:
        def __init__(self, enable_timing):
            assert enable_timing

        def record(self):
            self.t = clock.now

        def elapsed_time(self, end):
            return (end.t - self.t) * 1e3

    timer = CudaTimer.__new__(CudaTimer)
    timer.torch = SimpleNamespace(cuda=SimpleNamespace(Event=Event, synchronize=syncs.append))
    timer.device = None
    timed_loop(clock.step, timer, min_steps=4, min_time_s=0)
    assert timer.times_ms == [250.0] * 4
    assert len(syncs) == 2  # before and after the loop, never per step


def test_reuses_the_flops_harness_count_of_the_same_run():
    job = make_job(_spec(tiny), "throughput", measured={"flops": {"macs": 2_500_000_000}}, **FAST)
    (m,) = get_harness("throughput").measure(job)
    assert m.metrics["infer_gmacs"] == 2.5
    assert m.metrics["achieved_gmacs_per_sec"] == pytest.approx(
        2.5 * m.metrics["infer_samples_per_sec"], rel=1e-3
    )


def _isolated(builder, measured=None):
    """The throughput harness on ``builder``'s model in a worker process of its own."""
    from bench.executors.isolate import run_isolated
    from bench.harness import resolve_harness

    run_config, cfg = split_options("throughput", **FAST)
    throughput = resolve_harness("throughput")
    return run_isolated(_spec(builder), throughput, run_config, cfg, timeout=120, measured=measured)


def test_earlier_measurements_reach_the_isolated_worker():
    (m,) = _isolated(tiny, measured={"flops": {"macs": 2_500_000_000}})
    assert m.metrics["infer_gmacs"] == 2.5


def test_runner_passes_earlier_measurements_to_the_worker(monkeypatch):
    import bench.executors.measure as executors
    from bench.harness import resolve_harness

    seen = {}

    def fake_isolated(spec, name, run, config, measured=None):
        seen.update(measured)
        return []

    monkeypatch.setattr(executors, "run_isolated", fake_isolated)
    run_config, cfg = split_options("throughput", **{**FAST, "isolate": True})
    harnesses = [resolve_harness("flops"), resolve_harness("throughput")]
    executors.measure_model(_spec(tiny), harnesses, run_config, {"throughput": cfg})
    assert seen["flops"]["macs"] > 0


def test_optimize_times_each_candidate_in_alternating_rounds_and_takes_its_median(monkeypatch):
    """A slow spell during one candidate's timing must not decide the pick: with three
    rounds, each measured candidate is timed three times (the second round in reverse
    order, the third in the first's), and its median over them is its figure."""
    import itertools

    calls = []
    speeds = itertools.count(1000)  # every timing a little faster than the one before

    def fake_measure(run, cand, batch, compare=True):
        calls.append((cand.runtime, cand.layout, cand.precision))
        return {"infer_samples_per_sec": float(next(speeds)), "infer_batch_size": batch,
                "agrees": True, "total_time_s": 2.0}  # fmt: skip

    monkeypatch.setattr("bench.harness.throughput.optimize.measure_candidate", fake_measure)
    (m,) = _measure(tiny, optimize=True, runtimes=("torch",), optimize_rounds=3)
    n = len(calls) // 3
    first = calls[:n]
    assert calls[n : 2 * n] == first[::-1]  # the second round, in the other order
    assert calls[2 * n :] == first  # the third, in the first's
    cands = [c for c in m.metrics["candidates"] if c["infer_samples_per_sec"] is not None]
    for c in cands:
        assert len(c["rounds_samples_per_sec"]) == 3
        assert c["infer_samples_per_sec"] == statistics.median(c["rounds_samples_per_sec"])
    # the first of the first round ran last in the second: its median (that round) is highest
    chosen = (m.config.get("runtime", "torch"), m.config["layout"], m.config["precision"])
    assert chosen == first[0]


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="Linux's peak RSS reset")
def test_cpu_memory_is_the_increase_over_the_baseline_before_the_model():
    """A model holding 64 MiB raises the worker's peak by at least that over its baseline; the
    whole process's peak (framework included) stays in peak_mem_mb, above both. Measured in
    the worker a run uses (a process of its own): inside a long-lived process, memory freed
    after the baseline is taken would hide part of the increase."""
    (m,) = _isolated(holds_64mib)
    met = m.metrics
    assert met["peak_mem_increase_mb"] >= 64
    assert met["rss_baseline_mb"] > 0
    assert met["peak_mem_mb"] >= met["rss_baseline_mb"] + 64
    (small,) = _isolated(tiny)
    assert small.metrics["peak_mem_increase_mb"] < met["peak_mem_increase_mb"] - 48


def test_weights_of_another_channel_count_set_the_input(tmp_path):
    """A checkpoint trained on grayscale (one input channel) is timed on one-channel input,
    although the model's card says three."""
    path = tmp_path / "gray.pth"
    torch.save(tiny_chans(in_chans=1).state_dict(), path)
    spec = ModelSpec(name="tiny_chans", source="test", input_size=(3, 8, 8), builder=tiny_chans)
    job = make_job(spec, "throughput", **{**FAST, "device": "cpu", "isolate": False,
                                          "weights": str(path)})  # fmt: skip
    (m,) = get_harness("throughput").measure(job)
    assert m.status == "ok", m.error
    assert m.metrics["infer_samples_per_sec"] > 0

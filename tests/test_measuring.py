"""The measuring side checked against independent numbers: a fake clock with known step times,
MACs counted by hand, a product of known size and time; raw step times in records, repeated
interleaved rounds (``run --repeats``), energy and the machine's frequency where readable.

Never speed: tiny models on the CPU, a few steps, one thread.
"""

from __future__ import annotations

import statistics
from types import SimpleNamespace

import pytest

from bench.harness import get_harness, make_job
from bench.harness.energy import EnergyMeter
from bench.harness.samples import MAX_STEP_TIMES, kept_step_times
from bench.harness.throughput import measure as tpm
from bench.harness.throughput import peak as tpp
from bench.harness.throughput.backend import torch_threads
from bench.harness.throughput.timing import CpuTimer, StepStats
from bench.registry.lookup import ModelSpec

torch = pytest.importorskip("torch")
nn = torch.nn

FAST = {"min_time_s": 0.01, "min_steps": 3, "threads": 1, "batch_sizes": (4,), "isolate": False}
PEAK = {"peak_gmacs_per_sec": 200.0, "peak_method": "fake matmul", "peak_tf32": False}
STEP_S = 0.004  # each timed step lasts 4 ms on the fake clock


def tiny(pretrained=False, **kwargs):
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))


def ten_million_macs(pretrained=False, **kwargs):
    """2,500 inputs x 4,000 outputs: 10,000,000 multiply-accumulates per sample (0.01 GMACs)."""
    return nn.Sequential(nn.Flatten(), nn.Linear(50 * 50, 4000))


def _spec(builder, size=(1, 8, 8), name=None) -> ModelSpec:
    return ModelSpec(name=name or builder.__name__, source="test", input_size=size,
                     builder=builder)  # fmt: skip


def _measure(builder=tiny, size=(1, 8, 8), **options):
    job = make_job(_spec(builder, size), "throughput", **{**FAST, **options})
    return get_harness("throughput").measure(job)


@pytest.fixture
def fake_clock(monkeypatch):
    """Every step (warm-up included) moves a fake clock on by ``STEP_S``; the timed loop reads
    that clock, and the peak is a known 200 GMAC/s."""
    now = [0.0]
    real_make_step = tpm._make_step

    def make_step(*args, **kwargs):
        step = real_make_step(*args, **kwargs)

        def timed_step():
            now[0] += STEP_S
            return step()

        return timed_step

    monkeypatch.setattr(tpm, "_make_step", make_step)
    monkeypatch.setattr(tpm, "CpuTimer", lambda: CpuTimer(lambda: now[0]))
    monkeypatch.setattr(tpp, "matmul_peak", lambda *a, **k: dict(PEAK))
    return now


# -- numbers against independent values ---------------------------------------------------------
def test_samples_per_sec_macs_and_fraction_of_peak_from_known_values(fake_clock):
    infer, train = _measure(ten_million_macs, (1, 50, 50), modes=("infer", "train"))
    # 3 steps of 4 ms: at least --min-steps 3 and 12 ms >= --min-time 10 ms; warm-up not counted
    x = infer.metrics
    assert x["rounds"] == 3
    assert x["step_times_ms"] == [4.0, 4.0, 4.0]
    assert x["infer_samples_per_sec"] == pytest.approx(4 * 3 / (3 * STEP_S), rel=1e-9)  # 1000
    assert x["median"] == x["p95"] == pytest.approx(4.0)
    assert x["infer_gmacs"] == 0.01  # 2,500 x 4,000 by hand; a FLOP count would say 0.02
    assert x["achieved_gmacs_per_sec"] == pytest.approx(0.01 * 1000)
    assert x["frac_of_peak"] == pytest.approx(10.0 / 200.0)
    t = train.metrics  # training counts 3 x the forward MACs
    assert t["train_samples_per_sec"] == pytest.approx(1000.0)
    assert t["achieved_gmacs_per_sec"] == pytest.approx(3 * 0.01 * 1000)
    assert t["frac_of_peak"] == pytest.approx(30.0 / 200.0)


def test_peak_is_macs_over_the_seconds_of_a_product_of_known_size(monkeypatch):
    now = [0.0]

    def fake_mm(a, b, out=None):
        now[0] += 0.01  # every n x n x n product takes 10 ms
        return out

    monkeypatch.setattr(tpp, "time", SimpleNamespace(perf_counter=lambda: now[0]))
    monkeypatch.setattr(torch, "mm", fake_mm)
    with torch_threads(1):  # up to 8 threads: a 1024-wide product
        info = tpp.matmul_peak("cpu", "fp32", cache=False)
    assert info["peak_method"].startswith("1024x1024x1024 fp32 matmul")
    assert info["peak_gmacs_per_sec"] == round(1024**3 / 0.01 / 1e9, 2)  # 107.37, MACs not FLOPs


def test_step_stats_percentiles_of_known_times():
    s = StepStats.from_times([float(t) for t in range(1, 101)])  # 1..100 ms
    assert (s.median, s.p90, s.p95, s.p99) == (50.5, 90.1, 95.05, 99.01)
    assert list(s.as_dict())[6:9] == ["p90", "p95", "p99"]


# -- raw samples ---------------------------------------------------------------------------------
def test_step_times_kept_whole_or_evenly_capped_at_float32_precision():
    kept, capped = kept_step_times([1.0, 2.123456789, 3.0])
    assert (kept, capped) == ([1.0, 2.123457, 3.0], False)
    times = [float(i) for i in range(2500)]
    kept, capped = kept_step_times(times)
    assert capped is True
    assert len(kept) == MAX_STEP_TIMES
    assert kept[0] == 0.0
    assert kept[-1] == 2499.0
    assert kept == sorted(kept)  # in the order timed, spread over the whole run
    assert statistics.median(kept) == pytest.approx(statistics.median(times), rel=1e-3)


def test_records_carry_step_times_build_and_load_seconds_and_energy_or_why_not():
    (m,) = _measure()
    x = m.metrics
    assert len(x["step_times_ms"]) == x["rounds"]
    assert x["step_times_capped"] is False
    assert x["min"] <= x["p90"] <= x["p95"] <= x["p99"] <= x["max"]
    assert x["build_s"] >= 0
    assert x["load_s"] >= 0
    if x["energy_j_per_sample"] is None:
        assert x["energy_note"].startswith("unavailable: ")
        assert x["energy_mean_w"] is None
    else:
        assert x["energy_j_per_sample"] > 0
        assert x["energy_note"] is None


# -- energy and the machine ----------------------------------------------------------------------
def _rapl(root, uj: int, wrap: int = 10**9):
    zone = root / "intel-rapl:0"
    (zone / "intel-rapl:0:0").mkdir(parents=True, exist_ok=True)  # a sub-zone: not counted
    (zone / "energy_uj").write_text(f"{uj}\n")
    (zone / "max_energy_range_uj").write_text(f"{wrap}\n")
    (zone / "intel-rapl:0:0" / "energy_uj").write_text("123\n")


def test_rapl_energy_over_the_window_wraps_and_is_per_sample(tmp_path):
    _rapl(tmp_path, 5_000_000)
    meter = EnergyMeter("cpu", rapl_root=tmp_path)
    meter.start()
    _rapl(tmp_path, 25_000_000)  # 20 J
    e = meter.stop(seconds=2.0, samples=100)
    assert e == {"energy_j_per_sample": 0.2, "energy_mean_w": 10.0,
                 "energy_source": "rapl: 1 CPU package(s)", "energy_note": None}  # fmt: skip
    _rapl(tmp_path, 999_000_000)
    meter.start()
    _rapl(tmp_path, 1_000_000)  # wrapped at 1e9 uJ: 2 J
    assert meter.stop(seconds=1.0, samples=10)["energy_j_per_sample"] == 0.2


def test_energy_unavailable_says_why_never_zero(tmp_path):
    e = EnergyMeter("cpu", rapl_root=tmp_path / "none")
    e.start()
    out = e.stop(seconds=1.0, samples=10)
    assert out["energy_j_per_sample"] is None
    assert out["energy_note"].startswith("unavailable: no RAPL")
    _rapl(tmp_path, 7)
    still = EnergyMeter("cpu", rapl_root=tmp_path)
    still.start()
    assert still.stop(1.0, 10)["energy_note"] == "unavailable: the counter did not advance"


def test_cpu_frequency_from_cpufreq_or_why_not(tmp_path):
    from bench.environment import cpu_frequency

    assert cpu_frequency(tmp_path)["note"].startswith("unavailable: no ")
    for cpu, khz in (("cpu0", 2_000_000), ("cpu1", 3_000_000)):
        d = tmp_path / cpu / "cpufreq"
        d.mkdir(parents=True)
        for name, value in (
            ("scaling_governor", "performance"),
            ("scaling_cur_freq", khz),
            ("cpuinfo_min_freq", 800_000),
            ("cpuinfo_max_freq", 3_500_000),
        ):
            (d / name).write_text(f"{value}\n")  # fmt: skip
    assert cpu_frequency(tmp_path) == {"governor": "performance", "cur_mhz_mean": 2500,
                                       "cur_mhz_range": [2000, 3000], "min_mhz": 800,
                                       "max_mhz": 3500}  # fmt: skip


def test_gpu_clocks_and_power_say_why_when_nvml_cannot_be_read():
    from bench.environment import nvml_info

    info = nvml_info()
    if "note" in info:
        assert info["note"].startswith("unavailable: ")
    else:
        assert info["driver"]
        assert info["power_limit_w"] > 0


# -- the collector around the timed steps ------------------------------------------------------
def test_timed_steps_follow_a_collection_and_run_with_the_collector_paused():
    """What an earlier timing left in a reference cycle is collected before the warm-up, and
    no collection runs during the warm-up or the timed steps; the collector's state is
    restored after (left off when it was off)."""
    import gc
    import weakref

    from bench.harness.throughput.timing import WarmupPolicy

    class Left:  # e.g. a session caught in a cycle with its own callback
        pass

    settings = SimpleNamespace(warmup=WarmupPolicy(min_steps=1, max_steps=2), min_steps=2,
                               min_time_s=0.0, loadgen=False, scenario="sync",
                               malloc="system")  # fmt: skip
    seen = []

    def step():
        seen.append((gc.isenabled(), ref() is None))

    gc.disable()
    left = Left()
    left.me = left
    ref = weakref.ref(left)
    del left
    gc.enable()
    tpm.time_steps(step, lambda: None, 1, "cpu", settings, False, torch.no_grad())
    assert seen
    assert all(s == (False, True) for s in seen)  # paused, and the cycle already gone
    assert gc.isenabled()
    gc.disable()
    try:
        tpm.time_steps(step, lambda: None, 1, "cpu", settings, False, torch.no_grad())
        assert not gc.isenabled()  # it was off: it stays off
    finally:
        gc.enable()


# -- NVML energy, with a stand-in for the library --------------------------------------------------
def _fake_nvml(monkeypatch, readings):
    """``pynvml`` replaced by a module whose energy counter gives ``readings`` (mJ) in turn;
    a reading that is an exception is raised."""
    import sys
    from types import ModuleType

    import bench.harness.energy as energy

    fake = ModuleType("pynvml")
    values = iter(readings)

    def total_energy(handle):
        assert handle == "gpu0"
        value = next(values)
        if isinstance(value, Exception):
            raise value
        return value

    fake.nvmlDeviceGetTotalEnergyConsumption = total_energy
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setattr(energy, "nvml_handle", lambda: "gpu0")


def test_nvml_energy_is_millijoules_to_joules_over_the_window(monkeypatch):
    # the probe at set-up, then start and stop: 1,000,000 mJ to 1,020,000 mJ is 20 J
    _fake_nvml(monkeypatch, [1_000_000, 1_000_000, 1_020_000])
    meter = EnergyMeter("cuda")
    meter.start()
    assert meter.stop(seconds=2.0, samples=100) == {
        "energy_j_per_sample": 0.2, "energy_mean_w": 10.0,
        "energy_source": "nvml: GPU board energy counter", "energy_note": None,
    }  # fmt: skip


def test_nvml_energy_unavailable_says_why(monkeypatch):
    class NVMLError(Exception):
        pass

    _fake_nvml(monkeypatch, [NVMLError("Not Supported")])
    out = EnergyMeter("cuda").stop(seconds=1.0, samples=10)
    assert out["energy_j_per_sample"] is None
    assert out["energy_note"] == "unavailable: NVMLError: Not Supported"
    _fake_nvml(monkeypatch, [5_000, 5_000, 5_000])
    still = EnergyMeter("cuda")
    still.start()
    assert still.stop(1.0, 10)["energy_note"] == "unavailable: the counter did not advance"

"""Runtimes beside PyTorch (ONNX Runtime, OpenVINO) and the run's one matmul peak.

Structure and invariants only, never speed: tiny models on the CPU, a few steps, one thread.
Models the workers must rebuild are module-level builders (workers import them by name).
"""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from bench.errors import ConfigError
from bench.harness import get_harness, make_job, split_options
from bench.harness.throughput import ThroughputConfig, ThroughputHarness, sessions
from bench.harness.throughput import peak as tp
from bench.harness.throughput import runtimes as rt
from bench.harness.throughput.backend import cpu_has_native_bf16
from bench.harness.throughput.config import parse_runtimes
from bench.harness.throughput.reference import agreement
from bench.registry.lookup import ModelSpec

torch = pytest.importorskip("torch")
nn = torch.nn
# what needs ONNX Runtime and OpenVINO themselves; the pure logic runs without them
needs_runtimes = pytest.mark.skipif(
    not (rt.installed("onnxruntime") and rt.installed("openvino")),
    reason="needs cnn-bench[runtimes] (onnxruntime and openvino)",
)

FAST = {"min_time_s": 0.01, "min_steps": 3, "threads": 1, "batch_sizes": (4,), "isolate": False}
ALL = ("torch", "onnxruntime", "openvino")


def tiny(pretrained=False, **kwargs):
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10)
    )


class _BranchesOnData(nn.Module):
    """Branches on a tensor's value: torch.export (and so torch.onnx.export) cannot follow."""

    def __init__(self):
        super().__init__()
        self.net = tiny()

    def forward(self, x):
        y = self.net(x)
        return y if y.sum() > 0 else -y


def branches_on_data(pretrained=False, **kwargs):
    return _BranchesOnData()


def _spec(builder) -> ModelSpec:
    return ModelSpec(name=builder.__name__, source="test", input_size=(1, 8, 8), builder=builder)


def _measure(builder=tiny, **options):
    job = make_job(_spec(builder), "throughput", **{**FAST, **options})
    return get_harness("throughput").measure(job)


def _by_runtime(ms):
    return {m.config.get("runtime", "torch"): m for m in ms}


# -- options --------------------------------------------------------------------------------
def test_runtime_option_parses_lists_and_all():
    assert parse_runtimes("all") == ALL
    assert parse_runtimes("openvino,torch,openvino") == ("openvino", "torch")
    with pytest.raises(argparse.ArgumentTypeError, match="onnxruntime"):
        parse_runtimes("tensorrt")
    with pytest.raises(ConfigError, match="--runtime"):
        ThroughputConfig(runtimes=("tvm",))
    assert ThroughputConfig().runtimes == ("torch",)


def test_missing_runtime_is_one_line_naming_the_extra_before_any_model(monkeypatch):
    import importlib.util

    from bench import runner

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else real(name, *a)
    )
    run, _ = split_options("throughput", **FAST)
    with pytest.raises(ConfigError, match=r"cnn-bench\[runtimes\]") as err:
        runner.harness_configs(
            ["throughput"], run, {"throughput": {"runtimes": ("torch", "openvino")}}
        )
    assert "\n" not in str(err.value)
    # not asked for by name (--optimize tries what is installed): a skipped candidate instead
    assert rt.skip_reason("openvino", "infer", "cpu", "fp32", False).startswith("skipped")


# -- records ---------------------------------------------------------------------------------
@needs_runtimes
def test_each_runtime_is_a_record_with_version_provider_export_time_and_agreement():
    rows = _by_runtime(_measure(runtimes=ALL))
    assert set(rows) == set(ALL)
    torch_row = rows["torch"]
    assert "runtime" not in torch_row.config  # PyTorch's records keep their former keys
    assert torch_row.metrics["runtime_version"] == torch.__version__
    for name in ("onnxruntime", "openvino"):
        m = rows[name]
        assert m.status == "ok", m.error
        assert m.config["runtime"] == name
        x = m.metrics
        assert x["runtime_version"] == rt.version(name)
        assert x["provider"]
        assert x["export_time_s"] > 0
        assert x["threads"] == 1  # the thread count PyTorch was given
        assert x["max_abs_diff"] <= 1e-3
        assert x["top1_agree"] is True
        assert x["agrees"] is True
        assert x["infer_samples_per_sec"] > 0
        assert x["rounds"] >= 3
        assert x["peak_gmacs_per_sec"] > 0


@needs_runtimes
def test_what_a_runtime_cannot_do_is_a_skipped_row_with_its_reason():
    ms = _measure(runtimes=ALL, modes=("infer", "train"), channels_last=True)
    skipped = [m for m in ms if m.status == "skipped"]
    assert {(m.config["mode"], m.config["runtime"]) for m in skipped} == {
        ("infer", "onnxruntime"), ("infer", "openvino"),
        ("train", "onnxruntime"), ("train", "openvino"),
    }  # fmt: skip
    for m in skipped:
        assert m.error.startswith("skipped: ")
        assert ("inference only" in m.error) if m.config["mode"] == "train" else "NCHW" in m.error
    assert all(m.status == "ok" for m in ms if "runtime" not in m.config)
    # ONNX Runtime runs the fp32 export only, BF16 hardware or not
    (ort,) = [m for m in _measure(runtimes=("onnxruntime",), precision="bf16")]
    assert ort.status == "skipped"
    assert "fp32" in ort.error
    (ov,) = [m for m in _measure(runtimes=("openvino",), precision="bf16")]
    if cpu_has_native_bf16():  # OpenVINO's CPU plugin has BF16 here: it is measured
        assert ov.status == "ok", ov.error
        assert ov.metrics["infer_samples_per_sec"] > 0
    else:
        assert ov.status == "skipped"
        assert "no native bf16" in ov.error


@needs_runtimes
def test_a_model_that_cannot_export_is_an_error_row_naming_the_step():
    rows = _by_runtime(_measure(branches_on_data, runtimes=ALL))
    assert rows["torch"].status == "ok"
    assert rows["onnxruntime"].status == "error"
    assert rows["onnxruntime"].error.startswith("RuntimeStepError: export to ONNX failed: ")
    assert "\x1b" not in rows["onnxruntime"].error  # the exporter's colours are stripped
    assert rows["openvino"].status in ("ok", "error")  # the sweep went on


@needs_runtimes
def test_a_runtime_that_rejects_the_model_is_an_error_row(monkeypatch):
    import openvino

    def reject(*args, **kwargs):
        raise RuntimeError("unsupported operation aten::frobnicate")

    monkeypatch.setattr(openvino, "convert_model", reject)
    rows = _by_runtime(_measure(runtimes=ALL))
    assert rows["openvino"].status == "error"
    assert "OpenVINO convert_model failed: RuntimeError: unsupported operation" in (
        rows["openvino"].error
    )
    assert rows["onnxruntime"].status == "ok"


def test_agreement_tolerance():
    ref = np.array([[0.0, 2.0, 1.0], [3.0, 0.0, 0.0]], dtype=np.float32)
    assert agreement(ref, ref + 2e-3, "fp32")["agrees"] is True  # 1e-3 x max(1, 3)
    assert agreement(ref, ref + 4e-3, "fp32")["agrees"] is False
    swapped = ref[:, [1, 0, 2]]
    a = agreement(ref, swapped, "bf16")
    assert a["top1_agree"] is False
    assert a["agrees"] is False
    assert agreement(ref, ref[:1], "fp32")["agrees"] is False


# -- --optimize --------------------------------------------------------------------------------
@needs_runtimes
def test_optimize_never_picks_a_candidate_that_disagrees(monkeypatch):
    real = sessions.open_session

    def wrong_but_fast(runtime, model, x, threads, device, precision, *scenario):
        session = real(runtime, model, x, threads, device, precision, *scenario)
        if runtime == "openvino":
            out = -np.asarray(session.infer()) + 1.0  # other classes, other values

            def infer():
                return out

            session.infer = infer
        return session

    monkeypatch.setattr(sessions, "open_session", wrong_but_fast)
    (m,) = _measure(optimize=True)
    cands = {(c["runtime"], c["precision"], c["layout"]): c for c in m.metrics["candidates"]}
    ov = cands[("openvino", "fp32", "nchw")]
    assert ov["infer_samples_per_sec"] > 0
    assert ov["error"].startswith("disagrees with eager fp32")
    assert m.config.get("runtime") != "openvino"
    assert m.metrics["agrees"] is True
    agreeing = [c for c in cands.values() if c["infer_samples_per_sec"] and not c["error"]]
    assert m.metrics["infer_samples_per_sec"] == max(c["infer_samples_per_sec"] for c in agreeing)


# -- sessions: one timing path, offline waves ----------------------------------------------------
class _Waves(rt.Runtime):
    """A runtime whose session runs eager PyTorch ``requests`` times per call (a stand-in for
    an offline wave; 1: a sync session)."""

    name, label = "waves", "Waves"

    def __init__(self, requests: int):
        self.requests = requests

    def open_session(self, model, x, threads, device, precision, scenario="sync",
                     concurrency=None):  # fmt: skip
        from bench.harness.throughput.runtimes.base import scenario_info

        def infer():
            with torch.inference_mode():
                outs = [model(x) for _ in range(self.requests)]
                return outs[0].numpy()

        info = scenario_info("offline", requests=self.requests) if self.requests > 1 else None
        return rt.Session(self.name, "1.0", "cpu", 0.0, threads, infer,
                          samples_per_call=len(x) * self.requests,
                          scenario_info=info or scenario_info())  # fmt: skip


@pytest.mark.parametrize("requests", [1, 3])
def test_a_session_is_timed_by_its_samples_per_call_and_states_its_scenario(monkeypatch, requests):
    entry = rt.RuntimeEntry("waves", "python", _Waves(requests))
    monkeypatch.setattr(rt, "_CACHE", {"key": (), "entries": {"waves": entry}})
    (m,) = _measure(runtimes=("waves",), min_time_s=0.1)
    assert m.status == "ok", m.error
    x = m.metrics
    assert x["agrees"] is True
    samples = 4 * requests  # batch 4
    assert x["infer_samples_per_sec"] == pytest.approx(samples * x["rounds"] / x["total_time_s"],
                                                       rel=1e-2)  # fmt: skip
    assert x["infer_batch_size"] == 4
    if requests == 1:  # a sync row: no offline keys
        assert x["scenario"] == "sync"
        assert "offline_requests" not in x
    else:
        assert x["scenario"] == "offline"
        assert x["offline_requests"] == 3
        assert x["offline_streams"] is None


def test_offline_requests_split_the_thread_budget():
    from bench.harness.throughput.runtimes.onnxruntime import offline_requests

    assert offline_requests(16, None) == 4
    assert offline_requests(2, None) == 2
    assert offline_requests(1, None) == 1
    assert offline_requests(8, 3) == 3


@needs_runtimes
@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_an_offline_session_runs_a_wave_of_concurrent_requests(runtime):
    x = torch.randn(2, 1, 8, 8)
    model = tiny().eval()
    sync = sessions.open_session(runtime, model, x, 2, "cpu", "fp32")
    wave = sessions.open_session(runtime, model, x, 2, "cpu", "fp32", "offline", 2)
    try:
        assert sync.samples_per_call == 2
        assert sync.scenario_info["scenario"] == "sync"
        assert sessions.scenario_metrics(sync) == {}
        assert wave.samples_per_call == 4  # the batch, twice
        info = wave.scenario_info
        assert (info["scenario"], info["requests"], info["threads_per_instance"]) == (
            "offline",
            2,
            1 if runtime == "onnxruntime" else info["threads_per_instance"],
        )
        if runtime == "openvino":
            assert info["streams"] == 2
        np.testing.assert_allclose(wave.infer(), sync.infer(), rtol=1e-4, atol=1e-5)
        rec = sessions.scenario_metrics(wave)
        assert rec["scenario"] == "offline"
        assert rec["offline_requests"] == 2
        own = sessions.open_session(runtime, model, x, 2, "cpu", "fp32", "offline")
        own.close()  # the runtime's own choice of requests (two threads: two, for ONNX Runtime)
        assert own.samples_per_call == 2 * own.scenario_info["requests"]
        assert own.scenario_info["requests"] >= (2 if runtime == "onnxruntime" else 1)
    finally:
        sync.close()
        wave.close()


@needs_runtimes
@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_an_int8_graph_opens_in_every_scenario_with_the_gates_predict(runtime):
    if rt.missing(runtime, int8=True):
        pytest.skip(f"{runtime}'s INT8 quantizer not installed")
    torch.manual_seed(0)
    x, calibration = torch.randn(2, 1, 8, 8), torch.randn(8, 1, 8, 8)
    runtime_ = rt.get(runtime)
    graph = runtime_.quantize(tiny().eval(), x, calibration, 2)
    sync = runtime_.open_quantized(graph, x, 2)
    wave = runtime_.open_quantized(graph, x, 2, "offline", 2)
    try:
        assert sync.scenario_info["scenario"] == "sync"
        assert sync.samples_per_call == 2
        assert wave.scenario_info["scenario"] == "offline"
        assert wave.scenario_info["requests"] == 2
        assert wave.samples_per_call == 4  # the batch, twice
        np.testing.assert_allclose(wave.infer(), sync.infer(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(wave.predict(x), sync.infer(), rtol=1e-4, atol=1e-5)
        assert wave.predict(x + 1.0).shape == sync.infer().shape
    finally:
        sync.close()
        wave.close()


@needs_runtimes
def test_onnxruntime_int8_of_a_layernorm_model_logs_no_per_channel_warning(caplog):
    """ONNX Runtime warns once per norm layer that its 1-D scale has no axis 1 (and quantizes
    it per tensor): dropped; any other warning it logs still comes through."""
    from bench.harness.throughput.runtimes.onnxruntime import quiet_per_tensor_fallback

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.LayerNorm(16), nn.Linear(16, 10))
    x, calibration = torch.randn(2, 1, 8, 8), torch.randn(8, 1, 8, 8)
    with caplog.at_level("WARNING"):
        rt.get("onnxruntime").quantize(model.eval(), x, calibration, 1)
        with quiet_per_tensor_fallback():
            import logging

            logging.warning("Axis 1 is out-of-range for weight 'ln.weight' with rank 1")
            logging.warning("some other warning")
    messages = [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if "out-of-range" in m], messages
    assert "some other warning" in messages


# -- --precision int8: speed only ----------------------------------------------------------------
def test_int8_speed_is_refused_with_one_line_where_it_has_no_path():
    with pytest.raises(ConfigError, match="harness 'params' has no INT8 path"):
        make_job(_spec(tiny), "params", precision="int8")
    with pytest.raises(ConfigError, match="PyTorch has no INT8 path"):
        make_job(_spec(tiny), "throughput", precision="int8")  # PyTorch alone
    with pytest.raises(ConfigError, match="--optimize tries INT8 itself"):
        make_job(_spec(tiny), "throughput", precision="int8", runtimes=("onnxruntime",),
                 optimize=True)  # fmt: skip
    with pytest.raises(ConfigError, match="inference only"):
        make_job(_spec(tiny), "throughput", precision="int8", runtimes=("onnxruntime",),
                 modes=("train",))  # fmt: skip
    with pytest.raises(ConfigError, match="--batch-search"):
        make_job(_spec(tiny), "throughput", precision="int8", runtimes=("onnxruntime",),
                 batch_search=True)  # fmt: skip
    # quiet where it has a path, and for another precision
    make_job(_spec(tiny), "throughput", precision="int8", runtimes=("torch", "onnxruntime"))
    make_job(_spec(tiny), "params", precision="fp32")


def test_cli_refuses_int8_for_pytorch_alone_with_one_line_and_exit_2():
    from conftest import run_cli

    r = run_cli("run", "--models", "lenet5", "--harness", "throughput", "--precision", "int8")
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "--runtime onnxruntime" in r.stderr


@needs_runtimes
def test_int8_speed_without_weights_is_calibrated_on_synthetic_images_and_says_so():
    rows = _by_runtime(_measure(precision="int8", runtimes=ALL))
    assert rows["torch"].status == "skipped"
    assert "PyTorch has no INT8 path" in rows["torch"].error
    assert rows["torch"].metrics["accuracy"] == "accuracy not measured"
    for name in ("onnxruntime", "openvino"):
        if rt.missing(name, int8=True):
            continue
        m = rows[name]
        assert m.status == "ok", m.error
        assert m.config["precision"] == "int8"
        x = m.metrics
        assert x["infer_samples_per_sec"] > 0
        assert x["accuracy"] == "accuracy not measured"
        assert x["calibration_data"].startswith("synthetic: 128 seeded random 1x8x8 images")
        assert x["calibration_images"] == 128
        assert "within_budget" not in x  # nothing judged: no gate without images


def test_synthetic_calibration_is_seeded_with_the_models_mean_and_std():
    from types import SimpleNamespace

    from bench.harness.throughput.quantize import synthetic_calibration, synthetic_mean_std

    job = make_job(_spec(tiny), "throughput", calibration_images=64)
    run = SimpleNamespace(job=job, init=None, settings=SimpleNamespace(calibration_images=64))
    a, b = synthetic_calibration(run), synthetic_calibration(run)
    assert a.shape == (64, 1, 8, 8)
    assert torch.equal(a, b)  # seeded
    mean, std = synthetic_mean_std(run, 1)  # ImageNet's, averaged for one channel
    assert mean == [pytest.approx((0.485 + 0.456 + 0.406) / 3)]
    # uniform pixels normalised: their mean lands at (0.5 - mean) / std
    assert float(a.mean()) == pytest.approx((0.5 - mean[0]) / std[0], abs=0.05)
    run.init = SimpleNamespace(mean=(0.5,), std=(0.25,))  # a checkpoint's own
    assert synthetic_mean_std(run, 1) == ([0.5], [0.25])
    assert float(synthetic_calibration(run).mean()) == pytest.approx(0.0, abs=0.05)


# -- CUDA sessions, as far as a CPU allows --------------------------------------------------------
@pytest.mark.skipif(not rt.installed("onnxruntime"), reason="needs onnxruntime")
def test_io_binding_runs_the_bound_input_and_leaves_the_output_on_the_device():
    """The CUDA path's IO binding, checked on the CPU device: the same outputs as a plain run,
    and the timed call fetches nothing."""
    import tempfile
    from pathlib import Path

    import onnxruntime as ort

    from bench.harness.throughput.runtimes.onnxruntime import bound_run, device_run, export_onnx

    x = torch.randn(3, 1, 8, 8)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.onnx"
        export_onnx(tiny().eval(), x, path)
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    plain_infer, plain_timed = bound_run(sess, x, "cpu")
    assert plain_infer is plain_timed  # the CPU path: one run on a host array
    infer, timed = device_run(sess, x, "cpu")
    assert timed() is None
    np.testing.assert_allclose(infer(), plain_infer(), rtol=1e-6, atol=1e-6)


def _fake_raw(**over):
    raw = {"samples_per_sec": 100.0, "step_time": 0.01, "rounds": 5, "total_time_s": 0.05,
           "peak_mem_mb": 900.0, "peak_mem_reserved_mb": None}  # fmt: skip
    return {**raw, **over}


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_a_cuda_session_is_timed_on_cuda_with_its_device_memory(monkeypatch, device):
    """A session on CUDA: CUDA's timer (time_steps on 'cuda'), what the loop times is its
    ``timed`` call (outputs left on the device), and memory from NVML, not torch's allocator
    nor RSS; a CPU session keeps perf_counter and the process's memory."""
    from types import SimpleNamespace

    from bench.harness.throughput.config import Settings
    from bench.harness.throughput.measure import Candidate

    seen = {}

    def fake_time_steps(step, sync, samples, dev, *rest):
        seen.update(step=step, device=dev, samples=samples)
        return _fake_raw()

    monkeypatch.setattr(sessions, "time_steps", fake_time_steps)
    monkeypatch.setattr(sessions, "device_memory", lambda: {"peak_mem_mb": 42.0,
                        "peak_mem_reserved_mb": None, "peak_mem_source": "nvml: test"})  # fmt: skip
    timed = lambda: None  # noqa: E731
    session = rt.Session("x", "1", "p", 0.0, 1, lambda: np.zeros(1), samples_per_call=4,
                         device=device, timed=timed if device == "cuda" else None)  # fmt: skip
    run = SimpleNamespace(settings=Settings(), job=SimpleNamespace(input_size=(1, 8, 8)),
                          memory_increase_mb=lambda: None)  # fmt: skip
    m = sessions.time_session(run, Candidate("infer", "fp32", False, False), 4, session, "X")
    assert seen["device"] == device
    assert seen["samples"] == 4
    if device == "cuda":
        assert seen["step"] is timed
        assert m["peak_mem_mb"] == 42.0
        assert m["peak_mem_source"] == "nvml: test"
    else:
        assert seen["step"] is session.infer
        assert m["peak_mem_mb"] == 900.0
        assert "peak_mem_source" not in m


# -- one peak per run ----------------------------------------------------------------------------
FAKE_PEAK = {"peak_gmacs_per_sec": 12345.0, "peak_method": "fake matmul", "peak_tf32": False}


def _two_model_run(tmp_path, isolate: bool):
    from bench.runner import harness_configs, run
    from bench.storage import ResultStore

    run_config, _ = split_options("throughput", **{**FAST, "isolate": isolate})
    own = {k: v for k, v in FAST.items() if k in ("min_time_s", "min_steps", "threads")}
    configs = harness_configs(["throughput"], run_config, {"throughput": own})
    specs = [_spec(tiny), ModelSpec("tiny2", "test", (1, 8, 8), builder=tiny)]
    return run(specs, ["throughput"], run_config, ResultStore(tmp_path), configs=configs)


def test_one_peak_per_run_the_best_of_a_first_measurement_and_each_models_sample(
    monkeypatch, tmp_path
):
    calls, figures = [], iter([100.0, 150.0, 120.0])  # before the run, after model 1, model 2

    def fake_peak(*args, **kwargs):
        calls.append((args, kwargs.get("cache", True)))
        return {**FAKE_PEAK, "peak_gmacs_per_sec": next(figures)}

    monkeypatch.setattr(tp, "matmul_peak", fake_peak)
    doc = _two_model_run(tmp_path, isolate=False)
    assert [(a[:2], cache) for a, cache in calls] == [(("cpu", "fp32"), True)] + [
        (("cpu", "fp32"), False)
    ] * 2  # the run's first measurement is cached; each model's sample is fresh
    metrics = [r["metrics"] for r in doc.records]
    assert [m["peak_sample_gmacs_per_sec"] for m in metrics] == [150.0, 120.0]
    assert [m["peak_gmacs_per_sec"] for m in metrics] == [150.0, 150.0]  # model 2 too
    for m in metrics:
        assert m["frac_of_peak"] == round(m["achieved_gmacs_per_sec"] / 150.0, 4)
        assert m["peak_method"].endswith(tp.SETTLED)


def test_settle_peaks_keeps_each_machine_to_its_own_best():
    from bench.harness.throughput.peak import settle_peaks

    def row(peak, sample, machine=None, precision="fp32", status="ok"):
        r = {"status": status, "device": "cpu", "metrics": {
            "peak_gmacs_per_sec": peak, "peak_sample_gmacs_per_sec": sample,
            "achieved_gmacs_per_sec": 30.0, "peak_precision": precision, "peak_tf32": False,
            "peak_method": "1024x1024x1024 fp32 matmul; once per run"}}  # fmt: skip
        if machine:
            r["machine"] = {"id": machine, "node": machine}
        return r

    here = [row(60.0, 70.0), row(60.0, 65.0)]
    there = [row(90.0, 95.0, machine="other")]
    bf16 = [row(200.0, 210.0, precision="bf16")]
    failed = row(60.0, 500.0, status="error")  # an error row neither counts nor changes
    records = settle_peaks(
        [*here, *there, *bf16, failed], peaks=(("cpu", "fp32", False, 75.0, "m"),)
    )
    assert [r["metrics"]["peak_gmacs_per_sec"] for r in here] == [75.0, 75.0]
    assert here[0]["metrics"]["frac_of_peak"] == round(30.0 / 75.0, 4)
    assert there[0]["metrics"]["peak_gmacs_per_sec"] == 95.0
    assert bf16[0]["metrics"]["peak_gmacs_per_sec"] == 210.0
    assert failed["metrics"]["peak_gmacs_per_sec"] == 60.0
    assert len(records) == 5


def test_resuming_a_throughput_run_is_not_refused_for_its_new_peak(monkeypatch, tmp_path):
    """The peaks are measured, not options: a resumed run measures its own and is accepted."""
    from bench.runner import harness_configs, run
    from bench.storage import ResultStore

    figures = iter([100.0, 110.0, 105.0, 130.0, 90.0])
    monkeypatch.setattr(
        tp, "matmul_peak",
        lambda *a, **k: {**FAKE_PEAK, "peak_gmacs_per_sec": next(figures)},
    )  # fmt: skip
    doc = _two_model_run(tmp_path, isolate=False)
    run_config, _ = split_options("throughput", **{**FAST, "isolate": False})
    own = {k: v for k, v in FAST.items() if k in ("min_time_s", "min_steps", "threads")}
    store = ResultStore(tmp_path)
    configs = harness_configs(["throughput"], run_config, {"throughput": own})  # peak 130
    specs = [_spec(tiny), ModelSpec("tiny3", "test", (1, 8, 8), builder=tiny)]
    resumed = run(specs, ["throughput"], run_config, store, configs=configs,
                  resume=store.open_run(doc.header["run_id"]))  # fmt: skip
    assert [r["model"] for r in resumed.records] == ["tiny", "tiny2", "tiny3"]
    assert {r["metrics"]["peak_gmacs_per_sec"] for r in resumed.records} == {130.0}


def test_isolated_workers_get_the_runs_peak(monkeypatch, tmp_path):
    monkeypatch.setattr(tp, "matmul_peak", lambda *a, **k: dict(FAKE_PEAK))
    doc = _two_model_run(tmp_path, isolate=True)  # the workers cannot see the monkeypatch
    assert [r["status"] for r in doc.records] == ["ok", "ok"]
    assert [r["metrics"]["peak_gmacs_per_sec"] for r in doc.records] == [12345.0, 12345.0]


def test_prepare_measures_fp32_too_when_other_runtimes_run(monkeypatch):
    seen = []
    monkeypatch.setattr(tp, "matmul_peak", lambda d, p, *a, **k: seen.append(p) or FAKE_PEAK)
    run, config = split_options("throughput", **{**FAST, "precision": "fp16"})
    ThroughputHarness.prepare(replace_runtimes(config), run)
    assert seen == ["fp16", "fp32"]


def test_int8_and_bf16_rows_take_their_fraction_of_a_peak_at_their_own_precision(monkeypatch):
    from types import SimpleNamespace

    figures = {"fp32": 100.0, "bf16": 400.0, "int8": 800.0}
    monkeypatch.setattr(tp, "matmul_peak", lambda d, p, *a, **k: {**FAKE_PEAK,
                        "peak_gmacs_per_sec": figures[p], "peak_method": f"{p} matmul"})  # fmt: skip
    settings = SimpleNamespace(peaks=(), min_time_s=0.1)
    run = SimpleNamespace(settings=settings, device="cpu", gmacs=2.0, keep_sample=lambda k, g: g)
    for precision, peak in figures.items():
        m = tp.peak_metrics(run, "infer", precision, {"infer_samples_per_sec": 40.0})
        assert m["peak_precision"] == precision
        assert m["peak_gmacs_per_sec"] == peak
        assert m["frac_of_peak"] == round(80.0 / peak, 4)  # 2 GMACs x 40/s
    # where no INT8 product can run: '-' (None), never the fp32 peak
    del figures["int8"]
    m = tp.peak_metrics(run, "infer", "int8", {"infer_samples_per_sec": 40.0})
    assert m["frac_of_peak"] is None
    assert "peak_precision" not in m
    assert m["achieved_gmacs_per_sec"] == 80.0
    assert m["peak_method"].startswith("no int8 peak measured here")
    with pytest.raises(KeyError):  # another precision's failure is not hidden
        tp.peak_metrics(run, "infer", "fp16", {"infer_samples_per_sec": 40.0})


def test_an_int8_peak_is_an_int8_product_and_optional_in_the_runs_peaks(monkeypatch):
    info = tp.matmul_peak("cpu", "int8", min_time_s=0.0, repeats=1, cache=False)
    assert info["peak_gmacs_per_sec"] > 0
    assert "int8 matmul" in info["peak_method"]
    a, b, out = tp._operands(16, "cpu", "int8")
    assert (a.dtype, b.dtype, out.dtype) == (torch.int8, torch.int8, torch.int32)
    seen = []
    monkeypatch.setattr(tp, "matmul_peak", lambda d, p, *a, **k: seen.append(p) or FAKE_PEAK)
    run, config = split_options("throughput", **{**FAST, "optimize": True, "device": "cpu"})
    ThroughputHarness.prepare(replace_runtimes(config), run)
    assert "int8" in seen  # --optimize's INT8 candidates get their own peak
    seen.clear()
    run, config = split_options("throughput", **FAST)
    ThroughputHarness.prepare(config, run)
    assert seen == ["fp32"]  # and a plain run measures no other
    # a machine without an INT8 product: the run goes on without that peak

    def no_int8(d, p, *a, **k):
        if p == "int8":
            raise RuntimeError("no _int_mm")
        return FAKE_PEAK

    monkeypatch.setattr(tp, "matmul_peak", no_int8)
    assert [p for _, p, *_ in tp.run_peaks("cpu", ["int8", "fp32"])] == ["fp32"]


def replace_runtimes(config):
    from dataclasses import replace

    return replace(config, runtimes=ALL)


def test_a_harness_that_fails_to_finalize_leaves_its_records_and_the_run_completes(
    monkeypatch, tmp_path
):
    import bench.runner as runner

    def broken(config, records):
        raise RuntimeError("finalize broke")

    # the runner calls each harness's finalize hook as harness_hook(name, "finalize") finds it
    monkeypatch.setattr(runner, "harness_hook", lambda name, hook: broken)
    doc = _two_model_run(tmp_path, isolate=False)
    assert doc.header["status"] == "complete"
    assert [r["status"] for r in doc.records] == ["ok", "ok"]


def test_the_int8_why_script_ranks_variants_against_openvino_bf16():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "scripts" / "int8_why.py"
    spec = importlib.util.spec_from_file_location("int8_why", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.parse(["--quick"]).quick is True
    rows = [("OpenVINO bf16", 100.0, ""), ("ONNX Runtime INT8 QDQ", 150.0, ""),
            ("OpenVINO INT8 (NNCF)", None, "nncf not installed")]  # fmt: skip
    text = mod.table(rows, "t").splitlines()
    assert text[4].startswith("| ONNX Runtime INT8 QDQ | 150.0 | 1.50x")  # fastest first
    assert text[5].startswith("| OpenVINO bf16 | 100.0 | 1.00x")
    assert text[6] == "| OpenVINO INT8 (NNCF) | - | - | nncf not installed |"
    assert "vs -" in mod.table([("x", None, "why")], "t")  # no baseline: no ratio

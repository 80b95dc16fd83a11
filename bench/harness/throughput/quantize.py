"""Lossy candidates of ``--optimize`` and their accuracy gate.

INT8, two ways, each calibrated on the gate's calibration images:

- ONNX Runtime: static quantization of the exported graph: ``torch.onnx.export``, then ONNX
  Runtime's quantization pre-processing (``quant_pre_process``: symbolic shape inference and
  graph optimisation; measured on a VNNI Xeon, resnet50 INT8 ran at 0.61x its fp32 speed
  without it and 2.69x with it), then ``quantize_static`` in QDQ format (activations uint8,
  weights int8 per channel, MinMax calibration).
- OpenVINO: ``openvino.convert_model`` from the PyTorch module, then NNCF's post-training
  quantization (``nncf.quantize``, its default preset: symmetric int8 weights and activations
  with fast bias correction), compiled for the CPU plugin.

A quantized session is built once per model, runtime and batch size and re-timed in every round.

The gate (``ModelRun.gate``, ``bench.harness.throughput.gate``): the candidate's predictions
paired with eager fp32's on the same scoring images, the drop of top-1 with its interval, and
whether it passes ``--accuracy-gate`` within ``--accuracy-budget``. Agreement with eager fp32 on
the timing input is recorded for INT8 but does not decide (INT8 never agrees to 5e-2; its top-1
on real images does).
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import time
import warnings
from pathlib import Path

from bench.harness.throughput.backend import backend_settings, dtype
from bench.harness.throughput.config import TORCH
from bench.harness.throughput.gate import torch_predict
from bench.harness.throughput.measure import Candidate, time_steps, timed_metrics
from bench.harness.throughput.model_run import ModelRun
from bench.harness.throughput.reference import agreement
from bench.harness.throughput.runtimes import convert_openvino, export_onnx, step, version

logger = logging.getLogger(__name__)

INT8 = "int8"
LOSSY = (INT8, "fp16")  # chosen only within the accuracy budget; never on agreement alone


def _calibration_batches(images, batch: int) -> list:
    """``images`` as numpy batches of exactly ``batch`` (a quantized graph's fixed shape; the
    last batch padded with the first images)."""
    import torch

    if len(images) % batch:
        pad = batch - len(images) % batch
        images = torch.cat([images, images[:pad].repeat((pad // len(images)) + 1, 1, 1, 1)[:pad]])
    return [images[i : i + batch].numpy() for i in range(0, len(images), batch)]


def _calibration_reader(input_name: str, images, batch: int):
    """ONNX Runtime's calibration reader over ``_calibration_batches``."""
    from onnxruntime.quantization import CalibrationDataReader

    batches = _calibration_batches(images, batch)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter(batches)

        def get_next(self):
            x = next(self._it, None)
            return None if x is None else {input_name: x}

    return Reader()


def quantize_int8(model, x, calibration, workdir: Path) -> Path:
    """The model exported at ``x``'s shape, pre-processed and statically quantized (QDQ)."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quant_pre_process, quantize_static

    fp32, pre, q8 = (workdir / n for n in ("model.onnx", "pre.onnx", "int8.onnx"))
    export_onnx(model, x, fp32)
    with step("ONNX Runtime quantization pre-processing"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quant_pre_process(str(fp32), str(pre))
    name = onnx.load(str(pre), load_external_data=False).graph.input[0].name
    reader = _calibration_reader(name, calibration, int(x.shape[0]))
    with step("ONNX Runtime static quantization"), contextlib.redirect_stdout(None):
        quantize_static(str(pre), str(q8), reader, quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8)  # fmt: skip
    return q8


def _ort_int8(model, x, calibration, threads: int):
    """(predict, provider) of ONNX Runtime's INT8 session of ``model`` at ``x``'s shape."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="cnn-bench-int8-") as tmp:
        path = quantize_int8(model, x, calibration, Path(tmp))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        opts.log_severity_level = 3
        with step("ONNX Runtime INT8 session"):
            sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name, out = sess.get_inputs()[0].name, sess.get_outputs()[0].name

    def predict(xb):
        return sess.run([out], {name: xb.detach().cpu().numpy()})[0]

    return predict, "CPUExecutionProvider"


def _openvino_int8(model, x, calibration, threads: int):
    """(predict, device) of OpenVINO's CPU plugin on NNCF's INT8 quantization of ``model`` at
    ``x``'s shape (calibrated in batches of that shape, the last one padded)."""
    import nncf
    import openvino as ov

    nncf.set_log_level(logging.ERROR)
    batches = _calibration_batches(calibration, int(x.shape[0]))
    ov_model = convert_openvino(model, x, input=[tuple(x.shape)])
    # NNCF draws its progress bars (rich) on stdout whatever its log level: kept off the run's output
    with (
        step("NNCF INT8 quantization"),
        warnings.catch_warnings(),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        warnings.simplefilter("ignore")
        quantized = nncf.quantize(ov_model, nncf.Dataset(batches), subset_size=len(batches))
    core = ov.Core()
    config = {"INFERENCE_NUM_THREADS": int(threads), "PERFORMANCE_HINT": "LATENCY"}
    with step("OpenVINO INT8 compile_model"):
        request = core.compile_model(quantized, "CPU", config).create_infer_request()

    def predict(xb):
        request.infer([xb.detach().cpu().numpy()])
        return request.get_output_tensor(0).data.copy()

    return predict, f"CPU ({core.get_property('CPU', 'FULL_DEVICE_NAME')})"


QUANTIZERS = {"onnxruntime": _ort_int8, "openvino": _openvino_int8}


def _int8_session(run: ModelRun, batch: int, runtime: str) -> dict:
    """The INT8 session of ``runtime`` for ``batch`` (built once per model, runtime and batch)
    and its build time."""
    key = ("int8_session", runtime, batch)
    if key in run.job.cache:
        return run.job.cache[key]
    import torch

    data = run.gate.data()
    x = run.job.example_input(batch)
    model = run.model.eval().float().cpu().to(memory_format=torch.contiguous_format)
    threads = torch.get_num_threads()
    start = time.perf_counter()
    predict, provider = QUANTIZERS[runtime](model, x, data.calibration, threads)
    build_s = time.perf_counter() - start
    entry = {"predict": predict, "x": x, "threads": threads, "build_s": build_s,
             "provider": provider}  # fmt: skip
    run.job.cache[key] = entry
    return entry


def measure_int8(run: ModelRun, cand: Candidate, batch: int) -> dict:
    """An INT8 candidate (``cand.runtime``): quantized once, judged by the gate once, timed
    with PyTorch's loop."""
    s = _int8_session(run, batch, cand.runtime)
    feed = s["x"]
    with step(f"{cand.runtime} INT8 timing"):
        raw = time_steps(lambda: s["predict"](feed), lambda: None, batch, "cpu", run.settings,
                         False, contextlib.nullcontext())  # fmt: skip
    metrics = timed_metrics(raw, cand.mode, batch, batch, run)
    metrics.update(backend_settings("cpu"))
    metrics.update(threads=s["threads"], runtime_version=version(cand.runtime))
    metrics.update(provider=s["provider"], export_time_s=round(s["build_s"], 3))
    agree = agreement(run.reference(batch), s["predict"](feed), INT8)
    agree.pop("agrees")  # recorded, not deciding: the accuracy gate decides
    metrics.update(agree, **run.gate.judge((INT8, cand.runtime, batch), s["predict"], batch))
    return metrics


def torch_gate(run: ModelRun, cand: Candidate, batch: int) -> dict:
    """A reduced-precision PyTorch candidate's gate metrics (judged once per candidate)."""
    import functools

    import torch

    autocast = functools.partial(torch.autocast, device_type=run.device,
                                 dtype=dtype(cand.precision))  # fmt: skip
    model = run.model.to(run.device).to(memory_format=torch.contiguous_format).eval()
    key = (TORCH, cand.precision, cand.channels_last)
    return run.gate.judge(key, torch_predict(model, run.device, autocast), batch)

"""ONNX Runtime: ``torch.onnx.export`` (torch's own exporter), then an
``onnxruntime.InferenceSession`` on the CPU (or CUDA with onnxruntime-gpu).

Sync and single-stream: one ``run`` per call, with the thread count PyTorch is given. Offline:
one call is a wave of ``requests`` concurrent ``run`` calls on the one session from Python
threads (ONNX Runtime releases the GIL inside ``run``), each with ``threads // requests``
intra-op threads, so that requests x threads stays the thread budget.

INT8: static quantization of the exported graph: ONNX Runtime's quantization pre-processing
(``quant_pre_process``: symbolic shape inference and graph optimisation; measured on a VNNI
Xeon, resnet50 INT8 ran at 0.61x its fp32 speed without it and 2.69x with it), then
``quantize_static`` in QDQ format (activations uint8, weights int8 per channel, MinMax
calibration). The packages are imported inside functions.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
import warnings
from pathlib import Path

from bench.harness.throughput.runtimes.base import (
    OFFLINE,
    SINGLE_STREAM,
    SYNC,
    Runtime,
    Session,
    calibration_batches,
    dist_version,
    scenario_info,
    step,
)

CPU, CUDA = "CPUExecutionProvider", "CUDAExecutionProvider"


def export_onnx(model, x, path: Path) -> float:
    """``torch.onnx.export`` (torch's own exporter) of ``model`` at ``x``'s shape; seconds."""
    import torch

    start = time.perf_counter()
    with step("export to ONNX"), warnings.catch_warnings(), contextlib.redirect_stdout(None):
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notices
        torch.onnx.export(model, (x,), str(path), dynamo=True, verbose=False)
    return time.perf_counter() - start


def offline_requests(threads: int, concurrency: int | None) -> int:
    """How many concurrent runs an offline wave makes: ``concurrency`` when given, else one
    per four threads (at least two where there are two threads)."""
    if concurrency is not None:
        return max(1, int(concurrency))
    return max(min(2, threads), threads // 4)


def _options(threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, int(threads))
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return opts


def _wave(run, requests: int):
    """(one call running ``run`` ``requests`` times at once and returning the first output,
    closing its threads)."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=requests, thread_name_prefix="ort-offline")

    def infer():
        futures = [pool.submit(run) for _ in range(requests)]
        outputs = [f.result() for f in futures]  # every request waited for
        return outputs[0]

    return infer, lambda: pool.shutdown(wait=True)


class OnnxRuntime(Runtime):
    name = "onnxruntime"
    label = "ONNX Runtime"
    packages = {"onnx": "onnx", "onnxscript": "onnxscript", "onnxruntime": "onnxruntime"}  # noqa: RUF012
    version_package = "onnxruntime"
    int8_packages = {}  # noqa: RUF012
    precisions = ("fp32",)
    devices = ("cpu", "cuda")
    scenarios = (SYNC, SINGLE_STREAM, OFFLINE)

    def skip_reason(self, device: str, precision: str, scenario: str = SYNC) -> str | None:
        if device == "cuda" and not cuda_available():
            return (
                "skipped: ONNX Runtime's CUDA provider is not available (install onnxruntime-gpu)"
            )
        if precision != "fp32":
            return f"skipped: ONNX Runtime runs this fp32 export only ({precision} not measured)"
        return super().skip_reason(device, precision, scenario)

    def open_session(self, model, x, threads, device, precision, scenario=SYNC,
                     concurrency=None) -> Session:  # fmt: skip
        import onnxruntime as ort

        requests = offline_requests(threads, concurrency) if scenario == OFFLINE else 1
        per_request = max(1, threads // requests)
        with tempfile.TemporaryDirectory(prefix="cnn-bench-export-") as tmp:
            path = Path(tmp) / "model.onnx"
            export_s = export_onnx(model, x, path)
            provider = CUDA if device == "cuda" else CPU
            with step("ONNX Runtime session"):
                sess = ort.InferenceSession(str(path), _options(per_request), providers=[provider])
        run = bound_run(sess, x, device)
        batch = int(x.shape[0])
        session = Session(self.name, dist_version(self.version_package), sess.get_providers()[0],
                          export_s, threads, run, samples_per_call=batch)  # fmt: skip
        if scenario == OFFLINE:
            session.infer, session.close = _wave(run, requests)
            session.samples_per_call = batch * requests
            session.scenario_info = scenario_info(
                OFFLINE, requests=requests, threads_per_instance=per_request
            )
        else:
            session.scenario_info = scenario_info(scenario)
        return session

    def quantize(self, model, x, calibration, threads: int) -> Session:
        import onnxruntime as ort

        with tempfile.TemporaryDirectory(prefix="cnn-bench-int8-") as tmp:
            start = time.perf_counter()
            path = quantize_int8(model, x, calibration, Path(tmp))
            with step("ONNX Runtime INT8 session"):
                sess = ort.InferenceSession(str(path), _options(threads), providers=[CPU])
            build_s = time.perf_counter() - start
        name, out = sess.get_inputs()[0].name, sess.get_outputs()[0].name

        def predict(xb):
            return sess.run([out], {name: xb.detach().cpu().numpy()})[0]

        feed = {name: x.detach().cpu().numpy()}
        return Session(self.name, dist_version(self.version_package), CPU, build_s, threads,
                       lambda: sess.run([out], feed)[0], samples_per_call=int(x.shape[0]),
                       predict=predict)  # fmt: skip


def cuda_available() -> bool:
    import onnxruntime as ort

    return CUDA in ort.get_available_providers()


def bound_run(sess, x, device: str):
    """One ``run`` of ``sess`` on ``x``, returning the first output as a NumPy array. On the
    CPU the input is fed as a host array once made."""
    name, out = sess.get_inputs()[0].name, sess.get_outputs()[0].name
    feed = {name: x.detach().cpu().numpy()}

    def run():
        return sess.run([out], feed)[0]

    return run


def _calibration_reader(input_name: str, images, batch: int):
    """ONNX Runtime's calibration reader over ``calibration_batches``."""
    from onnxruntime.quantization import CalibrationDataReader

    batches = calibration_batches(images, batch)

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


RUNTIME = OnnxRuntime()

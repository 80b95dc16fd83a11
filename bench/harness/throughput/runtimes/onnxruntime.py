"""ONNX Runtime: ``torch.onnx.export`` (torch's own exporter), then an
``onnxruntime.InferenceSession`` on the CPU (or CUDA with onnxruntime-gpu).

Sync and single-stream: one ``run`` per call, with the thread count PyTorch is given. Offline:
one call is a wave of ``requests`` concurrent ``run`` calls on the one session from Python
threads (ONNX Runtime releases the GIL inside ``run``), each with ``threads // requests``
intra-op threads, so that requests x threads stays the thread budget.

CUDA (with onnxruntime-gpu): the session must run on the CUDA provider (a fallback to the CPU
is an error); the input is bound on the device once (IO binding) and the output stays there in
the timed loop, which runs on CUDA's timer with NVML's energy and device memory
(``bench.harness.throughput.sessions``).

INT8: static quantization of the exported graph: ONNX Runtime's quantization pre-processing
(``quant_pre_process``: symbolic shape inference and graph optimisation; measured on a VNNI
Xeon, resnet50 INT8 ran at 0.61x its fp32 speed without it and 2.69x with it), then
``quantize_static`` in QDQ format (activations uint8, weights int8 per channel, MinMax
calibration; a norm layer's 1-D scale has no channel axis where ONNX Runtime looks for one, so
it takes one scale, and the warning ONNX Runtime logs for each is dropped). The quantized model
is opened like the fp32 export (one run per call, or offline waves). The packages are imported
inside functions.
"""

from __future__ import annotations

import contextlib
import logging
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


def _waves(runs: list):
    """(infer, timed, close) of an offline wave: every request's call submitted at once from
    its own thread and all waited for; ``runs`` holds each request's (infer, timed)."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=len(runs), thread_name_prefix="ort-offline")

    def wave(calls):
        def call():
            futures = [pool.submit(c) for c in calls]
            outputs = [f.result() for f in futures]  # every request waited for
            return outputs[0]

        return call

    infer, timed = wave([r[0] for r in runs]), wave([r[1] for r in runs])
    return infer, timed, lambda: pool.shutdown(wait=True)


def _exported_session(model, x, threads: int, device: str):
    """(the InferenceSession of ``model`` exported at ``x``'s shape, export seconds). On
    CUDA, a session that fell back to the CPU provider is an error, never a CPU row."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="cnn-bench-export-") as tmp:
        path = Path(tmp) / "model.onnx"
        export_s = export_onnx(model, x, path)
        provider = CUDA if device == "cuda" else CPU
        with step("ONNX Runtime session"):
            sess = ort.InferenceSession(str(path), _options(threads), providers=[provider])
            if sess.get_providers()[0] != provider:
                raise RuntimeError(f"{provider} did not load; ONNX Runtime fell back to the CPU")
    return sess, export_s


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
        requests = offline_requests(threads, concurrency) if scenario == OFFLINE else 1
        per_request = max(1, threads // requests)
        sess, export_s = _exported_session(model, x, per_request, device)
        return self._session(sess, x, threads, device, export_s, scenario, requests)

    def _session(self, sess, x, threads, device, export_s, scenario, requests) -> Session:
        """The Session of ``sess`` on ``x``: one run per call, or offline waves of
        ``requests`` concurrent runs."""
        batch = int(x.shape[0])
        session = Session(self.name, dist_version(self.version_package), sess.get_providers()[0],
                          export_s, threads, lambda: None, samples_per_call=batch,
                          device=device)  # fmt: skip
        # one binding per request: an IO binding is not shared between threads
        runs = [bound_run(sess, x, device) for _ in range(requests)]
        if scenario != OFFLINE:
            (session.infer, session.timed), session.scenario_info = runs[0], scenario_info(scenario)
            return session
        session.infer, session.timed, session.close = _waves(runs)
        session.samples_per_call = batch * requests
        session.scenario_info = scenario_info(
            OFFLINE, requests=requests, threads_per_instance=max(1, threads // requests)
        )
        return session

    def quantize(self, model, x, calibration, threads: int) -> bytes:
        with tempfile.TemporaryDirectory(prefix="cnn-bench-int8-") as tmp:
            return quantize_int8(model, x, calibration, Path(tmp)).read_bytes()

    def open_quantized(self, graph, x, threads, scenario=SYNC, concurrency=None) -> Session:
        import onnxruntime as ort

        requests = offline_requests(threads, concurrency) if scenario == OFFLINE else 1
        start = time.perf_counter()
        with step("ONNX Runtime INT8 session"):
            opts = _options(max(1, threads // requests))
            sess = ort.InferenceSession(graph, opts, providers=[CPU])
        session = self._session(sess, x, threads, "cpu", time.perf_counter() - start, scenario,
                                requests)  # fmt: skip
        name, out = sess.get_inputs()[0].name, sess.get_outputs()[0].name

        def predict(xb):
            return sess.run([out], {name: xb.detach().cpu().numpy()})[0]

        session.predict = predict
        return session


def cuda_available() -> bool:
    import onnxruntime as ort

    return CUDA in ort.get_available_providers()


def bound_run(sess, x, device: str):
    """(infer, timed) of ``sess`` on ``x``: ``infer`` runs once and returns the first output as
    a NumPy array; ``timed`` is what the loop times. On the CPU both are one ``run`` on a host
    array made once. On CUDA through IO binding (``device_run``): the input is copied to the
    device once and the output stays there, so that ``timed`` copies nothing host to device or
    back; ``infer`` fetches the output after its run."""
    if device == "cuda":
        return device_run(sess, x, "cuda")
    name, out = sess.get_inputs()[0].name, sess.get_outputs()[0].name
    feed = {name: x.detach().cpu().numpy()}

    def run():
        return sess.run([out], feed)[0]

    return run, run


def device_run(sess, x, device_type: str):
    """(infer, timed) through ``sess``'s IO binding on ``device_type`` ('cuda', or 'cpu' where
    a CPU can check it): the input bound once as an OrtValue on the device, the output bound
    to the device; ``timed`` runs without fetching, ``infer`` runs and copies the output."""
    import onnxruntime as ort

    name, out = sess.get_inputs()[0].name, sess.get_outputs()[0].name
    binding = sess.io_binding()
    value = ort.OrtValue.ortvalue_from_numpy(x.detach().cpu().numpy(), device_type, 0)
    binding.bind_ortvalue_input(name, value)
    binding.bind_output(out, device_type)

    def timed():
        sess.run_with_iobinding(binding)

    def infer():
        timed()
        return binding.copy_outputs_to_cpu()[0]

    return infer, timed


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


class _QuietPerTensorFallback(logging.Filter):
    """Drops ONNX Runtime's 'Axis 1 is out-of-range for weight ... with rank 1': logged on the
    root logger for every norm layer's scale (25 lines for a ViT-Ti), which is then quantized
    per tensor, as it should be."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "is out-of-range for weight" not in record.getMessage()


@contextlib.contextmanager
def quiet_per_tensor_fallback():
    root, quiet = logging.getLogger(), _QuietPerTensorFallback()
    root.addFilter(quiet)
    try:
        yield
    finally:
        root.removeFilter(quiet)


def quantize_int8(model, x, calibration, workdir: Path, quant_format: str = "QDQ",
                  per_channel: bool = True, reduce_range: bool = False) -> Path:  # fmt: skip
    """The model exported at ``x``'s shape, pre-processed and statically quantized: U8S8
    (activations uint8, weights int8), by default in QDQ format, per channel, without
    ``reduce_range`` (the others: scripts/int8_why.py's comparisons)."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quant_pre_process, quantize_static

    fp32, pre, q8 = (workdir / n for n in ("model.onnx", "pre.onnx", "int8.onnx"))
    export_onnx(model, x, fp32)
    with step("ONNX Runtime quantization pre-processing"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quant_pre_process(str(fp32), str(pre))
    name = onnx.load(str(pre), load_external_data=False).graph.input[0].name
    reader = _calibration_reader(name, calibration, int(x.shape[0]))
    with (
        step("ONNX Runtime static quantization"),
        contextlib.redirect_stdout(None),
        quiet_per_tensor_fallback(),
    ):
        quantize_static(str(pre), str(q8), reader, quant_format=QuantFormat[quant_format],
                        per_channel=per_channel, reduce_range=reduce_range,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)  # fmt: skip
    return q8


RUNTIME = OnnxRuntime()

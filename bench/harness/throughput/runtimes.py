"""Runtimes beside PyTorch eager: ONNX Runtime and OpenVINO, as the throughput harness uses them.

Each runtime takes the model through its own supported path: ``torch.onnx.export`` then an
``onnxruntime.InferenceSession`` for ONNX Runtime, ``openvino.convert_model`` then
``Core.compile_model`` for OpenVINO. The export (or conversion) is timed apart
(``export_time_s``) and never inside the timed loop; a session runs on one fixed input, with
the thread count PyTorch is given. What a runtime cannot do here (a precision, a layout,
training, a device) is a reason string for a skipped row, never a silent fallback.

A runtime's outputs are compared with PyTorch eager fp32's on the same input
(``bench.harness.throughput.reference``). ``measure_candidate`` measures a candidate in its
runtime: PyTorch (``bench.harness.throughput.measure``), or here, timed with PyTorch's loop.

The packages are the extra ``cnn-bench[runtimes]``; they are imported inside functions.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import logging
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import ConfigError, RuntimeStepError, error_text
from bench.harness.throughput.backend import backend_settings
from bench.harness.throughput.config import LABELS, TORCH
from bench.harness.throughput.measure import Candidate, measure_torch, time_steps, timed_metrics
from bench.harness.throughput.model_run import ModelRun
from bench.harness.throughput.offline import scenario_keys
from bench.harness.throughput.peak import peak_metrics
from bench.harness.throughput.reference import agreement

logger = logging.getLogger(__name__)

EXTRA = "cnn-bench[runtimes]"
# import name -> distribution name, per runtime
PACKAGES: dict[str, dict[str, str]] = {
    TORCH: {},
    "onnxruntime": {"onnx": "onnx", "onnxscript": "onnxscript", "onnxruntime": "onnxruntime"},
    "openvino": {"openvino": "openvino"},
}
# what a runtime's INT8 candidate needs beyond the runtime (--optimize), the same way
INT8_PACKAGES: dict[str, dict[str, str]] = {"onnxruntime": {}, "openvino": {"nncf": "nncf"}}


# -- which runtimes --------------------------------------------------------------------------
def missing(runtime: str, packages: dict[str, dict[str, str]] = PACKAGES) -> list[str]:
    """The distributions a runtime needs (``packages``: for the runtime itself, or
    ``INT8_PACKAGES``) that are not installed."""
    return [
        dist for mod, dist in packages[runtime].items() if importlib.util.find_spec(mod) is None
    ]


def installed(runtime: str) -> bool:
    return not missing(runtime)


def not_installed_text(runtime: str) -> str:
    return (
        f"--runtime {runtime}: {', '.join(missing(runtime))} not installed; pip install '{EXTRA}'."
    )


def require(runtimes) -> None:
    """A ConfigError (one line, exit 2) naming the extra when an asked runtime is missing."""
    for r in runtimes:
        if not installed(r):
            raise ConfigError(not_installed_text(r))


def version(runtime: str) -> str | None:
    dist = {TORCH: "torch", "onnxruntime": "onnxruntime", "openvino": "openvino"}[runtime]
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


# -- what a runtime can do here ----------------------------------------------------------------
def _ort_cuda_available() -> bool:
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


def _openvino_capabilities() -> set[str]:
    import openvino as ov

    return set(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def skip_reason(runtime: str, mode: str, device: str, precision: str, channels_last: bool):
    """Why ``runtime`` cannot measure this configuration here (a row's text), or None."""
    if runtime == TORCH:
        return None
    label = LABELS[runtime]
    if not installed(runtime):
        return f"skipped: {label} not installed (pip install '{EXTRA}')"
    if mode != "infer":
        return f"skipped: {label} is measured for inference only"
    if channels_last:
        return (
            f"skipped: {label} takes the exported NCHW graph and chooses its own internal "
            "layout; --channels-last applies to PyTorch only"
        )
    if runtime == "onnxruntime":
        if device == "cuda" and not _ort_cuda_available():
            return (
                "skipped: ONNX Runtime's CUDA provider is not available (install onnxruntime-gpu)"
            )
        if precision != "fp32":
            return f"skipped: ONNX Runtime runs this fp32 export only ({precision} not measured)"
        return None
    if device == "cuda":
        return "skipped: OpenVINO has no CUDA device; measure it with --device cpu"
    caps = _openvino_capabilities()
    if precision != "fp32" and precision.upper() not in caps:
        return (
            f"skipped: OpenVINO's CPU plugin has no native {precision} here "
            f"(capabilities: {', '.join(sorted(caps))})"
        )
    return None


# -- sessions ----------------------------------------------------------------------------------
@dataclass
class Session:
    """A model ready to run in one runtime on one fixed input; ``infer()`` runs it once and
    returns the first output as a NumPy array."""

    runtime: str
    version: str | None
    provider: str
    export_time_s: float
    threads: int
    infer: Callable[[], Any]


def _one_line_with_cause(e: BaseException) -> str:
    """The error's first line, and its root cause's (exporters wrap the real reason)."""
    root = e
    while root.__cause__ is not None and root.__cause__ is not root:
        root = root.__cause__
    cause = f" (cause: {error_text(root, limit=300)})" if root is not e else ""
    return error_text(e, limit=300) + cause


@contextlib.contextmanager
def step(what: str):
    """Turn any failure inside the block into a RuntimeStepError that names the step."""
    try:
        yield
    except RuntimeStepError:
        raise
    except Exception as e:
        raise RuntimeStepError(f"{what} failed: {_one_line_with_cause(e)}") from e


def export_onnx(model, x, path: Path) -> float:
    """``torch.onnx.export`` (torch's own exporter) of ``model`` at ``x``'s shape; seconds."""
    import torch

    start = time.perf_counter()
    with step("export to ONNX"), warnings.catch_warnings(), contextlib.redirect_stdout(None):
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notices
        torch.onnx.export(model, (x,), str(path), dynamo=True, verbose=False)
    return time.perf_counter() - start


def onnxruntime_session(model, x, threads: int, device: str, workdir: Path) -> Session:
    """Export to ONNX, then an InferenceSession (CPU, or CUDA with onnxruntime-gpu)."""
    import onnxruntime as ort

    path = Path(workdir) / "model.onnx"
    export_s = export_onnx(model, x, path)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    provider = "CUDAExecutionProvider" if device == "cuda" else "CPUExecutionProvider"
    with step("ONNX Runtime session"):
        sess = ort.InferenceSession(str(path), opts, providers=[provider])
    feed = {sess.get_inputs()[0].name: x.detach().cpu().numpy()}
    out = sess.get_outputs()[0].name

    def infer():
        return sess.run([out], feed)[0]

    return Session(
        "onnxruntime", version("onnxruntime"), sess.get_providers()[0], export_s, threads, infer
    )


def convert_openvino(model, x, **kwargs):
    """``openvino.convert_model`` of the PyTorch module at ``x`` (``kwargs``: its other options)."""
    import openvino as ov

    with step("OpenVINO convert_model"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convert_model traces with torch.jit (deprecated)
        return ov.convert_model(model, example_input=x, **kwargs)


def openvino_session(model, x, threads: int, precision: str) -> Session:
    """``openvino.convert_model`` from the PyTorch module, compiled for the CPU plugin."""
    import openvino as ov

    start = time.perf_counter()
    ov_model = convert_openvino(model, x)
    export_s = time.perf_counter() - start
    hint = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}[precision]
    core = ov.Core()
    config = {
        "INFERENCE_NUM_THREADS": int(threads),
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_PRECISION_HINT": hint,
    }
    with step("OpenVINO compile_model"):
        compiled = core.compile_model(ov_model, "CPU", config)
    request = compiled.create_infer_request()
    request.set_input_tensor(ov.Tensor(x.detach().cpu().numpy()))

    def infer():
        request.infer()
        return request.get_output_tensor(0).data

    name = core.get_property("CPU", "FULL_DEVICE_NAME")
    return Session("openvino", version("openvino"), f"CPU ({name})", export_s, threads, infer)


def open_session(runtime: str, model, x, threads: int, device: str, precision: str) -> Session:
    """The model exported for ``runtime`` at ``x``'s shape and a first inference run (so a
    runtime that rejects the graph fails here, named, not in the timed loop)."""
    model = model.eval().float().cpu()  # exported from the CPU; the session picks its device
    with tempfile.TemporaryDirectory(prefix="cnn-bench-export-") as tmp:
        if runtime == "onnxruntime":
            session = onnxruntime_session(model, x, threads, device, Path(tmp))
        elif runtime == "openvino":
            session = openvino_session(model, x, threads, precision)
        else:
            raise ConfigError(f"open_session: '{runtime}' is not an exported runtime.")
        with step(f"{LABELS[runtime]} first inference"):
            session.infer()
    return session


# -- timing ----------------------------------------------------------------------------------
def measure_runtime(run: ModelRun, cand: Candidate, batch: int) -> dict:
    """ONNX Runtime or OpenVINO: export once, run once (agreement), then time the session
    with the same warm-up and loop as PyTorch (perf_counter; runs are blocking)."""
    import torch

    x = run.job.example_input(batch)
    threads = torch.get_num_threads()
    model = run.model_for(cand.mode)
    scenario = getattr(run.settings, "scenario", "sync")
    more = {"scenario": scenario, "concurrency": cand.concurrency} if scenario == "offline" else {}
    session = open_session(cand.runtime, model, x, threads, run.device, cand.precision, **more)
    label = LABELS[cand.runtime]
    per_call = getattr(session, "samples_per_call", batch)  # an offline wave: batch x requests
    with step(f"{label} timing"):
        raw = time_steps(
            session.infer,
            lambda: None,
            per_call,
            "cpu",
            run.settings,
            False,
            contextlib.nullcontext(),
        )
    metrics = timed_metrics(raw, cand.mode, batch, batch, run)
    if scenario == "offline":  # the session says how it ran: streams, requests, instances
        metrics.update(
            scenario_keys({"scenario": scenario, **getattr(session, "scenario_info", {})})
        )
    metrics.update(backend_settings("cpu"))
    metrics.update(threads=session.threads, runtime_version=session.version)
    metrics.update(provider=session.provider, export_time_s=round(session.export_time_s, 3))
    with step(f"{label} agreement check"):
        metrics.update(agreement(run.reference(batch), session.infer(), cand.precision))
    metrics.update(peak_metrics(run, cand.mode, cand.precision, metrics))
    return metrics


def measure_candidate(run: ModelRun, cand: Candidate, batch: int, compare: bool = True) -> dict:
    """A candidate's row metrics in its own runtime. ``compare``: whether a PyTorch
    candidate's outputs are checked against eager fp32 (another runtime's always are)."""
    if cand.runtime == TORCH:
        return measure_torch(run, cand, batch, compare)
    return measure_runtime(run, cand, batch)

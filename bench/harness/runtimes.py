"""Runtimes beside PyTorch eager: ONNX Runtime and OpenVINO, as the throughput harness uses them.

Each runtime takes the model through its own supported path: ``torch.onnx.export`` then an
``onnxruntime.InferenceSession`` for ONNX Runtime, ``openvino.convert_model`` then
``Core.compile_model`` for OpenVINO. The export (or conversion) is timed apart
(``export_time_s``) and never inside the timed loop; a session runs on one fixed input, with
the thread count PyTorch is given. What a runtime cannot do here (a precision, a layout,
training, a device) is a reason string for a skipped row, never a silent fallback.

Numerical agreement with PyTorch eager fp32 on the same input (``agreement``): the largest
absolute difference of the outputs, and whether every sample's top-1 class is the same. A
candidate *agrees* when ``max_abs_diff <= tol * max(1, max|eager|)`` (``tol`` = 1e-3 in fp32,
5e-2 in bf16/fp16) and every top-1 class agrees.

The packages are the extra ``cnn-bench[runtimes]``; they are imported inside functions.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import logging
import re
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import BenchError, ConfigError

logger = logging.getLogger(__name__)

TORCH = "torch"
RUNTIMES = (TORCH, "onnxruntime", "openvino")
LABELS = {TORCH: "PyTorch", "onnxruntime": "ONNX Runtime", "openvino": "OpenVINO"}
EXTRA = "cnn-bench[runtimes]"
# import name -> distribution name, per runtime
PACKAGES: dict[str, dict[str, str]] = {
    TORCH: {},
    "onnxruntime": {"onnx": "onnx", "onnxscript": "onnxscript", "onnxruntime": "onnxruntime"},
    "openvino": {"openvino": "openvino"},
}
FP32_TOLERANCE = 1e-3
REDUCED_TOLERANCE = 5e-2  # bf16 and fp16


class RuntimeStepError(BenchError):
    """A runtime step failed (export, conversion, session, first run); the message names it."""


# -- which runtimes --------------------------------------------------------------------------
def parse_runtimes(text: str) -> tuple[str, ...]:
    """``--runtime torch,onnxruntime`` (order kept, duplicates dropped) or ``all``."""
    names = [t.strip() for t in text.split(",") if t.strip()]
    if names == ["all"]:
        return RUNTIMES
    bad = [n for n in names if n not in RUNTIMES]
    if not names or bad:
        raise argparse.ArgumentTypeError(
            f"expected a comma list of {', '.join(RUNTIMES)} (or 'all'), got '{text}'"
        )
    return tuple(dict.fromkeys(names))


def validate(runtimes) -> tuple[str, ...]:
    """The runtimes as a tuple; an unknown name is a ConfigError (Python callers)."""
    runtimes = (runtimes,) if isinstance(runtimes, str) else tuple(runtimes)
    bad = [r for r in runtimes if r not in RUNTIMES]
    if not runtimes or bad:
        raise ConfigError(
            f"--runtime {','.join(runtimes)}: expected a comma list of {', '.join(RUNTIMES)} "
            "(or 'all')."
        )
    return tuple(dict.fromkeys(runtimes))


def missing(runtime: str) -> list[str]:
    """The distributions a runtime needs that are not installed."""
    return [
        dist for mod, dist in PACKAGES[runtime].items() if importlib.util.find_spec(mod) is None
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


def _one_line(e: BaseException) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:300] if text else ''}"


def _first_line(e: BaseException) -> str:
    """The error's first line, and its root cause's (exporters wrap the real reason)."""
    root = e
    while root.__cause__ is not None and root.__cause__ is not root:
        root = root.__cause__
    return _one_line(e) + (f" (cause: {_one_line(root)})" if root is not e else "")


@contextlib.contextmanager
def step(what: str):
    """Turn any failure inside the block into a RuntimeStepError that names the step."""
    try:
        yield
    except RuntimeStepError:
        raise
    except Exception as e:
        raise RuntimeStepError(f"{what} failed: {_first_line(e)}") from e


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


def openvino_session(model, x, threads: int, precision: str) -> Session:
    """``openvino.convert_model`` from the PyTorch module, compiled for the CPU plugin."""
    import openvino as ov

    start = time.perf_counter()
    with step("OpenVINO convert_model"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convert_model traces with torch.jit (deprecated)
        ov_model = ov.convert_model(model, example_input=x)
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


# -- agreement -------------------------------------------------------------------------------
def tolerance(precision: str) -> float:
    return FP32_TOLERANCE if precision == "fp32" else REDUCED_TOLERANCE


def agreement(reference, output, precision: str) -> dict:
    """How ``output`` agrees with PyTorch eager fp32's ``reference`` on the same input."""
    import numpy as np

    ref = np.asarray(reference, dtype=np.float32)
    out = np.asarray(output, dtype=np.float32)
    if ref.shape != out.shape:
        return {"max_abs_diff": None, "top1_agree": False, "agrees": False,
                "agree_tolerance": None}  # fmt: skip
    diff = float(np.max(np.abs(ref - out))) if ref.size else 0.0
    tol = tolerance(precision) * max(1.0, float(np.max(np.abs(ref))) if ref.size else 1.0)
    n = ref.shape[0] if ref.ndim else 1
    top1 = bool(np.array_equal(ref.reshape(n, -1).argmax(1), out.reshape(n, -1).argmax(1)))
    ok = bool(np.isfinite(diff) and diff <= tol and top1)
    return {
        "max_abs_diff": float(f"{diff:.3g}") if np.isfinite(diff) else None,
        "top1_agree": top1,
        "agrees": ok,
        "agree_tolerance": float(f"{tol:.3g}"),
    }

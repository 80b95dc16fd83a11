"""PyTorch eager fp32 NCHW outputs, the reference every other runtime, precision and layout
is compared with, and how a candidate's outputs agree with them.

Agreement on the same input (``agreement``): the largest absolute difference of the outputs,
and whether every sample's top-1 class is the same. A candidate *agrees* when
``max_abs_diff <= tol * max(1, max|eager|)`` (``tol`` = 1e-3 in fp32, 5e-2 in bf16/fp16) and
every top-1 class agrees.
"""

from __future__ import annotations

FP32_TOLERANCE = 1e-3
REDUCED_TOLERANCE = 5e-2  # bf16 and fp16


def first_tensor(out):
    """A model's first output tensor (of a tuple, list or dict of outputs)."""
    if isinstance(out, (tuple, list)):
        return first_tensor(out[0])
    if isinstance(out, dict):
        return first_tensor(next(iter(out.values())))
    return out


def eager_outputs(model, x, device: str):
    """The model's eager fp32 NCHW outputs on ``x`` as a NumPy array."""
    import torch

    model = model.to(device).to(memory_format=torch.contiguous_format).eval()
    with torch.inference_mode():
        out = first_tensor(model(x.to(device)))
    return out.float().cpu().numpy()


def tolerance(precision: str) -> float:
    return FP32_TOLERANCE if precision == "fp32" else REDUCED_TOLERANCE


def agreement(reference, output, precision: str) -> dict:
    """How ``output`` agrees with PyTorch eager fp32's ``reference`` on the same input."""
    import numpy as np

    ref = np.asarray(reference, dtype=np.float32)
    out = np.asarray(output, dtype=np.float32)
    if ref.shape != out.shape:
        return {"max_abs_diff": None, "top1_agree": False, "agrees": False, "agree_tolerance": None}
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

"""The counters that the flops and depth harnesses share (and the throughput harness reads for
its MACs per sample), and the one eager pass the two harnesses share.

Depth: weight layers on the longest path from the input to the output. Every tensor derived
from the input carries a depth. An operation passes on the largest depth of its inputs; a
weight layer (a convolution, linear layer or matrix product one of whose operands does not
come from the input, i.e. a weight) adds one. Parallel branches (shortcut projections, the
inside of an Inception module) therefore count once, along their longest member, and
attention's ``q @ k`` (both operands from the input) counts nothing. The count is taken while
the model runs, so any model that runs is measured.

FLOPs: torch's FlopCounterMode (2 per multiply-accumulate), with the attention kernels it
lacks added; ``sdpa_macs`` is the attention formula fvcore's handles use too. The pass runs
with the parameters' ``requires_grad`` off: a view of a parameter taken under ``no_grad``
(CaiT's ``cls_token.expand(...)`` handed to its class-attention blocks) still requires grad
but has no gradient function, and FlopCounterMode's module tracker, which hooks the backward
of every module input that requires grad, stops on it ("Expected gradient function to be set").

MACs and activations: fvcore's (``count_macs``, one ``torch.jit.trace``), with handles for the
fused attention kernels fvcore has no formula for (``ATTENTION_HANDLES``); the flops harness
records them, and the throughput harness counts them where no flops record of the run has.

Running a model is most of what the two harnesses cost. FlopCounterMode (a dispatch mode) and
the depth tracker (a function mode) can watch the same forward pass, so the first of the two
harnesses to ask runs it once and keeps both counts on the Job for the other.
"""

from __future__ import annotations

import logging
import warnings
import weakref
from collections import Counter
from contextlib import contextmanager
from math import prod
from typing import Any

from bench.harness.base import Job


def _weight_ops():
    import torch
    import torch.nn.functional as F

    ops = {
        F.conv1d, F.conv2d, F.conv3d,
        F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d,
        F.linear, F.bilinear,
        torch.conv1d, torch.conv2d, torch.conv3d,
        torch.conv_transpose1d, torch.conv_transpose2d, torch.conv_transpose3d,
        torch.matmul, torch.mm, torch.bmm, torch.addmm, torch.baddbmm, torch.einsum,
        torch.Tensor.matmul, torch.Tensor.mm, torch.Tensor.bmm, torch.Tensor.__matmul__,
        torch.Tensor.__rmatmul__,
    }  # fmt: skip
    return ops


def _tensors(obj):
    import torch

    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            yield from _tensors(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from _tensors(o)


class _DepthMap:
    """Tensor -> depth by identity (a tensor's ``==`` is elementwise, so no dict of tensors)."""

    def __init__(self):
        self._d: dict[int, tuple[weakref.ref, int]] = {}

    def get(self, t):
        entry = self._d.get(id(t))
        if entry is not None and entry[0]() is t:
            return entry[1]
        return None

    def set(self, t, value: int) -> None:
        self._d[id(t)] = (weakref.ref(t), value)


@contextmanager
def frozen_parameters(model):
    """``model``'s parameters with ``requires_grad`` off, restored on leaving."""
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p in params:
            p.requires_grad_(True)


def measure_depth(model, example, outer=None) -> int:
    """Weight layers on the longest input-to-output path of ``model(example)``; ``outer``:
    a mode to run the same pass under (``eager_counts`` counts FLOPs with it)."""
    import contextlib

    import torch
    from torch.overrides import TorchFunctionMode

    depth = _DepthMap()
    weight_ops = _weight_ops()

    class DepthMode(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            ins = list(_tensors(args)) + list(_tensors(kwargs))
            seen = [depth.get(t) for t in ins]
            known = [v for v in seen if v is not None]
            if not known:
                return out
            d = max(known)
            if func in weight_ops and any(v is None for v in seen):
                d += 1
            for t in _tensors(out):
                # in-place ops return their input: keep the deeper of the two
                depth.set(t, max(d, depth.get(t) or 0))
            return out

    outer = outer if outer is not None else contextlib.nullcontext()
    with torch.no_grad(), frozen_parameters(model), outer:
        x = example.clone()
        depth.set(x, 0)
        with DepthMode():
            out = model(x)
    found = [v for v in (depth.get(t) for t in _tensors(out)) if v is not None]
    return max(found) if found else 0


def sdpa_macs(q: list[int], k: list[int], v: list[int]) -> int:
    """``softmax(q k^T) v``: L*S*E for the scores plus L*S*Ev for the weighted sum."""
    batch = prod(q[:-2])
    length, e = q[-2], q[-1]
    s, ev = k[-2], v[-1]
    return batch * length * s * (e + ev)


def _flopcounter_attention_formulas() -> dict:
    """FlopCounterMode formulas (FLOPs, 2 per MAC) for the attention kernels it lacks."""
    import torch

    aten = torch.ops.aten

    def sdpa(q, k, v, *args, out_shape=None, **kwargs):
        return 2 * sdpa_macs(list(q), list(k), list(v))

    def native_mha(q, k, v, *args, out_shape=None, **kwargs):
        e, batch = q[-1], prod(q[:-2])
        length, s = q[-2], k[-2]
        return 2 * batch * (2 * length * e * e + 2 * s * e * e + 2 * length * s * e)

    def encoder_layer(src, *args, out_shape=None, **kwargs):
        ffn = args[13] if len(args) > 13 else None
        e, batch, length = src[-1], prod(src[:-2]), src[-2]
        hidden = ffn[0] if ffn is not None else 4 * e
        return 2 * batch * (4 * length * e * e + 2 * length * length * e + 2 * length * e * hidden)

    table = {
        "_scaled_dot_product_flash_attention_for_cpu": sdpa,
        "_native_multi_head_attention": native_mha,
        "_transformer_encoder_layer_fwd": encoder_layer,
    }
    return {getattr(aten, k): f for k, f in table.items() if hasattr(aten, k)}


def flopcounter_mode():
    """torch's FlopCounterMode with the attention formulas it lacks."""
    from torch.utils.flop_counter import FlopCounterMode

    return FlopCounterMode(display=False, custom_mapping=_flopcounter_attention_formulas())


def count_flops(model, example) -> int:
    """FlopCounterMode's FLOPs (2 per multiply-accumulate) for ``model(example)``."""
    import torch

    with torch.no_grad(), frozen_parameters(model), flopcounter_mode() as counter:
        model(example)
    return int(counter.get_total_flops())


def eager_counts(job: Job) -> dict[str, Any]:
    """``{"flops": FlopCounterMode's FLOPs, "depth": weight layers}`` at batch 1, once a job."""
    if "eager" not in job.cache:
        mode = flopcounter_mode()
        depth = measure_depth(job.model(), job.example_input(1), outer=mode)
        job.cache["eager"] = {"flops": int(mode.get_total_flops()), "depth": depth}
    return job.cache["eager"]


# -- MACs and activations by fvcore (the flops harness's first counter) ---------------------
def _shape(value) -> list[int] | None:
    from fvcore.nn.jit_handles import get_shape

    try:
        return get_shape(value)
    except Exception:
        return None


def _sdpa_handle(inputs, outputs):
    q, k, v = (_shape(x) for x in inputs[:3])
    return Counter({"scaled_dot_product_attention": sdpa_macs(q, k, v)})


def _native_mha_handle(inputs, outputs):
    # (query, key, value, embed_dim, num_head, qkv_weight, qkv_bias, proj_weight, ...)
    q, k, _v = (_shape(x) for x in inputs[:3])
    e = q[-1]
    batch = prod(q[:-2])
    length, s = q[-2], k[-2]
    projections = batch * (length * e * e + 2 * s * e * e + length * e * e)
    attention = batch * length * s * 2 * e
    return Counter({"_native_multi_head_attention": projections + attention})


def _encoder_layer_handle(inputs, outputs):
    # (src, embed_dim, num_heads, qkv_weight, qkv_bias, proj_weight, proj_bias, use_gelu,
    #  norm_first, eps, norm_weight_1, norm_bias_1, norm_weight_2, norm_bias_2,
    #  ffn_weight_1, ffn_bias_1, ffn_weight_2, ffn_bias_2, mask, mask_type)
    src = _shape(inputs[0])
    ffn = _shape(inputs[14])
    e = src[-1]
    batch, length = prod(src[:-2]), src[-2]
    hidden = ffn[0] if ffn else 4 * e
    macs = batch * (4 * length * e * e + 2 * length * length * e + 2 * length * e * hidden)
    return Counter({"_transformer_encoder_layer_fwd": macs})


ATTENTION_HANDLES = {
    "aten::scaled_dot_product_attention": _sdpa_handle,
    "aten::_scaled_dot_product_attention_math": _sdpa_handle,
    "aten::_native_multi_head_attention": _native_mha_handle,
    "aten::_transformer_encoder_layer_fwd": _encoder_layer_handle,
}


def _activation_handle(inputs, outputs):
    out = _shape(outputs[0])
    return Counter({"attention": prod(out) if out else 0})


def _import_fvcore():
    # fvcore scripts a loss function at import time, which torch now deprecates.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)
        import importlib

        jit_analysis = importlib.import_module("fvcore.nn.jit_analysis")
        # fvcore.nn exports functions named like these modules: import the modules by path
        flop_count = importlib.import_module("fvcore.nn.flop_count")
        activation_count = importlib.import_module("fvcore.nn.activation_count")
    for name in ("fvcore.nn.jit_analysis", "fvcore"):
        logging.getLogger(name).setLevel(logging.ERROR)
    return jit_analysis.JitModelAnalysis, flop_count, activation_count


def _op_name(kind: str) -> str:
    return kind.split("::", 1)[1] if "::" in kind else kind


def _combined_handles(flop_handles: dict, act_handles: dict) -> dict:
    """One handle per op giving both counts, keyed 'macs/op' and 'acts/op', so that a single
    trace yields what fvcore's FlopCountAnalysis and ActivationCountAnalysis each trace for."""

    def as_counter(kind, value) -> Counter:
        return value if isinstance(value, Counter) else Counter({_op_name(kind): value})

    def make(kind):
        flop, act = flop_handles.get(kind), act_handles.get(kind)

        def handle(inputs, outputs):
            out = Counter()
            for prefix, h in (("macs/", flop), ("acts/", act)):
                if h is not None:
                    for k, v in as_counter(kind, h(inputs, outputs)).items():
                        out[prefix + k] += v
            return out

        return handle

    return {kind: make(kind) for kind in {*flop_handles, *act_handles}}


def count_macs(model, example) -> dict:
    """fvcore MACs and activations with attention handles, from one trace; uncounted ops
    listed (fvcore's counts exactly, as its two analyses would give them)."""
    import torch

    JitModelAnalysis, flop_count, activation_count = _import_fvcore()
    handles = _combined_handles(
        {**flop_count._DEFAULT_SUPPORTED_OPS, **ATTENTION_HANDLES},
        {
            **activation_count._DEFAULT_SUPPORTED_OPS,
            **{k: _activation_handle for k in ATTENTION_HANDLES},
        },
    )
    with torch.no_grad(), warnings.catch_warnings():
        # fvcore traces with torch.jit.trace; its warnings about Python values in the
        # trace do not change what is counted.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        analysis = JitModelAnalysis(model, example).set_op_handle(**handles)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        counts = analysis.by_operator()
        uncounted = dict(sorted(analysis.unsupported_ops().items()))
    by_op = {k[5:]: int(v) for k, v in sorted(counts.items()) if k.startswith("macs/")}
    activations = sum(v for k, v in counts.items() if k.startswith("acts/"))
    return {
        "macs": int(sum(by_op.values())),
        "activations": int(activations),
        "uncounted_ops": uncounted,
        "by_op": by_op,
    }

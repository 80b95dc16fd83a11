"""MACs and activations with fvcore, cross-checked with torch's FlopCounterMode.

fvcore counts one multiply-accumulate as one "flop"; we report that number as MACs
(``infer_gmacs``) like timm does. fvcore has no formula for fused attention, so this
module adds handles for ``scaled_dot_product_attention`` (timm's fused attention and
nn.MultiheadAttention's slow path), ``_native_multi_head_attention`` (its fast path, used
by torchvision's ViT) and ``_transformer_encoder_layer_fwd`` (nn.TransformerEncoderLayer's
fast path). torch's FlopCounterMode counts FLOPs (2 per MAC) and knows attention but not
normalisation; its figure halved is recorded beside fvcore's as ``flopcounter_gmacs``.
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from math import prod

from bench.harness.base import Job, Measurement

logger = logging.getLogger(__name__)


def _shape(value) -> list[int] | None:
    from fvcore.nn.jit_handles import get_shape

    try:
        return get_shape(value)
    except Exception:
        return None


def sdpa_macs(q: list[int], k: list[int], v: list[int]) -> int:
    """``softmax(q k^T) v``: L*S*E for the scores plus L*S*Ev for the weighted sum."""
    batch = prod(q[:-2])
    length, e = q[-2], q[-1]
    s, ev = k[-2], v[-1]
    return batch * length * s * (e + ev)


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
        from fvcore.nn import ActivationCountAnalysis, FlopCountAnalysis
    for name in ("fvcore.nn.jit_analysis", "fvcore"):
        logging.getLogger(name).setLevel(logging.ERROR)
    return ActivationCountAnalysis, FlopCountAnalysis


def count_macs(model, example) -> dict:
    """fvcore MACs and activations with attention handles; uncounted ops listed."""
    import torch

    ActivationCountAnalysis, FlopCountAnalysis = _import_fvcore()
    with torch.no_grad(), warnings.catch_warnings():
        # fvcore traces with torch.jit.trace; its warnings about Python values in the
        # trace do not change what is counted.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        flops = FlopCountAnalysis(model, example).set_op_handle(**ATTENTION_HANDLES)
        flops.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        total = flops.total()
        uncounted = dict(sorted(flops.unsupported_ops().items()))
        acts = ActivationCountAnalysis(model, example).set_op_handle(
            **{k: _activation_handle for k in ATTENTION_HANDLES}
        )
        acts.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        activations = acts.total()
    by_op = {k: int(v) for k, v in sorted(flops.by_operator().items())}
    return {
        "macs": int(total),
        "activations": int(activations),
        "uncounted_ops": uncounted,
        "by_op": by_op,
    }


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


def count_flopcounter(model, example) -> int:
    """FLOPs as torch's FlopCounterMode counts them (2 per multiply-accumulate)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    mode = FlopCounterMode(display=False, custom_mapping=_flopcounter_attention_formulas())
    with torch.no_grad(), mode as counter:
        model(example)
    return int(counter.get_total_flops())


class FlopsHarness:
    name = "flops"

    def measure(self, job: Job) -> list[Measurement]:
        model, x = job.model(), job.example_input(1)
        fv = count_macs(model, x)
        flops = count_flopcounter(model, x)
        return [
            Measurement(
                config={"img_size": job.input_size[1], "batch_size": 1},
                metrics={
                    "infer_gmacs": round(fv["macs"] / 1e9, 6),
                    "infer_macts": round(fv["activations"] / 1e6, 3),
                    "flopcounter_gmacs": round(flops / 2 / 1e9, 6),
                    "macs": fv["macs"],
                    "uncounted_ops": fv["uncounted_ops"],
                    "macs_by_op": fv["by_op"],
                },
            )
        ]

"""MACs and activations with fvcore, cross-checked with torch's FlopCounterMode.

fvcore counts one multiply-accumulate as one "flop"; we report that number as MACs
(``infer_gmacs``) like timm does. fvcore has no formula for fused attention, so this
module adds handles for ``scaled_dot_product_attention`` (timm's fused attention and
nn.MultiheadAttention's slow path), ``_native_multi_head_attention`` (its fast path, used
by torchvision's ViT) and ``_transformer_encoder_layer_fwd`` (nn.TransformerEncoderLayer's
fast path). torch's FlopCounterMode (``bench.harness.counting``) counts FLOPs (2 per MAC) and
knows attention but not normalisation; its figure halved is recorded beside fvcore's as
``flopcounter_gmacs``. A reparameterisable model's inference form (``bench.harness.reparam``)
is counted too (``infer_gmacs_inference``).

fvcore counts a trace (``torch.jit.trace``), which some models refuse (an output that is not
tensors, for one); FlopCounterMode watches the model run, so it counts every model that runs.
Where fvcore fails, ``infer_gmacs`` is FlopCounterMode's figure halved: ``macs_counter`` names
the counter that gave it (``fvcore`` or ``torch.flop_counter``) and ``fvcore_error`` says why
fvcore failed. Where FlopCounterMode fails, ``flopcounter_error`` says why; only a model that
neither can count fails the harness (``CountError``).
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from math import prod

from bench.errors import CountError, error_text
from bench.harness.base import Job, Measurement
from bench.harness.counting import count_flops, eager_counts, sdpa_macs
from bench.harness.reparam import job_inference_form

logger = logging.getLogger(__name__)


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


FVCORE, FLOPCOUNTER = "fvcore", "torch.flop_counter"  # metrics["macs_counter"]


def _fvcore(model, example) -> tuple[dict | None, str | None]:
    """fvcore's counts, or None and why fvcore could not trace the model."""
    try:
        return count_macs(model, example), None
    except Exception as e:
        logger.info("fvcore could not count MACs (%s); FlopCounterMode's count is used", e)
        return None, error_text(e, 200)


def _eager_flops(job: Job) -> tuple[int | None, str | None]:
    try:
        return eager_counts(job)["flops"], None
    except Exception as e:
        return None, error_text(e, 200)


def _inference_macs(job: Job, model, example) -> dict:
    """The inference form's MACs (``infer_gmacs_inference``) by fvcore, else FlopCounterMode's
    (``macs_counter_inference`` says so, only then: the form is the model's own, minus what
    reparameterisation folds, so fvcore seldom fails on one and not the other)."""
    folded = job_inference_form(job, model)
    if folded is None:
        return {}
    fv, error = _fvcore(folded, example)
    if fv is not None:
        return {"infer_gmacs_inference": round(fv["macs"] / 1e9, 6)}
    return {
        "infer_gmacs_inference": round(count_flops(folded, example) / 2 / 1e9, 6),
        "macs_counter_inference": FLOPCOUNTER,
        "fvcore_error_inference": error,
    }


def _counted(
    fv: dict | None, fv_error: str | None, flops: int | None, flops_error: str | None
) -> dict:
    """The record's MAC metrics from what each counter gave (None: it failed, and why)."""
    if fv is None and flops is None:
        raise CountError(
            f"Neither counter could count MACs: fvcore: {fv_error}; FlopCounterMode: "
            f"{flops_error}. Run the model alone ('python -m bench run --models NAME "
            "--harness flops --no-isolate --debug') to see where it breaks."
        )
    if fv is not None:
        counted = {
            "macs_counter": FVCORE,
            "infer_gmacs": round(fv["macs"] / 1e9, 6),
            "infer_macts": round(fv["activations"] / 1e6, 3),
            "macs": fv["macs"],
            "uncounted_ops": fv["uncounted_ops"],
            "macs_by_op": fv["by_op"],
        }
    else:
        counted = {
            "macs_counter": FLOPCOUNTER,
            "infer_gmacs": round(flops / 2 / 1e9, 6),
            "macs": flops // 2,
            "fvcore_error": fv_error,
        }
    if flops is not None:
        counted["flopcounter_gmacs"] = round(flops / 2 / 1e9, 6)
    else:
        counted["flopcounter_error"] = flops_error
    return counted


class FlopsHarness:
    name = "flops"

    counts_only = True  # values never change what is counted: build without initialisers

    def measure(self, job: Job) -> list[Measurement]:
        """fvcore's MACs; where fvcore cannot trace the model, FlopCounterMode's FLOPs halved,
        with ``macs_counter`` naming the counter and ``fvcore_error`` why."""
        model, x = job.model(), job.example_input(1)
        counted = _counted(*_fvcore(model, x), *_eager_flops(job))
        return [
            Measurement(
                config={"img_size": job.input_size[1], "batch_size": 1},
                metrics={**counted, **_inference_macs(job, model, x)},
            )
        ]

"""MACs and activations with fvcore, cross-checked with torch's FlopCounterMode.

fvcore counts one multiply-accumulate as one "flop"; we report that number as MACs
(``infer_gmacs``) like timm does. fvcore has no formula for fused attention, so its counter
(``bench.harness.counting.count_macs``) adds handles for ``scaled_dot_product_attention``
(timm's fused attention and nn.MultiheadAttention's slow path), ``_native_multi_head_attention``
(its fast path, used by torchvision's ViT) and ``_transformer_encoder_layer_fwd``
(nn.TransformerEncoderLayer's fast path). torch's FlopCounterMode (``bench.harness.counting``
too) counts FLOPs (2 per MAC) and knows attention but not normalisation; its figure halved is
recorded beside fvcore's as ``flopcounter_gmacs``. A reparameterisable model's inference form
(``bench.harness.reparam``) is counted too (``infer_gmacs_inference``).

fvcore counts a trace (``torch.jit.trace``), which some models refuse (an output that is not
tensors, for one); FlopCounterMode watches the model run, so it counts every model that runs.
Where fvcore fails, ``infer_gmacs`` is FlopCounterMode's figure halved: ``macs_counter`` names
the counter that gave it (``fvcore`` or ``torch.flop_counter``) and ``fvcore_error`` says why
fvcore failed. Where FlopCounterMode fails, ``flopcounter_error`` says why; only a model that
neither can count fails the harness (``CountError``).
"""

from __future__ import annotations

import logging

from bench.errors import CountError, error_text
from bench.harness.base import Job, Measurement
from bench.harness.counting import count_flops, count_macs, eager_counts
from bench.harness.reparam import job_inference_form

logger = logging.getLogger(__name__)


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

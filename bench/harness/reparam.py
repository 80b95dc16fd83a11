"""Reparameterisable models in their inference form: RepVGG, MobileOne, FastViT, LeViT and
others train with branches (or batch norms) that fold into single layers for inference. timm's
``reparameterize_model`` walks the modules and calls each one's ``fuse`` (which returns the
folded module), ``reparameterize`` or ``switch_to_deploy`` (which fold in place); timm's
published benchmark tables count these models in that form. The params and flops harnesses
report both forms, and ``--optimize`` times the inference form as an exact candidate."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

# what timm's reparameterize_model calls on a module, in the order it tries them
HOOKS = ("fuse", "reparameterize", "switch_to_deploy")
CACHE_KEY = "inference_form"


def reparameterisable(model) -> bool:
    """Whether any module below the model has one of timm's reparameterisation hooks."""
    return any(
        any(callable(getattr(m, hook, None)) for hook in HOOKS)
        for m in model.modules()
        if m is not model
    )


def inference_form(model):
    """A reparameterised copy of ``model`` in eval mode (the model is left as it is), or None
    when it has nothing to fold."""
    if not reparameterisable(model):
        return None
    import torch
    from timm.utils.model import reparameterize_model

    with torch.no_grad():
        return reparameterize_model(model.eval(), inplace=False).eval()


def job_inference_form(job, model):
    """The job's model in its inference form, made once per job and shared by the harnesses
    (``job.cache``); None when the model cannot be reparameterised or folding fails (logged)."""
    if CACHE_KEY not in job.cache:
        try:
            job.cache[CACHE_KEY] = inference_form(model)
        except Exception as e:
            logger.warning("%s: not reparameterised (%s: %s)", job.spec.name, type(e).__name__, e)
            job.cache[CACHE_KEY] = None
    return job.cache[CACHE_KEY]

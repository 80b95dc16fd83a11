"""Parameter counts and sizes; for a reparameterisable model (``bench.harness.reparam``) also
those of its inference form (``params_inference``, ``param_count_inference``)."""

from __future__ import annotations

import io

from bench.harness.base import Job, Measurement


def count_parameters(model) -> tuple[int, int]:
    """(total, trainable), counting shared parameters once."""
    seen: dict[int, object] = {}
    for p in model.parameters():
        seen.setdefault(id(p), p)
    total = sum(p.numel() for p in seen.values())
    trainable = sum(p.numel() for p in seen.values() if p.requires_grad)
    return total, trainable


def _head_params(model) -> int | None:
    """Parameters of the model's classifier (its last linear layer or timm's head)."""
    from bench.registry.heads import split_parameters

    try:
        head, _ = split_parameters(model)
    except Exception:
        return None
    return sum(p.numel() for p in head)


class _ByteCounter(io.RawIOBase):
    """A write-only sink that counts what ``torch.save`` writes (no copy is kept)."""

    def __init__(self):
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        n = memoryview(data).nbytes
        self.size += n
        return n


def state_dict_bytes(model) -> int:
    """The size of ``torch.save(model.state_dict())``, without holding the file in memory."""
    import torch

    sink = _ByteCounter()
    torch.save(model.state_dict(), sink)
    return sink.size


def _inference_form_counts(job: Job, model) -> dict:
    """The inference form's parameters, when the model can be reparameterised."""
    from bench.harness.reparam import job_inference_form

    folded = job_inference_form(job, model)
    if folded is None:
        return {}
    total, _ = count_parameters(folded)
    return {"params_inference": total, "param_count_inference": round(total / 1e6, 3)}


class ParamsHarness:
    name = "params"
    counts_only = True  # values never change what is counted: build without initialisers

    def measure(self, job: Job) -> list[Measurement]:
        from bench.errors import ModelTooLargeError

        try:
            model, too_large = job.model(), False
        except ModelTooLargeError:
            if job.meta_model() is None:
                raise
            model, too_large = job.meta_model(), True
        total, trainable = count_parameters(model)
        metrics = {
            "params": total,
            "param_count": round(total / 1e6, 3),
            "trainable_params": trainable,
            # the classifier's parameters: what stays trainable with a frozen backbone
            "head_params": _head_params(model),
            "buffers": sum(b.numel() for b in model.buffers()),
            "params_fp32_mb": round(total * 4 / 1e6, 3),
        }
        if too_large:  # counted on the meta device; the weights were never allocated
            metrics["counted_on"] = "meta"
        else:
            metrics["state_dict_mb"] = round(state_dict_bytes(model) / 1e6, 3)
            metrics.update(_inference_form_counts(job, model))
        return [Measurement(config={}, metrics=metrics)]

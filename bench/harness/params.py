"""Parameter counts and sizes."""

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


class ParamsHarness:
    name = "params"

    def measure(self, job: Job) -> list[Measurement]:
        import torch

        model = job.model()
        total, trainable = count_parameters(model)
        head = _head_params(model)
        buffers = sum(b.numel() for b in model.buffers())
        buf = io.BytesIO()
        torch.save(model.state_dict(), buf)
        return [
            Measurement(
                config={},
                metrics={
                    "params": total,
                    "param_count": round(total / 1e6, 3),
                    "trainable_params": trainable,
                    # the classifier's parameters: what stays trainable with a frozen backbone
                    "head_params": head,
                    "buffers": buffers,
                    "params_fp32_mb": round(total * 4 / 1e6, 3),
                    "state_dict_mb": round(buf.getbuffer().nbytes / 1e6, 3),
                },
            )
        ]

"""The optimiser and learning-rate schedule of one protocol phase: AdamW (fused on CUDA),
warm-up, cosine."""

from __future__ import annotations

import math

from bench.harness.finetune.config import TrainConfig


def _schedule(optimizer, total_steps: int, warmup_steps: int):
    import torch

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def fused(cfg: TrainConfig) -> dict:
    """AdamW's fused CUDA kernel (one launch for every parameter) on CUDA; on the CPU the
    default implementation, whose figures earlier runs recorded."""
    return {"fused": True} if cfg.device.startswith("cuda") else {}


def make_optimizer(model, cfg: TrainConfig, phase: str, steps_per_epoch: int):
    """(AdamW, its schedule) for ``phase`` ('head' or 'all'), the backbone frozen or not; in
    the staged protocol's 'all' phase the backbone learns at ``backbone_lr_scale`` times
    the rate. The schedule warms up over at most one epoch and spans the phase's epochs."""
    import torch

    from bench.registry.heads import set_backbone_frozen, split_parameters

    set_backbone_frozen(model, phase == "head")
    head, backbone = split_parameters(model)
    groups = [{"params": head, "lr": cfg.lr}]
    if phase == "all":
        scale = cfg.backbone_lr_scale if cfg.protocol == "staged" else 1.0
        groups.append({"params": backbone, "lr": cfg.lr * scale})
    opt = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay, **fused(cfg))
    n_epochs = sum(1 for e in range(cfg.epochs) if cfg.phase(e) == phase)
    total = max(1, n_epochs * steps_per_epoch)
    warmup = max(1, min(steps_per_epoch, total // 4))
    return opt, _schedule(opt, total, warmup)

"""Scoring on the held-out split (top-1, top-5, loss, confusion), summed over ranks, and the
mixed precision that evaluation and training both run under."""

from __future__ import annotations

from bench.harness.finetune.config import TrainConfig
from bench.harness.finetune.distributed import all_sum


def autocast(cfg: TrainConfig):
    """``cfg.amp``'s autocast on CUDA; a context that does nothing otherwise."""
    import contextlib

    import torch

    if cfg.amp and cfg.device.startswith("cuda"):
        dtype = torch.bfloat16 if cfg.amp == "bf16" else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


def evaluate(model, x, y, prep, cfg: TrainConfig, rank: int, world: int) -> dict[str, float]:
    """Top-1, top-5 (percent) and mean cross-entropy on the test split, summed over ranks."""
    import torch
    import torch.nn.functional as F

    model.eval()
    idx = torch.arange(rank, len(y), world)
    sums = torch.zeros(4, dtype=torch.float64, device=cfg.device)
    classes = int(y.max()) + 1
    confusion = torch.zeros(classes * classes, dtype=torch.float64, device=cfg.device)
    k = min(5, classes)
    with torch.inference_mode(), autocast(cfg):
        for i in range(0, len(idx), cfg.eval_batch_size):
            sel = idx[i : i + cfg.eval_batch_size]
            xb = prep(x[sel], train=False)
            yb = y[sel].to(cfg.device)
            out = model(xb).float()
            sums[0] += F.cross_entropy(out, yb, reduction="sum")
            top = out.topk(k, dim=1).indices
            confusion += torch.bincount(yb * classes + top[:, 0], minlength=classes * classes)
            hit = top.eq(yb[:, None])
            sums[1] += hit[:, 0].sum()
            sums[2] += hit.any(dim=1).sum()
            sums[3] += len(sel)
    sums = all_sum(sums, world)
    confusion = all_sum(confusion, world).view(classes, classes)
    n = max(1.0, float(sums[3]))
    return {
        "loss": float(sums[0]) / n,
        "top1": 100 * float(sums[1]) / n,
        "top5": 100 * float(sums[2]) / n,
        # rows: true class, columns: predicted class (top-1), on the held-out split
        "confusion": confusion.long().tolist(),
    }

"""Batches on the device: uint8 images to the model's normalised input, augmented there.

Data stay on the device as uint8 tensors; each batch is indexed, scaled, resized,
augmented (affine transforms drawn from a seeded generator and applied with
``grid_sample``) and normalised there. No DataLoader workers, no per-step host syncs:
that is what lets the loop train at least as fast as the chapter's plain loop. The random
draws are made on the generator's device (``bench.harness.finetune.state`` gives a CUDA run
a CUDA generator), so that no tensor is copied from the host during a step.
"""

from __future__ import annotations

import math

from bench.errors import DataError
from bench.harness.finetune.config import TrainConfig


def _affine(b: int, gen, *, rot: float, trans: float, scale=(1.0, 1.0), crop=False, flip=False):
    """(b, 2, 3) matrices mapping output to input coordinates (affine_grid's convention)."""
    import torch

    dev = gen.device

    def rand():
        return torch.rand(b, generator=gen, device=dev)

    def u(lo, hi):
        return rand() * (hi - lo) + lo

    angle = u(-rot, rot) * math.pi / 180
    if crop:  # RandomResizedCrop(scale=(0.8, 1.0), ratio=(3/4, 4/3)), then resize back
        area = u(*scale)
        logr = u(math.log(3 / 4), math.log(4 / 3))
        sx = torch.sqrt(area * torch.exp(logr)).clamp(max=1.0)
        sy = torch.sqrt(area / torch.exp(logr)).clamp(max=1.0)
        cx = (rand() * 2 - 1) * (1 - sx)
        cy = (rand() * 2 - 1) * (1 - sy)
    else:
        s = u(*scale)
        sx, sy = 1 / s, 1 / s  # zoom by s: sample a 1/s-sized window
        cx = cy = torch.zeros(b, device=dev)
    fx = torch.ones(b, device=dev)
    if flip:
        fx = torch.where(rand() < 0.5, -1.0, 1.0)
    tx, ty = u(-2 * trans, 2 * trans), u(-2 * trans, 2 * trans)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack(
        [
            torch.stack([sx * cos * fx, -sx * sin, cx + tx], 1),
            torch.stack([sy * sin * fx, sy * cos, cy + ty], 1),
        ],
        1,
    )
    return theta


# the affine part of each augmentation (the names are checked in bench.harness.finetune.config)
_AFFINE = {
    "digits": {"rot": 10, "trans": 0.1, "scale": (0.9, 1.1)},
    "chapter": {"rot": 15, "trans": 0.1, "scale": (0.8, 1.0), "crop": True, "flip": True},
}


def augment_batch(x, kind: str, gen):
    """Augment a batch of 0..1 images (before normalisation) on its device.

    ``digits``: rotation within 10 degrees, zoom 0.9-1.1, shifts up to 10%; no flips (the
    chapter's anti-pattern 2: turned digits change class). ``rot180``: ``digits`` and, for
    half the images, a turn by 180 degrees: the anti-pattern itself, to measure it. ``chapter``: code example 5 as
    batched tensor ops: random resized crop (0.8-1.0), horizontal flip, rotation 15, shifts
    10%, brightness/contrast/saturation 0.2 (hue jitter is left out); random erasing is
    applied after normalisation by ``erase_batch``.
    """
    import torch
    import torch.nn.functional as F

    if kind == "none":
        return x
    b = x.shape[0]
    if kind == "rot180":  # the chapter's wrong augmentation: half the digits turned over
        x = augment_batch(x, "digits", gen)
        turn = (torch.rand(b, generator=gen, device=gen.device) < 0.5)[:, None, None, None]
        return torch.where(turn, x.flip(-1).flip(-2), x)
    theta = _affine(b, gen, **_AFFINE[kind]).to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if kind == "chapter":

        def factor():
            draw = torch.rand(b, 1, 1, 1, generator=gen, device=gen.device)
            return (draw * 0.4 + 0.8).to(x.dtype)

        x = x * factor()  # brightness
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * factor() + mean  # contrast
        if x.shape[1] == 3:
            gray = (0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:]).expand_as(x)
            x = (x - gray) * factor() + gray  # saturation
        x = x.clamp_(0, 1)
    return x


def erase_batch(x, gen, p: float = 0.2):
    """torchvision's RandomErasing(p=0.2, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0)."""
    import torch

    b, _, h, w = x.shape
    dev = gen.device

    def rand():
        return torch.rand(b, generator=gen, device=dev)

    pick = rand() < p
    area = (rand() * 0.31 + 0.02) * h * w
    logr = rand() * (math.log(3.3) - math.log(0.3)) + math.log(0.3)
    eh = torch.sqrt(area * torch.exp(logr)).round().clamp(1, h).long()
    ew = torch.sqrt(area / torch.exp(logr)).round().clamp(1, w).long()
    top = (rand() * (h - eh + 1).float()).long()
    left = (rand() * (w - ew + 1).float()).long()
    rows = torch.arange(h, device=dev)[None, :]
    cols = torch.arange(w, device=dev)[None, :]
    mh = (rows >= top[:, None]) & (rows < (top + eh)[:, None])
    mw = (cols >= left[:, None]) & (cols < (left + ew)[:, None])
    mask = (mh[:, :, None] & mw[:, None, :] & pick[:, None, None])[:, None]
    return x.masked_fill(mask, 0.0)


class BatchInput:
    """Turns uint8 batches into the model's normalised float input on the device."""

    def __init__(self, cfg: TrainConfig, data_channels: int, in_chans: int, mean, std, gen):
        import torch

        self.cfg = cfg
        self.gen = gen
        self.repeat = in_chans if data_channels == 1 and in_chans != 1 else 1
        if data_channels not in (1, in_chans):
            raise DataError(
                f"The data have {data_channels} channels but the model takes {in_chans}."
            )
        c = in_chans if self.repeat > 1 else data_channels
        mean = list(mean) * (c // len(mean)) if len(mean) != c else list(mean)
        std = list(std) * (c // len(std)) if len(std) != c else list(std)
        self.mean = torch.tensor(mean, device=cfg.device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, device=cfg.device).view(1, -1, 1, 1)

    def __call__(self, xb, train: bool):
        import torch
        import torch.nn.functional as F

        x = xb.to(self.cfg.device, non_blocking=True).float().div_(255)
        size = self.cfg.img_size
        if x.shape[-1] != size or x.shape[-2] != size:
            x = F.interpolate(
                x,
                size=(size, size),
                mode="bilinear",
                align_corners=False,
                antialias=size < x.shape[-1],
            )
        if train and self.cfg.augment != "none":
            x = augment_batch(x, self.cfg.augment, self.gen)
        if self.repeat > 1:
            x = x.expand(-1, self.repeat, -1, -1)
        x = (x - self.mean) / self.std
        if train and self.cfg.augment == "chapter":
            x = erase_batch(x, self.gen)
        if self.cfg.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

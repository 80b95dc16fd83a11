"""The accuracy gate of ``--optimize``'s lossy candidates (INT8, fp16; bf16 too when it can
be scored): real weights, labelled real images, and top-1 on them.

A lossy candidate is eligible only when the run has real weights (``--weights``, a fine-tune
checkpoint as well, or ``--pretrained``) and labelled images (``--val-data``), and its top-1 on
those images is within ``--accuracy-budget`` points of eager fp32's on the same images.

Images (``--val-data``):
- a fine-tune data set name (``mnist5k``, ``digits``, ...; ``bench.harness.finetune.data``):
  scored on its held-out split, calibrated on its training split, prepared as fine-tuning
  prepares them (resized to the run's input size, channels repeated for a 3-channel model,
  normalised with the weights' mean and std or, for a model trained from scratch, the data's);
- an ImageNet class folder or the ILSVRC2012 validation folder (``bench.harness.validate``):
  a seeded shuffle, the first ``--calibration-images`` to calibrate, the rest to score (at most
  ``--limit``, class-balanced), with the model's own evaluation transform.
Calibration and scoring images are disjoint in both cases.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.errors import ConfigError, DataError
from bench.harness.base import Job
from bench.harness.throughput.config import ThroughputConfig
from bench.harness.throughput.reference import first_tensor

logger = logging.getLogger(__name__)

FINETUNE_SETS = ("mnist5k", "digits", "mnist", "fashion_mnist", "cifar10")
SPLIT_SEED = 0


def has_weights(c: ThroughputConfig) -> bool:
    return bool(c.pretrained or c.weights)


def lossy_skip_reason(c: ThroughputConfig) -> str | None:
    """Why lossy candidates cannot be gated in this run (a skipped row's text), or None."""
    missing = []
    if not has_weights(c):
        missing.append("real weights (--weights FILE, a fine-tune checkpoint, or --pretrained)")
    if not c.val_data:
        missing.append("labelled images (--val-data)")
    if not missing:
        return None
    return (
        f"skipped: a lossy candidate needs {' and '.join(missing)} to measure its top-1 "
        "against eager fp32's"
    )


def check_val_data(text: str | None) -> None:
    """A ConfigError for --val-data that is neither a fine-tune data set nor a folder."""
    if text and text not in FINETUNE_SETS and not Path(text).is_dir():
        raise ConfigError(
            f"--val-data {text}: expected a fine-tune data set ({', '.join(FINETUNE_SETS)}), "
            "an ImageNet class folder or the ILSVRC2012 validation folder."
        )


def weighted_model(job: Job, c: ThroughputConfig):
    """(model, Init) with the run's real weights, its head sized for --val-data's classes
    (a file's own head is kept when there is no --val-data)."""
    from bench.registry.weights import build_model

    classes, channels = None, 3
    if c.val_data in FINETUNE_SETS:
        data = _finetune_data(c.val_data)
        classes, channels = data.num_classes, data.channels
    elif c.val_data:
        classes = 1000
    if classes is None and c.pretrained:
        classes = job.spec.num_classes
    dataset = c.val_data if c.val_data in FINETUNE_SETS else None
    model, init = build_model(
        job.spec, classes, channels, c.pretrained, c.weights, job.run.img_size, dataset
    )
    return model.eval(), init


@dataclass
class GateData:
    """Calibration and scoring images, prepared as the model's input (float N, C, H, W)."""

    name: str
    calibration: Any
    images: Any
    labels: Any
    calibration_from: str

    def describe(self) -> dict:
        return {
            "accuracy_data": self.name,
            "accuracy_images": len(self.labels),
            "calibration_data": self.calibration_from,
            "calibration_images": len(self.calibration),
        }


def _finetune_data(name: str):
    from bench.harness.finetune.data import load_dataset

    return load_dataset(name)


def load_gate_data(job: Job, c: ThroughputConfig, model, init) -> GateData:
    """The run's calibration and scoring images for this model (see the module's text)."""
    if c.val_data in FINETUNE_SETS:
        return _finetune_gate(job, c, init)
    return _folder_gate(job, c, model, init)


def _finetune_gate(job: Job, c: ThroughputConfig, init) -> GateData:
    import torch

    data = _finetune_data(c.val_data)
    gen = torch.Generator().manual_seed(SPLIT_SEED)
    pick = torch.randperm(len(data.y_train), generator=gen)[: int(c.calibration_images)]
    mean, std = (init.mean, init.std) if init.mean is not None else data.mean_std()
    prep = _Prep(job.input_size, data.channels, init.in_chans, mean, std)
    test = range(len(data.y_test))
    if c.limit is not None and c.limit < len(test):
        test = torch.randperm(len(test), generator=gen)[: int(c.limit)].sort().values
    idx = torch.as_tensor(list(test))
    return GateData(
        f"{c.val_data} held-out split ({data.split})",
        prep(data.x_train[pick]),
        prep(data.x_test[idx]),
        data.y_test[idx],
        f"{c.val_data} training split",
    )


class _Prep:
    """uint8 images to the model's input: the fine-tune harness's evaluation preparation."""

    def __init__(self, input_size, data_channels: int, in_chans: int, mean, std):
        import torch

        if data_channels not in (1, in_chans):
            raise DataError(f"--val-data has {data_channels} channels; the model takes {in_chans}.")
        self.size, self.repeat = input_size[1], in_chans if data_channels != in_chans else 1
        c = in_chans
        mean = list(mean) * (c // len(mean)) if len(mean) != c else list(mean)
        std = list(std) * (c // len(std)) if len(std) != c else list(std)
        self.mean = torch.tensor(mean).view(1, -1, 1, 1)
        self.std = torch.tensor(std).view(1, -1, 1, 1)

    def __call__(self, xb):
        import torch.nn.functional as F

        x = xb.float().div(255)
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear",
                              align_corners=False, antialias=self.size < x.shape[-1])  # fmt: skip
        if self.repeat > 1:
            x = x.expand(-1, self.repeat, -1, -1)
        return ((x - self.mean) / self.std).contiguous()


def _folder_gate(job: Job, c: ThroughputConfig, model, init) -> GateData:
    from bench.harness.validate import balanced_subset, folder_items

    items = folder_items(Path(c.val_data))
    random.Random(SPLIT_SEED).shuffle(items)
    k = int(c.calibration_images)
    if len(items) <= k:
        raise DataError(
            f"--val-data {c.val_data}: {len(items)} images; INT8 needs --calibration-images "
            f"{k} to calibrate on and more to score on."
        )
    scored = balanced_subset(items[k:], c.limit, SPLIT_SEED)
    transform = _folder_transform(job, model, init)
    name = Path(c.val_data).name
    return GateData(
        f"{name} ({len(scored)} of {len(items) - k} images)",
        _read(items[:k], transform),
        _read(scored, transform),
        _labels(scored),
        f"{name} (other images)",
    )


def _folder_transform(job: Job, model, init):
    """The model's own evaluation transform when it gives the run's input size, else resize
    and centre crop to that size with the weights' normalisation."""
    from torchvision import transforms as T

    from bench.harness.validate import eval_transform

    transform, _ = eval_transform(job.spec, model, init.file)
    size = job.input_size[1]
    probe = transform(_blank())
    if tuple(probe.shape[-2:]) == (size, size):
        return transform
    return T.Compose([T.Resize(int(size / 0.875)), T.CenterCrop(size), T.ToTensor(),
                      T.Normalize(init.mean, init.std)])  # fmt: skip


def _blank():
    from PIL import Image

    return Image.new("RGB", (320, 320))


def _read(items, transform):
    import torch

    from bench.harness.validate import open_image

    return torch.stack([transform(open_image(it.source)) for it in items])


def _labels(items):
    import torch

    return torch.tensor([it.classes[0] for it in items], dtype=torch.int64)


def top1(predict, data: GateData, batch: int) -> float:
    """Top-1 (percent) of ``predict`` (a batch of inputs to logits) on the scoring images, fed
    in batches of exactly ``batch`` (the last one padded; a fixed-shape session needs it)."""
    import numpy as np
    import torch

    hits, n = 0, len(data.labels)
    for i in range(0, n, batch):
        xb = data.images[i : i + batch]
        real = len(xb)
        if real < batch:
            xb = torch.cat([xb, xb[:1].expand(batch - real, *xb.shape[1:])])
        out = np.asarray(predict(xb))[:real]
        if not np.isfinite(out).all():  # NaN logits have an arbitrary top-1: no score
            from bench.errors import NotFiniteError

            raise NotFiniteError(
                f"the gate's outputs are not finite (NaN or inf) on {real} scoring images; "
                "they cannot be scored: check the weights and this candidate's precision"
            )
        hits += int((out.argmax(1) == data.labels[i : i + real].numpy()).sum())
    return round(100 * hits / max(1, n), 3)


def torch_predict(model, device: str, autocast=None):
    """A predict function for ``top1``: the model in eval mode (under ``autocast``)."""
    import contextlib

    import torch

    def predict(xb):
        with torch.inference_mode(), autocast() if autocast else contextlib.nullcontext():
            return first_tensor(model(xb.to(device))).float().cpu().numpy()

    return predict

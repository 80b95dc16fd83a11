"""The fine-tune harness's options (``FinetuneConfig``), what its training loop is asked to do
(``TrainConfig``) and what the loop returns (``TrainResult``).

Protocols: ``linear`` trains the head only (backbone frozen, its norm statistics kept);
``full`` trains everything at one learning rate, its batch-norm layers normalising each batch
by its own statistics; ``staged`` trains the head first with the backbone's weights frozen,
then everything with the backbone at ``backbone_lr_scale`` times the rate. Under staged the
backbone's batch-norm statistics stay as loaded in both phases (``STAGED_NORM_STATS``): the
head learns on the features that evaluation gives, and unfreezing the backbone does not swap
them for batch statistics under the head (the earlier staged protocol let them follow each
batch; on 500 digits that left EfficientNet-Lite0 below the head-only arm). Its records say
so (``norm_stats``), so that reports never mix the two. ``norm_stats`` (``--norm-stats``)
chooses for full and staged: ``batch`` (each batch's own statistics, updating the running
ones) or ``frozen`` (as loaded); its default is each protocol's own (full: batch, staged:
frozen), so that records without it keep their meaning. Linear always keeps them; asking it
for either is refused.

The protocol and augmentation names are defined here once (``PROTOCOLS``, ``AUGMENTS``) and
checked by ``check_choices`` wherever a configuration is made.

``FinetuneConfig`` holds the harness's own ``run`` options, each default defined here once;
``add_arguments`` adds them to ``run`` (their values reach the harness's ``configure``).
"""

from __future__ import annotations

import argparse
import functools
from dataclasses import dataclass, field
from typing import Any

from bench.errors import ConfigError
from bench.harness.argtypes import nonneg_int as _nonneg_int
from bench.harness.argtypes import positive_float as _positive_float
from bench.harness.argtypes import positive_int as _positive_int
from bench.registry.checkpoints import check_weights_path

PROTOCOLS = ("linear", "full", "staged")
AUGMENTS = ("none", "chapter", "digits", "rot180")
DEFAULT_EPOCHS = 20
DEFAULT_LR_SCRATCH = 1e-2
DEFAULT_LR_PRETRAINED = 1e-3
NORM_STATS = ("batch", "frozen")
# What a staged record writes as ``norm_stats``: the backbone's batch-norm statistics are kept
# as loaded (layers in eval mode) in both phases. Staged records without it ran the earlier
# protocol, whose statistics followed each training batch.
STAGED_NORM_STATS = "frozen"


def check_choices(protocol: str | None, augment: str | None, norm_stats: str | None = None) -> None:
    """A ConfigError for a protocol, augmentation or norm-statistics name that is not one of
    ours (None: the default, resolved later), or norm statistics asked of linear, which keeps
    the frozen backbone's statistics whatever is asked."""
    if protocol is not None and protocol not in PROTOCOLS:
        raise ConfigError(f"Unknown protocol '{protocol}'. Choose from: {', '.join(PROTOCOLS)}.")
    if augment is not None and augment not in AUGMENTS:
        raise ConfigError(f"Unknown augmentation '{augment}'. Choose from: {', '.join(AUGMENTS)}.")
    if norm_stats is not None and norm_stats not in NORM_STATS:
        raise ConfigError(
            f"Unknown --norm-stats '{norm_stats}'. Choose from: {', '.join(NORM_STATS)}."
        )
    if norm_stats is not None and protocol == "linear":
        raise ConfigError(
            "--norm-stats means nothing under --protocol linear (its frozen backbone always "
            "keeps its statistics); leave it out, or choose full or staged."
        )


@dataclass
class TrainConfig:
    epochs: int = 15
    lr: float = 3e-3
    batch_size: int = 64
    seed: int = 0
    protocol: str = "full"
    augment: str = "none"
    img_size: int = 28
    label_smoothing: float = 0.0
    weight_decay: float = 0.01
    backbone_lr_scale: float = 0.1
    head_epochs: int | None = None  # staged: epochs of the head-only phase (None: a quarter)
    norm_stats: str | None = None  # full/staged: 'batch' or 'frozen' (None: the protocol's own)
    device: str = "cpu"
    amp: str | None = None  # 'bf16' or 'fp16' on CUDA
    channels_last: bool = True
    deterministic: bool = False  # CUDA: cuDNN's deterministic kernels, no autotuning
    progress: bool = True
    eval_batch_size: int = 500

    def __post_init__(self):
        check_choices(self.protocol, self.augment, self.norm_stats)

    def staged_head_epochs(self) -> int:
        if self.protocol != "staged":
            return 0
        if self.head_epochs is not None:
            return min(self.head_epochs, self.epochs)
        return min(max(1, round(self.epochs / 4)), max(self.epochs - 1, 1))

    def resolved_norm_stats(self) -> str | None:
        """'batch' or 'frozen' under full and staged (``norm_stats``, else the protocol's own:
        full batch, staged ``STAGED_NORM_STATS``); None under linear."""
        if self.protocol == "linear":
            return None
        return self.norm_stats or (STAGED_NORM_STATS if self.protocol == "staged" else "batch")

    def keeps_norm_stats(self) -> bool:
        """Whether the backbone's batch-norm statistics stay as loaded in every epoch, its
        affine weights training or not (frozen under full or staged; linear keeps those of
        its frozen layers by itself)."""
        return self.resolved_norm_stats() == "frozen"

    def protocol_settings(self) -> dict:
        """What a record (and a checkpoint's key) says of the protocol beyond its name: under
        full and staged, the norm statistics (``norm_stats``; a staged record's tells it from
        the earlier staged protocol); under staged, also the head phase's epochs and the
        backbone's rate scale."""
        if self.protocol == "linear":
            return {}
        stats = {"norm_stats": self.resolved_norm_stats()}
        if self.protocol != "staged":
            return stats
        return {
            **stats,
            "head_epochs": self.staged_head_epochs(),
            "backbone_lr_scale": self.backbone_lr_scale,
        }

    def phase(self, epoch: int) -> str:
        """'head' (backbone frozen) or 'all' for a 0-based epoch."""
        if self.protocol == "linear":
            return "head"
        if self.protocol == "staged" and epoch < self.staged_head_epochs():
            return "head"
        return "all"


@dataclass
class TrainResult:
    top1: float
    top5: float
    loss: float
    curve: list[dict[str, Any]]
    best_epoch: int
    best_top1: float
    train_time_s: float
    train_samples_per_sec: float
    resumed_from_epoch: int = 0
    # epochs train_samples_per_sec was measured over (0: all of them, set-up included)
    speed_epochs: int = 0
    confusion: list[list[int]] | None = None  # the last evaluation's, true x predicted
    extra: dict[str, Any] = field(default_factory=dict)


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got '{text}'")
    return value


def _dataset(text: str) -> str:
    from bench.harness.datasets import DATASETS

    if text in DATASETS[:-1] or (text.startswith("imagefolder:") and len(text) > 12):
        return text
    raise argparse.ArgumentTypeError(f"expected one of {', '.join(DATASETS)}, got '{text}'")


@dataclass(frozen=True)
class FinetuneConfig:
    """The fine-tune harness's own options, each default defined here once. The run-wide
    ``--device``, ``--batch-size`` (the first value), ``--precision`` and ``--img-size`` come
    from the run's ``RunConfig``."""

    dataset: str = "mnist5k"
    data_dir: str = "data"
    download: bool = False
    epochs: int = DEFAULT_EPOCHS
    lr: float | None = None  # None: DEFAULT_LR_SCRATCH, or DEFAULT_LR_PRETRAINED with weights
    seed: int = 0
    protocol: str | None = None  # None: staged with weights, full from scratch
    augment: str | None = None  # None: digits for digit data sets, chapter otherwise
    pretrained: bool = False
    weights: str | None = None
    checkpoint_dir: str = "checkpoints"
    label_smoothing: float = 0.0
    backbone_lr_scale: float = 0.1
    norm_stats: str | None = None  # None: the protocol's own (full batch, staged frozen)
    deterministic: bool = False
    progress: bool = True
    train_limit: int | None = None  # a stratified subset of the training images (small data)

    def __post_init__(self):
        if self.pretrained and self.weights:
            raise ConfigError("Give --pretrained or --weights PATH, not both.")
        check_weights_path(self.weights)
        check_choices(self.resolved_protocol(), self.augment, self.norm_stats)
        if int(self.epochs) <= 0 or int(self.seed) < 0:
            raise ConfigError("--epochs must be positive and --seed not negative.")
        if (self.lr is not None and not self.lr > 0) or not self.backbone_lr_scale > 0:
            raise ConfigError("--lr and --backbone-lr-scale must be positive.")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"--label-smoothing {self.label_smoothing}: expected [0, 1).")

    @property
    def from_weights(self) -> bool:
        return self.pretrained or bool(self.weights)

    def resolved_lr(self, card=None) -> float:
        """--lr; else the model card's recipe (from scratch); else the harness's default."""
        if self.lr is not None:
            return float(self.lr)
        if self.from_weights:
            return DEFAULT_LR_PRETRAINED
        recipe = getattr(card, "finetune", None)
        if recipe is not None and recipe.lr is not None:
            return float(recipe.lr)
        return DEFAULT_LR_SCRATCH

    def resolved_protocol(self) -> str:
        return self.protocol or ("staged" if self.from_weights else "full")


def add_arguments(group) -> None:
    # defaults live in FinetuneConfig, defined once
    add = functools.partial(group.add_argument, default=argparse.SUPPRESS)
    _data_and_recipe_arguments(add, FinetuneConfig())
    _start_and_run_arguments(add, FinetuneConfig())


def _data_and_recipe_arguments(add, d: FinetuneConfig) -> None:
    from bench.harness.datasets import DATASETS

    add(
        "--dataset",
        type=_dataset,
        metavar="NAME",
        help=f"data set to fine-tune on: {', '.join(DATASETS)} (default: {d.dataset}, offline)",
    )
    add(
        "--data-dir",
        dest="data_dir",
        help=f"where torchvision data sets live (default: {d.data_dir}/)",
    )
    add(
        "--download",
        action="store_true",
        help="let torchvision download mnist/fashion_mnist/cifar10 into --data-dir",
    )
    add("--epochs", type=_positive_int, help=f"training epochs (default: {d.epochs})")
    add(
        "--lr",
        type=_positive_float,
        help=f"peak learning rate of the head (default: {DEFAULT_LR_SCRATCH:g} from scratch, "
        f"or the model card's [finetune] lr where it has one; {DEFAULT_LR_PRETRAINED:g} "
        "pretrained)",
    )
    add(
        "--seed",
        type=_nonneg_int,
        help=f"seed of initialisation, shuffling, dropout and augmentation (default: {d.seed})",
    )
    add(
        "--protocol",
        metavar="{" + ",".join(PROTOCOLS) + "}",
        help="linear: head only; full: all layers at one rate; staged: head first, then all "
        "with a lower backbone rate (default: staged when pretrained, else full)",
    )
    add(
        "--augment",
        metavar="{" + ",".join(AUGMENTS) + "}",
        help="chapter: code example 5; digits: small affine moves, no flips or large turns; "
        "rot180: digits, and half the images turned over (the chapter's anti-pattern, to "
        "measure it) (default: digits for digit data sets, chapter otherwise)",
    )


def _start_and_run_arguments(add, d: FinetuneConfig) -> None:
    add(
        "--pretrained",
        action="store_true",
        help="start from each source's pretrained weights (never silently random)",
    )
    add(
        "--weights",
        metavar="PATH",
        help="start from a local checkpoint (.pth read with weights_only=True, or .safetensors), "
        "or each model's own in a folder of fine-tune checkpoints",
    )
    add(
        "--checkpoint-dir",
        dest="checkpoint_dir",
        help=f"where per-epoch fine-tune checkpoints go (default: {d.checkpoint_dir}/)",
    )
    add(
        "--label-smoothing",
        dest="label_smoothing",
        type=_fraction,
        help=f"label smoothing of the training loss (default: {d.label_smoothing:g})",
    )
    add(
        "--backbone-lr-scale",
        dest="backbone_lr_scale",
        type=_positive_float,
        help=f"staged: the backbone's learning rate as a fraction of --lr (default: "
        f"{d.backbone_lr_scale:g})",
    )
    add(
        "--norm-stats",
        dest="norm_stats",
        choices=NORM_STATS,
        help="full and staged: the backbone's batch-norm statistics, each batch's own (batch) "
        "or kept as loaded (frozen) (default: full batch, staged frozen; not for linear)",
    )
    add(
        "--deterministic",
        action="store_true",
        help="CUDA: cuDNN's deterministic kernels and no autotuning, so that a resumed run "
        "ends where an uninterrupted one would (slower; the CPU is deterministic already)",
    )
    add(
        "--train-limit",
        dest="train_limit",
        type=_positive_int,
        metavar="N",
        help="train on a stratified, seeded N of the training images (small-data "
        "experiments; the held-out split is unchanged)",
    )
    add(
        "--no-progress",
        dest="progress",
        action="store_false",
        help="no progress bar (it is also off when stderr is not a terminal)",
    )

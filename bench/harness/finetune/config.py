"""What the fine-tune loop is asked to do (``TrainConfig``) and what it returns (``TrainResult``).

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
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.errors import ConfigError

PROTOCOLS = ("linear", "full", "staged")
AUGMENTS = ("none", "chapter", "digits", "rot180")
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

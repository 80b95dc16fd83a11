"""What one training run carries from epoch to epoch (``Loop``), and how it is set up: the
device, the process group, the seeded generator (on the device, like the data), the data on
the device, the sampler and the gradient scaler.

On CUDA, cuDNN autotunes its kernels (``cudnn.benchmark``, as timm's training script does)
unless ``deterministic``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from bench.errors import ConfigError
from bench.harness.finetune.augment import BatchInput
from bench.harness.finetune.config import TrainConfig
from bench.harness.finetune.distributed import dist_setup


@dataclass
class Loop:
    """What one training run carries from epoch to epoch (set up by ``set_up``)."""

    model: Any
    cfg: TrainConfig
    rank: int
    world: int
    device_type: str
    local_batch: int
    gen: Any
    prep: Any
    data: tuple  # x_train, y_train, x_test, y_test on the device
    sampler: Any
    steps_per_epoch: int
    scaler: Any
    start_epoch: int = 0
    curve: list = field(default_factory=list)
    train_time: float = 0.0
    phase: str | None = None
    optimizer: Any = None
    scheduler: Any = None
    ddp_model: Any = None
    confusion: list | None = None  # the last evaluation's confusion matrix
    step_times_ms: dict = field(default_factory=dict)  # epoch -> this rank's step times
    # the last epoch's learning rate at each step, and (on the device) its first step whose
    # loss was not finite, or its number of steps when none was (bench.harness.finetune.divergence)
    step_lrs: list = field(default_factory=list)
    bad_step: Any = None
    # the input the model was trained on (in_chans, mean, std): a checkpoint carries it, so that
    # whoever scores the checkpoint prepares its images the same way
    input_norm: dict = field(default_factory=dict)


def _device_type(cfg: TrainConfig) -> str:
    """'cuda' or 'cpu'; on CUDA the device is selected and cuDNN told how to pick kernels."""
    if not cfg.device.startswith("cuda"):
        return "cpu"
    import torch

    torch.cuda.set_device(torch.device(cfg.device))
    # cuDNN's default kernel choice for some layers (depthwise convolutions' backward in
    # channels_last) is many times slower than the autotuned one
    torch.backends.cudnn.deterministic = cfg.deterministic
    torch.backends.cudnn.benchmark = not cfg.deterministic
    return "cuda"


def set_up(model, data, cfg: TrainConfig, in_chans: int, mean, std) -> Loop:
    """Device, process group, seeded generator, data on the device, sampler and scaler."""
    import torch
    from torch.utils.data import DistributedSampler

    device_type = _device_type(cfg)
    rank, world = dist_setup(device_type)
    if cfg.batch_size % world:
        raise ConfigError(
            f"Batch size {cfg.batch_size} does not divide among {world} processes; pick a "
            "multiple of the process count (it is the global batch size)."
        )
    dev = cfg.device if device_type == "cuda" else "cpu"
    # augmentation draws on the data's device: no host-to-device copy per step
    gen = torch.Generator(device=dev).manual_seed(cfg.seed * 1000 + rank)
    model.to(cfg.device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    tensors = tuple(t.to(dev) for t in (data.x_train, data.y_train, data.x_test, data.y_test))
    sampler = DistributedSampler(
        range(len(tensors[1])),
        num_replicas=world,
        rank=rank,
        shuffle=True,
        seed=cfg.seed,
        drop_last=False,
    )
    local_batch = cfg.batch_size // world
    scaler = torch.amp.GradScaler("cuda", enabled=cfg.amp == "fp16" and device_type == "cuda")
    return Loop(
        model=model,
        cfg=cfg,
        rank=rank,
        world=world,
        device_type=device_type,
        local_batch=local_batch,
        gen=gen,
        prep=BatchInput(cfg, data.channels, in_chans, mean, std, gen),
        data=tensors,
        sampler=sampler,
        steps_per_epoch=math.ceil(len(sampler) / local_batch),
        scaler=scaler,
        input_norm={
            "in_chans": int(in_chans),
            "mean": [float(v) for v in mean],
            "std": [float(v) for v in std],
        },
    )

"""The fine-tune training loop: in-memory tensors, AdamW, warm-up + cosine, DDP-aware.

Data stay on the device as uint8 tensors; each batch is indexed, scaled, resized,
augmented (affine transforms drawn from a seeded generator and applied with
``grid_sample``) and normalised there. No DataLoader workers, no per-step host syncs:
that is what lets this loop train at least as fast as the chapter's plain loop.

Protocols: ``linear`` trains the head only (backbone frozen, its norm statistics kept);
``full`` trains everything at one learning rate; ``staged`` trains the head first with the
backbone's weights frozen, then everything with the backbone at ``backbone_lr_scale`` times
the rate. In the staged head phase the batch-norm statistics do follow the new data, so that
the features the head learns on are the ones it meets when the backbone is unfrozen.

A checkpoint is written atomically after each epoch (temporary file, then rename), so an
interruption leaves the last complete epoch on disk; ``resume`` continues from it with the
RNG states of the CPU, the augmentation generator and (on CUDA) every GPU. On the CPU a
resumed run ends where an uninterrupted one would have; on CUDA it does so with
``deterministic`` (cuDNN's deterministic kernels, no autotuning), and without it is as close
as two uninterrupted CUDA runs are to each other.

Speed: ``train_samples_per_sec`` is measured over the epochs that carry no set-up, when there
are such epochs: not the first one run by this process (CUDA's context, the allocator, cuDNN's
autotuning) nor the first of a new phase (new backward kernels to choose once the backbone
trains); ``train_time_s`` is every epoch's time. Under torchrun an epoch lasts as long as its
slowest rank. On CUDA, cuDNN autotunes its kernels (``cudnn.benchmark``, as timm's training
script does) unless ``deterministic``.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.dist import world_size
from bench.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

PROTOCOLS = ("linear", "full", "staged")
AUGMENTS = ("none", "chapter", "digits", "rot180")


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
    device: str = "cpu"
    amp: str | None = None  # 'bf16' or 'fp16' on CUDA
    channels_last: bool = True
    deterministic: bool = False  # CUDA: cuDNN's deterministic kernels, no autotuning
    progress: bool = True
    eval_batch_size: int = 500

    def staged_head_epochs(self) -> int:
        if self.protocol != "staged":
            return 0
        if self.head_epochs is not None:
            return min(self.head_epochs, self.epochs)
        return min(max(1, round(self.epochs / 4)), max(self.epochs - 1, 1))

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


# -- distributed ---------------------------------------------------------------------------
def dist_setup(device_type: str):
    """(rank, world size), initialising the process group under torchrun if needed."""
    import torch.distributed as dist

    if world_size() <= 1:
        return 0, 1
    if not dist.is_initialized():
        import atexit

        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
        atexit.register(lambda: dist.is_initialized() and dist.destroy_process_group())
    return dist.get_rank(), dist.get_world_size()


def _all_sum(t, world: int):
    if world > 1:
        import torch.distributed as dist

        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def slowest_rank_time(seconds: float, world: int, device) -> float:
    """The epoch's time: the slowest rank's (all_reduce with MAX), not the ranks' mean."""
    if world <= 1:
        return seconds
    import torch
    import torch.distributed as dist

    t = torch.tensor([seconds], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t[0])


def rng_state(device_type: str) -> dict:
    """The global RNG states a resumed run needs: the CPU's and, on CUDA, every GPU's."""
    import torch

    cuda = torch.cuda.get_rng_state_all() if device_type == "cuda" else None
    return {"cpu": torch.get_rng_state(), "cuda": cuda}


def set_rng_state(state: dict) -> None:
    import torch

    torch.set_rng_state(state["cpu"])
    if state.get("cuda") is not None:
        torch.cuda.set_rng_state_all(state["cuda"])


def steady_samples_per_sec(curve: list[dict]) -> tuple[float, int]:
    """Samples per second over the epochs that carry no set-up (``includes_setup``), and how
    many epochs that is; over every epoch when all carry set-up (0 is then returned as the
    count, so that a reader knows the figure includes it)."""
    steady = [p for p in curve if not p.get("includes_setup")]
    used = steady or curve
    seconds = sum(p["epoch_time_s"] for p in used)
    speed = round(sum(p["train_samples"] for p in used) / seconds, 1) if seconds > 0 else 0.0
    return speed, len(steady)


# -- augmentation ----------------------------------------------------------------------------
def _affine(b: int, gen, *, rot: float, trans: float, scale=(1.0, 1.0), crop=False, flip=False):
    """(b, 2, 3) matrices mapping output to input coordinates (affine_grid's convention)."""
    import torch

    def u(lo, hi):
        return torch.rand(b, generator=gen) * (hi - lo) + lo

    angle = u(-rot, rot) * math.pi / 180
    if crop:  # RandomResizedCrop(scale=(0.8, 1.0), ratio=(3/4, 4/3)), then resize back
        area = u(*scale)
        logr = u(math.log(3 / 4), math.log(4 / 3))
        sx = torch.sqrt(area * torch.exp(logr)).clamp(max=1.0)
        sy = torch.sqrt(area / torch.exp(logr)).clamp(max=1.0)
        cx = (torch.rand(b, generator=gen) * 2 - 1) * (1 - sx)
        cy = (torch.rand(b, generator=gen) * 2 - 1) * (1 - sy)
    else:
        s = u(*scale)
        sx, sy = 1 / s, 1 / s  # zoom by s: sample a 1/s-sized window
        cx = cy = torch.zeros(b)
    fx = torch.ones(b)
    if flip:
        fx = torch.where(torch.rand(b, generator=gen) < 0.5, -1.0, 1.0)
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
        turn = (torch.rand(b, generator=gen) < 0.5).to(x.device)[:, None, None, None]
        return torch.where(turn, x.flip(-1).flip(-2), x)
    if kind == "digits":
        theta = _affine(b, gen, rot=10, trans=0.1, scale=(0.9, 1.1))
    elif kind == "chapter":
        theta = _affine(b, gen, rot=15, trans=0.1, scale=(0.8, 1.0), crop=True, flip=True)
    else:
        raise ConfigError(f"Unknown augmentation '{kind}'. Choose from: {', '.join(AUGMENTS)}.")
    theta = theta.to(x.device, x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if kind == "chapter":

        def factor():
            return (torch.rand(b, 1, 1, 1, generator=gen) * 0.4 + 0.8).to(x.device, x.dtype)

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
    pick = torch.rand(b, generator=gen) < p
    area = (torch.rand(b, generator=gen) * 0.31 + 0.02) * h * w
    logr = torch.rand(b, generator=gen) * (math.log(3.3) - math.log(0.3)) + math.log(0.3)
    eh = torch.sqrt(area * torch.exp(logr)).round().clamp(1, h).long()
    ew = torch.sqrt(area / torch.exp(logr)).round().clamp(1, w).long()
    top = (torch.rand(b, generator=gen) * (h - eh + 1).float()).long()
    left = (torch.rand(b, generator=gen) * (w - ew + 1).float()).long()
    rows = torch.arange(h)[None, :]
    cols = torch.arange(w)[None, :]
    mh = (rows >= top[:, None]) & (rows < (top + eh)[:, None])
    mw = (cols >= left[:, None]) & (cols < (left + ew)[:, None])
    mask = (mh[:, :, None] & mw[:, None, :] & pick[:, None, None])[:, None]
    return x.masked_fill(mask.to(x.device), 0.0)


# -- the loop ----------------------------------------------------------------------------
class _Input:
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
                x, size=(size, size), mode="bilinear", align_corners=False,
                antialias=size < x.shape[-1],
            )  # fmt: skip
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


def _schedule(optimizer, total_steps: int, warmup_steps: int):
    import torch

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _optimizer(model, cfg: TrainConfig, phase: str, steps_per_epoch: int):
    import torch

    from bench.registry.heads import set_backbone_frozen, split_parameters

    set_backbone_frozen(model, phase == "head")
    head, backbone = split_parameters(model)
    groups = [{"params": head, "lr": cfg.lr}]
    if phase == "all":
        scale = cfg.backbone_lr_scale if cfg.protocol == "staged" else 1.0
        groups.append({"params": backbone, "lr": cfg.lr * scale})
    opt = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    n_epochs = sum(1 for e in range(cfg.epochs) if cfg.phase(e) == phase)
    total = max(1, n_epochs * steps_per_epoch)
    warmup = max(1, min(steps_per_epoch, total // 4))
    return opt, _schedule(opt, total, warmup)


def atomic_torch_save(obj, path: Path) -> None:
    import torch

    from bench.storage import atomic_path

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _progress_enabled(cfg: TrainConfig, rank: int) -> bool:
    return cfg.progress and rank == 0 and sys.stderr.isatty()


def evaluate(model, x, y, prep, cfg: TrainConfig, rank: int, world: int) -> dict[str, float]:
    """Top-1, top-5 (percent) and mean cross-entropy on the test split, summed over ranks."""
    import torch
    import torch.nn.functional as F

    model.eval()
    idx = torch.arange(rank, len(y), world)
    sums = torch.zeros(4, dtype=torch.float64, device=cfg.device)
    classes = int(y.max()) + 1
    confusion = torch.zeros(classes * classes, dtype=torch.float64, device=cfg.device)
    k = min(5, classes)
    with torch.inference_mode(), _autocast(cfg):
        for i in range(0, len(idx), cfg.eval_batch_size):
            sel = idx[i : i + cfg.eval_batch_size]
            xb = prep(x[sel], train=False)
            yb = y[sel].to(cfg.device)
            out = model(xb).float()
            sums[0] += F.cross_entropy(out, yb, reduction="sum")
            top = out.topk(k, dim=1).indices
            confusion += torch.bincount(yb * classes + top[:, 0], minlength=classes * classes)
            hit = top.eq(yb[:, None])
            sums[1] += hit[:, 0].sum()
            sums[2] += hit.any(dim=1).sum()
            sums[3] += len(sel)
    sums = _all_sum(sums, world)
    confusion = _all_sum(confusion, world).view(classes, classes)
    n = max(1.0, float(sums[3]))
    return {
        "loss": float(sums[0]) / n,
        "top1": 100 * float(sums[1]) / n,
        "top5": 100 * float(sums[2]) / n,
        # rows: true class, columns: predicted class (top-1), on the held-out split
        "confusion": confusion.long().tolist(),
    }


def _autocast(cfg: TrainConfig):
    import contextlib

    import torch

    if cfg.amp and cfg.device.startswith("cuda"):
        dtype = torch.bfloat16 if cfg.amp == "bf16" else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


@dataclass
class _Loop:
    """What one training run carries from epoch to epoch (set up by ``_set_up``)."""

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


def _check(cfg: TrainConfig) -> None:
    if cfg.protocol not in PROTOCOLS:
        raise ConfigError(
            f"Unknown protocol '{cfg.protocol}'. Choose from: {', '.join(PROTOCOLS)}."
        )
    if cfg.augment not in AUGMENTS:
        raise ConfigError(
            f"Unknown augmentation '{cfg.augment}'. Choose from: {', '.join(AUGMENTS)}."
        )


def _set_up(model, data, cfg: TrainConfig, in_chans: int, mean, std) -> _Loop:
    """Device, process group, seeded generator, data on the device, sampler and scaler."""
    import torch
    from torch.utils.data import DistributedSampler

    _check(cfg)
    device_type = "cuda" if cfg.device.startswith("cuda") else "cpu"
    if device_type == "cuda":
        torch.cuda.set_device(torch.device(cfg.device))
        # cuDNN's default kernel choice for some layers (depthwise convolutions' backward in
        # channels_last) is many times slower than the autotuned one
        torch.backends.cudnn.deterministic = cfg.deterministic
        torch.backends.cudnn.benchmark = not cfg.deterministic
    rank, world = dist_setup(device_type)
    if cfg.batch_size % world:
        raise ConfigError(
            f"Batch size {cfg.batch_size} does not divide among {world} processes; pick a "
            "multiple of the process count (it is the global batch size)."
        )
    gen = torch.Generator().manual_seed(cfg.seed * 1000 + rank)
    model.to(cfg.device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    dev = cfg.device if device_type == "cuda" else "cpu"
    tensors = tuple(t.to(dev) for t in (data.x_train, data.y_train, data.x_test, data.y_test))
    sampler = DistributedSampler(
        range(len(tensors[1])), num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed,
        drop_last=False,
    )  # fmt: skip
    local_batch = cfg.batch_size // world
    return _Loop(
        model=model, cfg=cfg, rank=rank, world=world, device_type=device_type,
        local_batch=local_batch, gen=gen,
        prep=_Input(cfg, data.channels, in_chans, mean, std, gen), data=tensors,
        sampler=sampler, steps_per_epoch=math.ceil(len(sampler) / local_batch),
        scaler=torch.amp.GradScaler("cuda", enabled=cfg.amp == "fp16" and device_type == "cuda"),
    )  # fmt: skip


def _resume(loop: _Loop, checkpoint: Path, run_key: dict | None) -> None:
    """Continue from the checkpoint: weights, optimiser, schedule, scaler and every RNG."""
    import torch

    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    if state.get("run_key") != run_key:
        raise ConfigError(
            f"The checkpoint {checkpoint} belongs to another configuration; remove it or "
            "run without --resume to start afresh."
        )
    loop.model.load_state_dict(state["model"])
    loop.start_epoch, loop.curve = state["epoch"], state["curve"]
    loop.train_time, loop.phase = state["train_time_s"], state["phase"]
    loop.optimizer, loop.scheduler = _optimizer(
        loop.model, loop.cfg, loop.phase, loop.steps_per_epoch
    )
    loop.optimizer.load_state_dict(state["optimizer"])
    loop.scheduler.load_state_dict(state["scheduler"])
    loop.scaler.load_state_dict(state["scaler"])
    set_rng_state(state["rng"])
    gens = state["gen"]
    loop.gen.set_state(gens[loop.rank] if loop.rank < len(gens) else gens[0])
    logger.info("%s: resuming after epoch %d", checkpoint.name, loop.start_epoch)


def _enter_phase(loop: _Loop, epoch: int) -> bool:
    """New optimiser (and DDP wrapper) when the protocol's phase changes; True if it did or
    this is the process's first epoch (either way the epoch carries set-up)."""
    phase = loop.cfg.phase(epoch)
    setup = epoch == loop.start_epoch or phase != loop.phase
    if phase != loop.phase:
        loop.phase = phase
        loop.optimizer, loop.scheduler = _optimizer(
            loop.model, loop.cfg, phase, loop.steps_per_epoch
        )
    if setup or loop.ddp_model is None:
        if loop.world > 1:
            import torch
            from torch.nn.parallel import DistributedDataParallel as DDP

            cuda = loop.device_type == "cuda"
            ids = [torch.device(loop.cfg.device).index or 0] if cuda else None
            loop.ddp_model = DDP(loop.model, device_ids=ids)
        else:
            loop.ddp_model = loop.model
    return setup


def _progress_bar(loop: _Loop, epoch: int):
    if not _progress_enabled(loop.cfg, loop.rank):
        return None
    from tqdm import tqdm

    return tqdm(total=loop.steps_per_epoch, desc=f"epoch {epoch + 1}/{loop.cfg.epochs}",
                leave=False)  # fmt: skip


def _train_epoch(loop: _Loop, epoch: int):
    """One pass over this rank's share of the training data; (loss, correct, seen) sums on
    the device (no host synchronisation per step) and the epoch's seconds."""
    import torch
    import torch.nn.functional as F

    from bench.registry.heads import freeze_frozen_norms

    cfg, (x_train, y_train, _, _) = loop.cfg, loop.data
    loop.sampler.set_epoch(epoch)
    order = torch.tensor(list(iter(loop.sampler)), dtype=torch.long)
    loop.model.train()
    if cfg.protocol == "linear":
        freeze_frozen_norms(loop.model)  # a linear probe keeps the backbone exactly as it was
    sums = torch.zeros(3, dtype=torch.float64, device=cfg.device)
    bar = _progress_bar(loop, epoch)
    if loop.device_type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for i in range(0, len(order), loop.local_batch):
        sel = order[i : i + loop.local_batch]
        if len(sel) < 2 and loop.world == 1:
            continue  # a batch of one breaks batch norm
        sel = sel.to(x_train.device)
        yb = y_train[sel]
        with _autocast(cfg):
            out = loop.ddp_model(loop.prep(x_train[sel], train=True))
            loss = F.cross_entropy(out.float(), yb, label_smoothing=cfg.label_smoothing)
        loop.optimizer.zero_grad(set_to_none=True)
        loop.scaler.scale(loss).backward()
        loop.scaler.step(loop.optimizer)
        loop.scaler.update()
        loop.scheduler.step()
        with torch.no_grad():
            sums[0] += loss.detach() * len(sel)
            sums[1] += out.argmax(1).eq(yb).sum()
            sums[2] += len(sel)
        if bar is not None:
            bar.update(1)
            if bar.n % 10 == 0:  # a host synchronisation, only when someone is watching
                bar.set_postfix(loss=f"{float(sums[0] / sums[2]):.3f}",
                                acc=f"{100 * float(sums[1] / sums[2]):.1f}%")  # fmt: skip
    if loop.device_type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    if bar is not None:
        bar.close()
    return _all_sum(sums, loop.world), slowest_rank_time(seconds, loop.world, cfg.device)


def _save(loop: _Loop, checkpoint: Path | None, run_key: dict | None, epoch: int) -> None:
    """The checkpoint after ``epoch``, written atomically by rank 0 (every rank's generator
    state gathered into it)."""
    if checkpoint is None:
        return
    gens = [loop.gen.get_state()]
    if loop.world > 1:
        import torch.distributed as dist

        gathered = [None] * loop.world
        dist.all_gather_object(gathered, loop.gen.get_state())
        gens = gathered
    if loop.rank != 0:
        return
    atomic_torch_save(
        {
            "run_key": run_key, "epoch": epoch + 1, "phase": loop.phase,
            "model": loop.model.state_dict(), "optimizer": loop.optimizer.state_dict(),
            "scheduler": loop.scheduler.state_dict(), "scaler": loop.scaler.state_dict(),
            "rng": rng_state(loop.device_type), "gen": gens, "curve": loop.curve,
            "train_time_s": loop.train_time, "config": asdict(loop.cfg),
        },
        checkpoint,
    )  # fmt: skip


def _epoch_point(loop: _Loop, epoch: int, sums, seconds: float, setup: bool) -> dict:
    _, _, x_test, y_test = loop.data
    metrics = evaluate(loop.model, x_test, y_test, loop.prep, loop.cfg, loop.rank, loop.world)
    loop.confusion = metrics["confusion"]
    n = max(1.0, float(sums[2]))
    return {
        "epoch": epoch + 1,
        "phase": loop.phase,
        "train_loss": round(float(sums[0]) / n, 5),
        "train_top1": round(100 * float(sums[1]) / n, 3),
        "test_loss": round(metrics["loss"], 5),
        "top1": round(metrics["top1"], 3),
        "top5": round(metrics["top5"], 3),
        "lr": loop.optimizer.param_groups[0]["lr"],
        "epoch_time_s": round(seconds, 3),
        "train_samples": int(n),
        "includes_setup": setup,
    }


def _result(loop: _Loop) -> TrainResult:
    if not loop.curve:
        raise ConfigError("Nothing was trained: --epochs must be at least 1.")
    final = loop.curve[-1]
    if loop.start_epoch >= loop.cfg.epochs:  # resumed a finished run: evaluate again
        _, _, x_test, y_test = loop.data
        metrics = evaluate(loop.model, x_test, y_test, loop.prep, loop.cfg, loop.rank,
                           loop.world)  # fmt: skip
        final = {**final, **{k: round(metrics[k], 3) for k in ("top1", "top5")}}
        final["test_loss"] = round(metrics["loss"], 5)
        loop.confusion = metrics["confusion"]
    best = max(loop.curve, key=lambda p: (p["top1"], -p["epoch"]))
    speed, speed_epochs = steady_samples_per_sec(loop.curve)
    return TrainResult(
        top1=final["top1"],
        top5=final["top5"],
        loss=final["test_loss"],
        curve=loop.curve,
        best_epoch=best["epoch"],
        best_top1=best["top1"],
        train_time_s=round(loop.train_time, 3),
        train_samples_per_sec=speed,
        resumed_from_epoch=loop.start_epoch,
        speed_epochs=speed_epochs,
        confusion=loop.confusion,
    )


def train(
    model,
    data,
    cfg: TrainConfig,
    *,
    in_chans: int,
    mean,
    std,
    checkpoint: Path | None = None,
    resume: bool = False,
    run_key: dict | None = None,
    on_epoch_end: Callable[[int, dict], None] | None = None,
) -> TrainResult:
    """Train ``model`` on ``data`` and evaluate it after each epoch."""
    loop = _set_up(model, data, cfg, in_chans, mean, std)
    if resume and checkpoint is not None and checkpoint.is_file():
        _resume(loop, checkpoint, run_key)
    elif resume:
        logger.info("No checkpoint to resume at %s; starting afresh", checkpoint)
    for epoch in range(loop.start_epoch, cfg.epochs):
        setup = _enter_phase(loop, epoch)
        sums, seconds = _train_epoch(loop, epoch)
        loop.train_time += seconds
        point = _epoch_point(loop, epoch, sums, seconds, setup)
        loop.curve.append(point)
        if loop.rank == 0:
            logger.info("epoch %d: %s", epoch + 1, point)
        _save(loop, checkpoint, run_key, epoch)
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, point)
    return _result(loop)

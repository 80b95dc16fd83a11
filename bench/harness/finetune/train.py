"""The fine-tune training loop: in-memory tensors, AdamW, warm-up + cosine, DDP-aware.

``train`` sets a run up (``bench.harness.finetune.state``), resumes it from a checkpoint when
asked (``bench.harness.finetune.checkpoint``), then trains epoch by epoch (the phases of the
protocol, ``bench.harness.finetune.config``), evaluating after each and saving a checkpoint.

Speed: ``train_samples_per_sec`` is measured over the epochs that carry no set-up, when there
are such epochs: not the first one run by this process (CUDA's context, the allocator, cuDNN's
autotuning) nor the first of a new phase (new backward kernels to choose once the backbone
trains); ``train_time_s`` is every epoch's time. Under torchrun an epoch lasts as long as its
slowest rank.

An epoch whose training loss, or whose held-out loss, is not finite ends the training with a
``DivergedError`` that names the epoch, the first such step and its learning rate
(``bench.harness.finetune.divergence``); the exception carries the epochs before it (``curve``).
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench.errors import ConfigError, DivergedError
from bench.harness.finetune.checkpoint import load_checkpoint, save_checkpoint
from bench.harness.finetune.config import TrainConfig, TrainResult
from bench.harness.finetune.distributed import all_sum, slowest_rank_time
from bench.harness.finetune.divergence import check_test_loss, check_training_loss
from bench.harness.finetune.evaluate import autocast, evaluate
from bench.harness.finetune.optim import make_optimizer
from bench.harness.finetune.state import Loop, set_up
from bench.harness.samples import kept_step_times

logger = logging.getLogger(__name__)


def steady_samples_per_sec(curve: list[dict]) -> tuple[float, int]:
    """Samples per second over the epochs that carry no set-up (``includes_setup``), and how
    many epochs that is; over every epoch when all carry set-up (0 is then returned as the
    count, so that a reader knows the figure includes it)."""
    steady = [p for p in curve if not p.get("includes_setup")]
    used = steady or curve
    seconds = sum(p["epoch_time_s"] for p in used)
    speed = round(sum(p["train_samples"] for p in used) / seconds, 1) if seconds > 0 else 0.0
    return speed, len(steady)


def _enter_phase(loop: Loop, epoch: int) -> bool:
    """New optimiser (and DDP wrapper) when the protocol's phase changes; True if it did or
    this is the process's first epoch (either way the epoch carries set-up)."""
    phase = loop.cfg.phase(epoch)
    setup = epoch == loop.start_epoch or phase != loop.phase
    if phase != loop.phase:
        loop.phase = phase
        loop.optimizer, loop.scheduler = make_optimizer(
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


def _progress_bar(loop: Loop, epoch: int):
    """A tqdm bar over the epoch's steps, on rank 0 when stderr is a terminal (else None)."""
    if not (loop.cfg.progress and loop.rank == 0 and sys.stderr.isatty()):
        return None
    from tqdm import tqdm

    desc = f"epoch {epoch + 1}/{loop.cfg.epochs}"
    return tqdm(total=loop.steps_per_epoch, desc=desc, leave=False)


def _show_step(bar, sums) -> None:
    bar.update(1)
    if bar.n % 10 == 0:  # a host synchronisation, only when someone is watching
        loss, acc = float(sums[0] / sums[2]), 100 * float(sums[1] / sums[2])
        bar.set_postfix(loss=f"{loss:.3f}", acc=f"{acc:.1f}%")


def _step(loop: Loop, sel, sums):
    """One optimiser step on the training images ``sel`` (indices on the data's device); its
    loss and hits added to ``sums`` on the device; the loss returned (on the device)."""
    import torch
    import torch.nn.functional as F

    x_train, y_train = loop.data[0], loop.data[1]
    yb = y_train[sel]
    with autocast(loop.cfg):
        out = loop.ddp_model(loop.prep(x_train[sel], train=True))
        loss = F.cross_entropy(out.float(), yb, label_smoothing=loop.cfg.label_smoothing)
    loop.optimizer.zero_grad(set_to_none=True)
    loop.scaler.scale(loss).backward()
    loop.scaler.step(loop.optimizer)
    loop.scaler.update()
    loop.scheduler.step()
    with torch.no_grad():
        sums[0] += loss.detach() * len(sel)
        sums[1] += out.argmax(1).eq(yb).sum()
        sums[2] += len(sel)
    return loss.detach()


def _mark(loop: Loop):
    """A step's start or end: a CUDA event on a GPU (no host synchronisation), else the
    host's clock."""
    if loop.device_type != "cuda":
        return time.perf_counter()
    import torch

    event = torch.cuda.Event(enable_timing=True)
    event.record()
    return event


def _ms(start, end) -> float:
    """Milliseconds between two marks (CUDA events: once the device is synchronised)."""
    if isinstance(start, float):
        return (end - start) * 1e3
    return start.elapsed_time(end)


def step_times(loop: Loop) -> dict:
    """The training step times a record keeps (``train_step_times_ms``, capped): this
    rank's, over the epochs ``train_samples_per_sec`` counts (``steady_samples_per_sec``)."""
    steady = [p["epoch"] - 1 for p in loop.curve if not p.get("includes_setup")]
    epochs = steady or sorted(loop.step_times_ms)
    kept, capped = kept_step_times([t for e in epochs for t in loop.step_times_ms.get(e, [])])
    return {"train_step_times_ms": kept, "train_step_times_capped": capped}


def _train_epoch(loop: Loop, epoch: int):
    """One pass over this rank's share of the training data; (loss, correct, seen) sums on
    the device (no host synchronisation per step) and the epoch's seconds."""
    import torch

    from bench.registry.heads import freeze_backbone_norm_stats, freeze_frozen_norms

    loop.sampler.set_epoch(epoch)
    # the epoch's order on the data's device: each step's indices are a slice of it, not a copy
    order = torch.tensor(list(iter(loop.sampler)), dtype=torch.long, device=loop.data[1].device)
    loop.model.train()
    if loop.cfg.protocol == "linear":
        freeze_frozen_norms(loop.model)  # a linear probe keeps the backbone exactly as it was
    elif loop.cfg.keeps_norm_stats():
        freeze_backbone_norm_stats(loop.model)  # staged: the statistics as loaded, both phases
    sums = torch.zeros(3, dtype=torch.float64, device=loop.cfg.device)
    bar = _progress_bar(loop, epoch)
    if loop.device_type == "cuda":
        torch.cuda.synchronize()
    t0, marks = time.perf_counter(), []
    loop.step_lrs = []
    # the first step whose loss is not finite, kept on the device: no host synchronisation
    loop.bad_step = torch.full((), loop.steps_per_epoch, dtype=torch.long, device=sums.device)
    for i in range(0, len(order), loop.local_batch):
        sel = order[i : i + loop.local_batch]
        if len(sel) < 2 and loop.world == 1:
            continue  # a batch of one breaks batch norm
        start = _mark(loop)
        k = len(loop.step_lrs)
        loop.step_lrs.append(loop.optimizer.param_groups[0]["lr"])
        loss = _step(loop, sel, sums)
        keep = torch.isfinite(loss) | (loop.bad_step < k)
        loop.bad_step = torch.where(keep, loop.bad_step, k)
        marks.append((start, _mark(loop)))
        if bar is not None:
            _show_step(bar, sums)
    if loop.device_type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    loop.step_times_ms[epoch] = [_ms(a, b) for a, b in marks]
    if bar is not None:
        bar.close()
    return all_sum(sums, loop.world), slowest_rank_time(seconds, loop.world, loop.cfg.device)


def _check_training_loss(loop: Loop, epoch: int, sums) -> None:
    """A ``DivergedError`` when the epoch's training loss was not finite (summed over ranks,
    so every rank raises alike), naming this rank's first such step and its learning rate."""
    loss_sum = float(sums[0])
    if math.isfinite(loss_sum):
        return
    bad = int(loop.bad_step)
    bad = bad if bad < len(loop.step_lrs) else None  # another rank saw it
    check_training_loss(loss_sum, epoch + 1, bad, loop.steps_per_epoch, loop.step_lrs, loop.cfg.lr)


def _evaluate(loop: Loop, epoch: int) -> dict:
    """``evaluate`` on the held-out split; a ``DivergedError`` when its loss is not finite."""
    _, _, x_test, y_test = loop.data
    metrics = evaluate(loop.model, x_test, y_test, loop.prep, loop.cfg, loop.rank, loop.world)
    check_test_loss(metrics["loss"], epoch, loop.cfg.lr)
    loop.confusion = metrics["confusion"]
    return metrics


def _epoch_point(loop: Loop, epoch: int, sums, seconds: float, setup: bool) -> dict:
    metrics = _evaluate(loop, epoch + 1)
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


def _result(loop: Loop) -> TrainResult:
    if not loop.curve:
        raise ConfigError("Nothing was trained: --epochs must be at least 1.")
    final = loop.curve[-1]
    if loop.start_epoch >= loop.cfg.epochs:  # resumed a finished run: evaluate again
        metrics = _evaluate(loop, loop.cfg.epochs)
        final = {**final, **{k: round(metrics[k], 3) for k in ("top1", "top5")}}
        final["test_loss"] = round(metrics["loss"], 5)
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
        extra=step_times(loop),
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
    loop = set_up(model, data, cfg, in_chans, mean, std)
    if resume and checkpoint is not None and checkpoint.is_file():
        load_checkpoint(loop, checkpoint, run_key)
    elif resume:
        logger.info("No checkpoint to resume at %s; starting afresh", checkpoint)
    for epoch in range(loop.start_epoch, cfg.epochs):
        setup = _enter_phase(loop, epoch)
        sums, seconds = _train_epoch(loop, epoch)
        loop.train_time += seconds
        try:
            _check_training_loss(loop, epoch, sums)
            point = _epoch_point(loop, epoch, sums, seconds, setup)
        except DivergedError as e:
            e.curve = loop.curve  # the epochs before it, for the error row
            raise
        loop.curve.append(point)
        if loop.rank == 0:
            logger.info("epoch %d: %s", epoch + 1, point)
        save_checkpoint(loop, checkpoint, run_key, epoch)
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, point)
    return _result(loop)

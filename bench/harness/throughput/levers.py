"""The levers ``--optimize`` pulls in PyTorch beside the runtimes, and how a candidate's model
is made from them.

The candidates, in the order they are tried (``eager_grid``, ``folded``, ``compiled``):

- eager: {NCHW, channels_last} x {fp32, bf16}, and fp16 on CUDA;
- batch norm folded into the convolution before it (inference only, where the model has such
  a pair): the best eager candidate's layout and precision with ``fold_bn``. Folding is exact
  up to rounding, so the candidate is held to the same agreement with eager fp32 as any other;
- compiled (with ``--compile``): the best candidate so far under ``torch.compile``'s default
  mode and, on CUDA, "reduce-overhead" (CUDA graphs) and "max-autotune".

Every builder returns copies of the candidate it is given (``dataclasses.replace``), so that
this module needs nothing from the modules that time them.
"""

from __future__ import annotations

from dataclasses import replace

from bench.harness.throughput.config import TORCH

CUDA_COMPILE_MODES = ("reduce-overhead", "max-autotune")


def eager_grid(asked, device: str) -> list:
    """Eager PyTorch over layout x precision (fp16 only on CUDA), eager fp32 NCHW first."""
    precisions = ("fp32", "bf16", "fp16") if device == "cuda" else ("fp32", "bf16")
    plain = replace(asked, compiled=False, runtime=TORCH, compile_mode=None, fold_bn=False)
    return [
        replace(plain, precision=p, channels_last=cl) for cl in (False, True) for p in precisions
    ]


def folded(best, model) -> list:
    """``best`` with batch norm folded, for inference where ``model`` has a foldable pair."""
    if best is None or best.mode != "infer" or best.fold_bn or not has_conv_bn(model):
        return []
    return [replace(best, fold_bn=True)]


def compiled(best, device: str) -> list:
    """``best`` under torch.compile: its default mode, and on CUDA each of CUDA_COMPILE_MODES."""
    if best is None:
        return []
    modes = (None, *CUDA_COMPILE_MODES) if device == "cuda" else (None,)
    return [replace(best, compiled=True, compile_mode=m) for m in modes]


def compile_model(model, mode: str | None):
    """``torch.compile(model)``, in ``mode`` when one is given."""
    import torch

    return torch.compile(model) if mode is None else torch.compile(model, mode=mode)


def has_conv_bn(model) -> bool:
    """Whether ``model`` has both a convolution and a plain batch norm (a pair may follow)."""
    from torch import nn

    kinds = {type(m) for m in model.modules()}
    convs = {nn.Conv1d, nn.Conv2d, nn.Conv3d}
    norms = {nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d}
    return bool(kinds & convs) and bool(kinds & norms)


def fold_conv_bn(model):
    """A copy of the eval-mode ``model`` in which every batch norm that follows a
    convolution (and is its only user) is folded into the convolution's weights and bias
    (``torch.fx`` tracing, then ``torch.nn.utils.fusion.fuse_conv_bn_eval`` for each pair).
    A model that torch.fx cannot trace raises, and the candidate is recorded as failed."""
    from torch.fx.experimental.optimization import fuse

    if model.training:
        raise ValueError("batch norm is folded for inference only: put the model in eval mode")
    return fuse(model, inplace=False)

"""Depth: weight layers on the longest path from the input to the output.

Every tensor derived from the input carries a depth. An operation passes on the largest
depth of its inputs; a weight layer (a convolution, linear layer or matrix product one of
whose operands does not come from the input, i.e. a weight) adds one. Parallel branches
(shortcut projections, the inside of an Inception module) therefore count once, along
their longest member, and attention's ``q @ k`` (both operands from the input) counts
nothing. The count is taken while the model runs, so any model that runs is measured.
"""

from __future__ import annotations

import weakref

from bench.harness.base import Job, Measurement


def _weight_ops():
    import torch
    import torch.nn.functional as F

    ops = {
        F.conv1d, F.conv2d, F.conv3d,
        F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d,
        F.linear, F.bilinear,
        torch.conv1d, torch.conv2d, torch.conv3d,
        torch.conv_transpose1d, torch.conv_transpose2d, torch.conv_transpose3d,
        torch.matmul, torch.mm, torch.bmm, torch.addmm, torch.baddbmm, torch.einsum,
        torch.Tensor.matmul, torch.Tensor.mm, torch.Tensor.bmm, torch.Tensor.__matmul__,
        torch.Tensor.__rmatmul__,
    }  # fmt: skip
    return ops


def _tensors(obj):
    import torch

    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            yield from _tensors(o)
    elif isinstance(obj, dict):
        for o in obj.values():
            yield from _tensors(o)


class _DepthMap:
    """Tensor -> depth by identity (a tensor's ``==`` is elementwise, so no dict of tensors)."""

    def __init__(self):
        self._d: dict[int, tuple[weakref.ref, int]] = {}

    def get(self, t):
        entry = self._d.get(id(t))
        if entry is not None and entry[0]() is t:
            return entry[1]
        return None

    def set(self, t, value: int) -> None:
        self._d[id(t)] = (weakref.ref(t), value)


def measure_depth(model, example, outer=None) -> int:
    """Weight layers on the longest input-to-output path of ``model(example)``; ``outer``:
    a mode to run the same pass under (``bench.harness.counting`` counts FLOPs with it)."""
    import contextlib

    import torch
    from torch.overrides import TorchFunctionMode

    depth = _DepthMap()
    weight_ops = _weight_ops()

    class DepthMode(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            ins = list(_tensors(args)) + list(_tensors(kwargs))
            seen = [depth.get(t) for t in ins]
            known = [v for v in seen if v is not None]
            if not known:
                return out
            d = max(known)
            if func in weight_ops and any(v is None for v in seen):
                d += 1
            for t in _tensors(out):
                # in-place ops return their input: keep the deeper of the two
                depth.set(t, max(d, depth.get(t) or 0))
            return out

    with torch.no_grad(), outer if outer is not None else contextlib.nullcontext():
        x = example.clone()
        depth.set(x, 0)
        with DepthMode():
            out = model(x)
    found = [v for v in (depth.get(t) for t in _tensors(out)) if v is not None]
    return max(found) if found else 0


class DepthHarness:
    name = "depth"
    counts_only = True  # values never change what is counted: build without initialisers

    def measure(self, job: Job) -> list[Measurement]:
        from bench.harness.counting import eager_counts

        d = eager_counts(job)["depth"]
        return [Measurement(config={"img_size": job.input_size[1]}, metrics={"depth": d})]

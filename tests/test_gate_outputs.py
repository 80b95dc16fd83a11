"""The accuracy gate scores only finite outputs: NaN or inf logits are the candidate's error,
never a top-1 (bench.harness.throughput.gate.top1)."""

from __future__ import annotations

import pytest

from bench.errors import NotFiniteError
from bench.harness.throughput.gate import GateData, top1


def _data():
    import torch

    return GateData("tiny", torch.zeros(2, 1, 4, 4), torch.zeros(5, 1, 4, 4),
                    torch.tensor([0, 1, 0, 1, 0]), "tiny")  # fmt: skip


def _predict(nan: bool):
    import numpy as np

    def predict(xb):
        out = np.tile(np.array([[2.0, 1.0]], dtype=np.float32), (len(xb), 1))  # always class 0
        if nan:
            out[1, 1] = np.nan
        return out

    return predict


def test_finite_outputs_are_scored():
    assert top1(_predict(False), _data(), 4) == 60.0  # three of five are class 0


def test_non_finite_outputs_are_an_error():
    with pytest.raises(NotFiniteError, match="the gate's outputs are not finite"):
        top1(_predict(True), _data(), 4)

"""When a fine-tune is not a result: it diverged, or it ended at chance.

Either way the harness raises ``DivergedError``, so that the record is an error row whose one
line says what happened, where and at what learning rate, and what to change; never an ok
row with a top-1.

- **Diverged**: the training loss turned NaN or infinite during an epoch (the loop keeps its
  sums on the device, so this is seen once the epoch ends: the epoch, the first such step and
  that step's learning rate are named), or the held-out loss did after an epoch (the model's
  outputs are not finite). The training stops there; the last checkpoint is the previous
  epoch's.
- **At chance**: after the last epoch, held-out top-1 is not above guessing by more than the
  binomial margin of the held-out split's size. Guessing is the best constant answer, the
  largest class's share of the held-out images (1 / classes on a balanced split: 10 % for
  ten digits); the margin is ``Z95`` standard errors of that share on ``n`` images
  (``bench.stats.binomial_half_width``: 1.9 points on 1,000 images, 3.1 on 360), so a model
  that only guesses passes it about 2.5 % of the time. A run whose every held-out image gets
  the same prediction (it collapsed to one class) is at chance whatever its top-1.

Pure Python; no torch.
"""

from __future__ import annotations

import math

from bench.errors import DivergedError
from bench.stats import binomial_half_width

CURE = "lower --lr (or give the model's card a [finetune] lr)"


def _number(x: float) -> str:
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def _lr_text(peak: float, lr: float | None) -> str:
    if lr is None or math.isclose(lr, peak):
        return f"lr {peak:g}"
    return f"lr {lr:.3g} then, peak --lr {peak:g}"


def check_training_loss(
    loss_sum: float,
    epoch: int,
    bad_step: int | None,
    steps: int,
    lrs: list[float],
    peak_lr: float,
) -> None:
    """Raise ``DivergedError`` when an epoch's summed training loss is not finite. ``epoch``
    counts from 1; ``bad_step`` is this process's first step (from 0) whose loss was not
    finite (None when another process saw it), ``lrs`` each step's learning rate."""
    if math.isfinite(loss_sum):
        return
    where = f"epoch {epoch}"
    lr = None
    if bad_step is not None:
        where += f", step {bad_step + 1} of {steps}"
        lr = lrs[bad_step] if bad_step < len(lrs) else None
    raise DivergedError(
        f"training loss {_number(loss_sum)} at {where} ({_lr_text(peak_lr, lr)}); "
        f"{CURE}, e.g. --lr {peak_lr / 10:g}"
    )


def check_test_loss(loss: float, epoch: int, peak_lr: float) -> None:
    """Raise ``DivergedError`` when the held-out loss after ``epoch`` (from 1) is not finite:
    the model's outputs are NaN or infinite."""
    if math.isfinite(loss):
        return
    raise DivergedError(
        f"held-out loss {_number(loss)} after epoch {epoch} (lr {peak_lr:g}): the "
        f"model's outputs are not finite; {CURE}, e.g. --lr {peak_lr / 10:g}"
    )


def chance_reason(top1: float, confusion: list[list[int]]) -> str | None:
    """Why a top-1 (percent) with its held-out confusion matrix (rows: true class, columns:
    the top-1 prediction) is at chance, in words; None when it learnt something."""
    n = sum(map(sum, confusion))
    classes = len(confusion)
    if n <= 0 or classes < 2:
        return None
    guess = max(map(sum, confusion)) / n
    predicted = [c for c in range(classes) if any(row[c] for row in confusion)]
    if len(predicted) == 1 and sum(1 for row in confusion if sum(row)) > 1:
        return f"every one of the {n:,} held-out images is predicted as class {predicted[0]}"
    margin = binomial_half_width(guess, n)
    if top1 / 100 > guess + margin:
        return None
    return (
        f"top-1 {top1:.1f}% on {n:,} held-out images is not above guessing ({100 * guess:.1f}%)"
        f" by more than {100 * margin:.1f} points"
    )


def check_learnt(top1: float, confusion: list[list[int]] | None, epochs: int, lr: float) -> None:
    """Raise ``DivergedError`` when a finished training ended at chance (``chance_reason``)."""
    reason = chance_reason(top1, confusion) if confusion else None
    if reason is None:
        return
    raise DivergedError(
        f"ended at chance after {epochs} epoch{'s' * (epochs != 1)} (lr {lr:g}): {reason}; "
        f"{CURE}, train longer, "
        "or check the data"
    )

"""When a fine-tune is not a result (bench.harness.finetune.divergence): at chance, both ways,
and the one-line messages of a diverged training."""

from __future__ import annotations

import pytest

from bench.errors import DivergedError
from bench.harness.finetune.divergence import (
    chance_reason,
    check_learnt,
    check_test_loss,
    check_training_loss,
)


def _confusion(hits: list[int], per_class: int = 100) -> list[list[int]]:
    """Ten classes of ``per_class`` images; class c gets hits[c] right, the rest as c+1."""
    m = [[0] * len(hits) for _ in hits]
    for c, h in enumerate(hits):
        m[c][c] = h
        m[c][(c + 1) % len(hits)] = per_class - h
    return m


def test_at_chance_is_guessing_within_the_binomial_margin():
    # 1,000 balanced images: guessing is 10 %, the margin 1.96 * sqrt(0.1 * 0.9 / 1000) = 1.9
    at = _confusion([11] * 10)  # 11.0 %
    assert "not above guessing (10.0%) by more than 1.9 points" in chance_reason(11.0, at)
    learnt = _confusion([13] * 10)  # 13.0 %: beyond the margin
    assert chance_reason(13.0, learnt) is None
    assert chance_reason(97.0, _confusion([97] * 10)) is None


def test_guessing_is_the_largest_class_on_an_unbalanced_split():
    # 800 of one class, 100 of two others: always answering the first scores 80 %
    m = [[800, 0, 0], [90, 10, 0], [90, 0, 10]]
    assert "guessing (80.0%)" in chance_reason(82.0, m)
    better = [[790, 5, 5], [5, 90, 5], [5, 5, 90]]
    assert chance_reason(97.0, better) is None


def test_a_collapse_to_one_class_is_at_chance():
    m = [[0] * 10 for _ in range(10)]
    for row in m:
        row[7] = 36
    assert chance_reason(10.0, m) == "every one of the 360 held-out images is predicted as class 7"


def test_check_learnt_raises_one_line_that_says_what_to_do():
    with pytest.raises(DivergedError) as e:
        check_learnt(10.0, _confusion([10] * 10), 3, 0.01)
    text = str(e.value)
    assert text.startswith("ended at chance after 3 epochs (lr 0.01): top-1 10.0% on 1,000")
    assert "lower --lr" in text
    assert "\n" not in text
    check_learnt(97.0, _confusion([97] * 10), 3, 0.01)  # quiet


def test_training_and_held_out_losses_both_ways():
    check_training_loss(2.3 * 64, 1, None, 63, [0.01] * 63, 0.01)  # finite: quiet
    check_test_loss(0.1, 1, 0.01)
    with pytest.raises(
        DivergedError,
        match=r"^training loss inf at epoch 2, step 31 of 63 "
        r"\(lr 0.0087 then, peak --lr 0.01\); lower --lr .*e\.g\. --lr 0\.001$",
    ):
        check_training_loss(float("inf"), 2, 30, 63, [0.0087] * 63, 0.01)
    with pytest.raises(DivergedError, match=r"^training loss nan at epoch 2 \(lr 0.01\)"):
        check_training_loss(float("nan"), 2, None, 63, [], 0.01)  # another rank saw the step
    with pytest.raises(DivergedError, match="held-out loss nan after epoch 4"):
        check_test_loss(float("nan"), 4, 0.01)

"""The accuracy intervals of bench.stats: one top-1 on n images, and the mean over seeds."""

from __future__ import annotations

import pytest

from bench.stats import binomial_half_width, mean_interval


def test_binomial_half_width_of_one_top1():
    # 97.1 % on 1,000 images: 1.96 * sqrt(0.971 * 0.029 / 1000) = 0.0104
    assert binomial_half_width(0.971, 1000) == pytest.approx(0.0104, abs=1e-4)
    # four times the images, half the width
    assert binomial_half_width(0.5, 4000) == pytest.approx(binomial_half_width(0.5, 1000) / 2)
    assert binomial_half_width(1.0, 1000) == 0.0
    with pytest.raises(ValueError, match="n must be positive"):
        binomial_half_width(0.5, 0)


def test_mean_interval_over_seeds():
    mean, half = mean_interval([97.0, 97.4, 97.2])
    assert mean == pytest.approx(97.2)
    # t(0.975, 2) = 4.303; standard error 0.2 / sqrt(3)
    assert half == pytest.approx(4.303 * 0.2 / 3**0.5, rel=1e-3)
    _, two = mean_interval([97.0, 97.4])
    assert two > half  # two seeds say less than three
    assert mean_interval([97.0, 97.0, 97.0]) == (97.0, 0.0)
    with pytest.raises(ValueError, match="two or more"):
        mean_interval([97.0])

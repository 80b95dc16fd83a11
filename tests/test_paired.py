"""Paired accuracy statistics (bench.paired), against values worked out by hand and published
ones (Fagerland, Lydersen and Laake, "Statistical Analysis of Contingency Tables", 2017: the
Cavo et al. 2012 table, 59 / 6 / 16 / 80)."""

from __future__ import annotations

import pytest

from bench.paired import (
    PairedCounts,
    mcnemar_exact_p,
    newcombe_interval,
    wilson_interval,
    z_of,
)


def test_counts_of_two_outcome_lists_image_by_image():
    t = PairedCounts.of([1, 1, 0, 0, 1, 1], [1, 0, 1, 0, 0, 1])
    assert (t.both, t.first_only, t.second_only, t.neither) == (2, 2, 1, 1)
    assert (t.n, t.first_right, t.second_right) == (6, 4, 3)
    assert t.difference == pytest.approx(1 / 6)
    with pytest.raises(ValueError, match="not paired"):
        PairedCounts.of([1, 0], [1])
    with pytest.raises(ValueError, match="whole numbers"):
        PairedCounts(1, -1, 0, 0)


def test_mcnemar_exact_p_by_hand():
    # 1 against 7: 2 * (C(8,0) + C(8,1)) / 2^8 = 2 * 9 / 256
    assert mcnemar_exact_p(1, 7) == 18 / 256
    assert mcnemar_exact_p(7, 1) == 18 / 256  # two-sided: the order does not matter
    # 2 against 0: 2 * C(2,0) / 4
    assert mcnemar_exact_p(2, 0) == 0.5
    # 3 against 3: 2 * (1 + 6 + 15 + 20) / 64 = 84/64, capped at 1
    assert mcnemar_exact_p(3, 3) == 1.0
    assert mcnemar_exact_p(0, 0) == 1.0  # no discordant image: no evidence of a difference
    # 0 against 10: 2 / 1024, far below 0.05
    assert mcnemar_exact_p(0, 10) == 2 / 1024


def test_mcnemar_exact_p_matches_the_published_example():
    assert mcnemar_exact_p(6, 16) == pytest.approx(0.052479, abs=5e-7)


def test_wilson_interval_by_hand():
    # 8 of 10, z = 1.959964: centre (0.8 + z^2/20) / (1 + z^2/10) = 0.99207 / 1.38415 = 0.71674,
    # half z * sqrt(0.016 + z^2/400) / 1.38415 = 1.959964 * 0.15932 / 1.38415 = 0.22558
    assert z_of(0.95) == pytest.approx(1.959964, abs=1e-6)
    low, high = wilson_interval(8, 10)
    assert (low, high) == (pytest.approx(0.49016, abs=1e-5), pytest.approx(0.94332, abs=1e-5))
    assert wilson_interval(0, 10)[0] == pytest.approx(0.0, abs=1e-12)
    assert wilson_interval(10, 10) == (pytest.approx(10 / (10 + 1.959964**2)), 1.0)


def test_newcombe_interval_by_hand():
    """6 right by both, 2 by the first only, none by the second only, 2 by neither (n = 10):
    p1 = 0.8 (Wilson 0.49016 to 0.94332), p2 = 0.6 (Wilson 0.31267 to 0.83182);
    phi = (6 * 2 - 0 - 10/2) / sqrt(8 * 2 * 6 * 4) = 7 / 19.5959 = 0.35722;
    low = 0.2 - sqrt(0.30984^2 + 0.23182^2 - 2 * 0.35722 * 0.30984 * 0.23182) = 0.2 - 0.31373,
    high = 0.2 + sqrt(0.14332^2 + 0.28733^2 - 2 * 0.35722 * 0.14332 * 0.28733) = 0.2 + 0.27143."""
    low, high = newcombe_interval(PairedCounts(6, 2, 0, 2))
    assert low == pytest.approx(-0.11373, abs=1e-4)
    assert high == pytest.approx(0.47143, abs=1e-4)


def test_newcombe_interval_matches_the_published_example():
    t = PairedCounts(59, 6, 16, 80)
    assert t.difference == pytest.approx(-0.0621, abs=5e-5)
    low, high = newcombe_interval(t)
    assert low == pytest.approx(-0.1186, abs=5e-5)
    assert high == pytest.approx(-0.0046, abs=5e-5)


def test_newcombe_interval_narrows_with_images_and_stays_in_bounds():
    """No discordant image still leaves an interval, narrower with more images; a difference
    seen on many images excludes zero; the bounds never leave [-1, 1]."""
    small, large = PairedCounts(90, 0, 0, 10), PairedCounts(9000, 0, 0, 1000)
    s, g = newcombe_interval(small), newcombe_interval(large)
    assert s[0] < 0 < s[1]
    assert g[0] < 0 < g[1]
    assert g[1] - g[0] < (s[1] - s[0]) / 5
    lo, hi = newcombe_interval(PairedCounts(9000, 150, 100, 750))  # a 0.5-point drop
    assert 0 < lo < 0.005 < hi
    # all 10 right by the first, none by the second: phi is 0 (empty margins), Wilson's
    # bounds of 10/10 and 0/10 are 10/(10 + z^2) = 0.72249 and 0.27751 from each end:
    # low = 1 - sqrt(2) * 0.27751 = 0.60754
    assert newcombe_interval(PairedCounts(0, 10, 0, 0)) == (pytest.approx(0.60754, abs=1e-4), 1.0)
    assert newcombe_interval(PairedCounts(0, 0, 0, 0)) == (-1.0, 1.0)

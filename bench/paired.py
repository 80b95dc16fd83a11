"""Two classifiers scored on the same images: how far apart their accuracies are, and how sure
that is. Pure functions of counts (no numpy, no torch), below every layer that judges
accuracy (the throughput harness's accuracy gate, ``bench.harness.throughput.gate``).

The images fall in a paired 2x2 table (``PairedCounts``): right by both, by the first only, by
the second only, by neither. Only the two middle cells, the images the classifiers disagree on
(the *discordant* pairs), say anything about the difference; the images both get right or both
get wrong are the same for both.

- ``mcnemar_exact_p``: McNemar's exact test, two-sided: under "no difference" each discordant
  image is the first's or the second's with probability 1/2, so the smaller middle cell is a
  binomial draw of n = first_only + second_only trials at p = 1/2; p is twice its lower tail
  (at most 1). Computed exactly with whole numbers.
- ``newcombe_interval``: a confidence interval of the difference of accuracies (first minus
  second): Newcombe's square-and-add interval for paired proportions (R. G. Newcombe, Statistics
  in Medicine 17, 1998, method 10; as given by Fagerland, Lydersen and Laake, Statistics in
  Medicine 33, 2014): each accuracy's Wilson score interval, combined with the estimated
  correlation of the two accuracies (``phi``, with Newcombe's continuity correction). Closed
  form, never outside [-1, 1], and it stays honest with no discordant images (its width then
  still reflects how many images there were).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from statistics import NormalDist

CONFIDENCE = 0.95


@dataclass(frozen=True)
class PairedCounts:
    """The paired 2x2 table of two classifiers on the same images."""

    both: int  # right by both
    first_only: int  # right by the first, wrong by the second
    second_only: int  # wrong by the first, right by the second
    neither: int  # wrong by both

    def __post_init__(self):
        cells = (self.both, self.first_only, self.second_only, self.neither)
        if any(int(c) != c or c < 0 for c in cells):
            raise ValueError(f"paired counts must be whole numbers >= 0, got {cells}")

    @classmethod
    def of(cls, first: Iterable[bool], second: Iterable[bool]) -> PairedCounts:
        """The table of two equally long sequences of right (True) or wrong, image by image."""
        first, second = [bool(x) for x in first], [bool(x) for x in second]
        if len(first) != len(second):
            raise ValueError(f"{len(first)} outcomes against {len(second)}: not paired")
        cells = [0, 0, 0, 0]
        for a, b in zip(first, second, strict=True):
            cells[(0 if a else 2) + (0 if b else 1)] += 1
        both, first_only, second_only, neither = cells
        return cls(both, first_only, second_only, neither)

    @property
    def n(self) -> int:
        return self.both + self.first_only + self.second_only + self.neither

    @property
    def first_right(self) -> int:
        return self.both + self.first_only

    @property
    def second_right(self) -> int:
        return self.both + self.second_only

    @property
    def difference(self) -> float:
        """The first's accuracy minus the second's, as a fraction (0 without images)."""
        return (self.first_only - self.second_only) / self.n if self.n else 0.0


def mcnemar_exact_p(first_only: int, second_only: int) -> float:
    """McNemar's exact two-sided p-value of the discordant counts (1.0 when there are none)."""
    n = first_only + second_only
    k = min(first_only, second_only)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(k + 1))
    return min(1.0, 2 * tail / 2**n)  # whole numbers: exact until the last division


def z_of(confidence: float) -> float:
    """The two-sided standard normal quantile of ``confidence`` (1.96 for 0.95)."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson_interval(right: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``right``/``n``."""
    if n <= 0:
        return 0.0, 1.0
    z = z_of(confidence)
    p = right / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _phi(t: PairedCounts) -> float:
    """The correlation of the two accuracies, with Newcombe's continuity correction: the
    product difference both*neither - first_only*second_only less n/2 when over n/2, 0 from 0
    to n/2, as it is when negative; 0 when a margin is empty."""
    margins = (t.first_right, t.n - t.first_right, t.second_right, t.n - t.second_right)
    if 0 in margins:
        return 0.0
    product = t.both * t.neither - t.first_only * t.second_only
    if product > t.n / 2:
        product -= t.n / 2
    elif product >= 0:
        product = 0
    return product / math.sqrt(math.prod(margins))


def newcombe_interval(t: PairedCounts, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The interval of the first's accuracy minus the second's (fractions; see the module's
    text). Without images: (-1, 1)."""
    if t.n == 0:
        return -1.0, 1.0
    p1, p2 = t.first_right / t.n, t.second_right / t.n
    l1, u1 = wilson_interval(t.first_right, t.n, confidence)
    l2, u2 = wilson_interval(t.second_right, t.n, confidence)
    phi = _phi(t)
    low = math.sqrt(max(0.0, (p1 - l1) ** 2 + (u2 - p2) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2)))
    high = math.sqrt(max(0.0, (u1 - p1) ** 2 + (p2 - l2) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2)))
    d = p1 - p2
    return max(-1.0, d - low), min(1.0, d + high)

"""Whether a speed changed: tests on the raw samples that records carry, and the spread rule
for records without them. Pure functions of record metrics, below every layer that judges a
change (``bench.compare`` and the reports' trends).

A throughput or training record keeps its per-step times (``metrics["step_times_ms"]``) and,
when it was measured with ``run --repeats N``, the samples/s of each round
(``metrics["rounds_samples_per_sec"]``). Two records are judged on

- the rounds, when both records have two or more: rounds are measured minutes apart, in an
  interleaved order, so their spread holds the drift between runs that one run's steps miss;
- else the step times, and the verdict then rests on the noise within one run only.

The test is Mann-Whitney U (two-sided, on the samples themselves: no normality assumed, and
one slow step moves it no more than any other step), and the size of the change is a
bootstrap interval of the ratio of medians, new speed over base speed (for step times, base
median over new median, since a speed is samples over step time). The resampling is seeded,
so the same records always give the same interval. scipy and numpy are imported where used.

Records without samples fall back on the spread rule (``spread_of``): the step times' IQR over
their median, two records' spreads added in quadrature (``combined_spread``).

Accuracy has its own two intervals, both at 95 %: ``binomial_half_width`` for one top-1 on
``n`` scored images (the normal approximation: 1.96 standard errors of a proportion), and
``mean_interval`` for the mean of several seeds' top-1s (Student's t on their spread).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

ROUNDS = "rounds_samples_per_sec"
STEPS = "step_times_ms"
SAMPLE_KEYS = (ROUNDS, STEPS)
MIN_STEPS = 5  # fewer step times than this in either record: no test, the spread rule instead
RESAMPLES = 4000
SEED = 0


@dataclass(frozen=True)
class SpeedTest:
    """A test of two records' speeds on their samples.

    ``ratio``, ``low`` and ``high``: new speed over base speed (1.02 is 2% faster), the
    point estimate and the ``confidence`` bootstrap interval. ``p``: Mann-Whitney U's
    two-sided p-value. ``unit``: 'rounds' or 'steps', with ``n_base``/``n_new`` of them.
    """

    unit: str
    n_base: int
    n_new: int
    p: float
    ratio: float
    low: float
    high: float
    confidence: float

    @property
    def within_run_only(self) -> bool:
        """Judged on step times: the verdict rests on the noise within one run only."""
        return self.unit == "steps"

    def significant(self, alpha: float) -> bool:
        return self.p < alpha

    def text(self) -> str:
        """'p=0.0012; -3.0% [-3.3%, -2.7%] over 200/200 steps'."""
        pct = 100 * (self.ratio - 1)
        lo, hi = 100 * (self.low - 1), 100 * (self.high - 1)
        return (
            f"p={self.p:.2g}; {pct:+.1f}% [{lo:+.1f}%, {hi:+.1f}%] over "
            f"{self.n_base}/{self.n_new} {self.unit}"
        )


def samples_of(metrics: dict) -> dict[str, list[float]]:
    """The sample lists a record's metrics carry (finite numbers only)."""
    out = {}
    for key in SAMPLE_KEYS:
        values = metrics.get(key)
        if isinstance(values, list):
            numbers = [float(v) for v in values if isinstance(v, (int, float)) and v == v]
            if numbers:
                out[key] = numbers
    return out


def _bootstrap_ratio(base, new, confidence: float, invert: bool) -> tuple[float, float]:
    """The percentile interval of median(new)/median(base) (inverted for step times)."""
    import numpy as np

    rng = np.random.default_rng(SEED)
    b = np.median(base[rng.integers(0, len(base), (RESAMPLES, len(base)))], axis=1)
    n = np.median(new[rng.integers(0, len(new), (RESAMPLES, len(new)))], axis=1)
    ratios = b / n if invert else n / b
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(ratios, [tail, 100 - tail])
    return float(low), float(high)


def speed_test(base: dict, new: dict, confidence: float = 0.95) -> SpeedTest | None:
    """Test two records' samples (``samples_of`` of each); None when they lack them."""
    import numpy as np
    from scipy.stats import mannwhitneyu

    rounds = [s.get(ROUNDS, []) for s in (base, new)]
    steps = [s.get(STEPS, []) for s in (base, new)]
    if min(map(len, rounds)) >= 2:
        unit, (b, n), invert = "rounds", rounds, False  # samples/s: higher is faster
    elif min(map(len, steps)) >= MIN_STEPS:
        unit, (b, n), invert = "steps", steps, True  # step times: lower is faster
    else:
        return None
    b, n = np.asarray(b, dtype=float), np.asarray(n, dtype=float)
    p = float(mannwhitneyu(b, n, alternative="two-sided").pvalue)
    mb, mn = float(np.median(b)), float(np.median(n))
    ratio = mb / mn if invert else mn / mb
    low, high = _bootstrap_ratio(b, n, confidence, invert)
    return SpeedTest(unit, len(b), len(n), p, ratio, low, high, confidence)


def _number(metrics: dict, key: str) -> float | None:
    v = metrics.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v != v:
        return None
    return float(v)


def spread_of(metrics: dict) -> float:
    """The relative spread of a record's step times, as a fraction (0 when it has none): the
    fall-back rule for records that carry no samples (``speed_test`` tests those that do).

    IQR over median when the record has them: throughput is samples over step time, so a
    relative spread of the step time is, to first order, the same relative spread of
    samples/s. The IQR is used rather than the standard deviation because one slow step
    (a page fault, a clock change) inflates the standard deviation of a handful of rounds
    and would hide a real regression; stddev over mean is the fall-back.
    """
    median, iqr = _number(metrics, "median"), _number(metrics, "iqr")
    if median is not None and median > 0 and iqr is not None:
        return iqr / median
    mean, stddev = _number(metrics, "mean"), _number(metrics, "stddev")
    if mean is not None and mean > 0 and stddev is not None:
        return stddev / mean
    return (_number(metrics, "cv_pct") or 0.0) / 100.0


def combined_spread(base: dict, new: dict) -> float:
    """Two records' spreads (``spread_of`` their metrics) added in quadrature, as a fraction.

    The two runs' noise is independent, so the spread of their ratio is the root of the
    sum of squares; adding the spreads would assume they always err together and would
    hide regressions. Either way the floors hold: 1% against 1% gives 1.4%, far under a
    20% drop; 40% against 1% gives 40%, over it.
    """
    return math.hypot(spread_of(base), spread_of(new))


Z95 = 1.959963984540054  # the two-sided 95 % quantile of the normal distribution


def binomial_half_width(share: float, n: int, z: float = Z95) -> float:
    """The half-width of the normal-approximation interval of a proportion ``share`` (0..1)
    measured on ``n`` independent trials: ``z * sqrt(share * (1 - share) / n)``, as a share.

    One seed's top-1 on ``n`` held-out images moves by about this much from one draw of
    images to another (at 97 % on 1,000 images: 0.011, 1.1 points). It is 0 at a share of
    0 or 1, where the approximation says nothing; ``n`` must be positive."""
    if n <= 0:
        raise ValueError(f"binomial_half_width: n must be positive, got {n}")
    share = min(1.0, max(0.0, float(share)))
    return z * math.sqrt(share * (1.0 - share) / n)


def mean_interval(values: list[float], confidence: float = 0.95) -> tuple[float, float]:
    """(mean, half-width) of the ``confidence`` interval of the mean of ``values`` (two or
    more, e.g. several seeds' top-1s): Student's t with ``len(values) - 1`` degrees of
    freedom times the standard error. Two seeds give a wide interval (t = 12.7): that is
    what two seeds can say."""
    from scipy.stats import t

    if len(values) < 2:
        raise ValueError("mean_interval needs two or more values")
    mean = statistics.fmean(values)
    se = statistics.stdev(values) / math.sqrt(len(values))
    return mean, float(t.ppf((1 + confidence) / 2, len(values) - 1)) * se

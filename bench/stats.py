"""Whether a timing changed: tests on the raw samples that records carry, and the spread rule
for records without them. Pure functions of record metrics, below every layer that judges a
change (``bench.compare`` and the reports' trends).

A throughput or training record keeps its per-step times (``metrics["step_times_ms"]``, in the
order they ran) and, when it was measured with ``run --repeats N``, the samples/s of each
round (``metrics["rounds_samples_per_sec"]``).

A speed (``speed_test``) is judged on

- the rounds, when both records have two or more: rounds are measured minutes apart, in an
  interleaved order, so their spread holds the drift between runs that one run's steps miss.
  Below ``RANK_ROUNDS`` rounds a side, a t-test on the logs of the rounds' samples/s
  (Student's when both sides have as many rounds, Welch's otherwise), whose interval is the
  ratio of geometric means: a rank test cannot reach 0.05 there (its smallest two-sided p is
  0.33 with two rounds a side, 0.10 with three). From ``RANK_ROUNDS`` on, Mann-Whitney U with
  a bootstrap interval of the ratio of medians (one slow round moves it no more than another);
- else the median step time (``block_test``), and the verdict then rests on the noise within
  one run only.

A step-time statistic (``step_test``: the median, mean, p90, p99, max, min, IQR...) is judged
on the step times by a block bootstrap of that statistic: the steps are cut into contiguous
blocks (at most ``MAX_BLOCKS``; each ``BLOCK_TAU`` times as long as the steps' autocorrelation
time, read from their lag-1 correlation, and at least ``MIN_BLOCK`` steps), blocks are drawn
with replacement, and the spread of the statistic over the draws is its standard error; the
two sides' log ratio is then read against Student's t with the Welch-Satterthwaite degrees of
freedom of the blocks. Steps that drift together are thus never counted as independent
samples, and a tail is judged on its own quantile, not on the median.

Every interval is new over base: for a speed, new speed over base speed (1.02 is 2% faster);
for a step statistic, new value over base value. The resampling is seeded, so the same records
always give the same answer. scipy and numpy are imported where used. ``holm`` adjusts the
p-values of a table's tests for their number.

Records without samples fall back on the spread rule (``spread_of``): the step times' IQR over
their median, two records' spreads added in quadrature (``combined_spread``).

``untrusted`` says why one record's timing is too short or unsettled to trust (the rule the
reports, ``bench compare`` and ``--optimize`` share: ``UNTRUSTED_RULE``).

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
MIN_STEPS = 10  # fewer step times than this in either record: no test on steps
RANK_ROUNDS = 8  # from this many rounds a side, Mann-Whitney U; below, a t-test on log speeds
RESAMPLES = 2000
SEED = 0
MAX_BLOCKS = 10  # step times are cut into at most this many contiguous blocks
MIN_BLOCK = 5  # steps in a block, at least
BLOCK_TAU = 5  # a block spans at least this many autocorrelation times of the steps
# The step-time statistics a block bootstrap judges (the record's metrics of the same names).
STEP_STATISTICS = ("min", "max", "mean", "median", "p90", "p99", "stddev", "iqr", "cv_pct")
# How a timing change is judged unless asked otherwise (compare's and ab's --alpha and
# --confidence, bench.compare(...), compare.Options): defined here once.
ALPHA = 0.05  # significance level of a test on samples, after Holm's correction
CONFIDENCE = 0.95  # level of the interval of a change


@dataclass(frozen=True)
class SpeedTest:
    """A test of two records' timings on their samples.

    ``ratio``, ``low`` and ``high``: new over base, the point estimate and the ``confidence``
    interval; of the speed when ``of_speed`` (1.02 is 2% faster), else of the step-time
    statistic itself. ``p``: the two-sided p-value of ``method``. ``unit``: 'rounds' or
    'steps', with ``n_base``/``n_new`` of them; ``within_run_only``: a record had one round.
    """

    unit: str
    n_base: int
    n_new: int
    p: float
    ratio: float
    low: float
    high: float
    confidence: float
    method: str = "Mann-Whitney U"
    of_speed: bool = True
    within_run_only: bool = False

    def significant(self, alpha: float) -> bool:
        return self.p < alpha

    def text(self, p_adjusted: float | None = None) -> str:
        """'t-test on log rounds: p=0.0012 (Holm 0.0036); -3.0% [-3.3%, -2.7%] over 3/3
        rounds'."""
        pct = 100 * (self.ratio - 1)
        lo, hi = 100 * (self.low - 1), 100 * (self.high - 1)
        holm = f" (Holm {p_adjusted:.2g})" if p_adjusted is not None else ""
        return (
            f"{self.method}: p={self.p:.2g}{holm}; {pct:+.1f}% [{lo:+.1f}%, {hi:+.1f}%] over "
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


def _statistic(name: str):
    """The step-time statistic ``name`` over the last axis of an array."""
    import numpy as np

    def quantile(q):
        return lambda x: np.percentile(x, q, axis=-1)

    return {
        "min": lambda x: np.min(x, axis=-1),
        "max": lambda x: np.max(x, axis=-1),
        "mean": lambda x: np.mean(x, axis=-1),
        "median": quantile(50),
        "p90": quantile(90),
        "p99": quantile(99),
        "stddev": lambda x: np.std(x, axis=-1),
        "iqr": lambda x: np.subtract(*np.percentile(x, [75, 25], axis=-1)),
        "cv_pct": lambda x: 100 * np.std(x, axis=-1) / np.mean(x, axis=-1),
    }[name]


def _t_interval(d: float, se: float, df: float, confidence: float) -> tuple[float, float, float]:
    """Two-sided p of a log ratio ``d`` with standard error ``se``, and its interval (logs)."""
    from scipy.stats import t

    if se == 0 or not math.isfinite(df):
        return (0.0 if d else 1.0), d, d
    half = float(t.ppf(0.5 + confidence / 2, df)) * se
    return float(2 * t.sf(abs(d) / se, df)), d - half, d + half


def log_t_test(base, new, confidence: float) -> tuple[float, float, float, float, str]:
    """(p, ratio, low, high, method): a t-test on the logs of two sets of speeds (two or more
    each); the ratio is that of their geometric means, new over base."""
    import numpy as np

    lb, ln = np.log(np.asarray(base, dtype=float)), np.log(np.asarray(new, dtype=float))
    n1, n2 = len(lb), len(ln)
    d = float(ln.mean() - lb.mean())
    v1, v2 = float(lb.var(ddof=1)), float(ln.var(ddof=1))
    if n1 == n2:  # with two rounds a side Welch's df can fall to 1: Student's holds its level
        pooled = ((n1 - 1) * v1 + (n2 - 1) * v2) / (n1 + n2 - 2)
        se, df, method = math.sqrt(pooled * (1 / n1 + 1 / n2)), n1 + n2 - 2, "t-test"
    else:
        a, b = v1 / n1, v2 / n2
        se, method = math.sqrt(a + b), "Welch t"
        df = (a + b) ** 2 / (a * a / (n1 - 1) + b * b / (n2 - 1)) if a + b else math.inf
    p, low, high = _t_interval(d, se, df, confidence)
    return p, math.exp(d), math.exp(low), math.exp(high), f"{method} on log rounds"


def rank_test(base, new, confidence: float) -> tuple[float, float, float, float, str]:
    """(p, ratio, low, high, method): Mann-Whitney U, and the percentile bootstrap interval of
    the ratio of medians, new over base."""
    import numpy as np
    from scipy.stats import mannwhitneyu

    b, n = np.asarray(base, dtype=float), np.asarray(new, dtype=float)
    p = float(mannwhitneyu(b, n, alternative="two-sided").pvalue)
    rng = np.random.default_rng(SEED)
    mb = np.median(b[rng.integers(0, len(b), (RESAMPLES, len(b)))], axis=1)
    mn = np.median(n[rng.integers(0, len(n), (RESAMPLES, len(n)))], axis=1)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(mn / mb, [tail, 100 - tail])
    ratio = float(np.median(n) / np.median(b))
    return p, ratio, float(low), float(high), "Mann-Whitney U"


def blocks_for(steps) -> int:
    """How many contiguous blocks a step series is cut into: each at least ``BLOCK_TAU``
    autocorrelation times long (AR(1): (1 + r) / (1 - r) from the lag-1 correlation r) and
    ``MIN_BLOCK`` steps, between 2 and ``MAX_BLOCKS`` blocks."""
    import numpy as np

    x = np.asarray(steps, dtype=float)
    c = x - x.mean()
    energy = float(np.dot(c, c))
    r = float(np.dot(c[:-1], c[1:])) / energy if energy > 0 else 0.0
    r = min(max(r, 0.0), 0.95)
    size = max(MIN_BLOCK, math.ceil(BLOCK_TAU * (1 + r) / (1 - r)))
    return max(2, min(MAX_BLOCKS, len(x) // size))


def _log_se(steps, statistic, rng) -> tuple[float, int]:
    """The block bootstrap's standard error of log ``statistic`` of ``steps``, and the
    number of blocks (NaN when a draw's statistic is not positive)."""
    import numpy as np

    k = blocks_for(steps)
    size = len(steps) // k
    blocks = np.asarray(steps, dtype=float)[: k * size].reshape(k, size)
    draws = statistic(blocks[rng.integers(0, k, (RESAMPLES, k))].reshape(RESAMPLES, k * size))
    if not np.all(draws > 0):
        return math.nan, k
    # k / (k - 1): the bootstrap's variance of a mean of k blocks is short by that factor
    return math.sqrt(float(np.log(draws).var(ddof=1)) * k / (k - 1)), k


def block_test(base, new, statistic: str, confidence: float):
    """(p, ratio, low, high, method) of ``statistic`` of two step series, new over base; None
    when the statistic is not positive on either side (no log ratio)."""
    import numpy as np

    stat = _statistic(statistic)
    b, n = np.asarray(base, dtype=float), np.asarray(new, dtype=float)
    sb, sn = float(stat(b)), float(stat(n))
    if not (sb > 0 and sn > 0):
        return None
    rng = np.random.default_rng(SEED)
    (se_b, kb), (se_n, kn) = _log_se(b, stat, rng), _log_se(n, stat, rng)
    if math.isnan(se_b) or math.isnan(se_n):
        return None
    a, c = se_b**2, se_n**2
    df = (a + c) ** 2 / (a * a / (kb - 1) + c * c / (kn - 1)) if a + c else math.inf
    d = math.log(sn / sb)
    p, low, high = _t_interval(d, math.sqrt(a + c), df, confidence)
    method = f"block bootstrap of the {statistic} ({kb}/{kn} blocks)"
    return p, sn / sb, math.exp(low), math.exp(high), method


def _one_round(base: dict, new: dict) -> bool:
    return min(len(s.get(ROUNDS, [])) for s in (base, new)) < 2


def speed_test(base: dict, new: dict, confidence: float = CONFIDENCE) -> SpeedTest | None:
    """Test two records' speeds (``samples_of`` of each): on their rounds, else on their
    median step time; None when they lack the samples."""
    rounds = [s.get(ROUNDS, []) for s in (base, new)]
    steps = [s.get(STEPS, []) for s in (base, new)]
    if min(map(len, rounds)) >= 2:
        test = rank_test if min(map(len, rounds)) >= RANK_ROUNDS else log_t_test
        p, ratio, low, high, method = test(*rounds, confidence)
        return SpeedTest("rounds", *map(len, rounds), p, ratio, low, high, confidence, method)
    if min(map(len, steps)) < MIN_STEPS:
        return None
    found = block_test(*steps, "median", confidence)
    if found is None:
        return None
    p, ratio, low, high, method = found  # of the step time: a speed is its inverse
    return SpeedTest("steps", *map(len, steps), p, 1 / ratio, 1 / high, 1 / low, confidence,
                     method, within_run_only=True)  # fmt: skip


def step_test(base: dict, new: dict, statistic: str, confidence: float = CONFIDENCE):
    """Test one step-time statistic (``STEP_STATISTICS``) of two records on their step times;
    None when either has fewer than ``MIN_STEPS``."""
    steps = [s.get(STEPS, []) for s in (base, new)]
    if statistic not in STEP_STATISTICS or min(map(len, steps)) < MIN_STEPS:
        return None
    found = block_test(*steps, statistic, confidence)
    if found is None:
        return None
    p, ratio, low, high, method = found
    alone = _one_round(base, new)
    return SpeedTest("steps", *map(len, steps), p, ratio, low, high, confidence, method,
                     of_speed=False, within_run_only=alone)  # fmt: skip


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (same order): the smallest is
    multiplied by their number, the next by one fewer, and so on, never decreasing."""
    order = sorted(range(len(pvalues)), key=pvalues.__getitem__)
    adjusted = [1.0] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(pvalues) - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


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


# When a timing is too short or unsettled to trust (``untrusted``): the reports and
# ``bench compare`` flag such records, and ``--optimize`` never picks one unmeasured again.
# A timing of less than this (seconds, all timed rounds together) is too short to trust.
MIN_TIMED_S = 1.0
# Step times that vary more than this (coefficient of variation, %) are too unsettled to trust.
MAX_CV_PCT = 25.0
# Rounds (``run --repeats``, ``--optimize-rounds``) whose samples/s span more than this
# (max - min, % of their median) disagree too much to trust.
MAX_ROUNDS_SPREAD_PCT = 25.0
# What ``untrusted`` checks, in words for the pages and compare's notes.
UNTRUSTED_RULE = (
    f"under {MIN_TIMED_S:g} s timed, a warm-up that did not stabilise, step times varying more "
    f"than {MAX_CV_PCT:g}%, or rounds disagreeing by more than {MAX_ROUNDS_SPREAD_PCT:g}%"
)


def untrusted(metrics: dict) -> str:
    """Why a record's timing is too short or unsettled to trust ('' when it is fine, or when
    the record has no timing)."""
    why = []
    total = _number(metrics, "total_time_s")
    if total is not None and total < MIN_TIMED_S:
        why.append(f"timed {total:.2f} s < {MIN_TIMED_S:g} s")
    if metrics.get("warmup_stable") is False:
        why.append("warm-up did not stabilise")
    cv = _number(metrics, "cv_pct")
    if cv is not None and cv > MAX_CV_PCT:
        why.append(f"step times vary {cv:.0f}% > {MAX_CV_PCT:g}%")
    spread = rounds_spread_pct(metrics)
    if spread is not None and spread > MAX_ROUNDS_SPREAD_PCT:
        why.append(f"rounds disagree by {spread:.0f}% > {MAX_ROUNDS_SPREAD_PCT:g}%")
    return "; ".join(why)


def rounds_spread_pct(metrics: dict) -> float | None:
    """How far a record's rounds' samples/s lie apart: (max - min) over their median, in %;
    None with fewer than two rounds."""
    rounds = metrics.get(ROUNDS)
    if not isinstance(rounds, list):
        return None
    speeds = sorted(v for v in samples_of({ROUNDS: rounds}).get(ROUNDS, []) if v > 0)
    if len(speeds) < 2:
        return None
    return 100 * (speeds[-1] - speeds[0]) / statistics.median(speeds)


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

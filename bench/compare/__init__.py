"""Compare sets of results and gate regressions: ``python -m bench compare BASE NEW [MORE...]``.

Each side is a run id (looked up in a results store), a run document, a store folder (its
latest complete run, or every run with ``all_runs``) or a timm results CSV (``model``
plus timm's columns: ``infer_samples_per_sec``, ``param_count``, ``infer_gmacs``, ``top1``...).
cnn-bench records are matched on (model, harness, device, configuration), the key the
reports use; against a timm CSV, which has no harness or configuration, on the model name
alone. What only one side has is listed, never dropped.

Which way is better (``DIRECTIONS``): a metric's direction decides the words "better" and
"worse" in the table, never whether a threshold fails (the threshold's own sign does).

=========================================================  =========================
metric                                                     better when
=========================================================  =========================
``*_samples_per_sec``, ``*_gmacs_per_sec``, ``frac_of_peak``  higher
``top1``, ``top5``, ``best_top1``                          higher
step times (``min`` ... ``p99``, ``*_step_time``), ``cv_pct``  lower
``peak_mem*``, ``*_time_s``, ``loss``, ``top1_err``, ``top5_err``  lower
anything else (``params``, ``param_count``, ``infer_gmacs``,  neither: a change is a change
``infer_macts``, ``depth``...)
=========================================================  =========================

Thresholds (``Threshold.parse``) read ``METRIC:CHANGE``: ``infer_samples_per_sec:-5%`` fails
on a drop of 5% or more, ``top1:-0.5`` on a drop of half a point or more, ``infer_gmacs:1%``
on a change of 1% or more either way, ``params:0`` on any change at all.

Significance (``bench.stats``, ``judge``): a change of a timed metric is tested on the raw
samples both records carry, each metric on its own: a speed on the rounds' samples/s (two or
more rounds each: a t-test on their logs below 8 rounds a side, Mann-Whitney U from 8) or else
on the median step time, a step-time statistic (median, p90, p99, max...) on that statistic
of the step times by a block bootstrap over contiguous blocks. Holm's correction runs over a
table's tests (``match``); a change not significant after it fails no threshold, and a
threshold fails only when the whole interval lies beyond it. Records without samples fall back
on the spread rule (``noise_spread``: step-time IQR over median, the two sides in quadrature),
and their rows say so. Peak memory within 1% or 1 MiB is the same (``metrics.tolerance``). A
timing that ``bench.report.records.untrusted`` distrusts is "untrusted: re-measure": never
better or worse, failing no threshold, listed (``Comparison.unjudged``). Records match on the
device name too; speeds of different machines are compared only with ``cross_machine``
(``machines``). No torch here; pandas, numpy and scipy are imported where they are used.

Modules: ``metrics`` (directions, changes, thresholds, tolerances),
``sides`` (reading each side, through ``bench.report.records``; the spread rule),
``machines`` (where each side was measured), ``judge`` (one metric's verdict), ``table``
(rows and their formats), ``match`` (matching: ``compare``, ``compare_runs``, and
``compare_sides`` for two sides already read).
"""

from bench.compare.match import Options, compare, compare_runs, compare_sides
from bench.compare.metrics import (
    DIRECTIONS,
    HIGHER,
    LOWER,
    NEITHER,
    Threshold,
    change_of,
    direction,
    parse_thresholds,
)
from bench.compare.sides import Entry, Side, combined_noise, load_side, noise_spread
from bench.compare.table import Comparison, MultiComparison
from bench.stats import SpeedTest, speed_test

__all__ = [
    "DIRECTIONS",
    "HIGHER",
    "LOWER",
    "NEITHER",
    "Comparison",
    "Entry",
    "MultiComparison",
    "Options",
    "Side",
    "SpeedTest",
    "Threshold",
    "change_of",
    "combined_noise",
    "compare",
    "compare_runs",
    "compare_sides",
    "direction",
    "load_side",
    "noise_spread",
    "parse_thresholds",
    "speed_test",
]

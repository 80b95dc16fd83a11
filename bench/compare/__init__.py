"""Compare two sets of results and gate regressions: ``python -m bench compare BASE NEW``.

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

Noise (``noise_spread``): a change of a timed metric (samples/s, step times) counts only if
it is larger than the spread of the step times both records carry; otherwise it is reported
"within noise" and fails no threshold. No torch here; pandas is imported where it is used.

Modules: ``metrics`` (directions, changes, thresholds), ``sides`` (reading each side, through
``bench.report.records``; step noise), ``table`` (rows and their formats), ``match``
(matching and verdicts: ``compare``).
"""

from bench.compare.match import compare
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
from bench.compare.sides import Entry, Side, combined_noise, noise_spread
from bench.compare.table import Comparison

__all__ = [
    "DIRECTIONS",
    "HIGHER",
    "LOWER",
    "NEITHER",
    "Comparison",
    "Entry",
    "Side",
    "Threshold",
    "change_of",
    "combined_noise",
    "compare",
    "direction",
    "noise_spread",
    "parse_thresholds",
]

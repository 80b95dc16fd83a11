"""``python -m bench ab``: two option sets of the throughput harness (A and B) measured
alternately in one run, then B judged against A by compare's tests.

``measure`` runs the rounds (each model A B, then B A, ...: A B B A A B B A) and writes one run
document whose records carry their arm in ``config["ab"]``; ``judge`` splits that document
into two sides and hands them to ``bench.compare.compare_sides``. The command line
(``bench.cli``) parses and checks the option sets. This package sits between the command line
and compare: it imports compare and the runner, and neither imports it."""

from bench.ab.judge import arm_sides, judge_ab
from bench.ab.measure import LABELS, Arm, measure_ab, schedule

__all__ = ["LABELS", "Arm", "arm_sides", "judge_ab", "measure_ab", "schedule"]

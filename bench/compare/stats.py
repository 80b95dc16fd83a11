"""Whether a speed changed: the tests on samples live in ``bench.stats`` (below the reports,
whose trends use them too); this module names them for ``bench.compare``."""

from bench.stats import (
    MIN_STEPS,
    RESAMPLES,
    ROUNDS,
    SAMPLE_KEYS,
    SEED,
    STEPS,
    SpeedTest,
    samples_of,
    speed_test,
)

__all__ = [
    "MIN_STEPS",
    "RESAMPLES",
    "ROUNDS",
    "SAMPLE_KEYS",
    "SEED",
    "STEPS",
    "SpeedTest",
    "samples_of",
    "speed_test",
]

"""One eager pass that the flops and depth harnesses share.

Running a model is most of what they cost. FlopCounterMode (a dispatch mode) and the depth
tracker (a function mode) can watch the same forward pass, so the first of the two
harnesses to ask runs it once and keeps both counts on the Job for the other.
"""

from __future__ import annotations

from typing import Any

from bench.harness.base import Job


def eager_counts(job: Job) -> dict[str, Any]:
    """``{"flops": FlopCounterMode's FLOPs, "depth": weight layers}`` at batch 1, once a job."""
    if "eager" not in job.cache:
        from bench.harness.depth import measure_depth
        from bench.harness.flops import flopcounter_mode

        mode = flopcounter_mode()
        depth = measure_depth(job.model(), job.example_input(1), outer=mode)
        job.cache["eager"] = {"flops": int(mode.get_total_flops()), "depth": depth}
    return job.cache["eager"]

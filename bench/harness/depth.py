"""Depth: weight layers on the longest path from the input to the output (how it is counted:
``bench.harness.counting``)."""

from __future__ import annotations

from bench.harness.base import Job, Measurement
from bench.harness.counting import eager_counts


class DepthHarness:
    name = "depth"
    counts_only = True  # values never change what is counted: build without initialisers

    def measure(self, job: Job) -> list[Measurement]:
        d = eager_counts(job)["depth"]
        return [Measurement(config={"img_size": job.input_size[1]}, metrics={"depth": d})]

"""One model's measurement, as every step below the harness sees it (``ModelRun``)."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import Any

from bench.harness.base import Job
from bench.harness.throughput.backend import peak_rss_since_reset_mb, reset_peak_rss_mb
from bench.harness.throughput.config import Settings
from bench.harness.throughput.gate import Gate, has_weights, weighted_model
from bench.harness.throughput.reference import eager_outputs

logger = logging.getLogger(__name__)


def count_gmacs(model, job: Job) -> float | None:
    """MACs per sample: the flops harness's count from this run, else counted here."""
    from bench.harness.counting import count_macs

    macs = job.measured.get("flops", {}).get("macs")
    if macs is not None:
        return macs / 1e9
    try:
        return count_macs(model, job.example_input(1))["macs"] / 1e9
    except Exception as e:
        logger.warning("%s: MACs not counted (%s); no fraction of peak", job.spec.name, e)
        return None


@dataclass
class ModelRun:
    """One model on one device with the run's settings: the model (a copy of it for
    training), its MACs per sample, its eager fp32 outputs (once per batch size), the best
    matrix-product peak sampled after its timings (per device, precision and TF32) and the
    accuracy gate of its lossy candidates (``gate``)."""

    job: Job
    settings: Settings
    device: str
    model: Any = None
    gmacs: float | None = None
    samples: dict[tuple, float] = field(default_factory=dict)
    build_s: float | None = None  # building the model (``Job.model``), apart from any timing
    load_s: float | None = None  # moving it to the device
    # CPU: the process's resident memory before the model was built (MiB), None elsewhere
    rss_baseline_mb: float | None = None
    _train_model: Any = field(default=None, repr=False)
    _references: dict[int, Any] = field(default_factory=dict, repr=False)
    init: Any = None  # how real weights were loaded (--weights, --pretrained); None: random
    _gate: Gate | None = field(default=None, repr=False)

    @classmethod
    def build(cls, job: Job, settings: Settings, device: str) -> ModelRun:
        """The job's model built (or taken; with the run's real weights when it has them), its
        MACs counted and the model moved to the device (``build_s`` and ``load_s``: how long
        building it and moving it took)."""
        import time

        # the CPU's memory figures are the increase over what the process holds before the model
        baseline = reset_peak_rss_mb() if device == "cpu" else None
        init = None
        if has_weights(settings):
            model, init = weighted_model(job, settings)
            job.in_chans = init.in_chans  # the input follows the weights (grayscale: 1)
        else:
            model = job.model()
        gmacs = count_gmacs(model, job)
        start = time.perf_counter()
        model.to(device)
        if device == "cuda":
            import torch

            torch.cuda.synchronize()
        run = cls(job, settings, device, model, gmacs, init=init)
        run.build_s, run.load_s = job.build_seconds, time.perf_counter() - start
        run.rss_baseline_mb = baseline
        return run

    def load_metrics(self) -> dict:
        """``build_s`` and ``load_s`` as a record's metrics (seconds, outside the timed loop),
        on the CPU the memory baseline (``rss_baseline_mb``), and with real weights where they
        came from (``init_source``, ``init_file``, ``init_sha256``, ``model_in_chans``)."""
        out = {
            "build_s": round(self.build_s, 3) if self.build_s is not None else None,
            "load_s": round(self.load_s, 4) if self.load_s is not None else None,
        }
        if self.init is not None:
            out.update(self.init.as_metrics())
        if self.rss_baseline_mb is not None:
            out["rss_baseline_mb"] = round(self.rss_baseline_mb, 1)
        return out

    def memory_increase_mb(self) -> float | None:
        """CPU: the process's peak resident memory so far over its baseline, in MiB."""
        peak = peak_rss_since_reset_mb() if self.rss_baseline_mb is not None else None
        return None if peak is None else round(peak - self.rss_baseline_mb, 1)

    @property
    def gate(self) -> Gate:
        """The accuracy gate of this model's lossy candidates: its images, eager fp32's
        predictions on them and each candidate's verdict, each made once."""
        if self._gate is None:
            self._gate = Gate(self.job, self.settings, self.model, self.init, self.device)
        return self._gate

    def model_for(self, mode: str):
        """The model to time in ``mode``: itself for inference, one copy of it for training
        (whose SGD steps must not change what inference and the reference see)."""
        if mode == "infer":
            return self.model
        if self._train_model is None:
            self._train_model = copy.deepcopy(self.model)
        return self._train_model

    def reference(self, batch: int):
        """PyTorch eager fp32 NCHW outputs on the job's own input at ``batch``."""
        if batch not in self._references:
            x = self.job.example_input(batch)
            self._references[batch] = eager_outputs(self.model, x, self.device)
        return self._references[batch]

    def keep_sample(self, key: tuple, gmacs_per_sec: float) -> float:
        """Note a peak sample taken after one of this model's timings; the best so far."""
        self.samples[key] = max(self.samples.get(key, 0.0), gmacs_per_sec)
        return self.samples[key]

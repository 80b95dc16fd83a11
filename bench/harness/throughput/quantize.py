"""Lossy candidates of ``--optimize`` and their accuracy gate.

INT8 through each runtime that has it (``Runtime.quantize``, calibrated on the gate's
calibration images; ONNX Runtime's static QDQ quantization and OpenVINO's NNCF are described
in their files under ``bench.harness.throughput.runtimes``). A quantized graph is built once
per model, runtime and batch size and opened in the run's scenario (``Runtime.open_quantized``:
the same compile configuration, offline waves or queue, as fp32 and bf16); the session is
re-timed in every round by the one path that times every runtime's session
(``bench.harness.throughput.sessions.time_session``).

The gate (``ModelRun.gate``, ``bench.harness.throughput.gate``): the candidate's predictions
paired with eager fp32's on the same scoring images, the drop of top-1 with its interval, and
whether it passes ``--accuracy-gate`` within ``--accuracy-budget``. Agreement with eager fp32 on
the timing input is recorded for INT8 but does not decide (INT8 never agrees to 5e-2; its top-1
on real images does).
"""

from __future__ import annotations

import logging
import time

from bench.harness.throughput.backend import dtype
from bench.harness.throughput.config import TORCH
from bench.harness.throughput.gate import torch_predict
from bench.harness.throughput.measure import Candidate
from bench.harness.throughput.model_run import ModelRun
from bench.harness.throughput.peak import peak_metrics
from bench.harness.throughput.reference import agreement
from bench.harness.throughput.runtimes import get, label
from bench.harness.throughput.runtimes.base import Session
from bench.harness.throughput.sessions import scenario_of, time_session

logger = logging.getLogger(__name__)

INT8 = "int8"
NOT_MEASURED = "accuracy not measured"  # a speed-only INT8 row's ``accuracy``
SYNTHETIC_SEED = 0
LOSSY = (INT8, "fp16")  # chosen only within the accuracy budget; never on agreement alone


def _int8_graph(run: ModelRun, batch: int, runtime: str, synthetic: bool = False):
    """(``runtime``'s INT8 graph for ``batch``, seconds to build it: export and calibration
    included); built once per model, runtime, batch and calibration (the gate's images, or
    ``synthetic_calibration``)."""
    key = ("int8_graph", runtime, batch, synthetic)
    if key not in run.job.cache:
        import torch

        images = synthetic_calibration(run) if synthetic else run.gate.data().calibration
        x = run.job.example_input(batch)
        model = run.model.eval().float().cpu().to(memory_format=torch.contiguous_format)
        start = time.perf_counter()
        graph = get(runtime).quantize(model, x, images, torch.get_num_threads())
        run.job.cache[key] = (graph, time.perf_counter() - start)
    return run.job.cache[key]


def synthetic_mean_std(run: ModelRun, channels: int) -> tuple[list[float], list[float]]:
    """The per-channel mean and std the model's input is normalised with: its weights' own
    (``run.init``), else ImageNet's; averaged over the channels for a model of another
    channel count (a 1-channel model: one mean, one std)."""
    from bench.registry.weights import IMAGENET_MEAN, IMAGENET_STD

    init = run.init
    mean = list(init.mean) if init is not None and init.mean is not None else list(IMAGENET_MEAN)
    std = list(init.std) if init is not None and init.std is not None else list(IMAGENET_STD)
    if len(mean) != channels:
        mean, std = [sum(mean) / len(mean)] * channels, [sum(std) / len(std)] * channels
    return mean, std


def synthetic_calibration(run: ModelRun):
    """``--calibration-images`` seeded random images of the model's input size: uniform
    pixels in [0, 1] normalised with the model's mean and std (``synthetic_mean_std``), as its
    preprocessing would give them. For speed only: no accuracy is measured on them."""
    import torch

    c, h, w = run.job.input_size
    mean, std = synthetic_mean_std(run, c)
    gen = torch.Generator().manual_seed(SYNTHETIC_SEED)
    pixels = torch.rand((int(run.settings.calibration_images), c, h, w), generator=gen)
    return (pixels - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)


def _int8_session(run: ModelRun, batch: int, cand: Candidate, synthetic: bool = False) -> Session:
    """The INT8 session of ``cand.runtime`` for ``batch`` in the run's scenario (and the
    candidate's concurrency), opened once from the one graph; its ``export_time_s``: the
    graph's build and the session's opening."""
    concurrency = cand.concurrency
    key = ("int8_session", cand.runtime, batch, scenario_of(run), concurrency, synthetic)
    if key not in run.job.cache:
        import torch

        graph, build_s = _int8_graph(run, batch, cand.runtime, synthetic)
        x = run.job.example_input(batch)
        session = get(cand.runtime).open_quantized(graph, x, torch.get_num_threads(),
                                                   scenario_of(run), concurrency)  # fmt: skip
        session.export_time_s += build_s
        run.job.cache[key] = session
    return run.job.cache[key]


def measure_int8(run: ModelRun, cand: Candidate, batch: int) -> dict:
    """An INT8 candidate (``cand.runtime``): quantized once, opened in the run's scenario like
    every runtime's session, judged by the gate once, timed like every runtime's session."""
    session = _int8_session(run, batch, cand)
    metrics = time_session(run, cand, batch, session, f"{label(cand.runtime)} INT8")
    agree = agreement(run.reference(batch), session.infer(), INT8)
    agree.pop("agrees")  # recorded, not deciding: the accuracy gate decides
    judged = run.gate.judge((INT8, cand.runtime, batch), session.predict, batch)
    metrics.update(agree, **judged)
    metrics.update(peak_metrics(run, cand.mode, INT8, metrics))  # an INT8 product's peak
    return metrics


def measure_int8_speed(run: ModelRun, cand: Candidate, batch: int) -> dict:
    """``--precision int8``: INT8 speed only, with no weights or images needed, calibrated on
    ``synthetic_calibration`` through ``cand.runtime``'s INT8 path and timed like every
    runtime's session. Its agreement with eager fp32 on the timing input is recorded; its
    accuracy is not measured, and the row says so."""
    session = _int8_session(run, batch, cand, synthetic=True)
    metrics = time_session(run, cand, batch, session, f"{label(cand.runtime)} INT8")
    agree = agreement(run.reference(batch), session.infer(), INT8)
    agree.pop("agrees")  # INT8 never agrees to fp32's tolerance; nothing is chosen here
    n, (c, h, w) = int(run.settings.calibration_images), run.job.input_size
    metrics.update(agree, accuracy=NOT_MEASURED, calibration_images=n)
    metrics["calibration_data"] = (
        f"synthetic: {n} seeded random {c}x{h}x{w} images normalised with the model's mean/std"
    )
    metrics.update(peak_metrics(run, cand.mode, INT8, metrics))  # an INT8 product's peak
    return metrics


def torch_gate(run: ModelRun, cand: Candidate, batch: int) -> dict:
    """A reduced-precision PyTorch candidate's gate metrics (judged once per candidate)."""
    import functools

    import torch

    autocast = functools.partial(torch.autocast, device_type=run.device,
                                 dtype=dtype(cand.precision))  # fmt: skip
    model = run.model.to(run.device).to(memory_format=torch.contiguous_format).eval()
    key = (TORCH, cand.precision, cand.channels_last)
    return run.gate.judge(key, torch_predict(model, run.device, autocast), batch)

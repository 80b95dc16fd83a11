"""The throughput harness: one model's rows, per mode, batch size and runtime (or the
``--optimize`` pick), and the run's peak before the first model and after the last."""

from __future__ import annotations

import logging
import os
from dataclasses import replace

from bench.errors import ConfigError, error_text
from bench.harness.base import Job, Measurement, RunConfig
from bench.harness.device import check_device, device_name
from bench.harness.throughput.allocator import malloc_policy
from bench.harness.throughput.backend import free_memory, supports_bf16, torch_threads
from bench.harness.throughput.batch_search import search_batch
from bench.harness.throughput.config import (
    DEFAULT_BATCH,
    DEFAULT_SCENARIO,
    TORCH,
    Settings,
    ThroughputConfig,
    add_arguments,
    check_scenario_batches,
)
from bench.harness.throughput.gate import check_gate_images, check_val_data
from bench.harness.throughput.loadgen import require_loadgen
from bench.harness.throughput.measure import Candidate
from bench.harness.throughput.model_run import ModelRun
from bench.harness.throughput.optimize import optimize
from bench.harness.throughput.peak import run_peaks, settle_peaks, share_model_peak
from bench.harness.throughput.quantize import INT8, NOT_MEASURED, measure_int8_speed
from bench.harness.throughput.rounds import merge_rounds
from bench.harness.throughput.runtimes import (
    int8_skip_reason,
    label,
    require,
    skip_reason,
    version,
)
from bench.harness.throughput.sessions import measure_candidate, scenario_of

logger = logging.getLogger(__name__)


class ThroughputHarness:
    name = "throughput"
    isolate = True  # the runner measures each model in its own process (bench.executors.isolate)
    int8 = True  # --precision int8: speed only, through another runtime's INT8 path

    add_arguments = staticmethod(add_arguments)

    @staticmethod
    def configure(options: dict, run: RunConfig) -> ThroughputConfig:
        config = ThroughputConfig(**options)
        check_scenario_batches(config.scenario, run.batch_sizes)
        if run.precision == INT8:
            check_int8_speed(config)
        return config

    @staticmethod
    def preflight(config: ThroughputConfig) -> None:
        """A runtime asked for by name must be installed (LoadGen too, with --loadgen), and
        --val-data must be images the accuracy gate can read, at least --accuracy-min-images
        of them scored (exit 2 before any model)."""
        require(config.runtimes)
        if config.loadgen:
            require_loadgen()
        check_val_data(config.val_data)
        check_gate_images(config)

    @staticmethod
    def prepare(config: ThroughputConfig, run: RunConfig) -> ThroughputConfig:
        """Measure the run's matrix-product peak(s) once, before the first model: at the
        run's precision, and fp32 (the other runtimes' precision) and bf16 where it is
        native under --optimize, and int8 (the INT8 candidates') under --optimize on the CPU."""
        device = check_device(run.device)
        precisions = [run.precision]
        if config.optimize or set(config.runtimes) != {TORCH}:
            precisions.append("fp32")
        if config.optimize and supports_bf16(device):
            precisions.append("bf16")
        if config.optimize and device == "cpu":  # the INT8 candidates' own peak
            precisions.append(INT8)
        return replace(config, peaks=run_peaks(device, precisions, config.threads))

    @staticmethod
    def finalize(config: ThroughputConfig, records: list[dict]) -> list[dict]:
        """When the run ends: every row against its run's best peak (``settle_peaks``)."""
        return settle_peaks(records, config.peaks)

    @staticmethod
    def round_config(config: ThroughputConfig, index: int) -> ThroughputConfig:
        """Round ``index`` (from 0) of ``run --repeats``: the configurations in their order,
        or the other way round every second round."""
        if config.optimize:
            raise ConfigError(
                "--repeats with --optimize: --optimize times its candidates in rounds of its "
                "own (--optimize-rounds); give one or the other."
            )
        if config.batch_search:
            raise ConfigError(
                "--repeats with --batch-search: each round could choose another batch, and "
                "rounds of different batches are not repeats; search once, then repeat with "
                "--batch-size N."
            )
        return replace(config, reverse=index % 2 == 1)

    merge_rounds = staticmethod(merge_rounds)

    @staticmethod
    def device_for(run: RunConfig) -> str:
        """The device this harness measures on ('cuda' or 'cpu')."""
        return check_device(run.device)

    def measure(self, job: Job) -> list[Measurement]:
        config = job.config if job.config is not None else ThroughputConfig()
        s = Settings.of(job.run, config)
        device = check_device(s.device)
        with torch_threads(s.threads), malloc_policy(s.malloc) as policy:
            rows = _measure_model(job, s, device)
        for m in rows:
            if m.status == "ok":
                m.metrics["malloc"] = policy
        return rows


def _measure_model(job: Job, s: Settings, device: str) -> list[Measurement]:
    """Every (mode, batch) of one model: the --optimize pick, or one row per runtime."""
    import torch

    if device == "cuda":
        torch.backends.cudnn.benchmark = True
        if "LOCAL_RANK" in os.environ:  # under torchrun: this rank's own GPU, not cuda:0
            torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    run = ModelRun.build(job, s, device)
    name = device_name(device)
    out = []
    for mode in _ordered(s.modes, s.reverse):
        for batch in _ordered(s.batch_sizes or _default_batches(s, device), s.reverse):
            asked = Candidate(mode, s.precision, s.channels_last, s.compile)
            out.extend(_batch_rows(run, asked, batch, name))
        if device == "cuda":
            free_memory(device)
    share_model_peak(run, out)
    for m in out:
        if m.status == "ok":
            m.metrics.update(run.load_metrics())
    return out


def _default_batches(s: Settings, device: str) -> tuple[int, ...]:
    """The batch without --batch-size: 1 in single-stream, else the device's default."""
    return (1,) if s.scenario == "single-stream" else (DEFAULT_BATCH[device],)


def _ordered(items, reverse: bool) -> list:
    """``items`` in their order, or the other way round (a ``--repeats`` round going back)."""
    return list(reversed(items)) if reverse else list(items)


def _batch_rows(run: ModelRun, asked: Candidate, batch: int, name: str) -> list[Measurement]:
    """One batch size's rows: the --optimize pick, or one row per runtime; with
    --batch-search, at the batch the search chose, each carrying the search's trail."""
    trail = None
    if run.settings.batch_search:
        batch, trail = search_batch(run, asked, batch)
    if run.settings.optimize:
        metrics, cand = optimize(run, asked, batch)
        rows = [Measurement(_config(run.job, batch, cand, True), metrics, run.device, name)]
    else:
        runtimes = _ordered(run.settings.runtimes, run.settings.reverse)
        rows = [_row(run, replace(asked, runtime=r), batch) for r in runtimes]
        for m in rows:
            m.device, m.device_name = run.device, name
    if trail is not None:
        for m in rows:
            m.config["batch_search"] = True
            m.metrics["batch_search"] = trail
    return rows


def _row(run: ModelRun, cand: Candidate, batch: int) -> Measurement:
    """One (mode, batch, runtime) row: measured, skipped (why) or failed (which step)."""
    config = _config(run.job, batch, cand, False)
    if cand.precision == INT8:
        return _int8_row(run, cand, batch, config)
    if cand.runtime == TORCH:  # a failure here fails the model, as it always has
        return Measurement(config, measure_candidate(run, cand, batch, not _is_plain(cand)))
    info = {"runtime_version": version(cand.runtime)}
    reason = skip_reason(cand.runtime, cand.mode, run.device, cand.precision, cand.channels_last,
                         scenario_of(run))  # fmt: skip
    if reason:
        return Measurement(config, info, status="skipped", error=reason)
    try:
        metrics = measure_candidate(run, cand, batch)
    except Exception as e:
        failure = error_text(e)
    else:
        return Measurement(config, metrics)
    logger.warning("%s: %s failed: %s", run.job.spec.name, label(cand.runtime), failure)
    free_memory(run.device)  # outside the except: the traceback no longer holds the tensors
    return Measurement(config, info, status="error", error=failure)


def _int8_row(run: ModelRun, cand: Candidate, batch: int, config: dict) -> Measurement:
    """A speed-only INT8 row (``--precision int8``): skipped (why), failed (which step) or
    measured on synthetic calibration, its accuracy not measured."""
    info = {"runtime_version": version(cand.runtime), "accuracy": NOT_MEASURED}
    if cand.runtime == TORCH:
        reason = "skipped: PyTorch has no INT8 path here; INT8 runs through another runtime"
    else:
        reason = int8_skip_reason(cand.runtime, cand.mode, run.device)
    if reason:
        return Measurement(config, info, status="skipped", error=reason)
    try:
        return Measurement(config, measure_int8_speed(run, cand, batch))
    except Exception as e:
        failure = error_text(e)
    logger.warning("%s: %s INT8 failed: %s", run.job.spec.name, label(cand.runtime), failure)
    return Measurement(config, info, status="error", error=failure)


def check_int8_speed(c: ThroughputConfig) -> None:
    """What ``--precision int8`` (speed only) cannot be combined with (one line each)."""
    if c.optimize:
        raise ConfigError(
            "--precision int8 with --optimize: --optimize tries INT8 itself, behind the accuracy "
            "gate; drop --precision int8 (or --optimize for INT8 speed only)."
        )
    if set(c.runtimes) == {TORCH}:
        raise ConfigError(
            "--precision int8: PyTorch has no INT8 path here; add --runtime onnxruntime or "
            "--runtime openvino."
        )
    if "train" in c.modes:
        raise ConfigError("--precision int8 measures inference only: drop --mode train.")
    if c.batch_search:  # the search times fp32 sessions: it would not be INT8's batch
        raise ConfigError(
            "--precision int8 with --batch-search: the search has no INT8 path; give --batch-size."
        )


def _config(job: Job, batch: int, cand: Candidate, optimize: bool) -> dict:
    """A record's configuration; ``runtime`` only when it is not PyTorch and ``scenario`` only
    when it is not sync, so that PyTorch's sync records keep the keys they had before runtimes
    and scenarios existed (reports and ``compare`` match them across versions; a record
    without ``scenario`` is a sync one)."""
    config = {
        "img_size": job.input_size[1],
        "batch_size": batch,
        "mode": cand.mode,
        "precision": cand.precision,
        "layout": cand.layout,
        "compiled": cand.compiled,
        "optimize": optimize,
    }
    if cand.runtime != TORCH:
        config["runtime"] = cand.runtime
    scenario = getattr(job.config, "scenario", DEFAULT_SCENARIO)
    if scenario != DEFAULT_SCENARIO:  # only then: sync records keep the keys they always had
        config["scenario"] = scenario
    if job.config is not None and getattr(job.config, "loadgen", False):
        config["loadgen"] = True
    if cand.compile_mode is not None:  # the levers' keys only when pulled: older records match
        config["compile_mode"] = cand.compile_mode
    if cand.fold_bn:
        config["fold_bn"] = True
    if cand.concurrency is not None:  # the offline concurrency --optimize chose
        config["concurrency"] = cand.concurrency
    return config


def _is_plain(cand: Candidate) -> bool:
    """PyTorch eager fp32 NCHW: the reference itself, compared with nothing."""
    plain = (TORCH, "fp32", False, False)
    return (cand.runtime, cand.precision, cand.channels_last, cand.compiled) == plain

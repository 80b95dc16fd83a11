"""The throughput harness's options: ``ThroughputConfig`` (its own), ``Settings`` (with the
run's device, batches and precision), the command-line group and its parsers."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields

from bench.errors import ConfigError
from bench.harness.argtypes import positive_float, positive_int
from bench.harness.base import RunConfig
from bench.harness.throughput.allocator import KEEP, POLICIES
from bench.harness.throughput.runtimes import LABELS as LABELS  # the reports' labels
from bench.harness.throughput.runtimes import TORCH, check_names, names
from bench.harness.throughput.timing import WarmupPolicy
from bench.registry.checkpoints import check_weights_path

MODES = ("infer", "train")
DEFAULT_BATCH = {"cuda": 256, "cpu": 16}
DEFAULT_MIN_TIME_S = 2.0
DEFAULT_MIN_STEPS = 10
DEFAULT_ACCURACY_BUDGET = "1%"  # of eager fp32's top-1 (MLPerf's 99% target); 0.5: points
ACCURACY_RULES = ("interval", "point")  # --accuracy-gate: the interval's upper end, or the drop
DEFAULT_ACCURACY_MIN_IMAGES = 500
DEFAULT_CALIBRATION_IMAGES = 128
# MLPerf's names: one query of batch 1 at a time (latency), today's fixed-batch synchronous
# loop, and the most samples/s the runtime can deliver with concurrent work (throughput)
SCENARIOS = ("single-stream", "sync", "offline")
DEFAULT_SCENARIO = "sync"
SINGLE_STREAM_MIN_QUERIES = 64  # queries before single-stream's percentiles are reported


def _modes(text: str) -> list[str]:
    modes = [t.strip() for t in text.split(",") if t.strip()]
    bad = [m for m in modes if m not in MODES]
    if not modes or bad:
        raise argparse.ArgumentTypeError(
            f"expected 'infer', 'train' or 'infer,train', got '{text}'"
        )
    return sorted(dict.fromkeys(modes), key=MODES.index)


def _seconds(text: str) -> float:
    return positive_float(text, "a positive number of seconds")


def parse_runtimes(text: str) -> tuple[str, ...]:
    """``--runtime torch,onnxruntime`` (order kept, duplicates dropped) or ``all``: PyTorch and
    every runtime of the registry (``bench.harness.throughput.runtimes``), plugins included."""
    asked = [t.strip() for t in text.split(",") if t.strip()]
    if asked == ["all"]:
        return names()
    try:
        return check_names(asked)
    except ConfigError as e:
        why = str(e).split(": ", 1)[-1].removesuffix(".")  # argparse names the option
        raise argparse.ArgumentTypeError(f"{why}, got '{text}'") from None


def validate_runtimes(runtimes) -> tuple[str, ...]:
    """The runtimes as a tuple; an unknown name is a ConfigError (Python callers)."""
    return check_names(runtimes)


@dataclass(frozen=True)
class ThroughputConfig:
    """The throughput harness's own options (the run-wide ones are in ``RunConfig``)."""

    channels_last: bool = False
    compile: bool = False
    modes: tuple[str, ...] = ("infer",)
    threads: int | None = None
    min_time_s: float = DEFAULT_MIN_TIME_S
    min_steps: int = DEFAULT_MIN_STEPS
    retry: bool = True
    optimize: bool = False
    optimize_rounds: int = 3
    batch_search: bool = False
    runtimes: tuple[str, ...] = (TORCH,)
    scenario: str = DEFAULT_SCENARIO
    loadgen: bool = False  # LoadGen issues the queries (bench.harness.throughput.loadgen)
    malloc: str = KEEP  # glibc's policy for freed memory (bench.harness.throughput.allocator)
    # the accuracy gate of --optimize's lossy candidates (bench.harness.throughput.gate)
    pretrained: bool = False
    weights: str | None = None
    val_data: str | None = None
    limit: int | None = None
    accuracy_budget: float | str = DEFAULT_ACCURACY_BUDGET  # points, or "N%" of fp32's top-1
    accuracy_rule: str = ACCURACY_RULES[0]
    accuracy_min_images: int = DEFAULT_ACCURACY_MIN_IMAGES
    calibration_images: int = DEFAULT_CALIBRATION_IMAGES
    # the run's matrix-product peaks, set by ThroughputHarness.prepare (not an option, and
    # not compared by --resume): (device, precision, tf32, gmacs_per_sec, method) each
    peaks: tuple[tuple, ...] = field(default=(), metadata={"measured": True})
    # a round of ``run --repeats`` that measures the configurations the other way round (set
    # by ThroughputHarness.round_config; not an option)
    reverse: bool = field(default=False, metadata={"measured": True})

    def __post_init__(self):
        object.__setattr__(self, "runtimes", validate_runtimes(self.runtimes))
        object.__setattr__(self, "peaks", tuple(tuple(p) for p in self.peaks))
        modes = (self.modes,) if isinstance(self.modes, str) else tuple(self.modes)
        if not modes or any(m not in MODES for m in modes):
            raise ConfigError(f"--mode {','.join(modes)}: expected 'infer', 'train' or both.")
        object.__setattr__(self, "modes", tuple(sorted(dict.fromkeys(modes), key=MODES.index)))
        if self.threads is not None and int(self.threads) <= 0:
            raise ConfigError(f"--threads {self.threads}: expected a positive whole number.")
        if not self.min_time_s > 0 or int(self.min_steps) <= 0:
            raise ConfigError("--min-time and --min-steps must be positive.")
        _check_gate_options(self)
        check_scenario(self)
        if self.malloc not in POLICIES:
            raise ConfigError(f"--malloc {self.malloc}: expected one of {', '.join(POLICIES)}.")
        if int(self.optimize_rounds) <= 0:
            raise ConfigError(
                f"--optimize-rounds {self.optimize_rounds}: expected a positive whole number."
            )


def check_scenario(c: ThroughputConfig) -> None:
    """The scenario's name and what it cannot be combined with (a ConfigError, one line)."""
    if c.scenario not in SCENARIOS:
        raise ConfigError(f"--scenario {c.scenario}: expected one of {', '.join(SCENARIOS)}.")
    if c.scenario == DEFAULT_SCENARIO:
        if c.loadgen:
            raise ConfigError(
                "--loadgen drives MLPerf's scenarios: give --scenario single-stream or offline."
            )
        return
    if "train" in c.modes:
        raise ConfigError(
            f"--scenario {c.scenario} measures inference: drop --mode train, or use the sync "
            "scenario for training."
        )
    if c.batch_search:
        raise ConfigError(
            f"--scenario {c.scenario} with --batch-search: search the batch in the sync "
            "scenario, then measure the chosen --batch-size."
        )
    if c.scenario == "offline" and c.compile:
        raise ConfigError(
            "--scenario offline runs eager instances in worker processes; drop --compile."
        )


def check_scenario_batches(scenario: str, batch_sizes) -> None:
    """Single-stream is batch 1: another --batch-size is refused (one line)."""
    if scenario == "single-stream" and batch_sizes and set(batch_sizes) != {1}:
        raise ConfigError(
            f"--scenario single-stream measures batch 1, one query at a time; drop --batch-size "
            f"{','.join(map(str, batch_sizes))} or give --batch-size 1."
        )


def min_steps_of(s: ThroughputConfig) -> int:
    """The timed loop's fewest steps: --min-steps, raised to 64 queries in single-stream so
    that its p90 and p99 rest on enough queries."""
    if s.scenario == "single-stream":
        return max(int(s.min_steps), SINGLE_STREAM_MIN_QUERIES)
    return int(s.min_steps)


def _check_gate_options(c: ThroughputConfig) -> None:
    if c.pretrained and c.weights:
        raise ConfigError("Give --pretrained or --weights PATH, not both.")
    check_weights_path(c.weights)
    try:
        object.__setattr__(c, "accuracy_budget", parse_budget(c.accuracy_budget))
    except ValueError as e:
        raise ConfigError(f"--accuracy-budget {c.accuracy_budget}: {e}.") from None
    if c.accuracy_rule not in ACCURACY_RULES:
        raise ConfigError(
            f"--accuracy-gate {c.accuracy_rule}: expected {' or '.join(ACCURACY_RULES)}."
        )
    if int(c.calibration_images) <= 0 or (c.limit is not None and int(c.limit) <= 0):
        raise ConfigError("--calibration-images and --limit must be positive whole numbers.")
    if int(c.accuracy_min_images) <= 0:
        raise ConfigError("--accuracy-min-images must be a positive whole number.")


def parse_budget(value: float | str) -> float | str:
    """--accuracy-budget: top-1 points (``0.5``: a float), or a share of eager fp32's top-1
    (``1%``: the text, normalised); a ValueError saying what was expected otherwise."""
    text = str(value).strip()
    relative = text.endswith("%")
    try:
        number = float(text[:-1] if relative else text)
    except ValueError:
        number = -1.0
    if not number >= 0 or number == float("inf"):
        raise ValueError(
            "expected top-1 points >= 0 (0.5) or a percentage of eager fp32's top-1 (1%)"
        )
    return f"{number:g}%" if relative else number


def budget_percent(budget: float | str) -> float | None:
    """A relative budget's percentage (``1%``: 1.0), or None for points."""
    return float(budget[:-1]) if isinstance(budget, str) else None


def budget_points(budget: float | str, fp32_top1: float) -> float:
    """The budget in top-1 points, a relative one taken of eager fp32's top-1 (percent)."""
    pct = budget_percent(budget)
    return float(budget) if pct is None else pct / 100 * fp32_top1


def _budget(text: str) -> float | str:
    try:
        return parse_budget(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{e}, got '{text}'") from None


def add_arguments(group) -> None:
    """The harness's options; their defaults live in ThroughputConfig, defined once."""
    d = ThroughputConfig()
    S = argparse.SUPPRESS
    group.add_argument("--channels-last", dest="channels_last", action="store_true", default=S,
                       help="channels_last memory format for the model and input")  # fmt: skip
    group.add_argument("--compile", action="store_true", default=S,
                       help="torch.compile the model; compile time is reported on its own "
                       "(compile_time_s)")  # fmt: skip
    group.add_argument("--mode", dest="modes", type=_modes, default=S, metavar="infer,train",
                       help="infer (forward under inference_mode) and/or train (forward, "
                       "backward, SGD step) (default: infer)")  # fmt: skip
    _add_process_arguments(group, d)
    group.add_argument("--min-time", dest="min_time_s", type=_seconds, default=S, metavar="S",
                       help=f"time at least S seconds per measurement, after warm-up (default: "
                       f"{d.min_time_s:g}); warm-up runs until the median of the last 3 step "
                       f"times is within 5%% of the 3 before (at most {WarmupPolicy.max_steps} "
                       f"steps or {WarmupPolicy.max_time_s:g} s)")  # fmt: skip
    group.add_argument("--min-steps", dest="min_steps", type=positive_int, default=S,
                       metavar="N", help=f"time at least N steps per measurement (default: "
                       f"{d.min_steps})")  # fmt: skip
    group.add_argument("--no-retry", dest="retry", action="store_false", default=S,
                       help="fail on out of memory instead of halving the batch size and "
                       "retrying")  # fmt: skip
    group.add_argument("--optimize", action="store_true", default=S,
                       help="per model, try {NCHW, channels_last} x {fp32, bf16 where the "
                       "device supports it} (and compiled, with --compile), the other runtimes "
                       "(ONNX Runtime, OpenVINO, plugins) when installed, or those --runtime "
                       "names, and keep the fastest "
                       "whose outputs agree with eager fp32; every candidate is recorded")  # fmt: skip
    group.add_argument("--optimize-rounds", dest="optimize_rounds", type=positive_int,
                       default=S, metavar="N",
                       help=f"with --optimize, time every candidate N times, in turn and in "
                       f"alternating order, and choose by each one's median over its rounds, "
                       f"so that neither a slow spell nor a lucky round decides the pick "
                       f"(default: {d.optimize_rounds})")  # fmt: skip
    group.add_argument("--batch-search", dest="batch_search", action="store_true", default=S,
                       help="per model and mode, double the batch size from --batch-size while "
                       "samples/s rises by more than 3%% and memory allows, backing off in timm's "
                       "steps on out of memory; the rows are measured at the chosen batch and "
                       "carry the search's trail (batch_search)")  # fmt: skip
    group.add_argument("--runtime", dest="runtimes", type=parse_runtimes, default=S,
                       metavar="torch,onnxruntime,openvino",
                       help=f"runtimes to measure, a comma list is a sweep, or 'all' (default: "
                       f"{','.join(d.runtimes)}); ONNX Runtime and OpenVINO need "
                       f"'cnn-bench[runtimes]'")  # fmt: skip
    group.add_argument("--scenario", choices=SCENARIOS, default=S,
                       help="MLPerf's scenarios: single-stream (batch 1, one query at a time; "
                       f"p50/p90/p99 latency over at least {SINGLE_STREAM_MIN_QUERIES} queries), "
                       "sync (the fixed-batch synchronous loop, timm's method) or offline (the "
                       "most samples/s: PyTorch runs instances pinned to their own cores, ONNX "
                       "Runtime concurrent runs, OpenVINO its THROUGHPUT hint with asynchronous "
                       f"requests) (default: {d.scenario})")  # fmt: skip
    group.add_argument("--loadgen", action="store_true", default=S,
                       help="with --scenario single-stream or offline, MLCommons' LoadGen issues "
                       "the queries and its summary (VALID or INVALID, and why) is recorded; "
                       "needs 'cnn-bench[mlperf]'")  # fmt: skip
    _add_gate_arguments(group, d)


def _add_process_arguments(group, d: ThroughputConfig) -> None:
    """How the measuring process runs: its threads and glibc's policy for freed memory."""
    S = argparse.SUPPRESS
    group.add_argument("--threads", type=positive_int, default=S,
                       help="CPU threads for torch (default: torch's own, usually the "
                       "physical cores)")  # fmt: skip
    group.add_argument("--malloc", choices=POLICIES, default=S,
                       help="keep: glibc keeps the memory a step frees, so warmed-up steps do "
                       "not page-fault their tensors in again and every round meets the same "
                       "allocator; system: glibc as it is, whose thresholds rise as the process "
                       f"ages (early rounds page-fault more) (default: {d.malloc})")  # fmt: skip


def _add_gate_arguments(group, d: ThroughputConfig) -> None:
    """The options of --optimize's accuracy gate (shared with validate and finetune where
    they declare the same flag)."""
    S = argparse.SUPPRESS
    group.add_argument("--pretrained", action="store_true", default=S,
                       help="each source's pretrained weights (lets --optimize gate lossy "
                       "candidates)")  # fmt: skip
    group.add_argument("--weights", default=S, metavar="PATH",
                       help="a state dict or fine-tune checkpoint (.pth/.pt/.safetensors), or "
                       "a folder of fine-tune checkpoints: each model's own, trained on --val-data "
                       "at --img-size")  # fmt: skip
    group.add_argument("--val-data", dest="val_data", default=S, metavar="PATH",
                       help="labelled images for --optimize's accuracy gate: an ImageNet "
                       "class folder or ILSVRC2012 validation folder, or a fine-tune data set "
                       "(mnist5k, digits, ...: its held-out split)")  # fmt: skip
    group.add_argument("--limit", type=positive_int, default=S, metavar="N",
                       help="score at most N images (a seeded, class-balanced subset)")  # fmt: skip
    budget = str(d.accuracy_budget).replace("%", "%%")  # argparse's help formats with %
    group.add_argument("--accuracy-budget", dest="accuracy_budget", type=_budget, default=S,
                       metavar="POINTS|PCT%",
                       help=f"with --optimize, a lossy candidate (INT8, fp16, bf16 when scored) "
                       f"is chosen only when its loss of top-1 on --val-data against eager "
                       f"fp32's, on the same images, is within POINTS, or within PCT%% of eager "
                       f"fp32's top-1 (1%%) (default: {budget}, MLPerf's target of 99%% of "
                       "fp32's accuracy)")  # fmt: skip
    group.add_argument("--accuracy-gate", dest="accuracy_rule", choices=ACCURACY_RULES,
                       default=S,
                       help="interval: the upper end of the 95%% interval of the drop (paired, "
                       "Newcombe) must be within the budget; point: the measured drop itself, "
                       f"as before (default: {d.accuracy_rule})")  # fmt: skip
    group.add_argument("--accuracy-min-images", dest="accuracy_min_images", type=positive_int,
                       default=S, metavar="N",
                       help=f"with --optimize, stop (exit 2) when the accuracy gate would score "
                       f"fewer than N images (default: {d.accuracy_min_images}, where one image "
                       f"is {100 / d.accuracy_min_images:g} points of top-1)")  # fmt: skip
    group.add_argument("--calibration-images", dest="calibration_images", type=positive_int,
                       default=S, metavar="N",
                       help=f"images INT8 is calibrated on, disjoint from those it is scored "
                       f"on (default: {d.calibration_images})")  # fmt: skip


@dataclass(frozen=True)
class Settings(ThroughputConfig):
    """What one measurement needs: the harness's configuration with the run's device,
    batches and precision (``Settings.of(run, config)``)."""

    device: str = "auto"
    batch_sizes: tuple[int, ...] | None = None
    precision: str = "fp32"
    warmup: WarmupPolicy = field(default_factory=WarmupPolicy)

    @classmethod
    def of(cls, run: RunConfig, config: ThroughputConfig) -> Settings:
        own = {f.name: getattr(config, f.name) for f in fields(config)}
        return cls(device=run.device, batch_sizes=run.batch_sizes, precision=run.precision, **own)

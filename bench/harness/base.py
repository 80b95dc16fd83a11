"""The harness contract: what a harness receives (a Job), returns (Measurements) and is (a
class with a ``name`` and ``measure``). Plain data only; torch is imported where a model is
built.

A harness, built in or from a plugin (entry-point group ``cnn_bench.harnesses``), is a class
whose instances have ``name`` and ``measure(job)``. Optional, found by name:

- ``isolate = True``: run in a process of its own (``bench.executors.isolate``);
- ``add_arguments(group)`` (a classmethod or staticmethod): its own ``run`` options;
- ``configure(options, run)`` (classmethod or staticmethod): its typed, validated
  configuration from the values of its own options (a plain dict keyed by ``dest``);
  without it, the harness's configuration is that dict itself;
- ``preflight(config)``: raise a ``BenchError`` for input that would fail every model
  alike, before anything is measured;
- ``device_for(run)``: where it measures (``'cpu'``/``'cuda'``), so that its error rows say so;
- ``prepare(config, run)``: called once per run, in the parent process, after every harness is
  configured and pre-flighted and before the first model; it returns the configuration that
  every job and isolated worker of the run gets (plain data: it travels to the worker). For
  what must be measured once per run and shared, such as the throughput harness's matrix
  product peak.

A Measurement may carry ``status`` ``'skipped'`` (a configuration the harness cannot measure
here; ``error`` says why) or ``'error'`` (one configuration failed and the others were
measured); the runner writes it as a row of that status.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Protocol, runtime_checkable

from bench.errors import ConfigError, HarnessError
from bench.registry import ModelSpec

logger = logging.getLogger(__name__)

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("fp32", "bf16", "fp16", "int8")  # int8: speed only, --harness throughput
DEFAULT_MODEL_TIMEOUT_S = 1800.0
EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class ExecutionConfig:
    """How a run is carried out: where its tasks run, in which processes, and whether it
    completes an earlier run. None of it changes what is measured, so a resumed run may
    change it."""

    isolate: bool = True
    model_timeout_s: float = DEFAULT_MODEL_TIMEOUT_S
    executor: str = "local"  # where tasks run: here, or on a Ray cluster
    ray_address: str | None = None  # None: start a Ray here (executor 'ray' only)
    # --resume: skip what the resumed run measured; a fine-tune continues from its checkpoint
    resume: bool = False

    def __post_init__(self):
        if self.executor not in EXECUTORS:
            raise ConfigError(
                f"--executor {self.executor}: expected one of {', '.join(EXECUTORS)}."
            )
        if self.ray_address and self.executor != "ray":
            raise ConfigError("--ray-address needs --executor ray.")
        if not self.model_timeout_s > 0:
            raise ConfigError(f"--model-timeout {self.model_timeout_s}: expected seconds > 0.")


@dataclass(frozen=True)
class RunConfig:
    """The run-wide options: what every harness measures (device, batch sizes, precision,
    input size) and how the run is carried out (``execution``). Built in ``cli.py`` from the
    options it names; plain data (``as_dict``, one flat mapping) only where it is written."""

    device: str = "auto"
    batch_sizes: tuple[int, ...] | None = None  # None: each harness's own default
    precision: str = "fp32"
    img_size: int | None = None  # None: each model's own input size
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)

    def __post_init__(self):
        if self.device not in DEVICES:
            raise ConfigError(f"--device {self.device}: expected one of {', '.join(DEVICES)}.")
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"--precision {self.precision}: expected one of {', '.join(PRECISIONS)}."
            )
        if self.batch_sizes is not None and (
            not self.batch_sizes or any(int(b) <= 0 for b in self.batch_sizes)
        ):
            raise ConfigError(f"--batch-size {self.batch_sizes}: expected positive whole numbers.")
        if self.img_size is not None and int(self.img_size) <= 0:
            raise ConfigError(f"--img-size {self.img_size}: expected a positive whole number.")
        if self.batch_sizes is not None:
            object.__setattr__(self, "batch_sizes", tuple(int(b) for b in self.batch_sizes))

    def as_dict(self) -> dict[str, Any]:
        """One flat mapping, as the run document stores it (``config.run``)."""
        return {**self.measured_as(), **asdict(self.execution)}

    def measured_as(self) -> dict[str, Any]:
        """The fields that change what is measured (a resumed run must keep them)."""
        return {
            "device": self.device,
            "batch_sizes": list(self.batch_sizes) if self.batch_sizes else None,
            "precision": self.precision,
            "img_size": self.img_size,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunConfig:
        """From the flat mapping ``as_dict`` gives (a stored run's ``config.run``)."""
        how = {f.name for f in fields(ExecutionConfig)}
        what = {f.name for f in fields(cls)} - {"execution"}
        unknown = sorted(set(data) - how - what)
        if unknown:
            raise ConfigError(f"Unknown run option(s): {', '.join(unknown)}.")
        measure = {k: v for k, v in data.items() if k in what}
        if measure.get("batch_sizes") is not None:
            measure["batch_sizes"] = tuple(measure["batch_sizes"])
        execution = ExecutionConfig(**{k: v for k, v in data.items() if k in how})
        return cls(**measure, execution=execution)


@dataclass
class Measurement:
    """One configuration measured and what it gave; plain data."""

    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    device_name: str | None = None
    status: str = "ok"  # or "skipped" / "error", with ``error`` saying why
    error: str | None = None


@dataclass
class Job:
    """One model within a run, as a harness sees it. The model is built once and shared."""

    spec: ModelSpec
    run: RunConfig = field(default_factory=RunConfig)
    config: Any = None  # the harness's own configuration (its ``configure`` result)
    # metrics of the harnesses that already ran on this model in this run, by harness name
    measured: dict[str, dict[str, Any]] = field(default_factory=dict)
    _model: Any = None
    _build_error: BaseException | None = None
    build_seconds: float | None = None
    # static harnesses build without initialisers (values never change what they count)
    skip_init: bool = False
    _meta: Any = None
    cache: dict[str, Any] = field(default_factory=dict)  # results harnesses share
    in_chans: int | None = None  # the input channels of the weights loaded, when not the spec's

    @property
    def input_size(self) -> tuple[int, int, int]:
        """The model's input size, with ``--img-size`` overriding height and width, and
        ``in_chans`` the channels (a checkpoint trained on grayscale takes one)."""
        c, h, w = self.spec.resolved_input_size()
        if self.run.img_size:
            h = w = int(self.run.img_size)
        return (self.in_chans or c, h, w)

    def meta_model(self):
        """The model with its parameters on the meta device (``skip_init`` builds only; kept
        when the model is too large to materialise), else None."""
        return self._meta

    def model(self):
        """The model in eval mode on the CPU, built on first use: without initialisers when
        ``skip_init`` (``bench.harness.build``), where a model whose weights cannot fit in
        this machine's memory raises ``ModelTooLargeError`` (``meta_model`` still has it)."""
        if self._build_error is not None:
            raise self._build_error
        if self._model is None:
            import time

            start = time.perf_counter()
            try:
                model = self._build()
            except Exception as e:
                self._build_error = e
                raise
            model.eval()
            self.build_seconds = time.perf_counter() - start
            self._model = model
        return self._model

    def _build(self):
        from bench.harness import build

        size = self.run.img_size
        model = build.build_uninitialised(self.spec, size) if self.skip_init else None
        if model is None:
            return self.spec.build(pretrained=False, img_size=size)
        need, have = build.weight_bytes(model), build.available_memory_bytes()
        if not build.fits_in_memory(need, have):
            from bench.errors import ModelTooLargeError

            self._meta = model.eval()
            raise ModelTooLargeError(
                f"'{self.spec.name}' was not built: its weights need {need / 2**30:.1f} GiB "
                f"and this machine has {have / 2**30:.1f} GiB available (its parameters were "
                "counted on the meta device). Measure it on a larger machine."
            )
        leftover = build.left_on_meta(model)
        if leftover is not None:  # values computed from meta parameters: build it for real
            logger.debug("%s: %s is on the meta device; built with its initialisers",
                         self.spec.name, leftover)  # fmt: skip
            return self.spec.build(pretrained=False, img_size=size)
        return build.materialise(model)

    def example_input(self, batch_size: int = 1):
        import torch

        gen = torch.Generator().manual_seed(0)
        return torch.randn((batch_size, *self.input_size), generator=gen)

    def release(self) -> None:
        self._model = None
        self._meta = None
        self.cache.clear()


@runtime_checkable
class Harness(Protocol):
    """What every harness has; the optional hooks are listed in the module's docstring."""

    name: str

    def measure(self, job: Job) -> Iterable[Measurement | Mapping[str, Any]]: ...


def as_measurements(harness_name: str, result) -> list[Measurement]:
    """A harness's result as Measurements: each item a Measurement or a plain mapping
    ``{"config": {...}, "metrics": {...}}`` (``device``, ``device_name`` optional)."""
    if result is None:
        raise HarnessError(f"Harness '{harness_name}' returned nothing; return a list.")
    if isinstance(result, (Measurement, Mapping)):
        result = [result]
    out = []
    for item in result:
        if isinstance(item, Measurement):
            out.append(item)
        elif isinstance(item, Mapping) and isinstance(item.get("metrics"), Mapping):
            out.append(
                Measurement(
                    config=dict(item.get("config") or {}),
                    metrics=dict(item["metrics"]),
                    device=str(item.get("device") or "cpu"),
                    device_name=item.get("device_name"),
                    status=str(item.get("status") or "ok"),
                    error=item.get("error"),
                )
            )
        else:
            raise HarnessError(
                f"Harness '{harness_name}' returned a {type(item).__name__}; each measurement "
                "must be a Measurement or a mapping with 'metrics' (and 'config')."
            )
    return out

"""The contract every runtime beside PyTorch keeps: ``Runtime`` (what it is called, what it needs
and can do, how it opens a session and quantizes), and the ``Session`` it opens.

A session runs one fixed input: ``infer()`` is one call and returns the first output as a NumPy
array; ``samples_per_call`` is how many samples a call runs (the batch, or batch x requests for
an offline wave); ``scenario_info`` says how (``SCENARIO_KEYS``; None where a key does not
apply). A session on CUDA says so (``device``) and may give the loop a call that leaves its
outputs on the device (``timed``). INT8 is two steps: ``quantize`` returns the quantized graph
and ``open_quantized`` opens it in any scenario, like ``open_session`` (the same compile
configuration, offline waves or queue); its session also has ``predict(xb)``: the same graph
on other images of the batch's shape (the accuracy gate's). Nothing here imports torch or a
runtime's package.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from bench.errors import RuntimeStepError, error_text

TORCH = "torch"
EXTRA = "cnn-bench[runtimes]"
SYNC, SINGLE_STREAM, OFFLINE = "sync", "single-stream", "offline"
SCENARIO_KEYS = ("scenario", "streams", "requests", "instances", "threads_per_instance")
# a scenario_info key -> the record's key
RECORD_KEYS = {"scenario": "scenario", "streams": "offline_streams",
               "requests": "offline_requests", "instances": "offline_instances",
               "threads_per_instance": "threads_per_instance"}  # fmt: skip


def scenario_info(scenario: str = SYNC, **given) -> dict:
    """A session's ``scenario_info``: every key of ``SCENARIO_KEYS``, None where not given."""
    return {"scenario": scenario, **{k: given.get(k) for k in SCENARIO_KEYS[1:]}}


def scenario_record(info: dict) -> dict:
    """A ``scenario_info`` as the record's metrics: ``scenario``, ``offline_streams``,
    ``offline_requests``, ``offline_instances``, ``threads_per_instance`` (None where absent)."""
    return {RECORD_KEYS[k]: info.get(k) for k in SCENARIO_KEYS}


@dataclass
class Session:
    """A model ready to run in one runtime on one fixed input (see the module's text)."""

    runtime: str
    version: str | None
    provider: str
    export_time_s: float
    threads: int
    infer: Callable[[], Any]
    samples_per_call: int = 1
    scenario_info: dict = field(default_factory=scenario_info)
    predict: Callable[[Any], Any] | None = None  # INT8: the graph on another batch of images
    device: str = "cpu"  # where it runs: CUDA's timer, energy and memory on "cuda"
    timed: Callable[[], Any] | None = None  # what the loop times, when not ``infer`` (CUDA:
    # outputs left on the device)
    close: Callable[[], None] = lambda: None  # frees what the session holds (thread pools)


class Runtime:
    """A runtime beside PyTorch. Subclass it, set the attributes and define ``open_session``
    (and ``quantize`` for an INT8 candidate); register an instance, or the class, under the
    entry-point group ``cnn_bench.runtimes`` (see docs/plugins.md).

    - ``name``: what ``--runtime`` calls it (the entry point's name); ``label``: in words.
    - ``packages``: import name -> distribution it needs; ``version_package``: the
      distribution whose version a record states.
    - ``int8_packages``: what its INT8 candidate needs beyond ``packages``; None: no INT8.
    - ``precisions``, ``devices``, ``scenarios``: what it can measure (``skip_reason``).
    """

    name: str = ""
    label: str = ""
    packages: ClassVar[dict[str, str]] = {}
    version_package: str | None = None
    int8_packages: ClassVar[dict[str, str] | None] = None
    precisions: tuple[str, ...] = ("fp32",)
    devices: tuple[str, ...] = ("cpu",)
    scenarios: tuple[str, ...] = (SYNC, SINGLE_STREAM)

    def skip_reason(self, device: str, precision: str, scenario: str = SYNC) -> str | None:
        """Why this configuration cannot be measured here (a skipped row's text), or None;
        called once the packages are installed, for inference in NCHW."""
        if device not in self.devices:
            return f"skipped: {self.label} has no {device} device (it runs on {', '.join(self.devices)})"
        if precision not in self.precisions:
            return f"skipped: {self.label} runs {', '.join(self.precisions)} only ({precision} not measured)"
        if scenario not in self.scenarios:
            return f"skipped: {self.label} has no {scenario} scenario"
        return None

    def open_session(self, model, x, threads: int, device: str, precision: str,
                     scenario: str = SYNC, concurrency: int | None = None) -> Session:  # fmt: skip
        """``model`` (eval, fp32, on the CPU) ready to run ``x`` in this runtime."""
        raise NotImplementedError(f"{type(self).__name__}.open_session")

    def quantize(self, model, x, calibration, threads: int) -> Any:
        """The INT8 graph of ``model`` at ``x``'s shape (the runtime's own form), calibrated
        on ``calibration`` (a tensor of images), for ``open_quantized``."""
        raise NotImplementedError(f"{self.label} has no INT8 candidate")

    def open_quantized(self, graph, x, threads: int, scenario: str = SYNC,
                       concurrency: int | None = None) -> Session:  # fmt: skip
        """A session of ``quantize``'s ``graph`` on ``x`` in ``scenario``, with ``predict``."""
        raise NotImplementedError(f"{self.label} has no INT8 candidate")


def missing_packages(packages: dict[str, str]) -> list[str]:
    """The distributions of ``packages`` (import name -> distribution) not installed."""
    return [dist for mod, dist in packages.items() if importlib.util.find_spec(mod) is None]


def _one_line_with_cause(e: BaseException) -> str:
    """The error's first line, and its root cause's (exporters wrap the real reason)."""
    root = e
    while root.__cause__ is not None and root.__cause__ is not root:
        root = root.__cause__
    cause = f" (cause: {error_text(root, limit=300)})" if root is not e else ""
    return error_text(e, limit=300) + cause


@contextlib.contextmanager
def step(what: str):
    """Turn any failure inside the block into a RuntimeStepError that names the step."""
    try:
        yield
    except RuntimeStepError:
        raise
    except Exception as e:
        raise RuntimeStepError(f"{what} failed: {_one_line_with_cause(e)}") from e


def calibration_batches(images, batch: int) -> list:
    """``images`` (a tensor) as numpy batches of exactly ``batch`` (a quantized graph's fixed
    shape; the last batch padded with the first images)."""
    import torch

    if len(images) % batch:
        pad = batch - len(images) % batch
        images = torch.cat([images, images[:pad].repeat((pad // len(images)) + 1, 1, 1, 1)[:pad]])
    return [images[i : i + batch].numpy() for i in range(0, len(images), batch)]


def dist_version(dist: str | None) -> str | None:
    """The installed version of distribution ``dist``, or None."""
    from importlib import metadata

    try:
        return metadata.version(dist) if dist else None
    except metadata.PackageNotFoundError:
        return None

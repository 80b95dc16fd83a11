"""What a harness receives (a Job) and returns (Measurements)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.registry.lookup import ModelSpec


@dataclass
class Measurement:
    """One configuration measured and what it gave; plain data."""

    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    device_name: str | None = None


@dataclass
class Job:
    """One model within a run. The model is built once and shared by the harnesses."""

    spec: ModelSpec
    options: dict[str, Any] = field(default_factory=dict)
    # metrics of the harnesses that already ran on this model in this run, by harness name
    measured: dict[str, dict[str, Any]] = field(default_factory=dict)
    _model: Any = None
    _build_error: BaseException | None = None
    build_seconds: float | None = None

    @property
    def input_size(self) -> tuple[int, int, int]:
        """The model's input size, with ``--img-size`` overriding height and width."""
        c, h, w = self.spec.resolved_input_size()
        size = self.options.get("img_size")
        if size:
            h = w = int(size)
        return (c, h, w)

    def model(self):
        """The model in eval mode on the CPU, built on first use."""
        if self._build_error is not None:
            raise self._build_error
        if self._model is None:
            import time

            start = time.perf_counter()
            try:
                model = self.spec.build(pretrained=False)
            except Exception as e:
                self._build_error = e
                raise
            model.eval()
            self.build_seconds = time.perf_counter() - start
            self._model = model
        return self._model

    def example_input(self, batch_size: int = 1):
        import torch

        gen = torch.Generator().manual_seed(0)
        return torch.randn((batch_size, *self.input_size), generator=gen)

    def release(self) -> None:
        self._model = None

"""Which device a harness runs on: shared by the throughput and fine-tune harnesses."""

from __future__ import annotations

from bench.errors import BenchError


class DeviceError(BenchError):
    """The requested device is not available."""


def check_device(device: str) -> str:
    """'auto' -> 'cuda' when available else 'cpu'; 'cuda' without CUDA raises DeviceError."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda}"
        raise DeviceError(
            f"--device cuda: CUDA is not available (torch {torch.__version__}, {build}, "
            "no visible GPU). Use --device cpu or --device auto."
        )
    return device


def device_name(device: str) -> str:
    import torch

    if device == "cuda":
        return torch.cuda.get_device_name()
    from bench.environment import cpu_model

    return cpu_model()

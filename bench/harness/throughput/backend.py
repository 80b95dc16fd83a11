"""The device and its memory as a measurement sees them: native BF16, the backend's settings,
thread count, precision types, out of memory and peak resident memory."""

from __future__ import annotations

import contextlib
import resource
from pathlib import Path


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether the CPU has BF16 instructions (AVX512-BF16 or AMX-BF16)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    flags = set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
            break
    return bool({"avx512_bf16", "amx_bf16"} & flags)


def supports_bf16(device: str) -> bool:
    import torch

    if device == "cuda":
        return torch.cuda.is_bf16_supported()
    return cpu_has_native_bf16()


def backend_settings(device: str) -> dict:
    """Thread count, cudnn.benchmark and TF32 as they are for this measurement."""
    import torch

    info = {"threads": torch.get_num_threads()}
    if device == "cuda":
        info.update(
            cudnn_benchmark=bool(torch.backends.cudnn.benchmark),
            tf32=bool(torch.backends.cuda.matmul.allow_tf32),
            cudnn_tf32=bool(torch.backends.cudnn.allow_tf32),
        )
    else:
        info.update(cudnn_benchmark=None, tf32=None, cudnn_tf32=None)
    return info


def dtype(precision: str):
    """The torch dtype of a precision name ('fp32', 'bf16', 'fp16')."""
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def sync_fn(device: str):
    import torch

    if device == "cuda":
        return torch.cuda.synchronize
    return lambda: None


def model_tf32(device: str, precision: str) -> bool:
    """Whether an fp32 model may run in TF32 here: cuDNN's convolutions (on by default) or
    matrix products (off by default) allow it. The peak is timed the same way, so that a model
    is never compared with a slower kind of arithmetic than its own (of peak above 100%)."""
    if device != "cuda" or precision != "fp32":
        return False
    import torch

    return bool(torch.backends.cudnn.allow_tf32 or torch.backends.cuda.matmul.allow_tf32)


@contextlib.contextmanager
def torch_threads(n: int | None):
    """torch's thread count set to ``n`` for the block (unchanged when None), restored after."""
    import torch

    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n:
            torch.set_num_threads(before)


def is_oom(exc: BaseException) -> bool:
    """An out-of-memory error: torch.cuda.OutOfMemoryError or the CPU allocator's message."""
    try:
        import torch

        if isinstance(exc, torch.cuda.OutOfMemoryError):
            return True
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    if isinstance(exc, (RuntimeError, MemoryError)):
        text = str(exc)
        return isinstance(exc, MemoryError) or any(
            s in text for s in ("out of memory", "DefaultCPUAllocator", "can't allocate memory")
        )
    return False


def free_memory(device: str) -> None:
    """Collect garbage and, on a GPU, return cached blocks to the driver."""
    import gc

    import torch

    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


def reset_peak_rss_mb() -> float | None:
    """Reset this process's high-water mark of resident memory (Linux: ``5`` written to
    ``/proc/self/clear_refs``) and return its resident size now, in MiB: the baseline that
    ``rss_since_reset_mb`` is measured from. None where either cannot be done."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return None
    return _status_mib("VmRSS")


def peak_rss_since_reset_mb() -> float | None:
    """This process's peak resident memory since ``reset_peak_rss_mb`` (``VmHWM``), in MiB."""
    return _status_mib("VmHWM")


def _status_mib(field: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def peak_rss_mb() -> float:
    """The process's peak resident set size so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

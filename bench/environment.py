"""What a record says about where it was measured: machine, libraries, commit."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import bench

LIBRARIES = ("torch", "torchvision", "timm", "fvcore", "pandas", "numpy", "onnxruntime", "openvino")

# The CPU features that change which kernels run: AVX-512, BF16 and VNNI (int8) units, AMX.
CPU_FLAGS = (
    "avx2", "fma", "avx512f", "avx512bw", "avx512_bf16", "avx512_fp16", "avx512_vnni",
    "avx_vnni", "amx_tile", "amx_bf16", "amx_int8",
)  # fmt: skip


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags(cpuinfo: str | None = None) -> list[str] | None:
    """Which of ``CPU_FLAGS`` the CPU has (from /proc/cpuinfo), or None where unreadable."""
    try:
        text = Path("/proc/cpuinfo").read_text() if cpuinfo is None else cpuinfo
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("flags"):
            present = set(line.split(":", 1)[1].split())
            return [f for f in CPU_FLAGS if f in present]
    return None


def memory_gb() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


CPUFREQ = Path("/sys/devices/system/cpu")


def cpu_frequency(root: Path = CPUFREQ) -> dict:
    """The CPU frequency governor and the current, minimum and maximum frequency (MHz) of
    each governor's CPUs as cpufreq shows them; ``note`` says why when it cannot be read."""
    dirs = sorted(root.glob("cpu[0-9]*/cpufreq"), key=lambda p: int(p.parent.name[3:]))
    if not dirs:
        return {"note": f"unavailable: no {root}/cpu*/cpufreq (a VM or container without it)"}
    try:
        governors = sorted({(d / "scaling_governor").read_text().strip() for d in dirs})
        cur = [int((d / "scaling_cur_freq").read_text()) / 1e3 for d in dirs]
        low = int((dirs[0] / "cpuinfo_min_freq").read_text()) / 1e3
        high = int((dirs[0] / "cpuinfo_max_freq").read_text()) / 1e3
    except (OSError, ValueError) as e:
        return {"note": f"unavailable: {type(e).__name__}: {e}"}
    return {
        "governor": ",".join(governors),
        "cur_mhz_mean": round(sum(cur) / len(cur)),
        "cur_mhz_range": [round(min(cur)), round(max(cur))],
        "min_mhz": round(low),
        "max_mhz": round(high),
    }


def nvml_info(index: int = 0) -> dict:
    """A GPU's driver, clocks (MHz) and power limit (W) through NVML (``nvidia-ml-py``);
    ``note`` says why when it cannot be read."""
    try:
        import pynvml
    except ImportError:
        return {"note": "unavailable: nvidia-ml-py is not installed (pip install 'cnn-bench[gpu]')"}
    try:
        pynvml.nvmlInit()
        h = pynvml.nvmlDeviceGetHandleByIndex(index)
        clock = pynvml.nvmlDeviceGetClockInfo
        max_clock = pynvml.nvmlDeviceGetMaxClockInfo
        sm, mem = pynvml.NVML_CLOCK_SM, pynvml.NVML_CLOCK_MEM
        driver = pynvml.nvmlSystemGetDriverVersion()
        return {
            "driver": driver.decode() if isinstance(driver, bytes) else driver,
            "sm_clock_mhz": clock(h, sm),
            "sm_clock_max_mhz": max_clock(h, sm),
            "mem_clock_mhz": clock(h, mem),
            "mem_clock_max_mhz": max_clock(h, mem),
            "power_limit_w": round(pynvml.nvmlDeviceGetEnforcedPowerLimit(h) / 1e3, 1),
        }
    except Exception as e:  # no driver, no such device, a call this GPU does not support
        return {"note": f"unavailable: {type(e).__name__}: {e}"}


def gpu_info() -> dict | None:
    """The first CUDA device, or None. Imports torch (called only at run time)."""
    try:
        import torch

        if not torch.cuda.is_available():
            return None
        props = torch.cuda.get_device_properties(0)
        return {
            "name": props.name,
            "count": torch.cuda.device_count(),
            "memory_gb": round(props.total_memory / 2**30, 1),
            "capability": f"{props.major}.{props.minor}",
            "cuda": torch.version.cuda,
            "nvml": nvml_info(0),
        }
    except Exception:
        return None


def machine_info() -> dict:
    cpu = cpu_model()
    gpu = gpu_info()
    parts = [platform.system(), platform.machine(), cpu]
    if gpu:
        parts.append(gpu["name"])
    return {
        "id": "-".join(parts),
        "node": platform.node(),
        "system": platform.system(),
        "release": platform.release(),
        "arch": platform.machine(),
        "cpu": cpu,
        "cpu_flags": cpu_flags(),
        "cores": os.cpu_count(),
        "memory_gb": memory_gb(),
        "gpu": gpu,
        "cpu_frequency": cpu_frequency(),
    }


def library_versions() -> dict:
    versions = {"python": platform.python_version(), "cnn-bench": bench.__version__}
    for lib in LIBRARIES:
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            versions[lib] = None
    return versions


def commit_info(cwd: str | os.PathLike | None = None) -> dict | None:
    """The git commit of the checkout cnn-bench runs from, when there is one."""
    here = Path(cwd) if cwd else Path(bench.__file__).resolve().parent.parent
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5
        )
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here, capture_output=True, text=True, timeout=5,
        )  # fmt: skip
        return {"id": rev.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return None


def environment() -> dict:
    return {
        "machine": machine_info(),
        "versions": library_versions(),
        "commit": commit_info(),
        "argv": sys.argv[1:],
    }

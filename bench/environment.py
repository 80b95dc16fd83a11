"""What a record says about where it was measured: machine, libraries, commit."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from bench.version import __version__

LIBRARIES = ("torch", "torchvision", "timm", "fvcore", "pandas", "numpy", "onnxruntime", "openvino")
# the entry-point group of runtimes beside PyTorch (bench.harness.throughput.runtimes, a higher
# layer): a record states the version of each distribution that adds one
RUNTIME_GROUP = "cnn_bench.runtimes"

# The CPU features that change which kernels run: AVX-512, BF16 and VNNI (int8) units, AMX;
# on Arm, NEON (asimd), its dot-product and int8/bf16 matrix extensions, SVE.
CPU_FLAGS = (
    "avx2", "fma", "avx512f", "avx512bw", "avx512_bf16", "avx512_fp16", "avx512_vnni",
    "avx_vnni", "amx_tile", "amx_bf16", "amx_int8",
    "asimd", "asimddp", "i8mm", "bf16", "sve", "sve2",
)  # fmt: skip
# What the ISA level says, in order: (word, any of these flags). The first word is the
# vector width; the rest are the units that give bf16 and int8 their own kernels.
X86_LEVELS = (("AVX-512", ("avx512f",)), ("AVX2", ("avx2",)))
X86_UNITS = (
    ("BF16", ("avx512_bf16",)), ("FP16", ("avx512_fp16",)), ("VNNI", ("avx512_vnni", "avx_vnni")),
    ("AMX", ("amx_tile", "amx_bf16", "amx_int8")),
)  # fmt: skip
ARM_LEVELS = (("SVE2", ("sve2",)), ("SVE", ("sve",)), ("NEON", ("asimd",)))
ARM_UNITS = (("BF16", ("bf16",)), ("I8MM", ("i8mm",)), ("DOTPROD", ("asimddp",)))
NO_FLAGS = "flags not recorded"


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
        if line.startswith(("flags", "Features")):  # x86, Arm
            present = set(line.split(":", 1)[1].split())
            return [f for f in CPU_FLAGS if f in present]
    return None


def isa_level(flags) -> str | None:
    """The ISA level a CPU's kernels can use, in words: 'AVX2', 'AVX-512 BF16 VNNI',
    'AVX-512 BF16 VNNI AMX', 'NEON DOTPROD' ... from its recorded flags; None when the flags
    were not recorded. Two CPUs sold under one name with different levels are two machines."""
    if flags is None:
        return None
    have = set(flags)
    arm = bool(have & {"asimd", "sve", "sve2"})
    levels, units = (ARM_LEVELS, ARM_UNITS) if arm else (X86_LEVELS, X86_UNITS)
    width = next((w for w, names in levels if have & set(names)), "baseline")
    return " ".join([width, *(w for w, names in units if have & set(names))])


def short_cpu_name(name: str | None) -> str:
    """A CPU model without its trademarks, 'CPU'/'Processor' and clock: 'Intel(R) Xeon(R)
    Platinum 8480+ CPU @ 2.00GHz' -> 'Intel Xeon Platinum 8480+'."""
    text = re.sub(r"\((R|TM|r|tm)\)", "", name or "unknown CPU")
    text = re.sub(r"@.*$", "", text)
    text = re.sub(r"\b(CPU|Processor|\d+-Core)\b", "", text)
    return " ".join(text.split()) or "unknown CPU"


def _gpu_text(gpu) -> str | None:
    if not isinstance(gpu, dict) or not gpu.get("name"):
        return None
    count = gpu.get("count") or 1
    return f"{count}x {gpu['name']}" if count > 1 else str(gpu["name"])


def machine_key(machine: dict) -> tuple[str, str]:
    """(id, label) of the machine a run document's ``machine`` section describes: what
    changes speeds is in both (CPU model, ISA level, logical CPUs; GPU model and count).
    The id names the store's folder; the label is what tables and plots print, e.g.
    'AMD EPYC · AVX-512 BF16 VNNI · 2 vCPU'. A machine whose flags were not recorded is
    its own machine ('flags not recorded'), never one with flags."""
    cpu = machine.get("cpu")
    isa = isa_level(machine.get("cpu_flags")) or NO_FLAGS
    cores = machine.get("cores")
    vcpus = f"{cores} vCPU" if cores else "vCPUs not recorded"
    gpu = _gpu_text(machine.get("gpu"))
    parts = [machine.get("system") or "?", machine.get("arch") or "?", cpu or "?", isa, vcpus]
    label = " · ".join([short_cpu_name(cpu), isa, vcpus])
    if gpu:
        parts.append(gpu)
        label = f"{gpu} · {label}"
    return "-".join(str(p) for p in parts), label


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
    info = {
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
    info["id"], info["label"] = machine_key(info)
    return info


def runtime_plugin_distributions() -> list:
    """The installed distributions other than cnn-bench that add a runtime (an entry point
    of ``RUNTIME_GROUP``), read from their metadata without importing them."""
    found = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"] or ""
        own = re.sub(r"[-_.]+", "-", name).lower() == "cnn-bench"
        if name and not own and any(ep.group == RUNTIME_GROUP for ep in dist.entry_points):
            found.setdefault(name, dist)
    return [found[n] for n in sorted(found)]


def library_versions() -> dict:
    versions = {"python": platform.python_version(), "cnn-bench": __version__}
    for lib in LIBRARIES:
        try:
            versions[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            versions[lib] = None
    for dist in runtime_plugin_distributions():
        versions.setdefault(dist.metadata["Name"], dist.version)
    return versions


def commit_info(cwd: str | os.PathLike | None = None) -> dict | None:
    """The git commit of the checkout cnn-bench runs from, when there is one."""
    here = Path(cwd) if cwd else Path(__file__).resolve().parent.parent
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

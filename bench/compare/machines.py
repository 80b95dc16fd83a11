"""Where each side was measured, and whether two records come from the same machine.

Speeds are comparable only on one machine: records match on the device name (the CPU or
GPU model), and ``compare`` states each side's machine, the CPU flags that decide which
kernels run (AVX-512, BF16, VNNI, AMX), and its torch and library versions.
"""

from __future__ import annotations

from bench.compare.sides import Entry, Side
from bench.report.records import Run

# (what a reader knows it as, the /proc/cpuinfo flags that give it)
FLAGS_THAT_MATTER = (
    ("AVX-512", ("avx512f",)),
    ("BF16", ("avx512_bf16", "amx_bf16")),
    ("VNNI", ("avx512_vnni", "avx_vnni")),
    ("AMX", ("amx_tile",)),
)
SHOWN_LIBRARIES = ("torch", "torchvision", "timm", "onnxruntime", "openvino")


def flags_text(run: Run) -> str:
    """'AVX-512, BF16, VNNI', 'no AVX-512, BF16 or VNNI', or 'CPU flags not recorded'."""
    if run.cpu_flags is None:
        return "CPU flags not recorded"
    have = [name for name, flags in FLAGS_THAT_MATTER if set(flags) & set(run.cpu_flags)]
    return ", ".join(have) if have else "no AVX-512, BF16 or VNNI"


def machine_text(run: Run) -> str:
    """One line: machine, CPU and its flags, library versions."""
    versions = dict(run.versions)
    libs = ", ".join(f"{lib} {versions[lib]}" for lib in SHOWN_LIBRARIES if lib in versions)
    if not run.cpu:
        where = run.machine_name or "unknown machine"
    elif run.machine_name and run.machine_name != run.cpu:  # a GPU machine
        where = f"{run.machine_name}; CPU {run.cpu} ({flags_text(run)})"
    else:
        where = f"{run.cpu} ({flags_text(run)})"
    return f"{where}; {libs or 'versions not recorded'}"


def machine_lines(side: Side) -> list[str]:
    """Each distinct machine-and-versions line of the runs a side's records come from."""
    if side.by_name:
        return ["machine not recorded (timm CSV)"]
    used = {e.run for e in side.entries}
    runs = sorted((r for f, r in side.runs.items() if f in used), key=lambda r: r.started_utc)
    return list(dict.fromkeys(machine_text(r) for r in runs)) or ["machine not recorded"]


def cross_machine(b: Entry, n: Entry) -> str:
    """'' for one machine, else 'A vs B' (records without a device name count as one)."""
    if not b.device_name or not n.device_name or b.device_name == n.device_name:
        return ""
    return f"{b.device_name} vs {n.device_name}"

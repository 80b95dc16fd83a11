"""Where each side was measured, and whether two records come from the same machine.

Speeds are comparable only on one machine: records match on the device name (the CPU or
GPU model), and ``compare`` states each side's machine, the CPU flags that decide which
kernels run (AVX-512, BF16, VNNI, AMX), and its torch and library versions.
"""

from __future__ import annotations

from bench.compare.sides import Entry, Side
from bench.report.fmt import cpu_flags_text
from bench.report.records import Run

SHOWN_LIBRARIES = ("torch", "torchvision", "timm", "onnxruntime", "openvino")


def flags_text(run: Run) -> str:
    """'AVX-512, BF16, VNNI', 'no AVX-512, BF16 or VNNI', or 'CPU flags not recorded'."""
    return cpu_flags_text(run.cpu_flags)


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


def machine_pair(b: Entry, n: Entry, b_run: Run | None = None, n_run: Run | None = None):
    """(base's machine, new's machine) when two records come from different machines, else
    None (records without a device name count as one). Two CPUs of one name whose runs
    recorded different flags that decide the kernels (an AMD EPYC with AVX-512 and one
    without) are two machines too."""
    if not b.device_name or not n.device_name:
        return None
    if b.device_name != n.device_name:
        return b.device_name, n.device_name
    if b_run is None or n_run is None or b_run.cpu_flags is None or n_run.cpu_flags is None:
        return None
    b_flags, n_flags = flags_text(b_run), flags_text(n_run)
    if b_flags == n_flags:
        return None
    return f"{b.device_name} ({b_flags})", f"{n.device_name} ({n_flags})"


def cross_machine(b: Entry, n: Entry, b_run: Run | None = None, n_run: Run | None = None) -> str:
    """'' for one machine, else 'A vs B' (``machine_pair``)."""
    pair = machine_pair(b, n, b_run, n_run)
    return f"{pair[0]} vs {pair[1]}" if pair else ""

"""Where each side was measured, and whether two records come from the same machine.

Speeds are comparable only on one machine: records match on the device's label (a CPU as
model, ISA level and logical CPUs; a GPU by its model: ``bench.report.records``), so two
VMs sold under one CPU name with other flags, or one whose flags were not recorded, are
other machines. ``compare`` states each side's machine and its torch and library versions.
"""

from __future__ import annotations

from bench.compare.sides import Entry, Side
from bench.harness.throughput.runtimes import version_packages
from bench.report.records import Run

SHOWN_LIBRARIES = ("torch", "torchvision", "timm")  # then each runtime's (the registry's)


def shown_libraries() -> tuple[str, ...]:
    """The libraries whose versions a machine's line shows: PyTorch's, then the package each
    runtime beside it states its version by (``bench.harness.throughput.runtimes``)."""
    return tuple(dict.fromkeys((*SHOWN_LIBRARIES, *version_packages())))


def machine_text(run: Run) -> str:
    """One line: the machine's label, library versions."""
    versions = dict(run.versions)
    libs = ", ".join(f"{lib} {versions[lib]}" for lib in shown_libraries() if lib in versions)
    return f"{run.machine or 'unknown machine'}; {libs or 'versions not recorded'}"


def machine_lines(side: Side) -> list[str]:
    """Each distinct machine-and-versions line of the runs a side's records come from."""
    if side.by_name:
        return ["machine not recorded (timm CSV)"]
    used = {e.run for e in side.entries}
    runs = sorted((r for f, r in side.runs.items() if f in used), key=lambda r: r.started_utc)
    return list(dict.fromkeys(machine_text(r) for r in runs)) or ["machine not recorded"]


def machine_pair(b: Entry, n: Entry):
    """(base's device, new's device) when two records come from different machines, else
    None (records without a device label, a timm CSV's, count as one)."""
    if not b.device_name or not n.device_name or b.device_name == n.device_name:
        return None
    return b.device_name, n.device_name


def cross_machine(b: Entry, n: Entry) -> str:
    """'' for one machine, else 'A vs B' (``machine_pair``)."""
    pair = machine_pair(b, n)
    return f"{pair[0]} vs {pair[1]}" if pair else ""

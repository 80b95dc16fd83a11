"""Energy over a timed window (``EnergyMeter``): NVML's total-energy counter for the GPU a
CUDA measurement runs on (``nvidia-ml-py``, ``pip install 'cnn-bench[gpu]'``), RAPL's
package counters (``/sys/class/powercap/intel-rapl:N/energy_uj``, readable as root) for a CPU
one. Where neither can be read, the metrics say so (``energy_note``), never 0."""

from __future__ import annotations

import logging
from pathlib import Path

logger = logging.getLogger(__name__)

RAPL = Path("/sys/class/powercap")
NVML_HINT = "pip install 'cnn-bench[gpu]'"


def rapl_packages(root: Path = RAPL) -> list[Path]:
    """The RAPL package zones (``intel-rapl:0``, ``intel-rapl:1``...; not their sub-zones)."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.glob("intel-rapl:*") if p.name.count(":") == 1)


def _read_int(path: Path) -> int:
    return int(path.read_text().strip())


def nvml_handle():
    """The NVML handle of torch's current CUDA device (by PCI bus id, so that
    ``CUDA_VISIBLE_DEVICES`` does not mix devices up), after ``nvmlInit``."""
    import pynvml
    import torch

    pynvml.nvmlInit()
    props = torch.cuda.get_device_properties(torch.cuda.current_device())
    bus = getattr(props, "pci_bus_id", None)
    if bus is None:
        return pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device())
    pci = f"{props.pci_domain_id:08X}:{bus:02X}:{props.pci_device_id:02X}.0"
    return pynvml.nvmlDeviceGetHandleByPciBusId(pci)


class EnergyMeter:
    """Joules spent between ``start`` and ``stop``; ``stop`` gives the record's energy
    metrics: ``energy_j_per_sample``, ``energy_mean_w``, ``energy_source`` and
    ``energy_note`` (None when measured, else ``"unavailable: <why>"``)."""

    def __init__(self, device: str, rapl_root: Path = RAPL):
        self.source: str | None = None
        self.note: str | None = None
        self._read = None
        try:
            if device == "cuda":
                self._use_nvml()
            else:
                self._use_rapl(rapl_root)
        except Exception as e:  # any reader that cannot be read is "unavailable"
            self.source, self._read = None, None
            self.note = f"unavailable: {type(e).__name__}: {e}"
        self._start = 0.0

    def _use_nvml(self) -> None:
        try:
            import pynvml
        except ImportError:
            self.note = f"unavailable: nvidia-ml-py is not installed ({NVML_HINT})"
            return
        handle = nvml_handle()
        pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)  # raises where unsupported
        self.source = "nvml: GPU board energy counter"
        self._read = lambda: pynvml.nvmlDeviceGetTotalEnergyConsumption(handle) / 1e3

    def _use_rapl(self, root: Path) -> None:
        zones = rapl_packages(root)
        if not zones:
            self.note = f"unavailable: no RAPL package zones under {root} (a VM, or not Intel/AMD)"
            return
        self._ranges = [_read_int(z / "max_energy_range_uj") for z in zones]
        self._read = lambda: [_read_int(z / "energy_uj") for z in zones]
        self._read()  # raises (PermissionError: not root) unless readable
        self.source = f"rapl: {len(zones)} CPU package(s)"

    def start(self) -> None:
        self._start = self._read() if self._read is not None else 0.0

    def _joules(self) -> float:
        end = self._read()
        if self.source.startswith("nvml"):
            return end - self._start
        total = 0
        for before, after, wrap in zip(self._start, end, self._ranges, strict=True):
            total += after - before if after >= before else after + wrap - before
        return total / 1e6

    def stop(self, seconds: float, samples: int) -> dict:
        """The energy metrics of the window just ended (``samples`` processed in ``seconds``)."""
        if self._read is None:
            return _energy(None, None, None, self.note)
        try:
            joules = self._joules()
        except Exception as e:
            return _energy(None, None, None, f"unavailable: {type(e).__name__}: {e}")
        if joules <= 0:  # a counter that did not move in the window measured nothing
            return _energy(None, None, self.source, "unavailable: the counter did not advance")
        watts = joules / seconds if seconds > 0 else None
        per_sample = joules / samples if samples else None
        return _energy(per_sample, watts, self.source, None)


def _energy(per_sample, watts, source, note) -> dict:
    return {
        "energy_j_per_sample": round(per_sample, 6) if per_sample is not None else None,
        "energy_mean_w": round(watts, 2) if watts is not None else None,
        "energy_source": source,
        "energy_note": note,
    }

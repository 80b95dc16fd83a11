"""Ends a local Ray cluster with the run that started it, however the run ends.

``python -m bench.executors.reaper DRIVER_PID MARKER TEMP_DIR`` runs beside the driver, in a session of
its own. Every process of the Ray cluster the driver starts (GCS, raylet, the dashboard and
runtime-env agents, workers, and the isolated workers they start) carries ``MARKER`` in its
environment (``OWNER_ENV``), set while Ray starts. When the driver is gone (this process's
parent is no longer the driver: even after a SIGKILL) or asks for it (SIGTERM, at a normal
close), the reaper SIGKILLs every process carrying the marker (Ray's agents ignore SIGTERM)
until none is left, removes the cluster's temporary folder and exits. A cluster given with
``--ray-address`` has no reaper: it belongs to whoever started it.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time

OWNER_ENV = "CNN_BENCH_RAY_OWNER"
WATCH_INTERVAL_S = 0.5
SWEEP_ROUNDS = 20  # a worker may start while the cluster is being taken down


def _psutil():
    try:
        import psutil
    except ImportError:  # Ray carries its own copy
        import importlib.util

        (ray_dir,) = importlib.util.find_spec("ray").submodule_search_locations
        sys.path.append(os.path.join(ray_dir, "thirdparty_files"))
        import psutil
    return psutil


def marked(marker: str) -> list:
    """The processes (other than this one) whose environment carries ``marker``."""
    psutil = _psutil()
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.pid != os.getpid() and proc.environ().get(OWNER_ENV) == marker:
                found.append(proc)
        except (psutil.Error, OSError):  # gone, or not ours to read
            continue
    return found


def sweep(marker: str) -> None:
    """SIGKILL every process carrying ``marker`` until none is left (a bounded number of rounds)."""
    for _ in range(SWEEP_ROUNDS):
        procs = marked(marker)
        if not procs:
            return
        for proc in procs:
            try:
                proc.kill()
            except Exception:  # already gone
                continue
        time.sleep(0.1)


def main(argv: list[str]) -> int:
    driver, marker, temp_dir = int(argv[0]), argv[1], argv[2]
    asked = []
    signal.signal(signal.SIGTERM, lambda signum, frame: asked.append(signum))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the driver, which asks
    while not asked and os.getppid() == driver:
        time.sleep(WATCH_INTERVAL_S)
    sweep(marker)
    shutil.rmtree(temp_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

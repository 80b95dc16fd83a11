"""Ends a local Ray cluster with the run that started it, however the run ends.

``python -m bench.executors.reaper DRIVER_PID MARKER TEMP_DIR`` runs beside the driver, in a session of
its own. A process belongs to the Ray cluster the driver starts (GCS, raylet, the dashboard and
runtime-env agents, workers, and the isolated workers they start) when its environment carries
``MARKER`` (``OWNER_ENV``, set while Ray starts), or when it holds a file under ``TEMP_DIR`` open:
Ray's agents retitle themselves with a ``setproctitle`` that zeroes their environment, but each
keeps its logs in the cluster's session folder. When the driver is gone (this process's parent is
no longer the driver: even after a SIGKILL) or asks for it (SIGTERM, at a normal close), the
reaper SIGKILLs every process of the cluster (Ray's agents ignore SIGTERM) until several looks in
a row find none, removes the temporary folder and exits. A cluster given with
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
SWEEP_ROUNDS = 50  # a worker may start while the cluster is being taken down
QUIET_ROUNDS = 3


def _psutil():
    try:
        import psutil
    except ImportError:  # Ray carries its own copy
        import importlib.util

        (ray_dir,) = importlib.util.find_spec("ray").submodule_search_locations
        sys.path.append(os.path.join(ray_dir, "thirdparty_files"))
        import psutil
    return psutil


def _holds_file_under(proc, folder: str) -> bool:
    prefix = folder.rstrip(os.sep) + os.sep
    return any(f.path.startswith(prefix) for f in proc.open_files())


def marked(marker: str, temp_dir: str | None = None, spare: int | None = None) -> list:
    """The processes (other than this one and ``spare``) whose environment carries ``marker``, or
    that hold a file under ``temp_dir`` open."""
    psutil = _psutil()
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.pid in (os.getpid(), spare):
                continue
            if proc.environ().get(OWNER_ENV) == marker or (
                temp_dir and _holds_file_under(proc, temp_dir)
            ):
                found.append(proc)
        except (psutil.Error, OSError):  # gone, or not ours to read
            continue
    return found


def sweep(marker: str, temp_dir: str | None = None, spare: int | None = None) -> None:
    """SIGKILL every process of the cluster but ``spare`` (the driver, which holds Ray's driver
    logs open while it closes) until QUIET_ROUNDS looks in a row find none (at most SWEEP_ROUNDS
    looks): a process may start, or finish retitling itself, while others die."""
    quiet = 0
    for _ in range(SWEEP_ROUNDS):
        procs = marked(marker, temp_dir, spare)
        quiet = 0 if procs else quiet + 1
        if quiet >= QUIET_ROUNDS:
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
    sweep(marker, temp_dir, spare=driver)
    shutil.rmtree(temp_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""The Ray executor: each (model, harness group) is a Ray task (``pip install cnn-bench[ray]``).

Resources follow what is measured. An untimed group (params, flops, depth) asks for one CPU,
so that as many run side by side as the cluster has CPUs. A timed group (throughput,
finetune) asks for a whole GPU when the cluster has GPUs and the run may use them, and
otherwise for a whole node's CPUs (the smallest node's), so that nothing runs beside a
timed measurement. Ray retries a task whose worker died (``MAX_RETRIES``); after that the
task becomes an error row per harness and the sweep goes on.

Which cluster: ``--ray-address`` names one to join (checked reachable first, so that a wrong
address is one line, not a hang), and it is left running at the end. Without it the run
starts a local Ray of its own (``address="local"``: never one it happens to find through
Ray's ``ray_current_cluster`` file or ``RAY_ADDRESS``), in a temporary folder of its own, and
that cluster dies with the run however the run ends: ``close`` stops it, and a reaper
(``bench.executors.reaper``) kills what is left of it when the driver is gone, even after a
SIGKILL.

Workers return records; the driver writes them. A record measured on another machine than
the driver's carries that machine's description (``machine``).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from typing import Any

from bench.environment import machine_info
from bench.errors import ConfigError, error_text
from bench.executors.measure import measure_task
from bench.executors.reaper import OWNER_ENV
from bench.executors.records import error_records
from bench.executors.task import Task
from bench.harness.base import RunConfig

logger = logging.getLogger(__name__)

MAX_RETRIES = 2  # Ray's retries of a task whose worker died, before it becomes an error row
CONNECT_TIMEOUT_S = 10.0  # to reach --ray-address before Ray is asked to join it
REAPER_WAIT_S = 15.0


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "--executor ray needs Ray: pip install 'cnn-bench[ray]' (or 'ray[default]')."
        ) from None
    return ray


def _measure_remote(task: Task) -> tuple[list[dict], dict[str, Any]]:
    """What a Ray worker runs: the task's records, and the machine they were measured on."""
    return measure_task(task), machine_info()


def _warm_up() -> None:
    """Import what every task needs, so that a worker's first model does not pay for it."""
    import fvcore.nn.jit_analysis  # noqa: F401
    import timm  # noqa: F401
    import torch  # noqa: F401


def _same_machine(a: dict, b: dict) -> bool:
    return a.get("id") == b.get("id") and a.get("node") == b.get("node")


def check_reachable(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """A ``ConfigError`` (one line) unless something listens at ``address`` (``auto``: the
    cluster Ray recorded on this machine), within ``timeout_s``."""
    target = address.split("://", 1)[-1]
    hint = ("check --ray-address ('auto' for a cluster started with 'ray start --head'), or "
            "leave it out to start a Ray here.")  # fmt: skip
    try:
        if target == "auto":
            from ray._private.services import canonicalize_bootstrap_address

            target = canonicalize_bootstrap_address("auto") or ""
        host, _, port = target.rpartition(":")
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s):
            pass
    except Exception as e:
        raise ConfigError(f"Cannot reach Ray at {address} ({error_text(e)}); {hint}") from None


class RayExecutor:
    """Tasks on a Ray cluster: ``run.execution.ray_address`` (``auto``, ``host:port``,
    ``ray://host:port``), or a Ray started here with this machine's resources, which dies
    with the run."""

    name = "ray"

    def __init__(self, run: RunConfig, **init_kwargs):
        ray = _import_ray()
        self._ray = ray
        self._started = False
        self._reaper: subprocess.Popen | None = None
        if not ray.is_initialized():
            self._init(run.execution.ray_address, init_kwargs)
        self._remote = ray.remote(max_retries=MAX_RETRIES)(_measure_remote)
        # workers import torch and timm while the driver resolves the models
        warm = ray.remote(num_cpus=1, max_retries=0)(_warm_up)
        self._warming = [warm.remote() for _ in range(int(ray.available_resources().get("CPU", 1)))]
        self._machine = machine_info()
        self._pending: dict[Any, tuple[Task, float]] = {}
        self._timed_options = self._timed_resources(run)

    def _init(self, address: str | None, init_kwargs: dict) -> None:
        kwargs = {"include_dashboard": False, "log_to_driver": logger.isEnabledFor(10)}
        kwargs.update(init_kwargs)
        if address:
            check_reachable(address)
            kwargs["address"] = address
            self._connect(kwargs)
            return
        # a cluster of our own: its processes carry a marker the reaper finds them by
        marker = uuid.uuid4().hex
        temp_dir = tempfile.mkdtemp(
            prefix="cnn-bench-ray-", dir="/tmp" if os.path.isdir("/tmp") else None
        )
        self._reaper = subprocess.Popen(
            [sys.executable, "-m", "bench.executors.reaper", str(os.getpid()), marker, temp_dir],
            stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        kwargs.update(address="local", _temp_dir=temp_dir)
        os.environ[OWNER_ENV] = marker
        try:
            self._connect(kwargs)
        except BaseException:
            self._stop_reaper()
            raise
        finally:
            os.environ.pop(OWNER_ENV, None)

    def _connect(self, kwargs: dict) -> None:
        # Ray installs its own SIGTERM handler (it aborts); the run's own (``bench.cli``: stop
        # as Ctrl-C does, marking the run interrupted) is put back
        on_term = signal.getsignal(signal.SIGTERM)
        try:
            self._ray.init(**kwargs)
            if on_term is not None and threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGTERM, on_term)
        except Exception as e:
            raise ConfigError(
                f"Cannot start or join Ray ({error_text(e)}); check --ray-address "
                "('auto' for a cluster started with 'ray start --head')."
            ) from e
        self._started = True

    def _timed_resources(self, run: RunConfig) -> dict[str, float]:
        """A whole GPU, or a whole node's CPUs on a CPU cluster."""
        total = self._ray.cluster_resources()
        if total.get("GPU", 0) >= 1 and run.device != "cpu":
            return {"num_cpus": 1, "num_gpus": 1}
        cpus = [n["Resources"].get("CPU", 0) for n in self._ray.nodes() if n.get("Alive")]
        return {"num_cpus": max(1, int(min(c for c in cpus if c > 0) if any(cpus) else 1))}

    def options_for(self, task: Task) -> dict[str, float]:
        return dict(self._timed_options) if task.timed else {"num_cpus": 1}

    def submit(self, task: Task, follow_up: bool = False) -> None:
        ref = self._remote.options(**self.options_for(task)).remote(task)
        self._pending[ref] = (task, time.perf_counter())

    def pending(self) -> int:
        return len(self._pending)

    def next_done(self) -> tuple[Task, list[dict]]:
        (ref,), _ = self._ray.wait(list(self._pending), num_returns=1)
        task, start = self._pending.pop(ref)
        try:
            records, machine = self._ray.get(ref)
        except Exception as e:  # the worker died (killed, OOM, node lost) after the retries
            logger.debug("Ray task %s failed: %s", task.key, e)
            reason = type(e).__name__
            message = (
                f"the Ray task failed after {MAX_RETRIES} retries ({reason}): its worker died, "
                "was killed or ran out of memory."
            )
            return task, error_records(task, message, time.perf_counter() - start)
        if not _same_machine(machine, self._machine):
            for r in records:
                r["machine"] = machine
        return task, records

    def close(self) -> None:
        for ref in list(self._pending):
            self._ray.cancel(ref, force=True)
        self._pending.clear()
        if self._started:
            self._started = False
            self._ray.shutdown()
        self._stop_reaper()

    def _stop_reaper(self) -> None:
        """Have the reaper kill what is left of our cluster now, and wait for it."""
        if self._reaper is None:
            return
        reaper, self._reaper = self._reaper, None
        reaper.terminate()
        try:
            reaper.wait(timeout=REAPER_WAIT_S)
        except subprocess.TimeoutExpired:
            reaper.kill()
            reaper.wait()

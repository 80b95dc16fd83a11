"""Run one harness on one model in a child process, with a timeout.

The parent writes the model's spec, the run's configuration and the harness's typed
configuration (pickled, as the Ray executor sends them: configured once, in the parent) and
where the harness lives (``module:Class``) to a file, starts ``python -m
bench.executors.worker IN OUT`` (which runs ``main`` here) in a new session and waits. The child builds the model, runs
the harness and writes back either its measurements or the exception's type, message and
traceback. A crash (no result, a signal) or a hang (killed after
``--model-timeout``) becomes a :class:`WorkerError`, which the runner turns into an error row.
Each model in its own process also keeps one model's memory (fragmentation, caches, peak
RSS) from skewing the next.

The child never outlives its parent: it is told the parent's pid and a watcher thread ends it
(removing its job folder) within a second of the parent's death, even when the parent was
killed with SIGKILL and could clean nothing up; on Linux the kernel also sends it SIGTERM
(``PR_SET_PDEATHSIG``). A job folder whose owner is gone is removed by the next run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

from bench.dist import world_size
from bench.errors import WorkerError, error_text
from bench.harness import HarnessEntry
from bench.harness.base import Job, RunConfig, as_measurements
from bench.storage import atomic_write_bytes

logger = logging.getLogger(__name__)

TMP_PREFIX = "cnn-bench-"
WATCH_INTERVAL_S = 0.5


def should_isolate(harness, run: RunConfig) -> bool:
    """Harnesses that ask for it, unless --no-isolate or under torchrun (WORLD_SIZE > 1)."""
    return bool(getattr(harness, "isolate", False)) and run.execution.isolate and world_size() == 1


def _stderr_tail(path: Path, lines: int = 1) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""
    return " | ".join(text.splitlines()[-lines:]) if text else ""


def run_isolated(
    spec,
    harness: HarnessEntry,
    run: RunConfig,
    config=None,
    timeout: float | None = None,
    measured: dict | None = None,
) -> list:
    """The harness's measurements from a child process; raises WorkerError on any failure."""
    timeout = float(timeout or run.execution.model_timeout_s)
    try:
        spec_bytes = pickle.dumps(spec)
    except Exception as e:
        raise WorkerError(
            f"Cannot send model '{spec.name}' to a subprocess ({e}); pass --no-isolate to "
            "measure it in this process."
        ) from e
    payload = _payload(spec_bytes, harness, run, config, measured)
    remove_stale_job_folders()
    with tempfile.TemporaryDirectory(prefix=f"{TMP_PREFIX}{os.getpid()}-") as tmp:
        tmp = Path(tmp)
        payload["job_dir"] = str(tmp)
        job_in, result_out, err = tmp / "job.pkl", tmp / "result.pkl", tmp / "stderr.txt"
        job_in.write_bytes(pickle.dumps(payload))
        with open(err, "wb") as err_f:
            proc = subprocess.Popen(
                [sys.executable, "-m", "bench.executors.worker", str(job_in), str(result_out)],
                stdin=subprocess.DEVNULL, stdout=err_f, stderr=err_f, start_new_session=True,
            )  # fmt: skip
            try:
                code = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill(proc)
                raise WorkerError(
                    f"no result after {timeout:g} s; the worker was killed. Raise "
                    "--model-timeout or measure a smaller configuration."
                ) from None
            except BaseException:  # Ctrl-C: take the child down with us
                _kill(proc)
                raise
        for line in err.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.strip():
                logger.warning("[%s worker] %s", spec.name, line)
        if result_out.exists():
            result = pickle.loads(result_out.read_bytes())
            if result["ok"]:
                return result["measurements"]
            logger.debug("%s/%s failed in its worker:\n%s", spec.name, harness.name,
                         result["traceback"])  # fmt: skip
            raise WorkerError(result["error"])
        raise _died(code, err)


def _payload(spec_bytes: bytes, harness: HarnessEntry, run: RunConfig, config, measured) -> dict:
    """What the child is sent: the harness as "module:Class", so that the child needs no
    registry of its own, and the job's pieces pickled, unpickled once the child has the
    parent's sys.path."""
    return {
        "sys_path": list(sys.path),
        "spec": spec_bytes,
        "harness": harness.target,
        "job": pickle.dumps((run, config, measured or {})),
        "log_level": logging.getLogger("bench").getEffectiveLevel(),
        "parent_pid": os.getpid(),
    }


def _died(code: int, err: Path) -> WorkerError:
    """The error for a child that ended (``code``) without writing a result."""
    if code < 0:
        try:
            how = f"signal {signal.Signals(-code).name}"
        except ValueError:
            how = f"signal {-code}"
    else:
        how = f"exit status {code}"
    tail = _stderr_tail(err)
    return WorkerError(
        f"the worker died ({how}) without a result" + (f"; last output: {tail}" if tail else "")
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_job_folders(root: str | None = None) -> list[Path]:
    """Remove job folders (``cnn-bench-<pid>-*``) whose owning process is gone."""
    removed = []
    for path in Path(root or tempfile.gettempdir()).glob(f"{TMP_PREFIX}*-*"):
        owner = path.name[len(TMP_PREFIX) :].split("-", 1)[0]
        if path.is_dir() and owner.isdigit() and not _alive(int(owner)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _die_with_parent() -> None:
    """Linux: the kernel sends SIGTERM when the parent dies (best effort elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(Exception):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)


def watch_parent(parent_pid: int, job_dir: str | None, interval: float = WATCH_INTERVAL_S):
    """Start a daemon thread that ends this process, and removes ``job_dir``, within
    ``interval`` seconds of the parent's death (its pid no longer our parent's)."""

    def orphaned() -> None:
        if job_dir:
            shutil.rmtree(job_dir, ignore_errors=True)
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(interval)
        orphaned()

    def on_term(signum, frame):
        # PR_SET_PDEATHSIG's signal can come before we are handed to a new parent
        deadline = time.monotonic() + 2
        while os.getppid() == parent_pid and time.monotonic() < deadline:
            time.sleep(0.05)
        if os.getppid() != parent_pid:
            orphaned()
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    _die_with_parent()
    if os.getppid() != parent_pid:  # died before we were watching
        orphaned()
    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def _kill(proc: subprocess.Popen) -> None:
    """Kill the child's whole session (it and anything it started), then reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


def main(argv: list[str]) -> int:
    import faulthandler

    faulthandler.enable()
    job_in, result_out = argv
    with open(job_in, "rb") as f:
        payload = pickle.load(f)
    if payload.get("parent_pid"):
        watch_parent(payload["parent_pid"], payload.get("job_dir"))
    sys.path[:] = payload["sys_path"]
    logging.basicConfig(level=payload["log_level"], format="%(levelname)s %(name)s: %(message)s")
    try:
        import importlib

        module, cls_name = payload["harness"].split(":")
        cls = getattr(importlib.import_module(module), cls_name)
        run, config, measured = pickle.loads(payload["job"])
        job = Job(pickle.loads(payload["spec"]), run, config, measured=measured)
        measurements = as_measurements(cls.name, cls().measure(job))
        result = pickle.dumps({"ok": True, "measurements": measurements})
    except Exception as e:
        error = {"ok": False, "error": error_text(e), "traceback": traceback.format_exc()}
        result = pickle.dumps(error)
    atomic_write_bytes(Path(result_out), result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

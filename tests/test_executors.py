"""Executors, resume and orphans: fake harnesses (no torch) so that each test takes seconds.

The drivers killed here run in subprocesses; the workers import this module by name.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bench.errors import ConfigError
from bench.executors import harness_groups
from bench.harness import HARNESSES, resolve_harness
from bench.harness.base import ExecutionConfig, Measurement, RunConfig
from bench.registry.lookup import ModelSpec
from bench.runner import completed, run
from bench.storage import ResultStore

HERE = Path(__file__).resolve().parent


class CountingHarness:
    """In-process; SIGKILLs its own process for the model named 'dies' when DIE is set, and
    fails for the model named 'flaky' when FAIL is set."""

    name = "counting"

    def measure(self, job):
        if job.spec.name == "dies" and os.environ.get("CNN_BENCH_TEST_DIE"):
            os.kill(os.getpid(), signal.SIGKILL)
        if job.spec.name == "flaky" and os.environ.get("CNN_BENCH_TEST_FAIL"):
            raise RuntimeError("flaky failed this time")
        return [Measurement(config={"k": 1}, metrics={"value": len(job.spec.name)})]


class SleepingHarness:
    """Isolated; writes its pid where CNN_BENCH_TEST_PIDFILE says, then sleeps."""

    name = "sleeping"
    isolate = True

    def measure(self, job):
        Path(os.environ["CNN_BENCH_TEST_PIDFILE"]).write_text(str(os.getpid()))
        time.sleep(600)
        return []


def _spec(name: str) -> ModelSpec:
    return ModelSpec(name=name, source="test", input_size=(1, 8, 8))


@pytest.fixture
def fakes(monkeypatch):
    monkeypatch.setitem(HARNESSES, "counting", f"{__name__}:CountingHarness")
    monkeypatch.setitem(HARNESSES, "sleeping", f"{__name__}:SleepingHarness")


def _driver(tmp_path: Path, body: str, env: dict) -> subprocess.Popen:
    script = tmp_path / "driver.py"
    script.write_text(
        textwrap.dedent(f"""
        import sys
        sys.path[:0] = [{str(HERE)!r}, {str(HERE.parent)!r}]
        from bench.harness import HARNESSES
        HARNESSES["counting"] = "test_executors:CountingHarness"
        HARNESSES["sleeping"] = "test_executors:SleepingHarness"
        from bench.harness.base import RunConfig
        from bench.registry.lookup import ModelSpec
        from bench.runner import run
        from bench.storage import ResultStore
        specs = [ModelSpec(n, "test", (1, 8, 8)) for n in sys.argv[1].split(",")]
        """)
        + textwrap.dedent(body)
    )
    return subprocess.Popen([sys.executable, str(script), *env.pop("ARGV")], env=env)


def test_harness_groups_put_timed_harnesses_alone():
    entries = [resolve_harness(n) for n in ["params", "flops", "depth", "throughput", "finetune"]]
    groups = [(tuple(e.name for e in g), timed) for g, timed in harness_groups(entries)]
    assert groups == [
        (("params", "flops", "depth"), False),
        (("throughput",), True),
        (("finetune",), True),
    ]


def test_resume_measures_the_rest_once_after_sigkill(fakes, tmp_path):
    """The driver dies by SIGKILL halfway; --resume completes the same run, nothing twice."""
    names = ["a", "bb", "dies", "dddd", "eeeee"]
    env = {**os.environ, "CNN_BENCH_TEST_DIE": "1", "ARGV": [",".join(names)]}
    body = f"run(specs, ['counting'], RunConfig(), ResultStore({str(tmp_path)!r}))\n"
    proc = _driver(tmp_path, body, env)
    assert proc.wait(timeout=120) == -signal.SIGKILL
    (path,) = ResultStore(tmp_path).files()
    before = json.loads(path.read_text())
    assert before["status"] == "running"
    assert [r["model"] for r in before["records"]] == ["a", "bb"]

    store = ResultStore(tmp_path)
    doc = run([_spec(n) for n in names], ["counting"], RunConfig(execution=ExecutionConfig(resume=True)), store,
              resume=store.open_run())  # fmt: skip
    assert doc.path == path
    after = json.loads(path.read_text())
    assert after["status"] == "complete"
    assert after["run_id"] == before["run_id"]
    assert len(after["resumed_utc"]) == 1
    assert sorted(r["model"] for r in after["records"]) == sorted(names)  # each once
    assert set(completed(after["records"])) == set(names)


def test_resume_supersedes_the_failed_records_it_measures_again(fakes, tmp_path, monkeypatch):
    """A failed (model, harness) measured again by --resume: its error row stays in the file,
    marked superseded, and neither the reports nor a further --resume see it."""
    from bench.report.records import read_records

    store = ResultStore(tmp_path)
    monkeypatch.setenv("CNN_BENCH_TEST_FAIL", "1")
    first = run([_spec("a"), _spec("flaky")], ["counting"], RunConfig(), store)
    assert [r["status"] for r in first.records] == ["ok", "error"]
    assert set(completed(first.records)) == {"a"}

    monkeypatch.delenv("CNN_BENCH_TEST_FAIL")
    resumed = RunConfig(execution=ExecutionConfig(resume=True))
    run([_spec("a"), _spec("flaky")], ["counting"], resumed, store, resume=store.open_run())
    stored = json.loads(first.path.read_text())["records"]
    assert [(r["model"], r["status"], r.get("superseded", False)) for r in stored] == [
        ("a", "ok", False), ("flaky", "error", True), ("flaky", "ok", False)]  # fmt: skip
    assert set(completed(stored)) == {"a", "flaky"}
    latest = read_records(tmp_path).latest
    assert sorted(zip(latest["model"], latest["status"], strict=True)) == [
        ("a", "ok"), ("flaky", "ok")]  # fmt: skip

    again = run([_spec("a"), _spec("flaky")], ["counting"], resumed, store, resume=store.open_run())
    assert len(again.records) == 3  # nothing left to measure


def test_resume_refuses_a_run_measured_otherwise(fakes, tmp_path):
    store = ResultStore(tmp_path)
    first = run([_spec("a")], ["counting"], RunConfig(), store)
    with pytest.raises(ConfigError, match="other run options"):
        run([_spec("a")], ["counting"], RunConfig(img_size=64), store,
            resume=store.open_run(first.header["run_id"]))  # fmt: skip


def test_isolated_worker_dies_with_its_killed_driver(fakes, tmp_path):
    """SIGKILL the driver: its isolated worker stops within seconds, its folder goes."""
    pidfile, tmpdir = tmp_path / "worker.pid", tmp_path / "tmp"
    tmpdir.mkdir()
    env = {**os.environ, "CNN_BENCH_TEST_PIDFILE": str(pidfile), "TMPDIR": str(tmpdir),
           "ARGV": ["m"]}  # fmt: skip
    body = f"run(specs, ['sleeping'], RunConfig(), ResultStore({str(tmp_path / 'r')!r}))\n"
    proc = _driver(tmp_path, body, env)
    try:
        deadline = time.monotonic() + 60
        while not pidfile.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert pidfile.exists(), "the driver started no isolated worker within 60 s"
        worker = int(pidfile.read_text())
        assert list(tmpdir.glob("cnn-bench-*"))
    finally:  # a failed start must not leave the driver (and its worker) running
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(worker), "the isolated worker outlived its driver by 10 s"
    assert not list(tmpdir.glob("cnn-bench-*"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (exited, not yet reaped by init) counts as gone
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ")[-1].startswith("Z"))


@pytest.fixture
def local_ray(fakes):
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent)]),
                                       "CNN_BENCH_TEST_DIE": "1"}})  # fmt: skip
    yield ray
    ray.shutdown()


@pytest.mark.ray
def test_ray_gives_the_local_records_and_a_killed_worker_is_an_error_row(local_ray, tmp_path):
    names = ["a", "bb", "dies", "dddd"]
    specs = [_spec(n) for n in names]
    local = run([s for s in specs if s.name != "dies"], ["counting"], RunConfig(),
                ResultStore(tmp_path / "local"))  # fmt: skip
    on_ray_config = RunConfig(execution=ExecutionConfig(executor="ray"))
    on_ray = run(specs, ["counting"], on_ray_config, ResultStore(tmp_path / "ray"))
    rows = {r["model"]: r for r in on_ray.records}
    assert set(rows) == set(names)
    assert rows["dies"]["status"] == "error"
    assert "Ray task failed" in rows["dies"]["error"]
    assert "\n" not in rows["dies"]["error"]
    for r in local.records:
        assert {k: rows[r["model"]][k] for k in ("status", "config", "metrics", "device")} == {
            k: r[k] for k in ("status", "config", "metrics", "device")
        }
        assert "machine" not in rows[r["model"]]  # measured on the driver's own machine
    assert on_ray.header["status"] == "complete"


def test_ray_missing_is_one_line_naming_the_extra(monkeypatch, tmp_path, capsys):
    from bench.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    code = main(["run", "--models", "lenet5", "--harness", "params", "--executor", "ray",
                 "--out", str(tmp_path)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert "cnn-bench[ray]" in err
    assert err.count("\n") == 1


def test_the_executor_name_is_checked_where_the_run_is_configured():
    """An unknown executor is refused when the run's configuration is made (from options or a
    stored run's), naming the choices; a known one passes, and is the one opened."""
    from bench.executors import LocalExecutor, open_executor

    with pytest.raises(ConfigError, match="--executor nowhere: expected one of local, ray"):
        ExecutionConfig(executor="nowhere")
    with pytest.raises(ConfigError, match="--executor nowhere"):
        RunConfig.from_dict({"executor": "nowhere"})
    assert ExecutionConfig(executor="ray").executor == "ray"
    with open_executor(RunConfig(execution=ExecutionConfig(executor="local"))) as executor:
        assert isinstance(executor, LocalExecutor)


def test_catalogues_and_exclude():
    from bench.registry import Registry

    registry = Registry()
    names = [s.name for s in registry.resolve("timm:resnet1*", exclude=["resnet10*"])]
    assert "resnet18" in names
    assert not [n for n in names if n.startswith("resnet10")]
    tv = [s.name for s in registry.resolve("torchvision:alex*")]
    assert tv == ["torchvision:alexnet"]
    with pytest.raises(ConfigError, match="--exclude removed them all"):
        registry.resolve("lenet5", exclude=["lenet*"])


def test_progress_is_plain_lines_off_a_terminal():
    import io

    from bench.progress import Progress

    out = io.StringIO()
    p = Progress(2, stream=out)
    p.update("a", "ok", False)
    p.update("b", "1 failed", True)
    assert out.getvalue() == "[1/2] a: ok\n[2/2] b: 1 failed\n"
    assert p.failed == 1
    assert p.done == p.total  # nothing left


# The Ray floors, run as a user would: ``python -m bench run --executor ray`` in a subprocess.
# Every process of a driver's run (Ray's own included) inherits RUN_ENV, which finds them.
RUN_ENV = "CNN_BENCH_TEST_RUN"
TINY = "lenet5,simple_cnn,conv_1x1,conv_depthwise"  # the throughput harness: one at a time


def _bench(*args: str) -> list[str]:
    return [sys.executable, "-m", "bench", *args]


def _bench_env(tag: str, **extra: str) -> dict[str, str]:
    path = os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, RUN_ENV: tag, **extra}


RAY_FOLDERS = "/tmp/cnn-bench-ray-"  # where a run's own Ray keeps its session (bench.executors.ray)


def _ray_folders() -> set[str]:
    return {str(p) for p in Path("/tmp").glob("cnn-bench-ray-*")}


def _holds_new_ray_file(proc: Path, old_folders: set[str]) -> bool:
    """Whether the process holds a file open in a run's Ray folder made since ``old_folders``
    (Ray's agents zero their environment when they retitle themselves, so RUN_ENV misses them)."""
    for fd in (proc / "fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        folder = target[: target.find("/", len(RAY_FOLDERS))]
        if target.startswith(RAY_FOLDERS) and folder not in old_folders:
            return True
    return False


def _processes_of(tag: str, old_folders: set[str] | None = None) -> list[int]:
    """The live pids whose environment carries ``RUN_ENV=tag``, or (given ``old_folders``) that
    hold a file in a run's Ray folder which is not one of them (zombies do not count)."""
    needle = f"{RUN_ENV}={tag}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            ours = needle in (proc / "environ").read_bytes().split(b"\0") or (
                old_folders is not None and _holds_new_ray_file(proc, old_folders)
            )
            if ours and _alive(int(proc.name)):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def _describe(pids: list[int]) -> str:
    """Each pid's command line and parent, for a failure message that says who was left."""
    lines = []
    for pid in pids:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:160]
            ppid = Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].split()[1]
        except OSError:
            cmd, ppid = "(gone)", "?"
        lines.append(f"{pid} (parent {ppid}): {cmd}")
    return "; ".join(lines)


def _records(out: Path) -> list[dict]:
    files = list(out.glob("*/*.json"))
    return json.loads(files[0].read_text())["records"] if files else []


@pytest.mark.ray
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigkill_of_a_ray_driver_leaves_nothing_and_resume_completes(tmp_path):
    pytest.importorskip("ray")
    out, tag, old_folders = tmp_path / "r", f"sigkill-{os.getpid()}", _ray_folders()
    args = ["run", "--models", TINY, "--harness", "params,throughput", "--device", "cpu",
            "--batch-size", "2", "--min-time", "0.2", "--no-retry", "--executor", "ray",
            "--out", str(out), "--no-progress"]  # fmt: skip
    driver = subprocess.Popen(_bench(*args), env=_bench_env(tag), stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and driver.poll() is None:
        if any(r["harness"] == "throughput" for r in _records(out)):
            break
        time.sleep(0.2)
    assert driver.poll() is None, "the sweep ended before it could be killed"
    measured_before = {(r["model"], r["harness"]) for r in _records(out)}
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    deadline = time.monotonic() + 15
    while _processes_of(tag, old_folders) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = _processes_of(tag, old_folders)
    assert left == [], f"processes of the killed run outlived it by 15 s: {_describe(left)}"

    resumed = subprocess.run(_bench("run", "--resume", "--executor", "ray", "--device", "cpu",
                                    "--batch-size", "2", "--min-time", "0.2", "--no-retry",
                                    "--out", str(out), "--no-progress"),
                             env=_bench_env(tag), capture_output=True, text=True, timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    records = _records(out)
    keys = [(r["model"], r["harness"]) for r in records]
    assert len(keys) == len(set(keys)) == 8  # 4 models x 2 harnesses, each measured once
    assert measured_before < set(keys)
    assert all(r["status"] == "ok" for r in records)
    assert _processes_of(tag, old_folders) == []  # a normal end leaves nothing either


@pytest.mark.ray
def test_a_dead_cluster_left_behind_is_not_joined(tmp_path):
    """Ray's own way to find a cluster (its address file, RAY_ADDRESS) points at a dead one:
    a run without --ray-address starts its own and completes."""
    pytest.importorskip("ray")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    ray_tmp = tmp_path / "raytmp"
    (ray_tmp / "ray").mkdir(parents=True)
    (ray_tmp / "ray" / "ray_current_cluster").write_text(dead)  # where `ray start` records it
    env = _bench_env(f"dead-{os.getpid()}", RAY_TMPDIR=str(ray_tmp), RAY_ADDRESS=dead)
    ran = subprocess.run(_bench("run", "--models", "lenet5", "--harness", "params", "--executor",
                                "ray", "--out", str(tmp_path / "r"), "--no-progress"),
                         env=env, capture_output=True, text=True, timeout=180)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert [r["status"] for r in _records(tmp_path / "r")] == ["ok"]


def test_an_unreachable_ray_address_is_one_line_and_exit_2(tmp_path):
    pytest.importorskip("ray")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    start = time.monotonic()
    ran = subprocess.run(_bench("run", "--models", "lenet5", "--harness", "params", "--executor",
                                "ray", "--ray-address", dead, "--out", str(tmp_path)),
                         env=_bench_env("unreachable"), capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    assert time.monotonic() - start < 60
    assert ran.returncode == 2
    assert ran.stderr.count("\n") == 1, ran.stderr
    assert dead in ran.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_reaper_kills_what_carries_the_marker_or_holds_a_file_in_the_cluster_folder(tmp_path):
    """A Ray agent zeroes its environment when it retitles itself; its open log file still says
    whose it is. A process with neither is not touched, nor the driver, which is spared."""
    from bench.executors.reaper import OWNER_ENV, sweep

    folder = tmp_path / "cluster"
    folder.mkdir()
    hold = (
        "import sys, time; f = open(sys.argv[1], 'w'); print('ready', flush=True); time.sleep(60)"
    )
    env = {k: v for k, v in os.environ.items() if k != OWNER_ENV}
    cases = {  # what the process is: (environment, the file it holds open)
        "marked": ({**env, OWNER_ENV: "m1"}, tmp_path / "elsewhere.log"),
        "holds a cluster file": (env, folder / "agent.log"),
        "another marker": ({**env, OWNER_ENV: "m2"}, tmp_path / "other.log"),
        "the driver": (env, folder / "driver.log"),
    }
    procs = {}
    for name, (proc_env, path) in cases.items():
        procs[name] = subprocess.Popen([sys.executable, "-c", hold, str(path)], env=proc_env,
                                       stdout=subprocess.PIPE, text=True)  # fmt: skip
        assert procs[name].stdout.readline().strip() == "ready"
    try:
        sweep("m1", str(folder), spare=procs["the driver"].pid)
        for name in ("marked", "holds a cluster file"):
            assert procs[name].wait(timeout=5) == -signal.SIGKILL, name
        assert procs["another marker"].poll() is None
        assert procs["the driver"].poll() is None
    finally:
        for proc in procs.values():
            proc.kill()
            proc.wait()
            proc.stdout.close()

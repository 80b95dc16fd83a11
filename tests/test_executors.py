"""Executors, resume and orphans: fake harnesses (no torch) so that each test takes seconds.

The drivers killed here run in subprocesses; the workers import this module by name.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bench.errors import ConfigError
from bench.executors import harness_groups
from bench.harness import HARNESSES
from bench.harness.base import Measurement, RunConfig
from bench.registry.lookup import ModelSpec
from bench.runner import completed, run
from bench.storage import ResultStore

HERE = Path(__file__).resolve().parent


class CountingHarness:
    """In-process; SIGKILLs its own process for the model named 'dies' when DIE is set."""

    name = "counting"

    def measure(self, job):
        if job.spec.name == "dies" and os.environ.get("CNN_BENCH_TEST_DIE"):
            os.kill(os.getpid(), signal.SIGKILL)
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
    groups = harness_groups(["params", "flops", "depth", "throughput", "finetune"])
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
    doc = run([_spec(n) for n in names], ["counting"], RunConfig(resume=True), store,
              resume=store.open_run())  # fmt: skip
    assert doc.path == path
    after = json.loads(path.read_text())
    assert after["status"] == "complete"
    assert after["run_id"] == before["run_id"]
    assert len(after["resumed_utc"]) == 1
    assert sorted(r["model"] for r in after["records"]) == sorted(names)  # each once
    assert set(completed(after["records"])) == set(names)


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
    deadline = time.monotonic() + 60
    while not pidfile.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    worker = int(pidfile.read_text())
    assert list(tmpdir.glob("cnn-bench-*"))
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
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
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
    on_ray = run(specs, ["counting"], RunConfig(executor="ray"), ResultStore(tmp_path / "ray"))
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

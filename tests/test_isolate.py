"""Process isolation: a raise, a crash and a hang in a worker each become a row.

A fake harness (no torch, so each worker starts in well under a second) stands in for the
throughput harness; the workers import this module by name, so everything here that the
child needs lives at module level.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from bench.errors import WorkerError
from bench.executors.isolate import run_isolated, should_isolate
from bench.harness import HARNESSES, resolve_harness
from bench.harness.base import ExecutionConfig, Measurement, RunConfig
from bench.registry.lookup import ModelSpec
from bench.runner import run
from bench.storage import ResultStore


class FakeHarness:
    """Behaves according to the model's name."""

    name = "fake"
    isolate = True

    def measure(self, job):
        what = job.spec.name
        if what == "raises":
            raise ValueError("this model raises on purpose")
        if what == "crashes":
            os.kill(os.getpid(), signal.SIGKILL)
        if what == "exits":
            os._exit(3)
        if what == "hangs":
            time.sleep(600)
        return [Measurement(config={"pid": os.getpid()}, metrics={"value": 1})]


class InProcessHarness(FakeHarness):
    isolate = False


def _spec(name: str) -> ModelSpec:
    return ModelSpec(name=name, source="test", input_size=(1, 8, 8))


@pytest.fixture
def fake_harness(monkeypatch):
    monkeypatch.setitem(HARNESSES, "fake", f"{__name__}:FakeHarness")
    monkeypatch.setitem(HARNESSES, "inproc", f"{__name__}:InProcessHarness")
    return "fake"


def test_should_isolate_rules(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert should_isolate(FakeHarness(), RunConfig())
    assert not should_isolate(FakeHarness(), RunConfig(execution=ExecutionConfig(isolate=False)))
    assert not should_isolate(InProcessHarness(), RunConfig())
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert not should_isolate(FakeHarness(), RunConfig())


def test_measures_in_another_process(fake_harness):
    (m,) = run_isolated(_spec("ok"), resolve_harness("fake"), RunConfig(), timeout=60)
    assert m.metrics == {"value": 1}
    assert m.config["pid"] != os.getpid()


def test_exception_comes_back_with_its_message(fake_harness):
    with pytest.raises(WorkerError, match="ValueError: this model raises on purpose"):
        run_isolated(_spec("raises"), resolve_harness("fake"), RunConfig(), timeout=60)


def test_unpicklable_model_says_what_to_do(fake_harness):
    spec = ModelSpec(name="lambda", source="test", input_size=(1, 8, 8), builder=lambda **k: None)
    with pytest.raises(WorkerError, match="--no-isolate"):
        run_isolated(spec, resolve_harness("fake"), RunConfig(), timeout=60)


def test_raise_crash_and_hang_become_rows_and_the_run_goes_on(fake_harness, tmp_path):
    names = ["ok", "raises", "crashes", "exits", "hangs", "ok2"]
    start = time.perf_counter()
    doc = run(
        [_spec(n) for n in names],
        ["fake"],
        RunConfig(execution=ExecutionConfig(model_timeout_s=5)),
        ResultStore(tmp_path),
    )
    assert time.perf_counter() - start < 60
    rows = {r["model"]: r for r in doc.records}
    assert list(rows) == names
    assert rows["ok"]["status"] == rows["ok2"]["status"] == "ok"
    errors = {n: rows[n]["error"] for n in names if rows[n]["status"] == "error"}
    assert set(errors) == {"raises", "crashes", "exits", "hangs"}
    assert "ValueError: this model raises on purpose" in errors["raises"]
    assert "SIGKILL" in errors["crashes"]
    assert "exit status 3" in errors["exits"]
    assert "no result after 5 s" in errors["hangs"]
    assert "--model-timeout" in errors["hangs"]
    # every error row is one line
    assert all("\n" not in e for e in errors.values())


def test_no_isolate_runs_in_this_process(fake_harness, tmp_path):
    doc = run(
        [_spec("ok")],
        ["fake"],
        RunConfig(execution=ExecutionConfig(isolate=False)),
        ResultStore(tmp_path),
    )
    assert doc.records[0]["config"]["pid"] == os.getpid()

from __future__ import annotations

import json
import logging

import pytest

from bench.harness.base import RunConfig
from bench.registry.lookup import Registry
from bench.runner import run
from bench.storage import SCHEMA_VERSION, ResultStore, atomic_write_text


def _run(specs, store, **kw):
    return run(specs, ["params", "depth"], RunConfig(), store, **kw)


def test_document_carries_its_environment(tmp_path):
    specs = Registry().resolve("lenet5")
    doc = _run(specs, ResultStore(tmp_path))
    saved = json.loads(doc.path.read_text())
    assert saved["schema_version"] == SCHEMA_VERSION
    assert saved["tool"]["name"] == "cnn-bench"
    assert saved["status"] == "complete"
    assert saved["started_utc"].endswith("Z")
    assert saved["finished_utc"].endswith("Z")
    for key in ("python", "torch", "torchvision", "timm", "fvcore"):
        assert saved["versions"][key]
    assert saved["machine"]["cores"]
    assert saved["machine"]["cpu"]
    assert saved["config"]["models"] == ["lenet5"]
    assert saved["config"]["harnesses"] == [
        "params",
        "depth",
    ]
    assert doc.path.parent.parent == tmp_path  # grouped by machine
    assert [(r["model"], r["harness"], r["status"]) for r in saved["records"]] == [
        ("lenet5", "params", "ok"), ("lenet5", "depth", "ok"),
    ]  # fmt: skip


def test_failing_model_is_a_row_and_the_run_goes_on(tmp_path, plugin_path):
    specs = Registry().resolve("broken_model,tiny_mlp")
    doc = _run(specs, ResultStore(tmp_path))
    rows = [(r["model"], r["harness"], r["status"]) for r in doc.records]
    assert rows == [
        ("broken_model", "params", "error"), ("broken_model", "depth", "error"),
        ("tiny_mlp", "params", "ok"), ("tiny_mlp", "depth", "ok"),
    ]  # fmt: skip
    assert doc.records[0]["error"] == "RuntimeError: this model cannot be built"


def test_interrupted_run_keeps_what_was_measured(tmp_path, plugin_path):
    specs = Registry().resolve("tiny_mlp,lenet5,simple_cnn")

    def stop_after_first(spec, records):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _run(specs, ResultStore(tmp_path), on_model=stop_after_first)
    (path,) = tmp_path.glob("*/*.json")
    saved = json.loads(path.read_text())
    assert saved["status"] == "interrupted"
    assert {r["model"] for r in saved["records"]} == {"tiny_mlp"}
    assert not list(tmp_path.glob("*/.*.tmp"))


def test_runs_are_append_only(tmp_path):
    specs = Registry().resolve("lenet5")
    first = _run(specs, ResultStore(tmp_path))
    before = first.path.read_bytes()
    second = _run(specs, ResultStore(tmp_path))
    assert second.path != first.path
    assert first.path.read_bytes() == before
    assert len(list(ResultStore(tmp_path).load())) == 2


def test_unreadable_files_are_skipped_with_a_warning(tmp_path, caplog):
    good = tmp_path / "m" / "good.json"
    atomic_write_text(good, json.dumps({"schema_version": 1, "records": []}))
    atomic_write_text(tmp_path / "m" / "torn.json", '{"records": [')
    atomic_write_text(tmp_path / "m" / "other.json", '["not", "a", "run"]')
    atomic_write_text(
        tmp_path / "m" / "future.json", json.dumps({"schema_version": 99, "records": []})
    )
    with caplog.at_level(logging.WARNING, logger="bench.storage"):
        docs = list(ResultStore(tmp_path).load())
    assert [d["_path"] for d in docs] == ["m/good.json"]
    for name in ("torn.json", "other.json", "future.json"):
        assert any(name in r.getMessage() for r in caplog.records), name


def test_non_main_ranks_do_not_write(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    _run(Registry().resolve("lenet5"), ResultStore(tmp_path))
    assert not list(tmp_path.rglob("*.json"))

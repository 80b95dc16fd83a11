"""``run --resume RUN_ID`` alone takes the run's own options from its document (``argv``);
an option given now that differs from the run's is still refused (exit 2, one line)."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli

from bench.cli import main
from bench.cli.resume import explicit_options, resumed_args, stored_options
from bench.storage import ResultStore

FIRST = ["run", "--models", "lenet5,simple_cnn", "--harness", "params,flops", "--img-size", "56",
         "--device", "cpu", "--no-isolate"]  # fmt: skip


@pytest.fixture
def interrupted(tmp_path):
    """A run of two models with non-default options, cut short: simple_cnn's records are
    gone and the run reads 'interrupted'. Returns (store, run id, document path)."""
    store = tmp_path / "results"
    assert main([*FIRST, "--out", str(store)]) == 0
    (path,) = store.glob("*/*.json")
    doc = json.loads(path.read_text())
    assert doc["argv"] == [*FIRST, "--out", str(store)]  # the argv given, not this process's
    doc["records"] = [r for r in doc["records"] if r["model"] != "simple_cnn"]
    doc["status"] = "interrupted"
    path.write_text(json.dumps(doc))
    return store, doc["run_id"], path


def test_resume_alone_completes_the_run_with_its_own_options(interrupted):
    store, run_id, path = interrupted
    done = run_cli("run", "--resume", run_id, "--out", str(store))  # python -m bench
    assert done.returncode == 0, done.stderr
    assert "measuring 1." in done.stderr
    doc = json.loads(path.read_text())
    assert doc["status"] == "complete"
    measured = {(r["model"], r["harness"]) for r in doc["records"]}
    assert measured == {(m, h) for m in ("lenet5", "simple_cnn") for h in ("params", "flops")}
    flops = [r for r in doc["records"] if r["harness"] == "flops"]
    assert [r["config"]["img_size"] for r in flops] == [56, 56]  # the run's --img-size
    assert doc["config"]["run"]["device"] == "cpu"


@pytest.mark.parametrize(
    ("given", "named"),
    [(["--img-size", "64"], "img_size"), (["--device", "auto"], "device")],  # auto: the default
)
def test_an_option_given_now_that_differs_is_refused(interrupted, capsys, given, named):
    store, run_id, path = interrupted
    before = path.read_text()
    assert main(["run", "--resume", run_id, "--out", str(store), *given]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"other run options ({named})" in err
    assert path.read_text() == before  # nothing written


def test_the_same_option_given_again_is_accepted(interrupted):
    store, run_id, path = interrupted
    assert main(["run", "--resume", run_id, "--out", str(store), "--img-size", "56"]) == 0
    assert json.loads(path.read_text())["status"] == "complete"


def test_explicit_options_count_a_value_equal_to_the_default():
    given = explicit_options(["run", "--resume", "abc", "--device", "auto", "--batch-size=8"])
    assert given == {"resume": "abc", "device": "auto", "batch_sizes": [8]}
    assert explicit_options(["--debug", "run", "--models", "x"]) == {"models": "x"}


def test_a_document_without_a_run_command_line_leaves_the_options_as_given(tmp_path):
    """An older document, or one a program wrote (its argv is that program's): the options
    given now stand, and the runner's checks judge them."""
    assert stored_options({"argv": ["-q", "tests/test_x.py"]}) is None
    assert stored_options({"argv": ["report"]}) is None
    assert stored_options({}) is None
    now = ["run", "--resume", "abc", "--out", str(tmp_path)]
    from bench.cli.parser import build_parser

    args = build_parser().parse_args(now)
    args.argv = now
    header = {"run_id": "abc", "started_utc": "2026-01-01T00:00:00Z", "machine": {"id": "m"},
              "argv": ["-q"], "config": {}}  # fmt: skip
    doc = ResultStore(tmp_path).new_run(header)
    assert resumed_args(args, doc) is args

"""The command line end to end, on tiny models."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli

from bench.cli import main


def test_run_then_report(tmp_path, capsys):
    store, reports = tmp_path / "results", tmp_path / "reports"
    argv = ["run", "--models", "lenet5,simple_cnn", "--harness", "params,flops,depth"]
    assert main([*argv, "--out", str(store)]) == 0
    out = capsys.readouterr().out
    assert "lenet5" in out
    assert "61,706" in out
    assert "128,714" in out
    assert "measured as" not in out  # no speed was measured, so no configuration to name
    assert main(["report", "--results", str(store), "--out", str(reports)]) == 0
    assert "61,706" in (reports / "models.md").read_text()
    assert "60K / 61.7K" in (reports / "chapter.md").read_text()  # chapter / measured
    assert (reports / "results.csv").read_text().count("\n") == 3


def test_run_summary_names_how_each_speed_was_measured(tmp_path, capsys):
    """A single-stream run's summary states its headline, the p90 latency, beside samples/s."""
    assert main(["run", "--models", "simple_cnn", "--harness", "throughput", "--device", "cpu",
                 "--scenario", "single-stream", "--img-size", "16", "--min-time", "0.01",
                 "--no-isolate", "--no-progress", "--out", str(tmp_path)]) == 0  # fmt: skip
    header, _, row = capsys.readouterr().out.splitlines()[:3]
    assert "| measured as" in header
    assert "| single-stream p90 " in row
    assert " ms bs 1 fp32 nchw eager PyTorch " in row


def test_run_summary_gives_the_reason_a_record_was_skipped():
    """A model whose only speed was skipped (a runtime that cannot run the precision asked for)
    says why instead of an empty row; a measured one has no such cell."""
    from types import SimpleNamespace

    from bench.cli import NOT_MEASURED, _summary_row

    spec = SimpleNamespace(name="m", source="test")
    skipped = {"harness": "throughput", "status": "skipped", "metrics": {}, "config": {},
               "error": "skipped: OpenVINO's CPU plugin has no native fp16 here"}  # fmt: skip
    ok = {"harness": "params", "status": "ok", "metrics": {"params": 10}, "config": {}}
    row = _summary_row(spec, [ok, skipped])
    assert row[NOT_MEASURED] == "throughput: OpenVINO's CPU plugin has no native fp16 here"
    assert row["error"] == ""  # a skip is not a failure: the run's exit status stays 0
    assert NOT_MEASURED not in _summary_row(spec, [ok])


def test_harness_choice_and_img_size(tmp_path):
    store = tmp_path / "results"
    assert main(["run", "--models", "simple_cnn", "--harness", "flops", "--img-size", "56",
                 "--out", str(store)]) == 0  # fmt: skip
    (doc,) = store.glob("*/*.json")
    (rec,) = json.loads(doc.read_text())["records"]
    assert rec["harness"] == "flops"
    assert rec["config"]["img_size"] == 56
    assert json.loads(doc.read_text())["config"]["run"]["img_size"] == 56


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    cases = [
        (["run", "--models", "resnet5", "--out", str(tmp_path)], "Did you mean 'resnet50'"),
        (
            ["run", "--models", "lenet5", "--harness", "speed", "--out", str(tmp_path)],
            "Unknown harness 'speed'",
        ),
        (["run", "--models", "lenet5", "--img-size", "0"], "positive whole number"),
        (["report", "--results", str(tmp_path / "missing")], "No results store"),
        (["list", "zzz*"], "No model matches"),
        (
            [
                "run",
                "--models",
                "lenet5",
                "--harness",
                "finetune",
                "--weights",
                str(tmp_path / "w.pth"),
                "--out",
                str(tmp_path),
            ],
            "no such file",
        ),
        (
            [
                "run",
                "--models",
                "lenet5",
                "--harness",
                "finetune",
                "--dataset",
                f"imagefolder:{tmp_path / 'nope'}",
                "--out",
                str(tmp_path),
            ],
            "is not a folder",
        ),
        (["frobnicate"], "invalid choice"),
    ]
    for harness in ("throughput", "validate"):  # a file or a folder of fine-tune checkpoints
        argv = ["run", "--models", "lenet5", "--harness", harness, "--weights",
                str(tmp_path / "ck"), "--out", str(tmp_path)]  # fmt: skip
        cases.append((argv, "no such file or folder"))
    for argv, text in cases:
        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code
        err = capsys.readouterr().err
        assert code == 2, argv
        assert text in err, (argv, err)
        assert err.strip().count("\n") == 0, err
    assert not list(tmp_path.glob("*/*.json"))  # nothing was measured for bad input


def test_unknown_model_stops_before_anything_is_measured(tmp_path):
    main(["run", "--models", "lenet5,nosuchnet", "--out", str(tmp_path)])
    assert not list(tmp_path.rglob("*.json"))


def test_list_filters_and_shows_sources(capsys):
    assert main(["list", "res*"]) == 0
    out = capsys.readouterr().out
    assert "resnet50 " in out
    assert "resnet50_transfer" in out
    assert "alexnet" not in out
    assert main(["list", "convnext_t*", "--all"]) == 0
    assert "convnext_tiny" in capsys.readouterr().out


def test_module_entry_point_help_and_error():
    help_ = run_cli("--help")
    assert help_.returncode == 0
    assert "run" in help_.stdout
    bad = run_cli("run", "--models", "resnet5")
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert bad.stderr.strip().startswith("error: Unknown model 'resnet5'")


def test_plugin_failure_row_in_cli_run(tmp_path, plugin_path):
    store = tmp_path / "results"
    argv = ["run", "--models", "broken_model,tiny_mlp", "--harness", "params,depth"]
    assert main([*argv, "--out", str(store)]) == 1  # a failed record: exit 1, all kept
    (doc,) = store.glob("*/*.json")
    status = {
        (r["model"], r["harness"]): r["status"] for r in json.loads(doc.read_text())["records"]
    }
    assert status[("broken_model", "params")] == "error"
    assert status[("tiny_mlp", "params")] == "ok"


def test_a_python_without_the_dependencies_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    """`python -m bench` run by another Python than the one cnn-bench was installed in."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n in ("torch", "tabulate") else real(n)
    )
    assert main(["run", "--models", "lenet5", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "lacks cnn-bench's dependencies torch, tabulate" in err
    assert "pip install -e ." in err
    assert not any(tmp_path.iterdir())  # nothing written


def test_harness_all_leaves_out_what_cannot_run_and_says_why():
    """``--harness all`` is every harness that can run with the options given: validate
    without weights is left out with its reason; named explicitly, it stops the run."""
    from bench.errors import ConfigError
    from bench.harness.base import RunConfig
    from bench.runner import harness_configs

    left_out: dict[str, str] = {}
    configs = harness_configs(["params", "validate"], RunConfig(device="cpu"), {}, left_out)
    assert list(configs) == ["params"]
    assert "--pretrained" in left_out["validate"]
    with pytest.raises(ConfigError, match="--pretrained"):
        harness_configs(["params", "validate"], RunConfig(device="cpu"), {})

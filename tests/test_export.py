"""``python -m bench export``: github-action-benchmark's JSON, timm's benchmark CSV and JSON
lines, from the committed fixture store (never results/) or a few synthetic rows."""

from __future__ import annotations

import csv
import json
import math

import pytest
from conftest import STORE, run_cli

from bench.cli import main
from bench.report.export import github_action_benchmark, timm_tables

# timm's benchmark.py writes these first, in this order, for an inference benchmark
TIMM_HEADER = ["model", "infer_samples_per_sec", "infer_step_time", "infer_batch_size",
               "infer_img_size"]  # fmt: skip
H200_RUN = next(STORE.glob("*H200/*.json"))  # one run document: one (device, precision, layout)


def _export(capsys, *args):
    code = main(["export", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_github_action_benchmark_writes_named_entries_with_units(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code, _, err = _export(capsys, STORE, "--format", "github-action-benchmark", "--out", out)
    assert code == 0
    assert str(out) in err
    entries = json.loads(out.read_text())
    assert isinstance(entries, list)
    assert entries
    for e in entries:
        assert {"name", "unit", "value"} <= e.keys()
        assert isinstance(e["value"], float)
        assert e["unit"] in ("samples/s", "%")  # the bigger-is-better file holds no ms
        assert "run_id: " in e["extra"]
        assert "commit: " in e["extra"]
    names = [e["name"] for e in entries]
    assert len(names) == len(set(names)), "two entries share a name"
    assert any(e["unit"] == "samples/s" and e.get("range", "").startswith("± ") for e in entries)
    lenet = [n for n in names if n.startswith("lenet5 throughput [infer 32px batch 16 fp32")]
    assert lenet  # the model, the metric and the workload key in words


def test_smaller_direction_writes_step_times_only(capsys):
    code, out, _ = _export(
        capsys, H200_RUN, "--format", "github-action-benchmark", "--direction", "smaller"
    )
    assert code == 0
    entries = json.loads(out)
    assert entries
    assert {e["unit"] for e in entries} == {"ms"}
    assert all(" on NVIDIA H200" in e["name"] for e in entries)


def _row(**extra) -> dict:
    row = {"model": "lenet5", "harness": "throughput", "device": "cpu", "mode": "infer",
           "img_size": 32, "infer_batch_size": 16, "precision": "fp32", "layout": "nchw",
           "infer_samples_per_sec": 1000.0, "infer_step_time": 16.0, "run_id": "abc12345"}  # fmt: skip
    return {**row, **extra}


def test_range_only_where_the_record_has_a_spread():
    import pandas as pd

    with_spread = github_action_benchmark(pd.DataFrame([_row(cv_pct=10.0, stddev=1.6)]))
    assert with_spread[0]["range"] == "± 100"  # 10% of 1000 samples/s
    without = github_action_benchmark(pd.DataFrame([_row(cv_pct=math.nan, stddev=math.nan)]))
    assert "range" not in without[0]
    ms = github_action_benchmark(pd.DataFrame([_row(cv_pct=10.0, stddev=1.6)]), "smaller")
    assert (ms[0]["unit"], ms[0]["value"], ms[0]["range"]) == ("ms", 16.0, "± 1.6")


def test_timm_csv_writes_timms_header(capsys):
    code, out, _ = _export(capsys, H200_RUN, "--format", "timm-csv")
    assert code == 0
    rows = list(csv.reader(out.splitlines()))
    assert rows[0][: len(TIMM_HEADER)] == TIMM_HEADER
    assert len(rows) > 1
    assert all(r[3].isdigit() and r[4].isdigit() for r in rows[1:])  # whole batch and size


def test_timm_csv_merges_infer_and_train_of_one_model_and_splits_precisions():
    import pandas as pd

    rows = [
        _row(param_count=0.06152),
        _row(mode="train", train_samples_per_sec=300.0, train_step_time=53.3, batch_size=16),
        _row(precision="bf16", infer_samples_per_sec=1500.0),
    ]
    tables = timm_tables(pd.DataFrame(rows))
    assert len(tables) == 2  # fp32 and bf16
    fp32 = next(t for k, t in tables.items() if k[1] == "fp32")
    assert len(fp32) == 1  # inference and training side by side, as timm writes them
    row = fp32.iloc[0]
    assert (row["infer_samples_per_sec"], row["train_samples_per_sec"]) == (1000.0, 300.0)
    assert row["param_count"] == 0.06


def test_timm_csv_of_several_tables_needs_a_stem(tmp_path, capsys):
    code, out, err = _export(capsys, STORE, "--format", "timm-csv")
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert "--out STEM" in err
    code, _, err = _export(capsys, STORE, "--format", "timm-csv", "--out", tmp_path / "b.csv")
    assert code == 0
    files = sorted(tmp_path.glob("b-*.csv"))
    assert len(files) > 1
    assert sorted(str(f) for f in files) == sorted(err.split())
    assert any("NVIDIA-H200-bf16-channels-last-torch" in f.name for f in files)
    for f in files:
        assert f.read_text().splitlines()[0].startswith(",".join(TIMM_HEADER))


def test_jsonl_round_trips_through_pandas(tmp_path, capsys):
    import pandas as pd

    from bench.report.records import read_records
    from bench.report.tidy import tidy

    out = tmp_path / "tidy.jsonl"
    assert _export(capsys, STORE, "--format", "jsonl", "--out", out)[0] == 0
    text = out.read_text()
    assert "NaN" not in text
    assert "null" in text
    back = pd.read_json(out, lines=True, dtype=False)
    table = tidy(read_records(STORE).latest)
    assert list(back.columns) == list(table.columns)
    assert len(back) == len(table)
    pd.testing.assert_series_equal(
        back["infer_samples_per_sec"], table["infer_samples_per_sec"], check_dtype=False
    )
    assert back["model"].tolist() == table["model"].tolist()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["{tmp}/missing", "--format", "jsonl"], "does not exist"),
        (["{tmp}", "--format", "jsonl"], "is not a results store"),
        (["{tmp}/notes.txt", "--format", "jsonl"], "is not a run document"),
        (["{tmp}/bad.json", "--format", "jsonl"], "is not a run document"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, says):
    (tmp_path / "notes.txt").write_text("not a run")
    (tmp_path / "bad.json").write_text("[1, 2]")
    code, out, err = _export(capsys, *[a.format(tmp=tmp_path) for a in args])
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert says in err


def test_unknown_format_is_exit_2(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["export", str(STORE), "--format", "xml"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "invalid choice: 'xml'" in err


def test_an_unreadable_document_is_one_line_from_the_command_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    done = run_cli("export", str(bad), "--format", "jsonl")
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "unreadable" in done.stderr

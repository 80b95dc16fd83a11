"""``python -m bench ab``: two option sets measured alternately in one run (the order, on tiny
models, never their speeds), the two arms split and judged by compare (on seeded synthetic
records), and the bad inputs refused with one line before anything is measured."""

from __future__ import annotations

import json

import pytest
from test_compare_verdicts import sampled_record

from bench.ab import arm_sides, judge_ab, schedule
from bench.cli import main
from bench.compare import parse_thresholds
from bench.storage import ResultStore

GATE = "infer_samples_per_sec:-10%"
TINY = ["--threads", "1", "--min-time", "0.05", "--min-steps", "3", "--batch-size", "4",
        "--device", "cpu", "--no-isolate", "--no-progress"]  # fmt: skip


# -- the order -------------------------------------------------------------------------------
def _arms_of(plan, model):
    return "".join("AB"[a] for _, m, a in plan if m == model)


def test_each_model_is_measured_a_b_b_a():
    assert _arms_of(schedule(["m"], 4), "m") == "ABBAABBA"
    plan = schedule(["m", "n"], 2)
    assert [(m, "AB"[a]) for _, m, a in plan] == [("m", "A"), ("m", "B"), ("n", "A"),
                                                  ("n", "B"), ("n", "B"), ("n", "A"),
                                                  ("m", "B"), ("m", "A")]  # fmt: skip


def test_an_even_number_of_rounds_puts_each_arm_first_as_often_and_as_late_on_average():
    plan = schedule(["m", "n", "o"], 4)
    for model in "mno":
        slots = [i for i, (_, m, _) in enumerate(plan) if m == model]
        arms = [a for _, m, a in plan if m == model]
        mean = [sum(s for s, a in zip(slots, arms, strict=True) if a == x) / 4 for x in (0, 1)]
        assert mean[0] == mean[1]  # a linear drift adds as much to A as to B


def test_the_command_measures_abba_in_one_run_and_judges_every_model(tmp_path, capsys):
    out = tmp_path / "results"
    code = main(["ab", "--models", "lenet5,simple_cnn", "--a", "", "--b=--channels-last",
                 "--rounds", "2", "--out", str(out), *TINY])  # fmt: skip
    assert code == 0
    stdout, stderr = capsys.readouterr()
    (path,) = out.glob("*/*.json")
    doc = json.loads(path.read_text())
    order = doc["config"]["ab"]["order"]
    for model in ("lenet5", "simple_cnn"):
        assert "".join(arm for m, arm in order if m == model) == "ABBA"
    assert order[:2] == [["lenet5", "A"], ["lenet5", "B"]]
    assert doc["config"]["ab"]["arms"]["B"]["options"] == ["--channels-last"]
    by_arm = {(r["model"], r["config"]["ab"]): r for r in doc["records"]}
    assert set(by_arm) == {(m, x) for m in ("lenet5", "simple_cnn") for x in "AB"}
    assert by_arm[("lenet5", "B")]["config"]["layout"] == "channels_last"
    assert by_arm[("lenet5", "A")]["config"]["layout"] == "nchw"
    assert all(len(r["metrics"]["rounds_samples_per_sec"]) == 2 for r in doc["records"])
    assert "Base: A: (defaults)" in stdout
    assert "New:  B: --channels-last" in stdout
    for model in ("lenet5", "simple_cnn"):
        (line,) = [ln for ln in stdout.splitlines()
                   if f"| {model} " in ln and "infer_samples_per_sec" in ln]  # fmt: skip
        verdict = line.split("|")[7].strip()
        assert verdict  # judged: better, worse, not significant or untrusted: re-measure
    assert f"results: {path}" in stderr


# -- bad input: one line, exit 2, nothing measured -------------------------------------------
@pytest.mark.parametrize(
    ("arms", "says"),
    [
        (["--a", "--threads 1", "--b", "--threads 1"], "measure the same"),
        (["--a", "", "--b", "--min-steps 3"], "measure the same"),  # --min-steps 3 is given
        (["--a", "--out x", "--b", ""], "--a: --out is an option of the whole run"),
        (["--a", "", "--b", "--models resnet50"], "--b: --models is an option of the whole run"),
        (["--a", "", "--b", "--harness params"], "--b: --harness is an option of the whole run"),
        (["--a", "", "--b", "--device auto"], "--b: --device is an option of the whole run"),
        (["--a", "", "--b", "--repeats 3"], "--b: --repeats is an option of the whole run"),
        (["--a", "--threads 0", "--b", ""], "--a: argument --threads: expected a positive"),
        (["--a=--no-such-option", "--b", ""], "--a: unrecognized arguments: --no-such-option"),
        (["--a", "'--threads 2", "--b", ""], "quote the options"),
        (["--a", "", "--b=--optimize"], "--optimize"),
        (["--a", "", "--b=--channels-last", "--rounds", "1"], "--rounds 1: ab needs 2 or more"),
    ],
)
def test_bad_arms_are_one_line_and_exit_2(tmp_path, capsys, arms, says):
    out = tmp_path / "results"
    code = main(["ab", "--models", "lenet5", *arms, "--out", str(out), *TINY])
    err = capsys.readouterr().err
    assert code == 2
    assert says in err
    assert len(err.strip().splitlines()) == 1
    assert not list(out.glob("**/*.json"))


def test_ab_measures_the_throughput_harness_only(capsys):
    with pytest.raises(SystemExit) as e:
        main(["ab", "--models", "lenet5", "--a", "", "--b=--channels-last", "--harness",
              "params"])  # fmt: skip
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --harness params" in err
    assert len(err.strip().splitlines()) == 1


# -- judging: the two arms of one document, by compare's tests -------------------------------
def _ab_store(tmp_path, a_speed: float, b_speed: float, b_batch: int | None = None):
    """One A/B run document of seeded records: 4 rounds of 40 steps an arm, 3% drift."""
    a = sampled_record(a_speed, 0.03, 0, 4, 40)
    b = sampled_record(b_speed, 0.03, 1, 4, 40)
    a["config"]["ab"], b["config"]["ab"] = "A", "B"
    if b_batch is not None:
        b["config"]["batch_size"] = b_batch
    arms = {"A": {"options": ["--threads", "2"]}, "B": {"options": ["--threads", "1"]}}
    header = {"run_id": "ab000001", "started_utc": "2026-01-01T00:00:00.000000Z",
              "machine": {"id": "m", "cpu": "Test CPU", "cores": 2}, "versions": {},
              "config": {"ab": {"rounds": 4, "arms": arms, "order": []}}}  # fmt: skip
    doc = ResultStore(tmp_path / "results").new_run(header)
    doc.add([a, b])
    doc.finish("complete", "2026-01-01T00:01:00.000000Z")
    return doc.path


def _speed_row(comparison):
    (row,) = [r for r in comparison.rows if r.metric == "infer_samples_per_sec"]
    return row


def test_a_large_slowdown_of_b_is_worse_and_fails_the_gate(tmp_path):
    result = judge_ab(_ab_store(tmp_path, 100.0, 70.0), parse_thresholds([GATE]))
    row = _speed_row(result)
    assert row.verdict.startswith("worse")
    assert "over 4/4 rounds" in row.test
    assert result.failures
    assert "resnet50 infer_samples_per_sec" in result.failures[0]


def test_two_arms_of_one_speed_stay_quiet(tmp_path):
    result = judge_ab(_ab_store(tmp_path, 100.0, 100.0), parse_thresholds([GATE]))
    assert not _speed_row(result).verdict.startswith(("worse", "better"))
    assert result.failures == []


def test_a_key_the_arms_change_pairs_by_rank_and_shows_both_values(tmp_path):
    a, b = arm_sides(_ab_store(tmp_path, 100.0, 100.0, b_batch=32))
    assert a.entries[0].config == b.entries[0].config
    assert a.entries[0].config["batch_size"] == "16→32"
    assert "ab" not in a.entries[0].config
    assert a.label == "A: --threads 2"
    assert b.label == "B: --threads 1"


def test_a_run_that_is_not_an_ab_run_is_refused(tmp_path):
    from test_compare_verdicts import write_store

    from bench.errors import DataError

    root = write_store(tmp_path / "r", [sampled_record(100.0, 0.03, 0)], "plain001")
    (path,) = root.glob("*/*.json")
    with pytest.raises(DataError, match="not an A/B run"):
        arm_sides(path)


@pytest.mark.parametrize(("b_speed", "code"), [(70.0, 1), (100.0, 0)])
def test_the_command_exits_as_compare_fail_does(tmp_path, capsys, monkeypatch, b_speed, code):
    """The measurement replaced by a synthetic document: what the command does with the
    judgement (its exit status, the regression on stderr)."""
    import bench.ab

    path = _ab_store(tmp_path, 100.0, b_speed)
    doc = ResultStore(tmp_path / "results").open_run()
    assert doc.path == path
    monkeypatch.setattr(bench.ab, "measure_ab", lambda *a, **k: doc)
    assert main(["ab", "--models", "lenet5", "--a", "--threads 2", "--b", "--threads 1",
                 "--fail", GATE, "--out", str(tmp_path / "unused"), *TINY[2:]]) == code  # fmt: skip
    err = capsys.readouterr().err
    assert ("regression: resnet50 infer_samples_per_sec" in err) == (code == 1)


def test_an_interrupted_ab_run_keeps_its_rounds_and_judges_nothing(tmp_path, capsys, monkeypatch):
    import bench.executors.local as local

    calls = []
    real = local.measure_task

    def measure(task):
        calls.append(task.spec.name)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(task)

    monkeypatch.setattr(local, "measure_task", measure)
    out = tmp_path / "results"
    code = main(["ab", "--models", "lenet5", "--a", "", "--b=--channels-last", "--out", str(out),
                 *TINY])  # fmt: skip
    assert code == 130
    stdout, stderr = capsys.readouterr()
    assert "interrupted: the rounds measured were saved" in stderr
    assert "Base:" not in stdout
    (path,) = out.glob("*/*.json")
    doc = json.loads(path.read_text())
    assert doc["status"] == "interrupted"
    assert doc["config"]["ab"]["order"] == [["lenet5", "A"], ["lenet5", "B"]]
    assert sorted(r["config"]["ab"] for r in doc["records"]) == ["A", "B"]

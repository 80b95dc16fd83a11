from __future__ import annotations

import shutil

import pytest
from conftest import REPO, STORE

from bench.report.generate import generate
from bench.report.records import read_records
from bench.report.verdicts import close, parse_stated

FIXTURE = REPO / "tests" / "data" / "results"
GOLDEN = REPO / "tests" / "golden"
GOLDEN_FILES = ("chapter.md", "models.md", "results.csv")


@pytest.fixture
def reports(tmp_path):
    out = tmp_path / "reports"
    generate(FIXTURE, out)
    return out


@pytest.mark.parametrize("name", GOLDEN_FILES)
def test_reports_match_golden_files(reports, name):
    # To update after an intended change:
    #   python -m bench report --results tests/data/results --out tests/golden
    assert (reports / name).read_text() == (GOLDEN / name).read_text()


def test_generating_twice_gives_identical_bytes(tmp_path, reports):
    again = tmp_path / "again"
    generate(FIXTURE, again)
    for name in GOLDEN_FILES:
        assert (again / name).read_bytes() == (reports / name).read_bytes()


def test_latest_record_wins(reports):
    # the fixture's 2020 run says lenet5 has 1 parameter; the later run's figure wins
    csv = (reports / "results.csv").read_text()
    assert "lenet5,chapter,cpu,Fixture · flags not recorded · 2 vCPU,32,0.062,61706," in csv
    assert "broken_model" in (reports / "chapter.md").read_text()


def test_unreadable_result_does_not_stop_reports(tmp_path):
    store = tmp_path / "results"
    shutil.copytree(FIXTURE, store)
    (store / "Linux-x86_64-Fixture-CPU" / "zz_torn.json").write_text("{")
    generate(store, tmp_path / "out")
    assert (tmp_path / "out" / "results.csv").read_text() == (GOLDEN / "results.csv").read_text()


def test_empty_store_gives_empty_reports(tmp_path):
    generate(tmp_path / "none", tmp_path / "out")
    assert "LeNet-5" in (tmp_path / "out" / "chapter.md").read_text()


def test_records_carry_each_runs_provenance():
    records = read_records(FIXTURE)
    assert len(records.runs) == 3
    row = records.history[records.history["run_id"] == "older000"].iloc[0]
    assert (row["run_date"], row["commit"], row["torch"]) == ("2020-01-01", "-", "2.14.1")
    label = "Fixture · flags not recorded · 2 vCPU"  # the fixture recorded no CPU flags
    assert row["machine"] == row["machine_name"] == row["device_name"] == label
    assert row["machine_id"] == "Linux-x86_64-Fixture CPU-flags not recorded-2 vCPU"
    assert records.runs[row["results_file"]].date == "2020-01-01"
    assert len(records.latest) < len(records.history)  # the older lenet5 record is superseded


def test_one_run_document_reads_as_its_own_store():
    (path,) = FIXTURE.glob("*/*_newer000.json")
    records = read_records(path)
    assert set(records.history["run_id"]) == {"newer000"}
    assert list(records.runs) == [path.name]


def test_reports_read_the_store_once(tmp_path, monkeypatch):
    from bench.storage import ResultStore

    reads = []
    load = ResultStore.load
    monkeypatch.setattr(ResultStore, "load", lambda self: reads.append(self.root) or load(self))
    generate(FIXTURE, tmp_path / "out")
    assert reads == [FIXTURE]


@pytest.mark.parametrize(
    ("stated", "value", "ok"),
    [
        ("60K", 61_706, True),  # '60K' is stated to the ten thousand
        ("61M", 61_100_840, True),
        ("6.8M", 6_624_904, False),
        ("25M", 25_557_032, False),  # 25.56M rounds to 26M
        ("138M", 138_357_544, True),
        ("76.1%", 76.13, True),
        ("71.5%", 71.592, False),
        ("-", 5, None),
        ("12", 50, False),
    ],
)
def test_chapter_figures_compared_at_their_stated_precision(stated, value, ok):
    # with no tolerance, only the digits a figure is stated with (tests/test_chapter.py adds it)
    assert close(stated, value, 0.0) is ok


def test_parse_stated():
    assert parse_stated("6.8M") == pytest.approx((6.8e6, 0.05e6))
    assert parse_stated("-") is None


def test_markdown_reports_fit_a_screen(committed_reports):
    from bench.report.fmt import MAX_LINE

    wide, many = [], []
    for path in sorted(committed_reports.glob("*.md")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if len(line) > MAX_LINE:
                wide.append(f"{path.name}:{n}: {len(line)} characters")
            if line.startswith("|") and line.count(" | ") + 1 > 10:
                many.append(f"{path.name}:{n}: {line.count(' | ') + 1} columns")
    assert MAX_LINE == 160
    assert not wide, wide
    assert not many, many


def test_trends_panels_have_at_most_8_series():
    from bench.report.trends import MAX_SERIES, PLOTTED, panels, series

    all_series = series(read_records(STORE))
    assert MAX_SERIES <= 8
    sizes = {m: [len(group) for _, group in panels(all_series, m)] for m in PLOTTED}
    assert any(sizes.values())
    assert all(n <= 8 for group in sizes.values() for n in group), sizes


def test_optimize_rerun_replaces_the_previous_result():
    import pandas as pd

    from bench.report.records import latest

    def rec(run_id, when, winner):
        config = {"batch_size": 16, "mode": "infer", "optimize": True, **winner}
        return {"model": "resnet50", "harness": "throughput", "device": "cpu",
                "device_name": "CPU", "config": config, "config_key": str(sorted(config.items())),
                "finished_utc": when, "run_id": run_id}  # fmt: skip

    frame = pd.DataFrame(
        [
            rec("a", "2026-01-01", {"layout": "channels_last", "compiled": True}),
            rec("b", "2026-01-02", {"layout": "nchw", "runtime": "onnxruntime"}),
        ]
    )
    assert list(latest(frame)["run_id"]) == ["b"]


def test_untrusted_timings_are_named():
    from bench.report.records import untrusted

    assert untrusted({"total_time_s": 2.0, "warmup_stable": True, "cv_pct": 3.0}) == ""
    assert "timed 0.30 s" in untrusted({"total_time_s": 0.3})
    assert "warm-up" in untrusted({"total_time_s": 5.0, "warmup_stable": False})
    assert "vary" in untrusted({"cv_pct": 40.0})
    # rounds that span 30% of their median disagree; 20% is fine, and so is one round alone
    assert "rounds disagree by 30% > 25%" in untrusted({"rounds_samples_per_sec": [85, 100, 115]})
    assert untrusted({"rounds_samples_per_sec": [90.0, 100.0, 110.0]}) == ""
    assert untrusted({"rounds_samples_per_sec": [50.0]}) == ""


def test_a_runs_provenance_names_its_machine_by_label():
    from bench.report.fmt import provenance
    from bench.report.records import Run

    flags = Run("f.json", "r1", "", "complete", "m", "AMD EPYC", "abc", "2.14.1",
                cpu="AMD EPYC", cpu_flags=("avx2", "avx512f", "avx512_vnni"))  # fmt: skip
    assert flags.cpu_features == "AVX-512, VNNI"
    assert Run("f.json", "r1", "", "", "m", "X", "-", "-", cpu_flags=("avx2",)).cpu_features == (
        "no AVX-512, BF16 or VNNI"
    )
    row = {"run_id": "r1", "machine": "AMD EPYC · AVX-512 VNNI · 2 vCPU", "commit": "abc"}
    assert provenance(row.get) == (
        "run `r1`, -, AMD EPYC · AVX-512 VNNI · 2 vCPU, commit `abc`, torch -"
    )
    other = {**row, "machine": "AMD EPYC · AVX2 · 2 vCPU"}
    assert provenance(other.get) != provenance(row.get)


def test_the_chosen_candidate_is_told_apart_by_every_lever():
    """Batch norm folded, a compile mode and the inference form are what --optimize chose too:
    the candidate that differs only in one of them is not the chosen one, and names it."""
    from bench.report.records import is_chosen
    from bench.report.workload import levers_text

    plain = {"runtime": "torch", "precision": "bf16", "layout": "channels_last", "compiled": False,
             "form": "training"}  # fmt: skip
    folded = {**plain, "fold_bn": True}
    config = {"precision": "bf16", "layout": "channels_last", "compiled": False, "optimize": True}
    assert [is_chosen(c, config) for c in (plain, folded)] == [True, False]
    assert [is_chosen(c, {**config, "fold_bn": True}) for c in (plain, folded)] == [False, True]

    tuned = {**plain, "compiled": True, "compile_mode": "max-autotune"}
    graphs = {**tuned, "compile_mode": "reduce-overhead"}
    asked = {**config, "compiled": True, "compile_mode": "reduce-overhead"}
    assert [is_chosen(c, asked) for c in (tuned, graphs)] == [False, True]

    eager = {**plain, "precision": "fp32", "layout": "nchw"}
    reparam = {**eager, "form": "inference"}
    fp32 = {**config, "precision": "fp32", "layout": "nchw"}
    assert [is_chosen(c, fp32, {"model_form": "inference"}) for c in (eager, reparam)] == [
        False, True]  # fmt: skip
    assert [is_chosen(c, fp32, {}) for c in (eager, reparam)] == [True, False]

    assert levers_text(plain) == []
    assert levers_text({**graphs, "fold_bn": True}) == ["reduce-overhead", "BN folded"]
    assert levers_text(reparam) == ["reparameterised"]
    # a tidy row: empty cells are NaN, the form is the record's model_form
    assert levers_text({"compile_mode": float("nan"), "fold_bn": float("nan")}) == []
    assert levers_text({"model_form": "inference"}) == ["reparameterised"]


def test_a_rerun_of_optimize_replaces_one_that_chose_a_lever():
    """The latest record of the same --optimize replaces the earlier one whatever each chose,
    batch norm folding and a compile mode included."""
    import json

    import pandas as pd

    from bench.report.records import latest

    asked = {"img_size": 64, "batch_size": 16, "mode": "infer", "optimize": True}
    first = {**asked, "precision": "bf16", "layout": "channels_last", "compiled": True,
             "compile_mode": "max-autotune", "fold_bn": True}  # fmt: skip
    second = {**asked, "precision": "fp32", "layout": "nchw", "compiled": False}
    frame = pd.DataFrame(
        [
            {
                "model": "m",
                "harness": "throughput",
                "device": "cpu",
                "device_name": "X",
                "config": c,
                "config_key": json.dumps(c, sort_keys=True),
                "finished_utc": t,
                "run_id": r,
            }
            for c, t, r in ((first, "2026-01-01", "a"), (second, "2026-01-02", "b"))
        ]
    )
    assert list(latest(frame)["run_id"]) == ["b"]

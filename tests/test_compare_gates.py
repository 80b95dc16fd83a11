"""`bench compare`'s gates on what records really hold: few rounds, autocorrelated steps, tail
step times, untimed metrics, many tests in one table and untrusted timings (seeded synthetic
records; each floor has a quiet case beside it)."""

from __future__ import annotations

import numpy as np
import pytest
from test_compare_verdicts import sampled_record, speed_line, write_store

from bench.cli import main
from bench.stats import STEPS, holm, samples_of, speed_test

GATE = "infer_samples_per_sec:-10%"


def rounds_stores(tmp_path, rounds: int, new_speed: float, seed: int = 0):
    """Two stores of one record each, ``rounds`` rounds of 40 steps a side, 3% drift between
    rounds (and 3% step noise)."""
    base = sampled_record(100.0, 0.03, 2 * seed, rounds, 40)
    new = sampled_record(new_speed, 0.03, 2 * seed + 1, rounds, 40)
    return (write_store(tmp_path / "base", [base], "base0001"),
            write_store(tmp_path / "new", [new], "new00001"))  # fmt: skip


# -- rounds: few of them must still be able to show a change --------------------------------
@pytest.mark.parametrize("rounds", [2, 3, 5])
def test_30_percent_slowdown_with_3_percent_drift_fails_at_few_rounds(tmp_path, capsys, rounds):
    base, new = rounds_stores(tmp_path, rounds, 70.0)
    assert main(["compare", str(base), str(new), "--fail", GATE]) == 1
    line = speed_line(capsys.readouterr().out)
    assert f"worse; FAIL {GATE}" in line
    assert f"over {rounds}/{rounds} rounds" in line


@pytest.mark.parametrize("rounds", [2, 3, 5])
def test_one_speed_at_few_rounds_passes_the_gate(tmp_path, capsys, rounds):
    base, new = rounds_stores(tmp_path, rounds, 100.0)
    assert main(["compare", str(base), str(new), "--fail", GATE]) == 0
    assert "FAIL" not in speed_line(capsys.readouterr().out)


@pytest.mark.parametrize("rounds", [2, 3, 5])
def test_two_draws_of_one_distribution_at_few_rounds_are_rarely_significant(rounds):
    quiet = 0
    for trial in range(100):
        a = samples_of(sampled_record(100.0, 0.03, 2 * trial, rounds, 10)["metrics"])
        b = samples_of(sampled_record(100.0, 0.03, 2 * trial + 1, rounds, 10)["metrics"])
        test = speed_test(a, b)
        assert test.unit == "rounds"
        quiet += not test.significant(0.05)
    assert quiet >= 90


def test_two_rounds_are_judged_by_a_t_interval_never_a_bootstrap_of_two_values(tmp_path, capsys):
    base, new = rounds_stores(tmp_path, 2, 70.0)
    main(["compare", str(base), str(new)])
    line = speed_line(capsys.readouterr().out)
    assert "t-test on log rounds: p=" in line
    assert "Mann-Whitney" not in line


# -- one round: steps that drift together are not independent samples -----------------------
def ar1_steps(seed: int, rho: float = 0.7, n: int = 200, level: float = 160.0) -> list[float]:
    """``n`` step times (ms) around ``level`` whose 5% noise is AR(1) with correlation ``rho``
    from one step to the next."""
    rng = np.random.default_rng(seed)
    shocks = rng.standard_normal(n)
    x = np.empty(n)
    x[0] = shocks[0]
    for i in range(1, n):
        x[i] = rho * x[i - 1] + np.sqrt(1 - rho**2) * shocks[i]
    return (level * (1 + 0.05 * x)).tolist()


def test_autocorrelated_steps_of_one_distribution_are_rarely_significant():
    quiet = 0
    for trial in range(100):
        a, b = ({STEPS: ar1_steps(2 * trial + i)} for i in (0, 1))
        test = speed_test(a, b)
        assert test.unit == "steps"
        quiet += not test.significant(0.05)
    assert quiet >= 90


def test_autocorrelated_steps_still_show_a_10_percent_slowdown():
    for trial in range(20):
        base = {STEPS: ar1_steps(2 * trial)}
        new = {STEPS: ar1_steps(2 * trial + 1, level=176.0)}
        test = speed_test(base, new)
        assert test.significant(0.05)
        assert test.high < 1  # the whole interval: slower


# -- tails are judged on their own quantile --------------------------------------------------
def tail_record(seed: int, slow: float = 0.0, rounds: int = 3, steps: int = 60) -> dict:
    """A record of ``rounds`` rounds whose step times have 1% noise, with ``slow`` of each
    round's steps (picked at random) 1.6x slower; every round's speed is its median step
    time's, so that the rounds (and the median) stay put while the tail moves."""
    rng = np.random.default_rng(seed)
    times = 160.0 * (1 + 0.01 * rng.standard_normal((rounds, steps)))
    for row in times:
        row[rng.permutation(steps)[: round(slow * steps)]] *= 1.6
    record = sampled_record(100.0, 0.01, seed, rounds, steps)
    speeds = (1000 * 16 / np.median(times, axis=1)).tolist()
    record["metrics"].update({
        "step_times_ms": times.ravel().tolist(), "rounds_samples_per_sec": speeds,
        "infer_samples_per_sec": float(np.median(speeds)), "median": float(np.median(times)),
        "p90": float(np.percentile(times, 90)),
    })  # fmt: skip
    return record


def tail_stores(tmp_path, slow: float):
    return (write_store(tmp_path / "base", [tail_record(0)], "base0001"),
            write_store(tmp_path / "new", [tail_record(1, slow)], "new00001"))  # fmt: skip


def row_of(out: str, metric: str) -> str:
    return next(ln for ln in out.splitlines() if f"| {metric} " in ln)


def test_a_slower_tail_fails_its_gate_while_the_rounds_stay_put(tmp_path, capsys):
    base, new = tail_stores(tmp_path, slow=0.3)
    argv = ["compare", str(base), str(new), "--metrics", "infer_samples_per_sec,median,p90",
            "--fail", "p90:+10%", "--fail", GATE]  # fmt: skip
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert "worse; FAIL p90:+10%" in row_of(out, "p90")
    assert "block bootstrap of the p90" in row_of(out, "p90")
    assert "FAIL" not in speed_line(out)
    assert "worse" not in row_of(out, "median")
    assert "regression: resnet50 p90" in err
    assert "infer_samples_per_sec" not in err


def test_an_unchanged_tail_passes_its_gate(tmp_path, capsys):
    base, new = tail_stores(tmp_path, slow=0.0)
    assert main(["compare", str(base), str(new), "--fail", "p90:+10%"]) == 0
    assert "FAIL" not in capsys.readouterr().out


# -- untimed metrics: memory within its tolerance is the same --------------------------------
def memory_stores(tmp_path, pairs: list[tuple[float, float]]):
    """One record per (base, new) peak memory, MiB: one configuration measured twice."""
    sides = []
    for side, k in (("base", 0), ("new", 1)):
        records = []
        for i, mems in enumerate(pairs):
            record = sampled_record(100.0, 0.01, seed=2 * i + k, model=f"model{i}")
            record["metrics"]["peak_mem_mb"] = mems[k]
            records.append(record)
        sides.append(write_store(tmp_path / side, records, f"{side:0<8}"[:8]))
    return sides


def memory_rows(out: str) -> list[str]:
    return [ln for ln in out.splitlines() if "| peak_mem_mb " in ln]


def test_memory_that_moves_under_1_percent_or_1_mib_is_the_same(tmp_path, capsys):
    # 830.6 -> 830.4 MiB (the issue's), 0.9% of 5000 MiB, and 0.8 MiB of a 20 MiB model (4%)
    base, new = memory_stores(tmp_path, [(830.6, 830.4), (5000.0, 5045.0), (20.0, 20.8)])
    assert main(["compare", str(base), str(new), "--fail", "peak_mem_mb:+0.5%"]) == 0
    out = capsys.readouterr().out
    rows = memory_rows(out)
    assert len(rows) == 3
    assert all("same (within 1% or 1 MiB)" in ln for ln in rows)
    assert not any(w in ln for ln in rows for w in ("better", "worse"))
    assert "Peak memory within 1% or 1 MiB of the base reads 'same'" in out


def test_memory_that_grows_beyond_its_tolerance_is_worse_and_fails(tmp_path, capsys):
    base, new = memory_stores(tmp_path, [(830.6, 850.0)])  # +2.3%, 19 MiB
    assert main(["compare", str(base), str(new), "--fail", "peak_mem_mb:+2%"]) == 1
    (row,) = memory_rows(capsys.readouterr().out)
    assert "worse; FAIL peak_mem_mb:+2%" in row


# -- many tests in one table: Holm's correction -----------------------------------------------
def test_holm_multiplies_the_smallest_p_by_the_number_of_tests():
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm([0.03]) == [0.03]
    assert holm([]) == []


def rounds_record(model: str, rounds: list[float]) -> dict:
    record = sampled_record(100.0, 0.01, seed=0, model=model)
    record["metrics"].update({"rounds_samples_per_sec": rounds,
                              "infer_samples_per_sec": float(np.median(rounds))})  # fmt: skip
    return record


def holm_stores(tmp_path, unchanged: int):
    """resnet50 from rounds [100, 102] to [94, 95] (alone: p = 0.027, interval about -11% to
    -2%), beside ``unchanged`` models whose rounds stay the same."""
    others = [rounds_record(f"model{i}", [50.0, 51.0]) for i in range(unchanged)]
    base = [rounds_record("resnet50", [100.0, 102.0]), *others]
    new = [rounds_record("resnet50", [94.0, 95.0]), *others]
    return (write_store(tmp_path / "base", base, "base0001"),
            write_store(tmp_path / "new", new, "new00001"))  # fmt: skip


def test_one_test_alone_fails_the_gate_and_states_its_correction(tmp_path, capsys):
    base, new = holm_stores(tmp_path, unchanged=0)
    assert main(["compare", str(base), str(new), "--fail", "infer_samples_per_sec:-1%"]) == 1
    out = capsys.readouterr().out
    assert "(Holm 0.027)" in speed_line(out)
    assert "Multiple comparisons: Holm's correction over the 1 test(s)" in out


def test_the_same_change_among_five_tests_is_not_significant_after_holm(tmp_path, capsys):
    base, new = holm_stores(tmp_path, unchanged=4)
    assert main(["compare", str(base), str(new), "--fail", "infer_samples_per_sec:-1%"]) == 0
    out = capsys.readouterr().out
    (line,) = [ln for ln in out.splitlines() if ln.startswith("| resnet50 ")]
    assert "not significant" in line
    assert "p=0.027 (Holm 0.14)" in line
    assert "Multiple comparisons: Holm's correction over the 5 test(s)" in out


# -- untrusted timings are never called better or worse --------------------------------------
@pytest.mark.parametrize(
    ("flaw", "reason"),
    [
        ({"total_time_s": 0.3}, "new: timed 0.30 s < 1 s"),
        ({"warmup_stable": False}, "new: warm-up did not stabilise"),
        ({"cv_pct": 40.0}, "new: step times vary 40% > 25%"),
        ({"rounds_samples_per_sec": [50.0, 70.0, 72.0]}, "new: rounds disagree by 31% > 25%"),
    ],
)
def test_an_untrusted_timing_reads_re_measure_and_is_listed_not_gated(tmp_path, capsys,
                                                                       flaw, reason):  # fmt: skip
    new = sampled_record(70.0, 0.03, 1, 3, 40)
    new["metrics"].update(flaw)
    base = write_store(tmp_path / "base", [sampled_record(100.0, 0.03, 0, 3, 40)], "base0001")
    new = write_store(tmp_path / "new", [new], "new00001")
    assert main(["compare", str(base), str(new), "--fail", GATE]) == 0
    out, err = capsys.readouterr()
    line = speed_line(out)
    assert "untrusted: re-measure" in line
    assert reason in line
    assert not any(w in line for w in ("better", "worse", "FAIL"))
    assert "untrusted, not gated (re-measure): resnet50 infer_samples_per_sec" in err
    assert reason in err
    assert "rounds disagreeing by more than 25%" in out  # the rule, stated under the table


def test_the_same_slowdown_timed_well_fails(tmp_path, capsys):
    new = sampled_record(70.0, 0.03, 1, 3, 40)
    new["metrics"].update({"total_time_s": 5.0, "warmup_stable": True, "cv_pct": 3.0})
    base = write_store(tmp_path / "base", [sampled_record(100.0, 0.03, 0, 3, 40)], "base0001")
    new = write_store(tmp_path / "new", [new], "new00001")
    assert main(["compare", str(base), str(new), "--fail", GATE]) == 1
    out, err = capsys.readouterr()
    assert "untrusted" not in out + err

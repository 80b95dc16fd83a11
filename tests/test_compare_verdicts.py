"""`bench compare`'s verdicts on raw samples (seeded synthetic records), machine-aware matching,
more than two runs, and `bench runs`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import STORE

from bench.cli import main
from bench.compare import Threshold, compare, speed_test
from bench.environment import cpu_flags
from bench.stats import samples_of
from bench.storage import ResultStore

BATCH = 16
SLOW = "infer_samples_per_sec:-2%"


def sampled_record(speed, noise, seed, rounds=1, steps=200, model="resnet50", cpu="Test CPU"):
    """A throughput record with ``rounds`` x ``steps`` step times around ``speed`` samples/s.

    ``noise`` is the relative standard deviation of each step time and, with two or more
    rounds, of each round's level too (the drift between rounds)."""
    rng = np.random.default_rng(seed)
    levels = speed * (1 + noise * rng.standard_normal(rounds)) if rounds > 1 else np.array([speed])
    times = (1000 * BATCH / levels)[:, None] * (1 + noise * rng.standard_normal((rounds, steps)))
    flat = times.ravel()
    q1, median, q3 = np.percentile(flat, [25, 50, 75])
    metrics = {"infer_samples_per_sec": float(1000 * BATCH / flat.mean()), "infer_batch_size": BATCH,
               "median": float(median), "iqr": float(q3 - q1), "mean": float(flat.mean()),
               "stddev": float(flat.std()), "step_times_ms": flat.astype(np.float32).tolist()}  # fmt: skip
    if rounds > 1:
        metrics["rounds_samples_per_sec"] = (1000 * BATCH / times.mean(axis=1)).tolist()
    config = {"img_size": 224, "batch_size": BATCH, "mode": "infer", "precision": "fp32"}
    return {"model": model, "source": "timm", "harness": "throughput", "status": "ok",
            "error": None, "device": "cpu", "device_name": cpu, "config": config,
            "metrics": metrics}  # fmt: skip


def write_store(root, records, run_id, started="2026-01-01T00:00:00.000000Z", cpu="Test CPU",
                flags=("avx2", "avx512f", "avx512_vnni")):  # fmt: skip
    header = {"tool": {"name": "cnn-bench", "version": "0.1.0"}, "run_id": run_id,
              "started_utc": started, "finished_utc": None, "status": "running",
              "machine": {"id": f"Linux-x86_64-{cpu}", "cpu": cpu, "cores": 2,
                          "cpu_flags": None if flags is None else list(flags)},
              "versions": {"torch": "2.14.1", "timm": "1.0.29"}, "commit": None, "config": {}}  # fmt: skip
    doc = ResultStore(root).new_run(header)
    doc.add(records)
    doc.finish("complete", started)
    return root


def speed_line(out: str) -> str:
    return next(ln for ln in out.splitlines() if "| infer_samples_per_sec" in ln)


# -- the floors ----------------------------------------------------------------------------
def test_3_percent_slowdown_with_1_percent_noise_is_significant_and_fails(tmp_path, capsys):
    base = write_store(tmp_path / "base", [sampled_record(100.0, 0.01, seed=0)], "base0001")
    new = write_store(tmp_path / "new", [sampled_record(97.0, 0.01, seed=1)], "new00001")
    assert main(["compare", str(base), str(new), "--fail", SLOW]) == 1
    out, err = capsys.readouterr()
    line = speed_line(out)
    assert f"worse; FAIL {SLOW}" in line
    assert "over 200/200 steps; one round: within-run noise only" in line
    assert "regression: resnet50 infer_samples_per_sec" in err
    assert "block bootstrap of the median (10/10 blocks): p=" in line


def test_3_percent_slowdown_with_10_percent_noise_between_rounds_is_not_significant(
    tmp_path, capsys
):
    """200 samples as 5 rounds of 40 steps (run --repeats 5), each round's level drifting by
    10%: the rounds are what a verdict uses, and 5 of them cannot tell 3% from 10% drift."""
    base = write_store(tmp_path / "base", [sampled_record(100.0, 0.1, 0, 5, 40)], "base0001")
    new = write_store(tmp_path / "new", [sampled_record(97.0, 0.1, 1, 5, 40)], "new00001")
    assert main(["compare", str(base), str(new), "--fail", SLOW]) == 0
    line = speed_line(capsys.readouterr().out)
    assert "not significant" in line
    assert "over 5/5 rounds" in line
    assert "within-run" not in line


def test_10_percent_noise_over_200_steps_sees_3_percent_but_passes_a_2_percent_gate(tmp_path):
    """200 independent step times a side measure a median to about 0.9% under 10% noise, so a
    3% change is seen (p < 0.05); its interval (about -5.5% to -0.5%) does not lie beyond -2%,
    so the gate passes. Drift between runs is what such a test cannot see: hence rounds."""
    base = write_store(tmp_path / "base", [sampled_record(100.0, 0.1, seed=0)], "base0001")
    new = write_store(tmp_path / "new", [sampled_record(97.0, 0.1, seed=1)], "new00001")
    result = compare(str(base), str(new), [Threshold.parse(SLOW)])
    (row,) = [r for r in result.rows if r.metric == "infer_samples_per_sec"]
    assert row.p_value < 0.05
    assert row.verdict == "worse"
    assert not result.failures


@pytest.mark.parametrize(("rounds", "steps"), [(1, 200), (5, 40)])
def test_two_draws_from_one_distribution_are_rarely_significant(rounds, steps):
    quiet = 0
    for trial in range(100):
        a = samples_of(sampled_record(100.0, 0.05, 2 * trial, rounds, steps)["metrics"])
        b = samples_of(sampled_record(100.0, 0.05, 2 * trial + 1, rounds, steps)["metrics"])
        quiet += not speed_test(a, b).significant(0.05)
    assert quiet >= 90


def test_alpha_and_confidence_options(tmp_path, capsys):
    base = write_store(tmp_path / "base", [sampled_record(100.0, 0.1, seed=0)], "base0001")
    new = write_store(tmp_path / "new", [sampled_record(97.0, 0.1, seed=1)], "new00001")
    argv = ["compare", str(base), str(new), "--alpha", "1e-9", "--confidence", "0.5"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "not significant" in speed_line(out)
    assert "alpha 1e-09" in out
    assert "50% intervals" in out
    assert main([*argv[:3], "--alpha", "5"]) == 2
    assert "--alpha 5: expected a number between 0 and 1" in capsys.readouterr().err


def test_compare_defaults_are_defined_once():
    """compare's and ab's options, bench.compare(...) and Options read one alpha and one
    confidence (bench.stats), and the help shows them."""
    import inspect

    import bench.api
    from bench.cli.parser import build_parser, subcommands
    from bench.compare import Options
    from bench.stats import ALPHA, CONFIDENCE

    parser = build_parser()
    given = parser.parse_args(["compare", "a", "b"])
    signature = inspect.signature(bench.api.compare).parameters
    for name, value in (("alpha", ALPHA), ("confidence", CONFIDENCE)):
        assert getattr(given, name) == getattr(Options(), name) == value
        assert signature[name].default == value
    help_text = " ".join(subcommands(parser)["compare"].format_help().split())  # unwrapped
    assert f"(default: {ALPHA:g})" in help_text
    assert f"(default: {CONFIDENCE:g})" in help_text


def test_records_without_samples_fall_back_on_the_labelled_spread_rule(tmp_path):
    plain = sampled_record(100.0, 0.01, seed=0)
    del plain["metrics"]["step_times_ms"]
    base = write_store(tmp_path / "base", [plain], "base0001")
    new = write_store(tmp_path / "new", [sampled_record(80.0, 0.01, seed=1)], "new00001")
    (row,) = [r for r in compare(str(base), str(new)).rows if r.metric.endswith("_per_sec")]
    assert row.p_value is None
    assert "spread rule" in row.test
    assert "no samples" in row.test


# -- machines ------------------------------------------------------------------------------
def two_machine_stores(tmp_path):
    base = write_store(tmp_path / "a", [sampled_record(100.0, 0.01, 0, cpu="Chip A")], "aaaa0001",
                       cpu="Chip A")  # fmt: skip
    new = write_store(tmp_path / "b", [sampled_record(97.0, 0.01, 1, cpu="Chip B")], "bbbb0001",
                      cpu="Chip B")  # fmt: skip
    return base, new


def test_speeds_from_different_cpus_exit_2_naming_both(tmp_path, capsys):
    base, new = two_machine_stores(tmp_path)
    assert main(["compare", str(base), str(new)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "on Chip A · AVX-512 VNNI · 2 vCPU in base and on Chip B · AVX-512 VNNI · 2 vCPU" in err
    assert "--cross-machine" in err


def test_one_cpu_name_with_other_kernel_flags_is_another_machine(tmp_path, capsys):
    """Two VMs both called 'AMD EPYC', one with AVX-512 and one without, run other kernels:
    their speeds are not compared without --cross-machine."""
    base = write_store(tmp_path / "a", [sampled_record(100.0, 0.01, 0, cpu="AMD EPYC")],
                       "aaaa0001", cpu="AMD EPYC", flags=("avx2",))  # fmt: skip
    new = write_store(tmp_path / "b", [sampled_record(97.0, 0.01, 1, cpu="AMD EPYC")],
                      "bbbb0001", cpu="AMD EPYC")  # fmt: skip
    assert main(["compare", str(base), str(new)]) == 2
    err = capsys.readouterr().err
    assert "on AMD EPYC · AVX2 · 2 vCPU in base and on AMD EPYC · AVX-512 VNNI · 2 vCPU" in err
    same = write_store(tmp_path / "c", [sampled_record(97.0, 0.01, 1, cpu="AMD EPYC")],
                       "cccc0001", cpu="AMD EPYC", flags=("avx2",))  # fmt: skip
    assert main(["compare", str(base), str(same)]) == 0
    # a run that did not record its flags is never taken for one that did
    unknown = write_store(tmp_path / "d", [sampled_record(97.0, 0.01, 1, cpu="AMD EPYC")],
                          "dddd0001", cpu="AMD EPYC", flags=None)  # fmt: skip
    assert main(["compare", str(base), str(unknown)]) == 2
    assert "AMD EPYC · flags not recorded · 2 vCPU in new" in capsys.readouterr().err


def test_cross_machine_labels_every_row_and_states_both_machines(tmp_path, capsys):
    base, new = two_machine_stores(tmp_path)
    assert main(["compare", str(base), str(new), "--cross-machine", "--metrics", "all"]) == 0
    out = capsys.readouterr().out
    rows = [ln for ln in out.splitlines() if ln.startswith("| resnet50")]
    assert len(rows) > 3
    pair = "Chip A · AVX-512 VNNI · 2 vCPU vs Chip B · AVX-512 VNNI · 2 vCPU"
    assert all(f"[cross-machine: {pair}]" in ln for ln in rows)
    assert "on Chip A · AVX-512 VNNI · 2 vCPU; torch 2.14.1, timm 1.0.29" in out
    assert "on Chip B · AVX-512 VNNI · 2 vCPU" in out


def test_cpu_flags_are_the_ones_that_matter():
    cpuinfo = "model name\t: X\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_tile ht\n"
    assert cpu_flags(cpuinfo) == ["avx2", "avx512f", "avx512_bf16", "amx_tile"]
    assert cpu_flags("model name: X\n") is None


# -- more than two runs, and `runs` --------------------------------------------------------
def three_runs(tmp_path):
    store = tmp_path / "results"
    for i, speed in enumerate((100.0, 90.0, 110.0)):
        write_store(store, [sampled_record(speed, 0.01, seed=i)], f"run0000{i}",
                    started=f"2026-01-0{i + 1}T00:00:00.000000Z")  # fmt: skip
    return store


def test_compare_three_runs_prints_three_columns(tmp_path, capsys):
    store = three_runs(tmp_path)
    argv = ["compare", "run00000", "run00001", "run00002", "--results", str(store)]
    assert main([*argv, "--fail", "infer_samples_per_sec:-5%"]) == 1
    out, err = capsys.readouterr()
    header = next(ln for ln in out.splitlines() if ln.startswith("| model"))
    assert [c.strip() for c in header.split("|")[4:7]] == [
        "1: run00000 (base)", "2: run00001", "3: run00002"]  # fmt: skip
    line = speed_line(out)
    assert "(-9.92%, worse; FAIL infer_samples_per_sec:-5%, Holm p=4.2e-22)" in line
    assert "(+10.03%, better, Holm p=1.5e-23)" in line
    assert "regression: run00001: resnet50 infer_samples_per_sec" in err


def test_compare_all_of_one_store_gives_a_column_per_run(tmp_path, capsys):
    store = three_runs(tmp_path)
    assert main(["compare", "--all", str(store), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [c["new"].split()[1] for c in doc["comparisons"]] == ["run00001", "run00002"]
    assert main(["compare", str(store)]) == 2  # one side without --all


def test_runs_lists_the_committed_store(capsys):
    store = STORE
    assert main(["runs", str(store)]) == 0
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.startswith("| ") and "---" not in ln]
    assert [c.strip() for c in lines[0].split("|")[1:-1]] == [
        "id", "date", "machine", "models", "harnesses", "status"]  # fmt: skip
    assert len(lines) - 1 == len(list(store.glob("*/*.json")))
    for run_id in ("7c775369", "db94146a"):
        assert run_id in out
    assert main(["runs", str(store), "-k", "finetune"]) == 0
    some = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| ")][2:]
    assert 0 < len(some) < len(lines) - 1
    assert all("finetune" in ln for ln in some)
    assert main(["runs", str(store), "-k", "no_such_model"]) == 2

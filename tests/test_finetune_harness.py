"""The fine-tune harness end to end through the CLI: records, reports, torchrun + gloo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import main

# Tiny and quick: scikit-learn's digits at 16x16, three epochs.
ARGS = ["--models", "simple_cnn", "--harness", "finetune", "--dataset", "digits",
        "--img-size", "16", "--epochs", "3", "--no-progress"]  # fmt: skip


def _records(out: Path) -> list[dict]:
    docs = [json.loads(p.read_text()) for p in sorted(out.glob("*/*.json"))]
    return [r for d in docs for r in d["records"]]


@pytest.fixture(scope="module")
def single_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ft")
    code = main(["run", *ARGS, "--out", str(root / "results"),
                 "--checkpoint-dir", str(root / "ck")])  # fmt: skip
    assert code == 0
    return root


def test_record_fields(single_run):
    (rec,) = _records(single_run / "results")
    assert rec["status"] == "ok", rec["error"]
    c, m = rec["config"], rec["metrics"]
    assert c["dataset"] == "digits"
    assert c["protocol"] == "full"
    assert c["init"] == "scratch"
    assert c["augment"] == "digits"
    assert c["img_size"] == c["finetune_img_size"] == 16
    assert c["epochs"] == 3
    assert c["world_size"] == 1
    assert 0 <= m["top1"] <= m["top5"] <= 100
    assert len(m["curve"]) == 3
    assert len(m["dataset_sha256"]) == 64
    assert m["split"].startswith("stratified")
    assert m["train_samples_per_sec"] > 0
    assert 1 <= m["best_epoch"] <= 3
    assert m["top1"] > 50  # it learnt something in three short epochs
    assert list((single_run / "ck").glob("simple_cnn-*.pt"))


def test_report_has_table_columns_and_stable_plots(single_run):
    import pandas as pd

    from bench.report.generate import generate

    out = single_run / "reports"
    generate(single_run / "results", out)
    md = (out / "finetune.md").read_text()
    assert "| simple_cnn" in md
    assert "digits" in md
    csv = pd.read_csv(out / "results.csv")
    for col in ("top1", "top5", "dataset", "protocol", "init", "epochs", "finetune_img_size"):
        assert col in csv.columns, col
    pngs = sorted(out.glob("finetune_*.png"))
    assert [p.name for p in pngs] == [
        "finetune_accuracy_vs_gmacs.png", "finetune_curve_simple_cnn.png"
    ]  # fmt: skip
    first = {p.name: p.read_bytes() for p in pngs}
    generate(single_run / "results", out)
    assert {p.name: p.read_bytes() for p in pngs} == first


def test_bad_dataset_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["run", "--models", "lenet5", "--harness", "finetune", "--dataset", "nope"])
    assert e.value.code == 2
    assert "expected one of mnist5k" in capsys.readouterr().err


def test_a_batch_of_one_is_a_usage_error_before_any_model(tmp_path, capsys):
    code = main(["run", "--models", "lenet5,simple_cnn", "--harness", "finetune",
                 "--batch-size", "1", "--out", str(tmp_path)])  # fmt: skip
    assert code == 2
    assert "--batch-size 1: fine-tuning needs batches of at least 2" in capsys.readouterr().err
    assert not list(tmp_path.glob("*/*.json"))  # nothing started, nothing written


def test_norm_stats_under_linear_is_a_usage_error_before_any_model(tmp_path, capsys):
    code = main(["run", *ARGS, "--protocol", "linear", "--norm-stats", "frozen",
                 "--out", str(tmp_path)])  # fmt: skip
    assert code == 2
    assert "--norm-stats means nothing under --protocol linear" in capsys.readouterr().err
    assert not list(tmp_path.glob("*/*.json"))


def test_norm_stats_in_the_record_and_the_checkpoint_key(tmp_path):
    # full with frozen statistics: the record says so, and its checkpoint is not the one
    # full with batch statistics would resume
    ck = tmp_path / "ck"
    for stats in ("frozen", "batch"):
        code = main(["run", *ARGS, "--lr", "3e-3", "--norm-stats", stats,
                     "--out", str(tmp_path / stats), "--checkpoint-dir", str(ck)])  # fmt: skip
        assert code == 0
        (rec,) = _records(tmp_path / stats)
        assert rec["config"]["norm_stats"] == stats
        assert rec["config"]["protocol"] == "full"
    assert len(list(ck.glob("*.pt"))) == 2  # two keys, two checkpoints


def test_pretrained_without_weights_is_an_error_row(tmp_path):
    code = main(["run", "--models", "lenet5", "--harness", "finetune", "--pretrained",
                 "--out", str(tmp_path), "--no-progress"])  # fmt: skip
    assert code == 1  # a failed record: exit 1, the row kept
    (rec,) = _records(tmp_path)
    assert rec["status"] == "error"
    assert "--weights PATH" in rec["error"]


@pytest.mark.parametrize(("lr", "said"), [
    ("1e6", "DivergedError: training loss nan at epoch 1, step "),  # AdamW's steps blow up
    ("10", "DivergedError: ended at chance after 1 epoch (lr 10): "),  # it learns nothing
])  # fmt: skip
def test_a_diverged_training_is_an_error_row_with_its_configuration(tmp_path, lr, said):
    args = [a if a != "3" else "1" for a in ARGS]  # one epoch
    code = main(["run", *args, "--lr", lr, "--out", str(tmp_path / "results"),
                 "--checkpoint-dir", str(tmp_path / "ck")])  # fmt: skip
    assert code == 1  # a failed record: exit 1, the row kept
    (rec,) = _records(tmp_path / "results")
    assert rec["status"] == "error"
    assert rec["error"].startswith(said), rec["error"]
    assert "lower --lr" in rec["error"]
    assert "top1" not in rec["metrics"]  # never an ok top-1
    assert rec["config"]["lr"] == float(lr)  # it stands in for any earlier record of it
    assert rec["config"]["seed"] == 0


def test_torchrun_gloo_matches_single_process(single_run, tmp_path):
    """Two CPU processes with DDP (gloo) reach the single process's accuracy within noise."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           "--nproc-per-node", "2", "-m", "bench", "run", *ARGS,
           "--out", str(tmp_path / "results"), "--checkpoint-dir", str(tmp_path / "ck")]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    files = list((tmp_path / "results").glob("*/*.json"))
    assert len(files) == 1  # only rank 0 wrote
    (ddp,) = _records(tmp_path / "results")
    (single,) = _records(single_run / "results")
    assert ddp["status"] == "ok", ddp["error"]
    assert ddp["config"]["world_size"] == 2
    assert ddp["metrics"]["test_samples"] == 360
    # evaluated on all 360 held-out digits (summed over both ranks), within noise
    assert abs(ddp["metrics"]["top1"] - single["metrics"]["top1"]) <= 6.0

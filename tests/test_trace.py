"""Accuracy that traces: a fine-tune record names its checkpoint by file name and sha256, the
INT8 gate scores a checkpoint as fine-tuning scored it, and each quantization row names the
checkpoint and the fine-tune run that made it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.cli import main
from bench.registry.lookup import Registry
from bench.registry.weights import IMAGENET_MEAN, build_model, sha256_file
from bench.storage import ResultStore

# Tiny and quick: scikit-learn's digits at 16x16, one epoch on a stratified 200 of the training
# images (the held-out 360 unchanged), so that the training images' mean and std (the
# normalisation of a model trained from scratch) are not the whole training split's.
ARGS = ["--models", "simple_cnn", "--harness", "finetune", "--dataset", "digits",
        "--img-size", "16", "--epochs", "1", "--train-limit", "200", "--no-progress"]  # fmt: skip


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory):
    """(record, checkpoint path) of one fine-tune run, its checkpoint folder an absolute path."""
    root = tmp_path_factory.mktemp("trace").resolve()
    code = main(
        ["run", *ARGS, "--out", str(root / "results"), "--checkpoint-dir", str(root / "ck")]
    )
    assert code == 0
    docs = [json.loads(p.read_text()) for p in sorted((root / "results").glob("*/*.json"))]
    (rec,) = [r for d in docs for r in d["records"]]
    (checkpoint,) = (root / "ck").glob("simple_cnn-*.pt")
    return rec, checkpoint


def test_a_finetune_record_names_its_checkpoint_by_file_name_and_sha256(finetuned):
    rec, checkpoint = finetuned
    m = rec["metrics"]
    assert m["checkpoint_file"] == checkpoint.name  # relative to --checkpoint-dir
    assert m["checkpoint_sha256"] == sha256_file(checkpoint)  # the file as written
    folder = str(checkpoint.parent)
    assert not [k for k, v in m.items() if isinstance(v, str) and folder in v]  # no path


def test_a_checkpoint_scores_the_same_top1_by_finetune_and_by_the_int8_gate(finetuned):
    """The gate (``--weights CKPT --val-data digits``, eager fp32) scores the checkpoint on the
    fine-tune run's held-out images prepared as fine-tuning prepared them: the same top-1, and
    the training images' own mean and std (not the whole split's)."""
    from bench.harness.base import Job, RunConfig
    from bench.harness.datasets import load_digits
    from bench.harness.throughput.config import Settings, ThroughputConfig
    from bench.harness.throughput.gate import load_gate_data, top1, torch_predict, weighted_model

    rec, checkpoint = finetuned
    run = RunConfig(device="cpu", batch_sizes=(16,), img_size=16)
    config = ThroughputConfig(optimize=True, weights=str(checkpoint.parent), val_data="digits")
    job, settings = Job(Registry().get("simple_cnn"), run, config), Settings.of(run, config)
    model, init = weighted_model(job, settings)
    job.in_chans = init.in_chans
    gate = load_gate_data(job, settings, model, init)
    trained = load_digits().limit_train(200, seed=0).mean_std()
    assert init.mean == pytest.approx(trained[0])
    assert init.std == pytest.approx(trained[1])
    assert len(gate.labels) == rec["metrics"]["test_samples"]
    assert top1(torch_predict(model, "cpu"), gate, 16) == pytest.approx(rec["metrics"]["top1"])


def _fake_checkpoint(path: Path, run_key: dict, trained: dict | None) -> Path:
    import torch

    torch.manual_seed(0)
    model = Registry().get("chapter_resnet").build(pretrained=False, num_classes=10)
    state = {"run_key": run_key, "epoch": 1, "model": model.state_dict()}
    if trained is not None:
        state["input"] = trained
    torch.save(state, path)
    return path


def test_a_checkpoint_is_prepared_with_the_normalisation_it_was_trained_with(tmp_path):
    """A model fine-tuned from weights with their own mean and std (timm's ViTs, EfficientNet-
    Lite0's 0.5) is scored with them, not ImageNet's; a checkpoint written before checkpoints
    stored their input keeps the old rule (ImageNet's for weights that were pretrained)."""
    key = {"model": "chapter_resnet", "init": "pretrained", "dataset": "digits", "img_size": 16}
    half = {"in_chans": 3, "mean": [0.5] * 3, "std": [0.5] * 3}
    spec = Registry().get("chapter_resnet")
    _, init = build_model(spec, 10, 1, weights=str(_fake_checkpoint(tmp_path / "a.pt", key, half)))
    assert (init.mean, init.std) == ((0.5,) * 3, (0.5,) * 3)
    _, old = build_model(spec, 10, 1, weights=str(_fake_checkpoint(tmp_path / "b.pt", key, None)))
    assert old.mean == IMAGENET_MEAN


# -- the report -----------------------------------------------------------------------------
def _cand(precision, sps, runtime="torch", **more):
    return {"runtime": runtime, "precision": precision, "layout": "nchw", "compiled": False,
            "form": "training", "infer_samples_per_sec": sps, "top1_agree": True,
            "error": None, **more}  # fmt: skip


def _throughput(model, sha, fp32_top1):
    gate = {"accuracy_data": "mnist5k held-out split", "accuracy_images": 1000,
            "calibration_data": "mnist5k training split", "calibration_images": 128,
            "fp32_top1": fp32_top1, "accuracy_budget": 0.5}  # fmt: skip
    int8 = _cand("int8", 300.0, "openvino", candidate_top1=fp32_top1, top1_drop=0.0,
                 within_budget=True, fp32_top1=fp32_top1)  # fmt: skip
    cands = [_cand("fp32", 100.0), _cand("bf16", 200.0, "openvino"), int8]
    return {
        "model": model, "source": "timm", "harness": "throughput", "status": "ok", "error": None,
        "device": "cpu", "device_name": "Test CPU",
        "config": {"img_size": 64, "batch_size": 16, "mode": "infer", "precision": "int8",
                   "layout": "nchw", "compiled": False, "optimize": True, "runtime": "openvino"},
        "metrics": {"infer_samples_per_sec": 300.0, "infer_step_time": 53.3,
                    "infer_batch_size": 16, "infer_img_size": 64, "median": 53.3, "p90": 55.0,
                    "cv_pct": 1.5, "threads": 2, "batch_size_reduced": False,
                    "candidates": cands, "accuracy_gate": gate,
                    "init_source": "file", "init_file": f"{model}-0123456789ab.pt",
                    "init_sha256": sha},
        "finished_utc": "2026-01-02T00:00:00.000000Z",
    }  # fmt: skip


def _finetune(model, sha, top1):
    return {
        "model": model, "source": "timm", "harness": "finetune", "status": "ok", "error": None,
        "device": "cpu", "device_name": "Test CPU",
        "config": {"img_size": 64, "dataset": "mnist5k", "epochs": 3},
        "metrics": {"top1": top1, "test_samples": 1000, "checkpoint_file": f"{model}-x.pt",
                    "checkpoint_sha256": sha},
        "finished_utc": "2026-01-01T00:00:00.000000Z",
    }  # fmt: skip


def _trace_store(tmp_path):
    store = ResultStore(tmp_path / "results")
    machine = {"id": "m", "cpu": "Test CPU"}
    ft = store.new_run({"run_id": "ft000001", "started_utc": "2026-01-01T00:00:00.000000Z",
                        "machine": machine})  # fmt: skip
    ft.add([_finetune("resnet50", "a" * 64, 97.05), _finetune("efficientnet_b0", "b" * 64, 91.2)])
    q = store.new_run({"run_id": "q0000001", "started_utc": "2026-01-02T00:00:00.000000Z",
                       "machine": machine})  # fmt: skip
    q.add([_throughput("resnet50", "a" * 64, 97.1), _throughput("efficientnet_b0", "b" * 64, 86.8),
           _throughput("alexnet", "c" * 64, 91.9)])  # fmt: skip
    return store.root


def test_each_quantization_row_names_its_checkpoint_and_the_finetune_run_that_made_it(tmp_path):
    """sha256 (12 hex) and the fine-tune run; within 0.1 points quiet, beyond it a ⚠ and a note
    saying why; no record: '-' and a note saying so."""
    from bench.report.fmt import WARN
    from bench.report.generate import generate

    written = {p.name: p for p in generate(_trace_store(tmp_path), tmp_path / "r")}
    page = written["index.html"].read_text().split('id="int8-accuracy-')[1]
    accuracy_on_page = page.split("</table>")[0]  # the page draws the same table
    assert ">aaaaaaaaaaaa<" in accuracy_on_page
    assert ">ft000001 (97.0)<" in accuracy_on_page
    assert "no fine-tune record in results/ has its sha256" in accuracy_on_page  # on hover
    md = written["throughput.md"]
    section = md.read_text().split("## Quantization: speed-up and accuracy cost by architecture")[1]
    accuracy = section.split("Accuracy:")[1].split("Speed:")[0]
    cells = [[c.strip() for c in x.split("|")[1:-1]] for x in accuracy.splitlines()[4:] if x]
    rows = {c[0]: c for c in cells}
    assert rows["resnet50"][1:3] == ["aaaaaaaaaaaa", "ft000001 (97.0)"]  # the run, its top-1
    assert WARN not in rows["resnet50"][4]  # 97.05 against 97.1: within 0.1
    assert rows["efficientnet_b0"][1:3] == ["bbbbbbbbbbbb", "ft000001 (91.2)"]
    assert rows["efficientnet_b0"][4].startswith(f"86.8 {WARN}[^ckpt-")
    assert "fine-tune run ft000001 scored this checkpoint 91.2, this run 86.8" in section
    assert rows["alexnet"][1:3] == ["cccccccccccc", "-[^ckpt-1]"]
    assert "alexnet-0123456789ab.pt: no fine-tune record in results/ has its sha256" in section


def test_int8_speedup_stands_against_the_fastest_other_candidate_bf16_included(tmp_path):
    from bench.report.generate import generate

    md = {p.name: p for p in generate(_trace_store(tmp_path), tmp_path / "r")}["throughput.md"]
    speed = md.read_text().split("Speed:")[1]
    (line,) = [x for x in speed.splitlines() if x.startswith("| resnet50 ")]
    cells = [c.strip() for c in line.split("|")[1:-1]]
    assert cells[1] == "16 x 64"  # the workload the speeds were timed at
    assert cells[2:] == ["OpenVINO", "300.0 ✓", "bf16 OpenVINO", "200.0", "1.50x"]


def test_untraced_lists_the_throughput_records_whose_checkpoint_does_not_trace(tmp_path):
    from bench.report.checkpoints import untraced
    from bench.report.records import read_records

    frame = read_records(_trace_store(tmp_path)).latest
    assert sorted(rec["model"] for rec, _ in untraced(frame)) == ["alexnet", "efficientnet_b0"]


def test_the_trace_script_lists_what_does_not_trace_and_fails(tmp_path):
    import subprocess
    import sys

    script = Path(__file__).resolve().parent.parent / "scripts" / "trace_checkpoints.py"
    done = subprocess.run([sys.executable, str(script), str(_trace_store(tmp_path))],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "1 of 3 throughput record(s) naming a checkpoint trace." in done.stdout
    assert "efficientnet_b0" in done.stdout
    assert "alexnet" in done.stdout

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
    from bench.harness.finetune.data import load_digits
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

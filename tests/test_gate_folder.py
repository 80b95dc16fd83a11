"""The accuracy gate on an image folder (``--val-data PATH``, ImageNet class folders): its
calibration and scoring images drawn apart, ``--limit`` taken across classes, eager fp32 and
a candidate judged on them, and the folder refused with a reason when it cannot serve."""

from __future__ import annotations

import pytest

from bench.errors import ConfigError, DataError
from bench.harness.base import Job, RunConfig
from bench.harness.throughput.config import ThroughputConfig
from bench.harness.throughput.gate import Gate, check_val_data, load_gate_data
from bench.registry.lookup import ModelSpec
from bench.registry.weights import Init

torch = pytest.importorskip("torch")
Image = pytest.importorskip("PIL.Image")
nn = torch.nn

RED, BLUE = 3, 7  # ImageNet class indices, as the folders are named
PER_CLASS = 6


class Colour(nn.Module):
    """1000 logits: class 3 for a red image, class 7 for a blue one (exact in fp32)."""

    def forward(self, x):
        d = x[:, 0].mean(dim=(1, 2)) - x[:, 2].mean(dim=(1, 2))
        logits = torch.zeros(x.shape[0], 1000)
        logits[:, RED], logits[:, BLUE] = d, -d
        return logits


def colour(pretrained=False, **kwargs):
    return Colour()


def _folder(root):
    """An ImageNet-style folder: ``3/`` of red images, ``7/`` of blue ones, 20 x 20 each."""
    for label, rgb in ((RED, (200, 30, 30)), (BLUE, (30, 30, 200))):
        (root / str(label)).mkdir(parents=True)
        for i in range(PER_CLASS):
            shade = tuple(max(0, c - 5 * i) for c in rgb)
            Image.new("RGB", (20, 20), shade).save(root / str(label) / f"{i}.png")
    return root


def _gate(tmp_path, **options) -> Gate:
    root = _folder(tmp_path / "imgs")
    options = {"calibration_images": 4, "accuracy_min_images": 4, "accuracy_rule": "point",
               "accuracy_budget": 0.5, **options}  # fmt: skip
    config = ThroughputConfig(val_data=str(root), **options)
    spec = ModelSpec(name="colour", source="test", input_size=(3, 16, 16), builder=colour)
    job = Job(spec, RunConfig(device="cpu", batch_sizes=(4,)), config)
    return Gate(job, config, Colour(), Init(), "cpu")


def test_a_folder_gives_calibration_images_apart_from_the_scored_ones(tmp_path):
    check_val_data(str(tmp_path))  # a folder is accepted as --val-data
    gate = _gate(tmp_path)
    data = gate.data()
    assert data.calibration.shape == (4, 3, 16, 16)  # the model's input, transformed
    assert data.images.shape == (2 * PER_CLASS - 4, 3, 16, 16)  # every other image
    assert set(data.labels.tolist()) <= {RED, BLUE}
    assert data.describe() == {
        "accuracy_data": "imgs (8 of 8 images)", "accuracy_images": 8,
        "calibration_data": "imgs (other images)", "calibration_images": 4,
    }  # fmt: skip
    # no image is both calibrated on and scored: the tensors of the two sets never coincide
    same = (data.calibration[:, None] == data.images[None]).flatten(2).all(dim=2)
    assert not same.any()


def test_limit_takes_images_across_the_classes(tmp_path):
    data = _gate(tmp_path, limit=4).data()
    assert len(data.labels) == 4
    assert sorted(data.labels.tolist()) == [RED, RED, BLUE, BLUE]


def test_the_folder_gate_passes_an_equal_candidate_and_refuses_a_broken_one(tmp_path):
    gate = _gate(tmp_path)
    model = Colour()
    same = gate.judge(("torch", "bf16"), model, batch=4)
    assert same["fp32_top1"] == same["candidate_top1"] == 100.0
    assert same["within_budget"] is True
    assert same["accuracy_data"] == "imgs (8 of 8 images)"

    def always_red(xb):
        logits = torch.zeros(xb.shape[0], 1000)
        logits[:, RED] = 1.0
        return logits

    broken = gate.judge(("onnxruntime", "int8"), always_red, batch=4)
    assert broken["top1_drop"] > 0.5
    assert broken["within_budget"] is False


def test_a_folder_that_cannot_serve_is_refused_with_the_reason(tmp_path):
    with pytest.raises(ConfigError, match="--val-data"):
        check_val_data(str(tmp_path / "missing"))
    with pytest.raises(DataError, match="INT8 needs --calibration-images 12"):
        _gate(tmp_path, calibration_images=12).data()  # all 12 images to calibrate on
    odd = tmp_path / "odd"
    (odd / "cats").mkdir(parents=True)
    Image.new("RGB", (20, 20)).save(odd / "cats" / "0.png")
    config = ThroughputConfig(val_data=str(odd))
    spec = ModelSpec(name="colour", source="test", input_size=(3, 16, 16), builder=colour)
    with pytest.raises(DataError, match="class folders must be ImageNet synset ids"):
        load_gate_data(Job(spec, RunConfig(), config), config, Colour(), Init())

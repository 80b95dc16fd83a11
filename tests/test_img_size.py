"""--img-size reaches the constructor of the models that need it; fine-tune recipes; chance."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from bench.errors import CardError
from bench.harness import get_harness, make_job
from bench.harness.finetune.config import DEFAULT_LR_PRETRAINED, DEFAULT_LR_SCRATCH, FinetuneConfig
from bench.harness.finetune.harness import DEFAULT_BATCH_SIZE, _batch_size
from bench.registry import Registry
from bench.registry.cards import FinetuneRecipe
from bench.report.finetune import at_chance


@pytest.fixture(scope="module")
def registry():
    return Registry()


def test_size_kwargs_only_where_the_model_needs_them(registry):
    assert registry.get("vit_base_patch16_224").size_kwargs(64) == {"img_size": 64}
    assert registry.get("torchvision:vit_b_16").size_kwargs(64) == {"image_size": 64}
    assert registry.get("resnet50").size_kwargs(64) == {}  # convolutional: any size
    assert registry.get("vit_base_patch16_224").size_kwargs(224) == {}  # its own size
    assert registry.get("vit_base_patch16_224").size_kwargs(None) == {}


@pytest.mark.slow
def test_vit_at_64_is_measured_and_fine_tunes_its_constructor(registry):
    """ViT-B/16 at 64x64: 16 patches, timm resamples the position embedding."""
    job = make_job(registry.get("vit_base_patch16_224"), "flops", img_size=64)
    (m,) = get_harness("flops").measure(job)
    assert m.config["img_size"] == 64
    assert m.metrics["infer_gmacs"] == pytest.approx(1.461, rel=1e-3)
    from bench.registry.weights import build_model

    model, _ = build_model(registry.get("vit_base_patch16_224"), 10, 1, img_size=64)
    assert model.patch_embed.img_size == (64, 64)


def test_a_cards_recipe_sets_the_scratch_rate_and_lr_wins():
    card = SimpleNamespace(finetune=SimpleNamespace(lr=1e-3))
    assert FinetuneConfig().resolved_lr(card) == 1e-3
    assert FinetuneConfig().resolved_lr(None) == DEFAULT_LR_SCRATCH
    assert FinetuneConfig(lr=5e-3).resolved_lr(card) == 5e-3
    assert FinetuneConfig(pretrained=True).resolved_lr(card) == DEFAULT_LR_PRETRAINED


def test_a_cards_recipe_sets_the_scratch_batch_size_and_batch_size_wins():
    card = SimpleNamespace(finetune=FinetuneRecipe(lr=1e-4, batch_size=32))
    given, none = SimpleNamespace(batch_sizes=(16, 128)), SimpleNamespace(batch_sizes=None)
    assert _batch_size(none, FinetuneConfig(), card) == 32
    assert _batch_size(given, FinetuneConfig(), card) == 16  # --batch-size wins
    assert _batch_size(none, FinetuneConfig(), None) == DEFAULT_BATCH_SIZE
    assert _batch_size(none, FinetuneConfig(pretrained=True), card) == DEFAULT_BATCH_SIZE


@pytest.mark.parametrize("bad", [{"batch_size": 1}, {"batch_size": 32.5}, {"lr": 0}])
def test_a_recipe_out_of_range_is_a_card_error(bad):
    with pytest.raises(CardError, match="\\[finetune\\]"):
        FinetuneRecipe(**bad)


def test_chance_level_is_flagged():
    assert at_chance({"num_classes": 10, "top1": 10.0})
    assert at_chance({"num_classes": 10, "top1": 14.9})
    assert not at_chance({"num_classes": 10, "top1": 92.3})
    assert not at_chance({"top1": 10.0})  # no class count: no verdict

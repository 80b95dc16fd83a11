from __future__ import annotations

import pytest

from bench.errors import ConfigError, DuplicateModelError, PluginError, UnknownModelError
from bench.registry.cards import chapter_table, load_cards
from bench.registry.lookup import Registry, natural_key

CHAPTER_TABLE = [
    "lenet5", "alexnet", "vgg16", "googlenet", "resnet50",
    "efficientnet_b0", "vit_base_patch16_224", "convnext_tiny",
]  # fmt: skip
OWN = ["simple_cnn", "chapter_resnet", "resnet50_transfer"]


@pytest.fixture(scope="module")
def registry():
    return Registry()


def test_chapter_table_in_the_chapters_order():
    assert [c.name for c in chapter_table()] == CHAPTER_TABLE


def test_chapter_expands_to_table_and_own_models(registry):
    names = [s.name for s in registry.resolve("chapter")]
    assert names[: len(CHAPTER_TABLE)] == CHAPTER_TABLE
    assert sorted(names[len(CHAPTER_TABLE) :]) == sorted(OWN)


def test_sources_follow_the_issue(registry):
    sources = {n: registry.get(n).source for n in CHAPTER_TABLE + OWN}
    assert sources["alexnet"] == sources["googlenet"] == "torchvision"
    for n in ("resnet50", "vgg16", "efficientnet_b0", "vit_base_patch16_224", "convnext_tiny"):
        assert sources[n] == "timm"
    for n in ["lenet5", *OWN]:
        assert sources[n] == "chapter"


def test_every_card_has_what_the_report_needs():
    for card in load_cards().values():
        if card.conv_table is not None:
            assert card.formula_value("params"), card.name
            assert card.formula_value("macs"), card.name
            continue
        assert card.published.params, card.name
        if card.in_chapter_table:
            assert card.chapter is not None, card.name
            assert card.year, card.name
            assert card.chapter.innovation, card.name


def test_natural_sort_and_wildcards(registry):
    assert sorted(["resnet101", "resnet18", "resnet50"], key=natural_key) == [
        "resnet18", "resnet50", "resnet101",
    ]  # fmt: skip
    assert registry.list_models(["res*"]) == ["resnet50", "resnet50_transfer"]
    assert registry.list_models(["res*"], exclude=["*transfer"]) == ["resnet50"]
    timm_names = registry.list_models(["resnet1*"], include_timm=True)
    assert timm_names.index("resnet18") < timm_names.index("resnet101")


def test_any_timm_and_torchvision_name(registry):
    spec = registry.get("resnet18")
    assert (spec.source, spec.input_size) == ("timm", (3, 224, 224))
    spec = registry.get("torchvision:mobilenet_v2")
    assert (spec.source, spec.target) == ("torchvision", "mobilenet_v2")
    assert registry.get("timm:resnet50").source == "timm"


def test_wildcard_falls_back_to_timm_catalogue(registry):
    names = [s.name for s in registry.resolve("mobilenetv3_large_1*")]
    assert "mobilenetv3_large_100" in names


def test_unknown_name_suggests_the_closest(registry):
    with pytest.raises(UnknownModelError) as err:
        registry.resolve("resnet50,resnet5")
    msg = str(err.value)
    assert "Unknown model 'resnet5'" in msg
    assert "Did you mean 'resnet50'" in msg
    assert "\n" not in msg


def test_pattern_matching_nothing_is_a_config_error(registry):
    with pytest.raises(ConfigError, match="matches no model"):
        registry.resolve("zzz*")


def test_empty_models_is_an_error(registry):
    with pytest.raises(ConfigError):
        registry.resolve(" , ")


def test_plugin_models_are_registered(plugin_path):
    registry = Registry()
    spec = registry.get("tiny_mlp")
    assert spec.source == "tiny-plugin[tiny_mlp]"
    assert spec.input_size == (1, 8, 8)
    model = spec.build(num_classes=3)
    import torch

    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 3)


def test_plugin_that_fails_to_import_is_a_warning(tmp_path, monkeypatch):
    from conftest import make_distribution

    root = make_distribution(
        tmp_path / "site", "bad-plugin", {"bad_net": "bad_plugin_mod:bad_net"},
        {"bad_plugin_mod": "raise ImportError('needs a package that is not installed')\n"},
    )  # fmt: skip
    monkeypatch.syspath_prepend(str(root))
    registry = Registry()
    assert any("bad-plugin[bad_net]" in w for w in registry.warnings)
    assert registry.get("resnet50").source == "timm"  # everything else keeps working
    with pytest.raises(PluginError, match=r"bad-plugin\[bad_net\].*needs a package"):
        registry.resolve("bad_net")


def test_plugin_that_is_not_callable(tmp_path, monkeypatch):
    from conftest import make_distribution

    root = make_distribution(
        tmp_path / "site", "odd-plugin", {"odd": "odd_plugin_mod:VALUE"},
        {"odd_plugin_mod": "VALUE = 3\n"},
    )  # fmt: skip
    monkeypatch.syspath_prepend(str(root))
    registry = Registry()
    with pytest.raises(PluginError, match="not a model builder"):
        registry.resolve("odd")


def test_two_providers_for_one_name_is_an_error_naming_both(tmp_path, monkeypatch):
    from conftest import make_distribution

    source = "from torch import nn\ndef net(pretrained=False, **kw):\n    return nn.Identity()\n"
    a = make_distribution(tmp_path / "a", "plugin-a", {"twin": "mod_a:net"}, {"mod_a": source})
    b = make_distribution(tmp_path / "b", "plugin-b", {"twin": "mod_b:net"}, {"mod_b": source})
    c = make_distribution(tmp_path / "c", "plugin-c", {"resnet50": "mod_c:net"}, {"mod_c": source})
    for root in (a, b, c):
        monkeypatch.syspath_prepend(str(root))
    registry = Registry()
    with pytest.raises(DuplicateModelError) as err:
        registry.resolve("twin")
    assert "plugin-a[twin]" in str(err.value)
    assert "plugin-b[twin]" in str(err.value)
    with pytest.raises(DuplicateModelError, match=r"resnet50.toml.*plugin-c\[resnet50\]"):
        registry.resolve("resnet50")
    assert registry.get("vgg16").source == "timm"


def test_conv_types_expand_to_the_chapters_second_table(registry):
    names = [s.name for s in registry.resolve("conv_types")]
    assert names == [
        "conv_standard", "conv_1x1", "conv_depthwise", "conv_separable", "conv_dilated",
        "conv_transposed",
    ]  # fmt: skip
    assert not set(names) & set(registry.chapter_models())


def test_card_formulas_allow_only_sums_and_products():
    from bench.errors import CardError
    from bench.registry.cards import evaluate

    assert evaluate("C * 9 + C * C_out", {"C": 4, "C_out": 8}) == 68
    for bad in ("__import__('os')", "C ** 2", "C / 2", "D * 2"):
        with pytest.raises(CardError):
            evaluate(bad, {"C": 4})

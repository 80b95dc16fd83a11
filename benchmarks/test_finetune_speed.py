"""Fine-tune training speed against the chapter's plain loop (code example 2).

Not part of the default test run (``testpaths = tests``). Run with

    pytest benchmarks/test_finetune_speed.py --benchmark-enable

Both train SimpleCNN for one epoch on the same in-memory mnist5k training tensors at the
same batch size; each reports training samples per second over its training loop alone
(evaluation excluded). The two are interleaved (chapter, harness, chapter, ...) over
``ROUNDS`` rounds after one warm-up epoch each, and the best of each is kept, so that a slow
spell of a shared VM hits both alike. It prints one ``FLOOR`` line against issue 10's floor
(1.5x) and asserts that the harness is at least as fast as the chapter's loop.
"""

from __future__ import annotations

import time

import pytest

BATCH = 64
ROUNDS = 5
GOAL = 1.5  # issue 10's floor: printed, not asserted (the test asserts "at least as fast")


@pytest.fixture(scope="module")
def data():
    from bench.harness.datasets import load_dataset

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

    from bench.harness.finetune.config import TrainConfig
    from bench.harness.finetune.train import train

    torch.manual_seed(0)
    model = _simple_cnn()
    cfg = TrainConfig(epochs=1, batch_size=BATCH, img_size=28, augment="digits", progress=False)
    mean, std = data.mean_std()
    return train(model, data, cfg, in_chans=1, mean=mean, std=std).train_samples_per_sec


def test_training_speed_vs_chapter_loop(benchmark, data):
    chapter_epoch(data), harness_epoch(data)  # warm-up: oneDNN's primitives, the allocator
    chapter, harness = [], []

    def one_round():
        chapter.append(chapter_epoch(data))
        harness.append(harness_epoch(data))

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
    ratio = max(harness) / max(chapter)
    benchmark.extra_info.update(chapter=chapter, harness=harness, ratio=ratio)
    print(
        f"\nFLOOR finetune speed: simple_cnn, batch {BATCH}, train samples/s over {ROUNDS} "
        f"interleaved rounds: chapter loop {' / '.join(f'{v:.0f}' for v in chapter)}, harness "
        f"{' / '.join(f'{v:.0f}' for v in harness)}; best harness / best chapter = {ratio:.2f}x "
        f"(issue 10's floor {GOAL}x) -> {'PASS' if ratio >= GOAL else 'FAIL'}"
    )
    assert ratio >= 1.0, "the harness trains slower than the chapter's plain loop"

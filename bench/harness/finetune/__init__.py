"""The fine-tune harness and what it needs: its data sets, weights, augmentation and loop."""

from bench.harness.finetune.harness import FinetuneHarness

__all__ = ["FinetuneHarness"]

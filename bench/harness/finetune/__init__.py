"""The fine-tune harness and what it needs: its data sets, augmentation and loop (the weights it
starts from are loaded by ``bench.registry.weights``)."""

from bench.harness.finetune.harness import FinetuneHarness

__all__ = ["FinetuneHarness"]

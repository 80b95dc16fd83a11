"""A cnn-bench plugin needs nothing from cnn-bench: a builder function and an entry point."""

import torch
from torch import nn


def tiny_convnet(pretrained: bool = False, num_classes: int = 10, in_chans: int = 3, **kwargs):
    """Two 3x3 convolutions and a linear classifier, for 3x32x32 input."""
    if pretrained:
        raise ValueError("tiny_convnet has no pretrained weights")
    return nn.Sequential(
        nn.Conv2d(in_chans, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, num_classes),
    )


# Optional: the default input size (channels, height, width); 3x224x224 when absent.
tiny_convnet.input_size = (3, 32, 32)

__all__ = ["tiny_convnet", "torch"]

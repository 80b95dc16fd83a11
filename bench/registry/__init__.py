"""What can be measured: model specs, lookup with wildcards, model cards, entry-point plugins,
classifier heads and the weights a model starts from. Imports no torch until a model is
built."""

from bench.registry.lookup import TORCHVISION_PREFIX, ModelSpec, Registry

__all__ = ["TORCHVISION_PREFIX", "ModelSpec", "Registry"]

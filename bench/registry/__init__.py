"""What can be measured: model specs, lookup with wildcards, model cards, entry-point plugins
and classifier heads. Imports no torch until a model is built."""

from bench.registry.lookup import TORCHVISION_PREFIX, ModelSpec, Registry

__all__ = ["TORCHVISION_PREFIX", "ModelSpec", "Registry"]

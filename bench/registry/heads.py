"""Heads of models from any source: find the classifier, replace it, freeze the rest.

timm models have ``reset_classifier`` and ``get_classifier``; the chapter's own models have
``reset_classifier``; torchvision's keep their head in ``fc``, ``classifier`` or ``heads``.
"""

from __future__ import annotations

from bench.errors import ConfigError

# Attribute names that hold a classifier, in the order they are tried.
_HEAD_ATTRS = ("head", "fc2", "fc", "classifier", "heads")


def _last_linear(module):
    from torch import nn

    last = None
    for m in module.modules():
        if isinstance(m, nn.Linear):
            last = m
    return last


def _replace_last(seq, num_classes: int) -> bool:
    """Replace the last Linear (or 1x1 Conv2d, SqueezeNet's) of a Sequential; whether found."""
    from torch import nn

    for i in range(len(seq) - 1, -1, -1):
        layer = seq[i]
        if isinstance(layer, nn.Linear):
            seq[i] = nn.Linear(layer.in_features, num_classes)
            return True
        if isinstance(layer, nn.Conv2d):
            seq[i] = nn.Conv2d(layer.in_channels, num_classes, layer.kernel_size)
            return True
    return False


def reset_classifier(model, num_classes: int) -> None:
    """Give the model a new, freshly initialised head with num_classes outputs."""
    from torch import nn

    if hasattr(model, "reset_classifier"):
        model.reset_classifier(num_classes)
        return
    for attr in ("fc", "classifier", "heads"):
        head = getattr(model, attr, None)
        if isinstance(head, nn.Linear):
            setattr(model, attr, nn.Linear(head.in_features, num_classes))
            return
        # torchvision's classifier/heads end in a Linear (or a 1x1 Conv2d for SqueezeNet)
        if isinstance(head, nn.Sequential) and _replace_last(head, num_classes):
            return
    if isinstance(model, nn.Sequential) and _replace_last(model, num_classes):
        return  # a plain Sequential ending in its classifier (a plugin's tiny model)
    raise ConfigError(
        f"Cannot find the classifier of {type(model).__name__} to reset it to {num_classes} "
        "classes: it has no reset_classifier() and no fc/classifier/heads Linear layer."
    )


def classifier(model):
    """The module holding the model's head (what 'linear' trains and 'staged' trains first)."""
    if hasattr(model, "get_classifier"):
        head = model.get_classifier()
        if head is not None and any(True for _ in head.parameters()):
            return head
    for attr in _HEAD_ATTRS:
        head = getattr(model, attr, None)
        if head is not None and any(True for _ in head.parameters()):
            return head
    head = _last_linear(model)
    if head is None:
        raise ConfigError(f"Cannot find the classifier of {type(model).__name__}.")
    return head


def split_parameters(model) -> tuple[list, list]:
    """(head parameters, backbone parameters), each parameter once."""
    head_ids = {id(p) for p in classifier(model).parameters()}
    head, backbone = [], []
    seen = set()
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        (head if id(p) in head_ids else backbone).append(p)
    return head, backbone


def set_backbone_frozen(model, frozen: bool) -> None:
    """Freeze (or unfreeze) every parameter outside the classifier."""
    _, backbone = split_parameters(model)
    for p in backbone:
        p.requires_grad = not frozen


def freeze_frozen_norms(model) -> None:
    """Put normalisation layers without trainable parameters in eval mode (keep their stats)."""
    from torch.nn.modules.batchnorm import _BatchNorm

    for m in model.modules():
        if isinstance(m, _BatchNorm):
            params = list(m.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                m.eval()


def freeze_backbone_norm_stats(model) -> None:
    """Put every batch-norm layer outside the classifier in eval mode: it normalises with its
    running statistics and no longer updates them, while its affine weights may still learn."""
    from torch.nn.modules.batchnorm import _BatchNorm

    head = {id(m) for m in classifier(model).modules()}
    for m in model.modules():
        if isinstance(m, _BatchNorm) and id(m) not in head:
            m.eval()

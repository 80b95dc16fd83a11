"""LeNet-5 and the chapter's own models (code examples 1, 3 and 4): the builders.

Each function is a builder with timm's signature, ``name(pretrained=False, **kwargs)``, and
carries its default input size as the attribute ``input_size`` (channels, height, width).
They are exposed through the ``cnn_bench.models`` entry-point group exactly like a plugin's.
The networks themselves live in ``bench.models.nets``; importing this module is cheap.
"""

from __future__ import annotations

from bench.errors import DataError


def _input_size(size: tuple[int, int, int]):
    def mark(fn):
        fn.input_size = size
        return fn

    return mark


def _no_pretrained(name: str, pretrained: bool) -> None:
    if pretrained:
        raise DataError(
            f"'{name}' has no published pretrained weights. Train it from scratch, or pass "
            "--weights PATH with a checkpoint of your own."
        )


@_input_size((1, 32, 32))
def lenet5(pretrained: bool = False, num_classes: int = 10, in_chans: int = 1, **kwargs):
    """LeNet-5 (LeCun 1998 layout), 1x32x32."""
    from bench.models.nets import LeNet5

    _no_pretrained("lenet5", pretrained)
    return LeNet5(num_classes=num_classes, in_chans=in_chans, **kwargs)


@_input_size((1, 28, 28))
def simple_cnn(pretrained: bool = False, num_classes: int = 10, in_chans: int = 1, **kwargs):
    """The chapter's SimpleCNN (code example 1), 1x28x28."""
    from bench.models.nets import SimpleCNN

    _no_pretrained("simple_cnn", pretrained)
    return SimpleCNN(num_classes=num_classes, in_chans=in_chans, **kwargs)


@_input_size((3, 32, 32))
def chapter_resnet(pretrained: bool = False, num_classes: int = 10, in_chans: int = 3, **kwargs):
    """The chapter's small ResNet of ResidualBlock stages (code example 3), 3x32x32."""
    from bench.models.nets import ChapterResNet

    _no_pretrained("chapter_resnet", pretrained)
    return ChapterResNet(num_classes=num_classes, in_chans=in_chans, **kwargs)


@_input_size((3, 224, 224))
def resnet50_transfer(
    pretrained: bool = False,
    num_classes: int = 5,
    freeze_backbone: bool = False,
    in_chans: int = 3,
    **kwargs,
):
    """Code example 4: ResNet-50 (torchvision, IMAGENET1K_V2 when pretrained) with a new head."""
    from torchvision.models import ResNet50_Weights, resnet50

    from bench.models.nets import TransferResNet50

    if in_chans != 3:
        raise DataError(
            f"resnet50_transfer takes 3-channel input, not {in_chans}; repeat grayscale "
            "channels instead (the fine-tune harness does this for you)."
        )
    weights = ResNet50_Weights.IMAGENET1K_V2 if pretrained else None
    backbone = resnet50(weights=weights, **kwargs)
    return TransferResNet50(backbone, num_classes=num_classes, freeze_backbone=freeze_backbone)

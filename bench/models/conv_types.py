"""The chapter's second table, "types of convolution", as single-layer models.

Each builder returns the one layer (two for separable) that a row of the table describes,
without bias as the table's formulas have none, sized by ``C_in``/``C_out`` (the input is
``C_in x H x W``). Running them through the params and flops harnesses checks the table's
parameter and compute formulas; their cards in ``registry/conv_*.toml`` hold the formulas.
"""

from __future__ import annotations

C_IN, C_OUT, SIZE = 64, 128, 56


def _input_size(fn):
    fn.input_size = (C_IN, SIZE, SIZE)
    return fn


def _nn():
    from torch import nn

    return nn


@_input_size
def conv_standard(pretrained: bool = False, c_in: int = C_IN, c_out: int = C_OUT, **kwargs):
    """Standard 3x3 convolution."""
    return _nn().Conv2d(c_in, c_out, 3, padding=1, bias=False)


@_input_size
def conv_1x1(pretrained: bool = False, c_in: int = C_IN, c_out: int = C_OUT, **kwargs):
    """1x1 (pointwise) convolution: mixes channels."""
    return _nn().Conv2d(c_in, c_out, 1, bias=False)


@_input_size
def conv_depthwise(pretrained: bool = False, c_in: int = C_IN, **kwargs):
    """Depthwise 3x3 convolution: one filter per channel."""
    return _nn().Conv2d(c_in, c_in, 3, padding=1, groups=c_in, bias=False)


@_input_size
def conv_separable(pretrained: bool = False, c_in: int = C_IN, c_out: int = C_OUT, **kwargs):
    """Depthwise separable: depthwise 3x3 then pointwise 1x1."""
    nn = _nn()
    return nn.Sequential(
        nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in, bias=False),
        nn.Conv2d(c_in, c_out, 1, bias=False),
    )


@_input_size
def conv_dilated(pretrained: bool = False, c_in: int = C_IN, c_out: int = C_OUT, **kwargs):
    """Dilated (atrous) 3x3 convolution, dilation 2, same output size."""
    return _nn().Conv2d(c_in, c_out, 3, padding=2, dilation=2, bias=False)


@_input_size
def conv_transposed(pretrained: bool = False, c_in: int = C_IN, c_out: int = C_OUT, **kwargs):
    """Transposed 3x3 convolution, stride 2: doubles the resolution (a decoder's upsampling)."""
    return _nn().ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1, bias=False)

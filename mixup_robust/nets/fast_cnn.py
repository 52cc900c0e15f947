"""A fast CIFAR net in the spirit of airbench (Jordan 2024): few, wide, pooled conv stages."""

import torch
from torch import nn


def _conv(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.GELU(),
    ]


class FastCNN(nn.Module):
    """A 2x2 stem, then three stages of conv-maxpool-BN-GELU-conv-BN-GELU, max pool, linear.

    The layout follows the published airbench design (a small patch stem, three stages at
    resolutions 16, 8 and 4 with two convs each, global max pooling and a down-scaled linear
    head); this is the project's own code, without airbench's data-dependent whitening
    initialization, lookahead or test-time augmentation. About 2 M parameters at the default
    widths: on a GPU an epoch of CIFAR-10 takes seconds.

    Args:
        in_channels: number of image channels.
        num_classes: number of output logits.
        widths: channels of the stem and of the three stages.
        head_scale: the logits are multiplied by this (airbench uses 1/9: it acts as a
            temperature that lets the net train at a high learning rate).
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        widths: tuple[int, int, int, int] = (32, 64, 256, 256),
        head_scale: float = 1 / 9,
    ) -> None:
        super().__init__()
        stem, *stages = widths
        layers: list[nn.Module] = [nn.Conv2d(in_channels, stem, 2, padding=1), nn.GELU()]
        previous = stem
        for width in stages:
            first = _conv(previous, width)
            # Pool right after the first conv, before its norm: cheaper than pooling later.
            layers += [first[0], nn.MaxPool2d(2), *first[1:], *_conv(width, width)]
            previous = width
        self.features = nn.Sequential(*layers, nn.AdaptiveMaxPool2d(1), nn.Flatten())
        self.head = nn.Linear(previous, num_classes, bias=False)
        self.head_scale = head_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)) * self.head_scale

"""Tiny training modules for unit tests: a seeded SmallCNN on 4 classes of 1x8x8 images."""

import torch
from lightning import LightningModule
from torch import nn

from mixup_robust.nets import SmallCNN


def tiny_module(method: type[LightningModule], **kwargs) -> LightningModule:
    """`method` on a SmallCNN for 4 classes of 1x8x8 images, weights seeded with 0."""
    torch.manual_seed(0)
    return method(
        SmallCNN, num_classes=4, image_shape=(1, 8, 8), mean=(0.5,), std=(0.25,), **kwargs
    )


def tiny_batch(size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """`size` seeded images in [0, 1) of 1x8x8 and labels 0, 1, 2, 3, 0, ..."""
    generator = torch.Generator().manual_seed(0)
    return torch.rand(size, 1, 8, 8, generator=generator), torch.arange(size) % 4


def tiny_net(in_channels: int, num_classes: int) -> nn.Module:
    """A width-4 SmallCNN (a `NetFactory`)."""
    return SmallCNN(in_channels, num_classes, width=4)

"""A plain four-layer CNN: three conv stages and a linear head, for CPU-scale CIFAR runs."""

import torch
from torch import nn


class PlainCNN(nn.Module):
    """conv-BN-ReLU-maxpool x 3 (widths w, 2w, 4w), global max pool, linear.

    Four weight layers and no skip connections: cheap enough to train on CIFAR-10 in a few
    CPU epochs (see `configs/cifar10_cpu/`), strong enough for the MI defenses to matter.

    Args:
        in_channels: number of image channels.
        num_classes: number of output logits.
        width: channels of the first conv layer (64).
    """

    def __init__(self, in_channels: int, num_classes: int, width: int = 64) -> None:
        super().__init__()
        widths = (in_channels, width, 2 * width, 4 * width)
        self.features = nn.Sequential(
            *(
                nn.Sequential(
                    nn.Conv2d(widths[i], widths[i + 1], 3, padding=1, bias=False),
                    nn.BatchNorm2d(widths[i + 1]),
                    nn.ReLU(inplace=True),
                    nn.MaxPool2d(2),
                )
                for i in range(3)
            ),
            nn.AdaptiveMaxPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(4 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

"""A small convolutional classifier for quick CPU runs and tests."""

from torch import nn

from mixup_robust.nets.staged import StagedNet


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class SmallCNN(StagedNet):
    """A conv stem, two conv stages and a linear head; works for any input size from 8x8 up.

    Args:
        in_channels: number of image channels.
        num_classes: number of output logits.
        width: channels of the first stage; the second stage has twice as many.
    """

    def __init__(self, in_channels: int, num_classes: int, width: int = 32) -> None:
        super().__init__()
        self.stem = _conv_block(in_channels, width)
        self.stages = nn.ModuleList(
            [
                nn.Sequential(_conv_block(width, width), nn.MaxPool2d(2)),
                nn.Sequential(_conv_block(width, 2 * width), _conv_block(2 * width, 2 * width)),
            ]
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(2 * width, num_classes)

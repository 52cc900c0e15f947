"""A plain four-layer CNN: three conv stages and a linear head, for CPU-scale CIFAR runs."""

from torch import nn

from mixup_robust.nets.staged import StagedNet


class PlainCNN(StagedNet):
    """conv-BN-ReLU-maxpool x 3 (widths w, 2w, 4w), global max pool, linear.

    Four weight layers and no skip connections: cheap enough to train on CIFAR-10 in a few
    CPU epochs (see `configs/cifar10_cpu/`), strong enough for the MI defenses to matter.
    It has no stem (the first stage reads the normalized pixels); its three stages are
    registered as `features`, the name its checkpoints use.

    Args:
        in_channels: number of image channels.
        num_classes: number of output logits.
        width: channels of the first conv layer (64).
    """

    def __init__(self, in_channels: int, num_classes: int, width: int = 64) -> None:
        super().__init__()
        widths = (in_channels, width, 2 * width, 4 * width)
        self.stem = nn.Identity()
        self.features = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(widths[i], widths[i + 1], 3, padding=1, bias=False),
                nn.BatchNorm2d(widths[i + 1]),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            )
            for i in range(3)
        )
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.head = nn.Linear(4 * width, num_classes)

    @property
    def stages(self) -> nn.ModuleList:
        """The three conv stages (registered as `features`: checkpoints name them so)."""
        return self.features

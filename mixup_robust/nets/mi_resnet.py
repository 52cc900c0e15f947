"""The MI paper's "ResNet-50" (Pang, Xu, Zhu, ICLR 2020), as its official code defines it.

The official training and attack scripts build `resnet50` from `Torture/Models/resnet_3layer.py`
of P2333/Mixup-Inference (facts read from it; no code copied): a CIFAR ResNet with a 5x5
stride-1 stem conv (64 channels) -> BN -> ReLU, no max-pool, **three** stages of five
post-activation bottleneck blocks (1x1 -> 3x3 -> 1x1 convs, each followed by BN, ReLU after
the residual sum) of widths 64, 128, 256 with **expansion 1** (a block outputs as many
channels as its bottleneck width), strides 1, 2, 2, projection shortcuts (1x1 conv + BN)
where the shape changes, global average pooling and a linear layer on 256 features. It has
4,752,586 parameters for 10 classes (PreActResNet50 has about 23.5 M): the paper's tables
were measured on this net, so the MI-paper configs use it.

It is a `StagedNet` like the other nets here (`stem`, `stages`, `pool_features`, `head`), so
Manifold Mixup and other layer-wise code work on it.
"""

from collections.abc import Sequence

import torch
from torch import nn

from mixup_robust.nets.staged import StagedNet, he_normal_init_

__all__ = ["MIBottleneck", "MIResNet", "MIResNet50"]


def _conv_bn(in_planes: int, out_planes: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(in_planes, out_planes, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_planes),
    ]


class MIBottleneck(nn.Module):
    """Post-activation bottleneck with expansion 1: (1x1, 3x3 with stride, 1x1), BN after each.

    Args:
        in_planes: input channels.
        planes: bottleneck width and output channels.
        stride: stride of the 3x3 conv (2 halves the spatial size).
    """

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.residual = nn.Sequential(
            *_conv_bn(in_planes, planes, 1),
            nn.ReLU(inplace=True),
            *_conv_bn(planes, planes, 3, stride),
            nn.ReLU(inplace=True),
            *_conv_bn(planes, planes, 1),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(*_conv_bn(in_planes, planes, 1, stride))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to ``x`` of shape (B, in_planes, H, W)."""
        return torch.relu(self.residual(x) + self.shortcut(x))


class MIResNet(StagedNet):
    """5x5 stem, stages of `MIBottleneck` blocks, global average pooling, linear head.

    Initialization as the official code (torchvision's ResNet recipe): Kaiming-normal
    (fan_out, ReLU) convs, BN weights 1 and biases 0, PyTorch's default for the linear layer.

    Args:
        in_channels: image channels.
        num_classes: output logits.
        num_blocks: blocks per stage; stage i has width ``base_width * 2**i`` and every stage
            after the first halves the spatial size.
        base_width: channels of the stem and the first stage.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        num_blocks: Sequence[int] = (5, 5, 5),
        base_width: int = 64,
    ) -> None:
        super().__init__()
        if len(num_blocks) == 0 or any(n < 1 for n in num_blocks):
            raise ValueError(f"num_blocks must be a non-empty list of ints >= 1, got {num_blocks}")
        self.stem = nn.Sequential(*_conv_bn(in_channels, base_width, 5), nn.ReLU(inplace=True))
        stages: list[nn.Module] = []
        in_planes = base_width
        for i, count in enumerate(num_blocks):
            planes = base_width * 2**i
            strides = [1 if i == 0 else 2] + [1] * (count - 1)
            blocks = []
            for stride in strides:
                blocks.append(MIBottleneck(in_planes, planes, stride))
                in_planes = planes
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(in_planes, num_classes)
        he_normal_init_(self)


class MIResNet50(MIResNet):
    """The MI paper's "ResNet-50": `MIResNet` with stages (5, 5, 5) of widths 64, 128, 256.

    Args:
        in_channels: image channels.
        num_classes: output logits.
    """

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__(in_channels, num_classes, num_blocks=(5, 5, 5))

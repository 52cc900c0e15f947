"""Pre-activation ResNets (He et al. 2016, "Identity Mappings in Deep Residual Networks").

CIFAR-style layout as in the reference implementation used by most adversarial-robustness
papers (kuangliu/pytorch-cifar, Rice et al. 2020): a 3x3 stride-1 stem without max-pool, four
stages of pre-activation blocks (BN -> ReLU -> conv), and a final BN -> ReLU before global
pooling. Global pooling is adaptive, so inputs from 8x8 up to 64x64 (and beyond) work.

The nets are `StagedNet`s (``stem``, ``stages``, ``pool_features``, ``head``), so generic code
(e.g. Manifold Mixup) can run the stages one by one and mix hidden states.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from mixup_robust.nets.staged import StagedNet

__all__ = [
    "PreActBlock",
    "PreActBottleneck",
    "PreActResNet",
    "PreActResNet18",
    "PreActResNet34",
    "PreActResNet50",
]


class PreActBlock(nn.Module):
    """Pre-activation basic block: two 3x3 convs, each preceded by BN and ReLU.

    The projection shortcut (1x1 conv, no BN) is applied to the pre-activated input, as in the
    reference implementation; the identity shortcut uses the raw input. With ``dropout`` it
    is the wide basic block of Wide ResNets (dropout between the two convs).

    Args:
        in_planes: Number of input channels.
        planes: Number of output channels of the block (``expansion`` is 1).
        stride: Stride of the first conv, 2 to halve the spatial size.
        dropout: Dropout probability between the two convs (0 disables it).
    """

    expansion: int = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        out_planes = planes * self.expansion
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.dropout = dropout
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_planes != out_planes:
            self.shortcut = nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to ``x`` of shape (B, in_planes, H, W)."""
        out = torch.relu(self.bn1(x))
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = torch.relu(self.bn2(self.conv1(out)))
        if self.dropout > 0:
            out = nn.functional.dropout(out, p=self.dropout, training=self.training)
        return self.conv2(out) + shortcut


class PreActBottleneck(nn.Module):
    """Pre-activation bottleneck block: 1x1 -> 3x3 -> 1x1 convs, each preceded by BN and ReLU.

    Args:
        in_planes: Number of input channels.
        planes: Bottleneck width; the block outputs ``planes * 4`` channels.
        stride: Stride of the 3x3 conv, 2 to halve the spatial size.
    """

    expansion: int = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out_planes = planes * self.expansion
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_planes, 1, bias=False)
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_planes != out_planes:
            self.shortcut = nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to ``x`` of shape (B, in_planes, H, W)."""
        out = torch.relu(self.bn1(x))
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(torch.relu(self.bn2(out)))
        out = self.conv3(torch.relu(self.bn3(out)))
        return out + shortcut


_BLOCKS: dict[str, type[PreActBlock | PreActBottleneck]] = {
    "basic": PreActBlock,
    "bottleneck": PreActBottleneck,
}


class PreActResNet(StagedNet):
    """General pre-activation ResNet with a CIFAR stem and adaptive global pooling.

    ``forward_features(x)`` is ``stem -> stages[0..3]``; ``pool_features`` applies the final
    BN -> ReLU, adaptive average pooling and flattening before the linear ``head``. Inputs
    must already be normalized; the net does not normalize.

    Args:
        in_channels: Number of input image channels (e.g. 1 for MNIST, 3 for CIFAR).
        num_classes: Number of output logits.
        block: ``"basic"`` (two 3x3 convs, ResNet-18/34) or ``"bottleneck"`` (ResNet-50+).
        num_blocks: Number of blocks in each stage; stage ``i`` has width ``base_width * 2**i``
            and every stage after the first halves the spatial size.
        base_width: Channel width of the stem and the first stage.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        block: Literal["basic", "bottleneck"] = "basic",
        num_blocks: Sequence[int] = (2, 2, 2, 2),
        base_width: int = 64,
    ) -> None:
        super().__init__()
        if block not in _BLOCKS:
            raise ValueError(f"block must be one of {sorted(_BLOCKS)}, got {block!r}")
        if len(num_blocks) == 0 or any(n < 1 for n in num_blocks):
            raise ValueError(f"num_blocks must be a non-empty list of ints >= 1, got {num_blocks}")
        block_cls = _BLOCKS[block]
        self.in_channels = in_channels
        self.num_classes = num_classes

        self.stem = nn.Conv2d(in_channels, base_width, 3, stride=1, padding=1, bias=False)
        stages: list[nn.Module] = []
        in_planes = base_width
        for i, n in enumerate(num_blocks):
            planes = base_width * 2**i
            stride = 1 if i == 0 else 2
            layers: list[nn.Module] = []
            for s in [stride] + [1] * (n - 1):
                layers.append(block_cls(in_planes, planes, s))
                in_planes = planes * block_cls.expansion
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)
        self.final_bn = nn.BatchNorm2d(in_planes)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(in_planes, num_classes)

    def pool_features(self, features: torch.Tensor) -> torch.Tensor:
        """The final BN and ReLU, then global average pooling: (B, D, h, w) -> (B, D)."""
        return torch.flatten(self.pool(torch.relu(self.final_bn(features))), 1)


class PreActResNet18(PreActResNet):
    """PreAct-ResNet-18: basic blocks, [2, 2, 2, 2] (about 11.2M parameters for 10 classes).

    Args:
        in_channels: Number of input image channels.
        num_classes: Number of output logits.
    """

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__(in_channels, num_classes, block="basic", num_blocks=(2, 2, 2, 2))


class PreActResNet34(PreActResNet):
    """PreAct-ResNet-34: basic blocks, [3, 4, 6, 3] (about 21.3M parameters for 10 classes).

    Args:
        in_channels: Number of input image channels.
        num_classes: Number of output logits.
    """

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__(in_channels, num_classes, block="basic", num_blocks=(3, 4, 6, 3))


class PreActResNet50(PreActResNet):
    """PreAct-ResNet-50: bottleneck blocks, [3, 4, 6, 3] (about 23.5M parameters for 10 classes).

    Args:
        in_channels: Number of input image channels.
        num_classes: Number of output logits.
    """

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__(in_channels, num_classes, block="bottleneck", num_blocks=(3, 4, 6, 3))

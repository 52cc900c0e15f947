"""Wide Residual Networks (Zagoruyko & Komodakis 2016) in the robust-training layout.

Follows the WRN-28-10 / WRN-34-10 implementation used by TRADES, MART and Rice et al. (2020):
a 3x3 stem with 16 channels, three stages of pre-activation basic blocks with widths
``16k, 32k, 64k`` (``k = widen_factor``), ``n = (depth - 4) / 6`` blocks per stage, optional
dropout between the two convs of each block, and a final BN -> ReLU before global pooling.
Global pooling is adaptive, so any input size from 8x8 upward works.

A `StagedNet` (``stem``, ``stages``, ``pool_features``, ``head``), so generic code (e.g.
Manifold Mixup) can run the stages one by one and mix hidden states.
"""

from __future__ import annotations

import torch
from torch import nn

from mixup_robust.nets.preact_resnet import PreActBlock
from mixup_robust.nets.staged import StagedNet, he_normal_init_

__all__ = ["WideResNet"]


class WideResNet(StagedNet):
    """WRN-``depth``-``widen_factor`` with pre-activation blocks and adaptive global pooling.

    ``forward_features(x)`` is ``stem -> stages[0..2]``; ``pool_features`` applies the final
    BN -> ReLU, adaptive average pooling and flattening before the linear ``head``. Inputs
    must already be normalized; the net does not normalize. WRN-28-10 has 36,479,194
    parameters and WRN-34-10 46,160,474 (3 channels, 10 classes).

    Args:
        in_channels: Number of input image channels (e.g. 1 for MNIST, 3 for CIFAR).
        num_classes: Number of output logits.
        depth: Total depth ``6n + 4`` (e.g. 16, 22, 28, 34, 40); ``n`` blocks per stage.
        widen_factor: Width multiplier ``k``; stage widths are ``16k, 32k, 64k``.
        dropout: Dropout probability inside each block (0 disables it, the robust default).
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        depth: int = 34,
        widen_factor: int = 10,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if depth < 10 or (depth - 4) % 6 != 0:
            raise ValueError(
                f"WideResNet depth must be 6n + 4 with n >= 1 (valid depths: 10, 16, 22, 28, 34, "
                f"40, ...), got depth={depth}"
            )
        if widen_factor < 1:
            raise ValueError(f"widen_factor must be >= 1, got {widen_factor}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        n = (depth - 4) // 6
        widths = [16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.in_channels = in_channels
        self.num_classes = num_classes

        self.stem = nn.Conv2d(in_channels, widths[0], 3, stride=1, padding=1, bias=False)
        stages: list[nn.Module] = []
        in_planes = widths[0]
        for i, out_planes in enumerate(widths[1:]):
            stride = 1 if i == 0 else 2
            blocks = []
            for s in [stride] + [1] * (n - 1):
                blocks.append(PreActBlock(in_planes, out_planes, s, dropout))
                in_planes = out_planes
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.final_bn = nn.BatchNorm2d(in_planes)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(in_planes, num_classes)
        # The reference initialization: torchvision's recipe, and a zero linear bias.
        he_normal_init_(self)
        nn.init.zeros_(self.head.bias)

    def pool_features(self, features: torch.Tensor) -> torch.Tensor:
        """The final BN and ReLU, then global average pooling: (B, D, h, w) -> (B, D)."""
        return torch.flatten(self.pool(torch.relu(self.final_bn(features))), 1)

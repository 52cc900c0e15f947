"""A fast CIFAR net in the spirit of airbench (Jordan 2024): few, wide, pooled conv stages."""

import torch
from torch import nn

from mixup_robust.nets.staged import StagedNet


def _conv(in_channels: int, out_channels: int) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.GELU(),
    ]


class FastCNN(StagedNet):
    """A 2x2 stem, then three stages of conv-maxpool-BN-GELU-conv-BN-GELU, max pool, linear.

    The layout follows the published airbench design (a small patch stem, three stages at
    resolutions 16, 8 and 4 with two convs each, global max pooling and a down-scaled linear
    head); this is the project's own code, without airbench's data-dependent whitening
    initialization, lookahead or test-time augmentation. About 2 M parameters at the default
    widths: on a GPU an epoch of CIFAR-10 takes seconds.

    The stem and the stages are one flat `nn.Sequential`, `features`, since checkpoints name
    its layers `features.0` .. `features.22`; the stages are its consecutive slices.

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
        bounds = [len(layers)]
        previous = stem
        for width in stages:
            first = _conv(previous, width)
            # Pool right after the first conv, before its norm: cheaper than pooling later.
            layers += [first[0], nn.MaxPool2d(2), *first[1:], *_conv(width, width)]
            bounds.append(len(layers))
            previous = width
        self.features = nn.Sequential(*layers)
        # Stage k is features[stage_bounds[k]:stage_bounds[k + 1]]; the stem comes before.
        self.stage_bounds = tuple(bounds)
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.head = nn.Linear(previous, num_classes, bias=False)
        self.head_scale = head_scale

    @property
    def num_stages(self) -> int:
        """How many stages the net has (three)."""
        return len(self.stage_bounds) - 1

    def _run_layers(self, hidden: torch.Tensor, first: int, last: int) -> torch.Tensor:
        for layer in list(self.features)[first:last]:
            hidden = layer(hidden)
        return hidden

    def forward_stem(self, images: torch.Tensor) -> torch.Tensor:
        """The stem's output for normalized images (B, C, H, W)."""
        return self._run_layers(images, 0, self.stage_bounds[0])

    def forward_stages(
        self, hidden: torch.Tensor, start: int = 0, stop: int | None = None
    ) -> torch.Tensor:
        """Runs stages start .. stop - 1 (consecutive layers of `features`) on `hidden`."""
        stages = range(self.num_stages)[start:stop]
        if not stages:
            return hidden
        return self._run_layers(
            hidden, self.stage_bounds[stages[0]], self.stage_bounds[stages[-1] + 1]
        )

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        """Scaled logits (B, num_classes) of the last stage's feature maps (B, D, h, w)."""
        return self.head(self.pool_features(features)) * self.head_scale

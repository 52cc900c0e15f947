"""Manifold Mixup (Verma et al. 2019): mixup of hidden representations at a random layer.

The classifier is split through the `StagedNet` API of its net (no Manifold-Mixup code inside
the nets): `Normalize -> net.forward_stem -> stage 0 -> ... -> stage n - 1 ->
net.forward_head`. Layer 0 is the input pixels (before `Normalize`, so mixing there is
exactly input mixup), layer k >= 1 the output of stage k - 1 (`forward_to_layer`,
`forward_from_layer` in `mixup_robust.nets.staged`).
"""

from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from typing_extensions import override

from mixup_robust.mixing import interpolate, soft_cross_entropy, soft_targets
from mixup_robust.nets.staged import check_layer, forward_from_layer, forward_to_layer
from mixup_robust.training.mixup import Mixup

__all__ = ["ManifoldMixup"]


class ManifoldMixup(Mixup):
    """Soft-target cross-entropy on mixed hidden states at a layer k drawn per batch.

    Per batch: lambda and partners as `Mixup.draw_pairs` (lambda ~ Beta(alpha, alpha)), then
    k uniformly from `mix_layers` from the same generator; h = forward to layer k, the logits
    of lambda h_i + (1 - lambda) h_j, and targets lambda y_i + (1 - lambda) y_j. With
    `mix_layers=(0,)` it is exactly `Mixup` (same draws, same loss).

    Args:
        net: the network, called as `net(in_channels, num_classes)`; it must build a
            `mixup_robust.nets.StagedNet` (every classifier net of `mixup_robust.nets` does).
        alpha: Beta parameter (Verma et al.: 2.0 on CIFAR; the VarMixup paper's mixup: 1.0).
        ratio_per: 'sample' (one lambda per sample) or 'batch' (Verma et al.'s code).
        mix_layers: layers to mix at: 0 the input, k the output of stage k - 1; Verma et
            al.'s PreActResNet setting is (0, 1, 2).
        **kwargs: see `ClassifierModule`.
    """

    def __init__(
        self,
        net: Callable[[int, int], nn.Module],
        alpha: float = 1.0,
        ratio_per: Literal["sample", "batch"] = "sample",
        mix_layers: Sequence[int] = (0, 1, 2),
        **kwargs: Any,
    ) -> None:
        super().__init__(net, alpha=alpha, ratio_per=ratio_per, **kwargs)
        self.mix_layers = tuple(int(layer) for layer in mix_layers)
        if not self.mix_layers:
            raise ValueError("mix_layers must name at least one layer.")
        for layer in self.mix_layers:
            check_layer(self.classifier, layer)

    def draw_layer(self, rng: np.random.Generator) -> int:
        """The mixing layer of a batch, uniform over `mix_layers` (drawn after the pairs)."""
        return self.mix_layers[int(rng.integers(len(self.mix_layers)))]

    def mixed_logits(
        self,
        images: torch.Tensor,
        ratio: torch.Tensor,
        partners: torch.Tensor,
        layer: int,
    ) -> torch.Tensor:
        """Logits of ratio h_i + (1 - ratio) h_partners[i] at `layer`, (B, num_classes)."""
        hidden = forward_to_layer(self.classifier, images, layer)
        mixed = interpolate(hidden, hidden[partners], ratio)
        return forward_from_layer(self.classifier, mixed, layer)

    @override
    def training_loss(
        self, images: torch.Tensor, labels: torch.Tensor, rng: np.random.Generator
    ) -> torch.Tensor:
        ratio, partners = self.draw_pairs(images, rng)
        layer = self.draw_layer(rng)
        targets = soft_targets(labels, labels[partners], ratio, self.num_classes)
        return soft_cross_entropy(self.mixed_logits(images, ratio, partners, layer), targets)

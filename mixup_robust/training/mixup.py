"""Mixup (Zhang et al. 2018): train on convex combinations of image pairs and their labels."""

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from typing_extensions import override

from mixup_robust.mixing import (
    interpolate,
    sample_mixup_ratio,
    sample_partners,
    soft_cross_entropy,
    soft_targets,
)
from mixup_robust.training.base import ClassifierModule


def check_alpha(alpha: float) -> float:
    """Returns alpha, or raises unless it is a valid Beta parameter (alpha > 0).

    The mixup code's convention that alpha <= 0 means "no mixing" would silently train ERM
    under a mixup config; no mixing is the ERM method, chosen by name.
    """
    if not alpha > 0:
        raise ValueError(
            f"alpha={alpha}: the mixup ratio is drawn from Beta(alpha, alpha), which needs "
            "alpha > 0 (1.0 in the MI paper). For training without mixing use "
            "mixup_robust.training.ERM."
        )
    return alpha


class Mixup(ClassifierModule):
    """Soft-target cross-entropy on lambda x_i + (1 - lambda) x_j, lambda ~ Beta(alpha, alpha).

    Args:
        alpha: Beta parameter (1.0 in the MI paper: lambda uniform on [0, 1]).
        ratio_per: 'sample' draws one lambda per sample (this project's default, as in the
            design); 'batch' draws one per batch (the original mixup code).
        **kwargs: see `ClassifierModule`.
    """

    def __init__(
        self,
        net: Callable[[int, int], nn.Module],
        alpha: float = 1.0,
        ratio_per: Literal["sample", "batch"] = "sample",
        **kwargs: Any,
    ) -> None:
        super().__init__(net, **kwargs)
        self.alpha = check_alpha(alpha)
        self.ratio_per = ratio_per

    def draw_pairs(
        self, images: torch.Tensor, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The mixup ratios (B,) and partner indices (B,) of a batch, drawn from `rng`."""
        batch = images.shape[0]
        count = batch if self.ratio_per == "sample" else 1
        ratio = sample_mixup_ratio(rng, self.alpha, count, images.device).expand(batch)
        return ratio, sample_partners(rng, batch, images.device)

    def mix_batch(
        self, images: torch.Tensor, labels: torch.Tensor, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The mixed images and their soft targets (B, num_classes)."""
        ratio, partners = self.draw_pairs(images, rng)
        mixed = interpolate(images, images[partners], ratio)
        return mixed, soft_targets(labels, labels[partners], ratio, self.num_classes)

    @override
    def training_loss(
        self, images: torch.Tensor, labels: torch.Tensor, rng: np.random.Generator
    ) -> torch.Tensor:
        mixed, targets = self.mix_batch(images, labels, rng)
        return soft_cross_entropy(self(mixed), targets)

"""Empirical risk minimization: plain cross-entropy on clean images."""

import numpy as np
import torch
import torch.nn.functional as F
from typing_extensions import override

from mixup_robust.training.base import ClassifierModule


class ERM(ClassifierModule):
    """Cross-entropy on the (augmented) clean training images."""

    @override
    def training_loss(
        self, images: torch.Tensor, labels: torch.Tensor, rng: np.random.Generator
    ) -> torch.Tensor:
        return F.cross_entropy(self(images), labels)

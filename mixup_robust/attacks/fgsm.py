"""The fast gradient sign method (Goodfellow et al. 2015) through torchattacks."""

import torch
import torchattacks
from torch import nn
from typing_extensions import override

from mixup_robust.attacks.base import Attack
from mixup_robust.attacks.budget import Budget, parse_budget


class FGSM(Attack):
    """One signed gradient step of size eps on the cross-entropy, clipped to [0, 1].

    Args:
        eps: L-inf step (and radius) in pixel units, a float or a fraction such as "8/255".
        name: label in result tables; defaults to "FGSM".
        threat_model: 'oblivious' or 'adaptive'.
    """

    def __init__(
        self, eps: Budget = "8/255", name: str | None = None, threat_model: str = "oblivious"
    ) -> None:
        super().__init__(name, threat_model)
        self.eps = parse_budget(eps, "eps")

    @override
    def default_name(self) -> str:
        return "FGSM"

    @override
    def perturb(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return torchattacks.FGSM(model, eps=self.eps)(images, labels)

    @override
    def describe(self) -> dict:
        return {"eps": self.eps}

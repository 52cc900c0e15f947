"""Projected gradient descent (Madry et al. 2018) through torchattacks."""

import torch
import torchattacks
from torch import nn

from mixup_robust.attacks.base import Attack
from mixup_robust.attacks.budget import Budget, parse_budget


class PGD(Attack):
    """L-inf PGD on the cross-entropy, untargeted.

    Args:
        eps: L-inf radius in pixel units, a float or a fraction such as "8/255".
        step_size: step per iteration in pixel units ("2/255").
        steps: number of iterations (10, 50, 200 in the MI paper).
        random_start: start from a uniform random point of the eps-ball.
        name: label in result tables; defaults to "PGD-<steps>".
        threat_model: 'oblivious' or 'adaptive'.
    """

    def __init__(
        self,
        eps: Budget = "8/255",
        step_size: Budget = "2/255",
        steps: int = 10,
        random_start: bool = True,
        name: str | None = None,
        threat_model: str = "oblivious",
    ) -> None:
        super().__init__(name, threat_model)
        if steps < 1:
            raise ValueError(f"steps={steps}; PGD needs at least one step.")
        self.eps = parse_budget(eps, "eps")
        self.step_size = parse_budget(step_size, "step_size")
        self.steps = steps
        self.random_start = random_start

    def default_name(self) -> str:
        return f"PGD-{self.steps}"

    def perturb(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor):
        attack = torchattacks.PGD(
            model, eps=self.eps, alpha=self.step_size, steps=self.steps,
            random_start=self.random_start,
        )  # fmt: skip
        return attack(images, labels)

    def describe(self) -> dict:
        return {"eps": self.eps, "step_size": self.step_size, "steps": self.steps}

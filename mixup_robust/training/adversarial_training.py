"""PGD adversarial training (Madry et al. 2018), optionally mixed with clean cross-entropy."""

from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mixup_robust.attacks.budget import Budget, parse_budget
from mixup_robust.training.base import ClassifierModule
from mixup_robust.training.inner_attack import InnerPGD


def cross_entropy_loss(labels: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """The attack loss of untargeted PGD: cross-entropy on `labels`, summed over the batch."""
    return lambda logits: F.cross_entropy(logits, labels, reduction="sum")


class AdversarialTraining(ClassifierModule):
    """(1 - f) CE(f(x), y) + f CE(f(x_adv), y), x_adv from L-inf PGD on the true labels.

    Args:
        eps: L-inf radius of the training attack, a float or a fraction such as "8/255".
        step_size: PGD step ("2/255").
        steps: PGD iterations (PGD-10 in the MI paper).
        random_start: start from a uniform point of the eps-ball (drawn from the batch's
            seeded generator).
        adversarial_fraction: weight f of the adversarial loss; 1.0 is Madry's AT, 0.5 the
            50/50 clean/adversarial loss of Goodfellow et al., 0.0 is ERM (no attack is run).
        attack_bn_mode: 'eval' crafts the attack with batch norm on its running statistics
            (the usual PyTorch practice, e.g. the TRADES code); 'train' with batch statistics.
            Running statistics are not changed by the attack either way.
        **kwargs: see `ClassifierModule`.
    """

    def __init__(
        self,
        net: Callable[[int, int], nn.Module],
        eps: Budget = "8/255",
        step_size: Budget = "2/255",
        steps: int = 10,
        random_start: bool = True,
        adversarial_fraction: float = 1.0,
        attack_bn_mode: Literal["eval", "train"] = "eval",
        **kwargs,
    ) -> None:
        super().__init__(net, **kwargs)
        if not 0.0 <= adversarial_fraction <= 1.0:
            raise ValueError(f"adversarial_fraction={adversarial_fraction}; it must lie in [0, 1].")
        self.adversarial_fraction = adversarial_fraction
        self.inner_attack = InnerPGD(
            parse_budget(eps, "eps"), parse_budget(step_size, "step_size"), steps,
            start="uniform" if random_start else "none", bn_mode=attack_bn_mode,
        )  # fmt: skip

    def adversarial_examples(
        self, images: torch.Tensor, labels: torch.Tensor, rng: np.random.Generator
    ) -> torch.Tensor:
        """PGD examples of the batch against the current classifier."""
        return self.inner_attack(self.classifier, images, cross_entropy_loss(labels), rng)

    def training_loss(
        self, images: torch.Tensor, labels: torch.Tensor, rng: np.random.Generator
    ) -> torch.Tensor:
        fraction = self.adversarial_fraction
        if fraction == 0.0:
            return F.cross_entropy(self(images), labels)
        adversarial = self.adversarial_examples(images, labels, rng)
        loss = F.cross_entropy(self(adversarial), labels)
        if fraction == 1.0:
            return loss
        return (1 - fraction) * F.cross_entropy(self(images), labels) + fraction * loss

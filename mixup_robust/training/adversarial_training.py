"""PGD adversarial training (Madry et al. 2018), optionally mixed with clean cross-entropy."""

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from typing_extensions import override

from mixup_robust.attacks import InnerPGD
from mixup_robust.attacks.budget import Budget, parse_budget
from mixup_robust.training.base import ClassifierModule

AttackLabels = Literal["true", "predicted"]


def cross_entropy_loss(labels: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """The attack loss of untargeted PGD: cross-entropy on `labels`, summed over the batch."""
    return lambda logits: F.cross_entropy(logits, labels, reduction="sum")


def check_attack_labels(attack_labels: str) -> None:
    """Raises before any compute unless `attack_labels` is 'true' or 'predicted'."""
    if attack_labels not in ("true", "predicted"):
        raise ValueError(f"attack_labels={attack_labels!r}; choose 'true' or 'predicted'.")


def attacked_labels(
    classifier: nn.Module,
    inner_attack: InnerPGD,
    images: torch.Tensor,
    labels: torch.Tensor,
    attack_labels: AttackLabels,
) -> torch.Tensor:
    """The labels the training attack ascends: the true ones, or the model's predictions.

    Predictions are taken in the attack's mode (eval by default), as the official MI code
    does (its PGD labels each input by the model's prediction when no label is given).
    """
    if attack_labels == "true":
        return labels
    with inner_attack.mode(classifier), torch.no_grad():
        return classifier(images).argmax(dim=1)


class AdversarialTraining(ClassifierModule):
    """(1 - f) CE(f(x), y) + f CE(f(x_adv), y), x_adv from L-inf PGD.

    The clean and the adversarial batch go through the model in two forward passes (two
    batch-norm batches), as in the MI paper's official AT script.

    Args:
        eps: L-inf radius of the training attack, a float or a fraction such as "8/255".
        step_size: PGD step ("2/255").
        steps: PGD iterations (PGD-10 in the MI paper).
        random_start: start from a uniform point of the eps-ball (drawn from the batch's
            seeded generator).
        adversarial_fraction: weight f of the adversarial loss; 1.0 is Madry's AT, 0.5 the
            50/50 clean/adversarial loss of Goodfellow et al. and of the MI paper's AT (its
            Sec. 4.1: clean and PGD examples 1:1), 0.0 is ERM (no attack is run).
        attack_bn_mode: 'eval' crafts the attack with batch norm on its running statistics
            (the usual PyTorch practice, e.g. the TRADES code); 'train' with batch statistics.
            Running statistics are not changed by the attack either way.
        attack_labels: 'true' attacks the ground truth (Madry et al.); 'predicted' the
            model's prediction on the clean batch (the official MI code; no label leaking).
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
        attack_labels: AttackLabels = "true",
        **kwargs: Any,
    ) -> None:
        super().__init__(net, **kwargs)
        check_attack_labels(attack_labels)
        self.attack_labels = attack_labels
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
        labels = attacked_labels(
            self.classifier, self.inner_attack, images, labels, self.attack_labels
        )
        return self.inner_attack(self.classifier, images, cross_entropy_loss(labels), rng)

    @override
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

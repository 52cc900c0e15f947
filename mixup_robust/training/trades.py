"""TRADES (Zhang et al. 2019): cross-entropy plus beta times the KL to the clean prediction."""

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


def kl_to_clean(
    clean_probabilities: torch.Tensor, logits: torch.Tensor, reduction: str
) -> torch.Tensor:
    """KL(p_clean || p(logits)), as `nn.KLDivLoss` computes it in the TRADES code."""
    return F.kl_div(F.log_softmax(logits, dim=1), clean_probabilities, reduction=reduction)


class TRADES(ClassifierModule):
    """CE(f(x), y) + beta * KL(f(x) || f(x_adv)), x_adv maximizing that KL by L-inf PGD.

    As in the TRADES code: the attack starts at x + 0.001 * N(0, 1) (drawn from the batch's
    seeded generator, projected on [0, 1]) and runs in eval mode against the clean
    prediction computed in the same mode; the outer KL keeps the gradient through both the
    clean and the adversarial prediction.

    Args:
        eps: L-inf radius ("8/255"; the TRADES code uses 0.031).
        step_size: PGD step (0.007 in the TRADES code).
        steps: PGD iterations (10).
        beta: weight of the robust KL term (6.0 on CIFAR-10 in the TRADES paper; 0 is ERM).
        start_std: standard deviation of the Gaussian start.
        attack_bn_mode: 'eval' (the TRADES code) or 'train'; running statistics are not
            changed by the attack either way.
        **kwargs: see `ClassifierModule`.
    """

    def __init__(
        self,
        net: Callable[[int, int], nn.Module],
        eps: Budget = "8/255",
        step_size: Budget = 0.007,
        steps: int = 10,
        beta: float = 6.0,
        start_std: float = 0.001,
        attack_bn_mode: Literal["eval", "train"] = "eval",
        **kwargs: Any,
    ) -> None:
        super().__init__(net, **kwargs)
        if beta < 0:
            raise ValueError(f"beta={beta}; the KL weight must be >= 0.")
        self.beta = beta
        self.inner_attack = InnerPGD(
            parse_budget(eps, "eps"), parse_budget(step_size, "step_size"), steps,
            start="normal", start_std=start_std, bn_mode=attack_bn_mode,
        )  # fmt: skip

    def adversarial_examples(self, images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """Points of the eps-ball whose prediction is farthest (in KL) from the clean one."""
        with self.inner_attack.mode(self.classifier), torch.no_grad():
            clean = F.softmax(self.classifier(images), dim=1)
        return self.inner_attack(
            self.classifier, images, lambda logits: kl_to_clean(clean, logits, "sum"), rng
        )

    @override
    def training_loss(
        self, images: torch.Tensor, labels: torch.Tensor, rng: np.random.Generator
    ) -> torch.Tensor:
        if self.beta == 0:
            return F.cross_entropy(self(images), labels)
        # Attack first, as in the TRADES code: it sees the running statistics before this
        # batch's clean forward pass updates them.
        adversarial = self.adversarial_examples(images, rng)
        logits = self(images)
        robust = kl_to_clean(F.softmax(logits, dim=1), self(adversarial), "batchmean")
        return F.cross_entropy(logits, labels) + self.beta * robust

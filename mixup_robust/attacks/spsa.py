"""SPSA (Uesato et al. 2018), a gradient-free attack, through torchattacks.

Gradient-free attacks matter for randomized defenses such as mixup inference, whose gradients
can be noisy or masked. torchattacks' SPSA estimates the gradient of a margin loss from
`nb_sample` random +-1 directions (finite differences at +-delta), takes an Adam step of
learning rate `lr`, and projects onto the eps-ball and [0, 1]. The whole batch is treated at
once; the Python loop runs over chunks of `max_batch_size` directions, so one forward pass
sees `max_batch_size * batch size` images (lower it if memory runs out). Its margin loss (best
other output minus true-label output) is the same on logits and on log-softmax outputs.
"""

import torch
import torchattacks
from torch import nn
from typing_extensions import override

from mixup_robust.attacks.base import Attack
from mixup_robust.attacks.budget import Budget, parse_budget


class SPSA(Attack):
    """L-inf SPSA on the logit margin, untargeted.

    Defaults follow torchattacks except eps (its 0.3 is an MNIST budget) and nb_iter (its
    single iteration moves each pixel by at most lr = 0.01 < 8/255, far from a real attack).
    delta = lr = 0.01 and nb_sample = 128 are the advertorch / cleverhans defaults; a strong
    evaluation raises nb_sample and nb_iter (Uesato et al. use thousands of samples per step).

    Args:
        eps: L-inf radius in pixel units, a float or a fraction such as "8/255".
        delta: finite-difference step in pixel units.
        lr: Adam learning rate on the perturbation, in pixel units.
        nb_iter: number of Adam steps.
        nb_sample: random directions per gradient estimate (per image).
        max_batch_size: directions evaluated per forward pass (memory knob, see module doc).
        name: label in result tables; defaults to "SPSA-<nb_iter>".
        threat_model: 'oblivious' or 'adaptive'.
    """

    uses_gradients = False  # finite differences of outputs only

    def __init__(
        self,
        eps: Budget = "8/255",
        delta: float = 0.01,
        lr: float = 0.01,
        nb_iter: int = 20,
        nb_sample: int = 128,
        max_batch_size: int = 64,
        name: str | None = None,
        threat_model: str = "oblivious",
    ) -> None:
        super().__init__(name, threat_model)
        for field, value in (("nb_iter", nb_iter), ("nb_sample", nb_sample)):
            if value < 1:
                raise ValueError(f"{field}={value}; SPSA needs at least one.")
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size={max_batch_size}; it must be at least 1.")
        if not delta > 0 or not lr > 0:
            raise ValueError(f"delta={delta} and lr={lr} must be positive.")
        self.eps = parse_budget(eps, "eps")
        self.delta = float(delta)
        self.lr = float(lr)
        self.nb_iter = nb_iter
        self.nb_sample = nb_sample
        self.max_batch_size = max_batch_size

    @override
    def default_name(self) -> str:
        return f"SPSA-{self.nb_iter}"

    @override
    def perturb(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        attack = torchattacks.SPSA(
            model, eps=self.eps, delta=self.delta, lr=self.lr, nb_iter=self.nb_iter,
            nb_sample=self.nb_sample, max_batch_size=self.max_batch_size,
        )  # fmt: skip
        adv = attack(images, labels)
        # torchattacks returns x + (clip(x + dx) - x), which rounding can push a hair outside.
        return torch.minimum(torch.maximum(adv, images - self.eps), images + self.eps).clamp(0, 1)

    @override
    def describe(self) -> dict:
        return {
            "eps": self.eps, "delta": self.delta, "lr": self.lr, "nb_iter": self.nb_iter,
            "nb_sample": self.nb_sample,
        }  # fmt: skip

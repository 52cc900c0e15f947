"""Square Attack (Andriushchenko et al. 2020), a query-only attack, through torchattacks.

A gradient-free attack is the audit's check on gradient masking: it sees only the model's
outputs, so a non-differentiable or noisy-gradient defense does not slow it down. It runs
random square-shaped updates of the perturbation and keeps those that lower the margin of
the true class (the same on logits and on log-softmax outputs).

Randomness: torchattacks' Square reseeds torch's global RNG with its `seed`. A seed is drawn
from the global RNG instead (so the evaluation's per-batch seeding controls the attack), and
the global CPU and CUDA RNG states are restored afterwards, as if only that seed had been drawn.
"""

from typing import Literal

import torch
import torchattacks
from torch import nn
from typing_extensions import override

from mixup_robust.attacks.base import Attack
from mixup_robust.attacks.budget import Budget, parse_budget


class Square(Attack):
    """L-inf (or L2) Square Attack with a query budget.

    Args:
        eps: radius in pixel units, a float or a fraction such as "8/255".
        n_queries: model queries per image and restart (5000 in AutoAttack's standard version).
        n_restarts: restarts on the images not yet fooled.
        p_init: initial fraction of pixels a square covers (AutoAttack: 0.8).
        norm: 'Linf' or 'L2'.
        loss: 'margin' (AutoAttack) or 'ce'.
        name: label in result tables; defaults to "Square-<n_queries>".
        threat_model: 'oblivious' or 'adaptive' (queries the defended model: the usual use).
    """

    uses_gradients = False

    def __init__(
        self,
        eps: Budget = "8/255",
        n_queries: int = 5000,
        n_restarts: int = 1,
        p_init: float = 0.8,
        norm: Literal["Linf", "L2"] = "Linf",
        loss: Literal["margin", "ce"] = "margin",
        name: str | None = None,
        threat_model: str = "adaptive",
    ) -> None:
        super().__init__(name, threat_model)
        if n_queries < 1 or n_restarts < 1:
            raise ValueError(f"n_queries={n_queries} and n_restarts={n_restarts} must be >= 1.")
        if not 0 < p_init <= 1:
            raise ValueError(f"p_init={p_init} must lie in (0, 1].")
        if norm not in ("Linf", "L2") or loss not in ("margin", "ce"):
            raise ValueError(f"norm={norm!r}, loss={loss!r}; use Linf/L2 and margin/ce.")
        self.eps = parse_budget(eps, "eps")
        self.n_queries, self.n_restarts, self.p_init = n_queries, n_restarts, p_init
        self.norm, self.loss = norm, loss

    @override
    def default_name(self) -> str:
        return f"Square-{self.n_queries}"

    @override
    def perturb(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        seed = int(torch.randint(0, 2**31 - 1, ()))
        attack = torchattacks.Square(
            model, norm=self.norm, eps=self.eps, n_queries=self.n_queries,
            n_restarts=self.n_restarts, p_init=self.p_init, loss=self.loss, seed=seed,
        )  # fmt: skip
        devices = [images.device] if images.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            return attack(images, labels)

    @override
    def describe(self) -> dict:
        return {
            "eps": self.eps, "norm": self.norm, "n_queries": self.n_queries,
            "n_restarts": self.n_restarts, "p_init": self.p_init, "loss": self.loss,
        }  # fmt: skip

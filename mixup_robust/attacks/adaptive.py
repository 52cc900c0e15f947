"""Adaptive PGD attacks on randomized defenses: EOT-PGD and the MI paper's adaptive PGD.

Both average each step's gradient over N_A executions of the defense, computed as one batch
of B x N_A inputs (the defense chunks it), never as a loop of N_A passes:

- **EOT-PGD** (Athalye et al. 2018) draws fresh randomness at every step.
- **MI adaptive PGD** (Pang et al. 2020, Sec. 4.4 and Appendix B.2) draws N_A partners once
  per input and keeps them for all steps: each step's gradient is the average of the
  gradients through the N_A mixed copies lambda x + (1 - lambda) x_s,k, and the final
  perturbation is the average of the copies' perturbations.
"""

from collections.abc import Callable
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from typing_extensions import override

from mixup_robust.attacks.adaptive_paper import paper_variant
from mixup_robust.attacks.base import Attack
from mixup_robust.attacks.budget import Budget, parse_budget
from mixup_robust.attacks.defense_protocols import (
    PartnerMixingDefense,
    PixelMixingDefense,
    RandomizedDefense,
    require_defense,
)
from mixup_robust.attacks.modes import preserved_modes
from mixup_robust.attacks.steps import project_linf, signed_step

CopiesLogProbs = Callable[[torch.Tensor, int], torch.Tensor]
"""Maps (adversarial images, step) to the log-probabilities of their N_A copies, (B, N_A, C)."""


class EOTPGD(Attack):
    """L-inf PGD on the mean cross-entropy over N_A executions of a defense.

    Args:
        eps: L-inf radius in pixel units ("8/255").
        step_size: step per iteration in pixel units ("2/255").
        steps: number of iterations.
        n_samples: N_A, the executions averaged per step.
        random_start: start from a uniform point of the eps-ball (torch's global RNG, which
            the evaluation seeds per batch).
        name: label in result tables.
    """

    fresh_draws_each_step = True

    def __init__(
        self,
        eps: Budget = "8/255",
        step_size: Budget = "2/255",
        steps: int = 10,
        n_samples: int = 10,
        random_start: bool = True,
        name: str | None = None,
    ) -> None:
        super().__init__(name, threat_model="adaptive")
        if steps < 1 or n_samples < 1:
            raise ValueError("steps and n_samples must be at least 1.")
        self.eps = parse_budget(eps, "eps")
        self.step_size = parse_budget(step_size, "step_size")
        self.steps, self.n_samples, self.random_start = steps, n_samples, random_start

    @override
    def default_name(self) -> str:
        return f"EOT-PGD-{self.steps} (N_A={self.n_samples})"

    @override
    def describe(self) -> dict:
        return {
            "eps": self.eps, "step_size": self.step_size, "steps": self.steps,
            "n_samples": self.n_samples,
        }  # fmt: skip

    @override
    def perturb(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        raise TypeError(
            f"{self.name} is an adaptive attack: it needs the defense (against_defense), "
            "so declare it with threat_model adaptive in an evaluation."
        )

    def against_defense(
        self,
        defense: nn.Module,
        images: torch.Tensor,
        labels: torch.Tensor,
        sample_index: torch.Tensor,
    ) -> torch.Tensor:
        """Adversarial images against `defense` (a `RandomizedDefense`), run in eval mode."""
        require_defense(defense, RandomizedDefense, self.name)
        with (
            preserved_modes(defense, eval_inside=True),
            torch.inference_mode(False),
            torch.enable_grad(),
        ):
            return self._attack(defense, images, labels, sample_index).detach()

    def _attack(
        self,
        defense: RandomizedDefense,
        images: torch.Tensor,
        labels: torch.Tensor,
        sample_index: torch.Tensor,
    ) -> torch.Tensor:
        executions = torch.arange(self.n_samples, device=images.device)
        copies = self.copies_log_probs(defense, images, sample_index, executions)
        adversarial = images.clone()
        if self.random_start:
            noise = torch.empty_like(images).uniform_(-self.eps, self.eps)
            adversarial = (images + noise).clamp(0, 1)
        for step in range(self.steps):
            adversarial.requires_grad_(True)
            log_probs = copies(adversarial, step)
            loss = self.loss(log_probs, labels)
            self.record_loss(loss)
            gradient = torch.autograd.grad(loss, adversarial)[0]
            adversarial = signed_step(adversarial, gradient, self.step_size)
            adversarial = project_linf(adversarial, images, self.eps)
        return adversarial

    @staticmethod
    def loss(log_probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy summed over the batch, averaged over the N_A copies of each input.

        Summing over the batch gives each input its own gradient, unscaled by the batch size.
        """
        n_copies = log_probs.shape[1]
        flat = log_probs.reshape(-1, log_probs.shape[-1])
        return F.nll_loss(flat, labels.repeat_interleave(n_copies), reduction="sum") / n_copies

    def copies_log_probs(
        self,
        defense: RandomizedDefense,
        images: torch.Tensor,
        sample_index: torch.Tensor,
        executions: torch.Tensor,
    ) -> CopiesLogProbs:
        """A function (adversarial images, step) -> per-copy log-probs, (B, N_A, C)."""

        def evaluate(adversarial: torch.Tensor, step: int) -> torch.Tensor:
            with defense.fresh_draw(1 + step):
                return defense.execution_log_probs(adversarial, sample_index, executions)

        return evaluate


class MixupInferenceAdaptivePGD(EOTPGD):
    """The MI paper's adaptive PGD: N_A partners drawn once per input, kept for every step.

    Against Mixup Inference the partners (their classes chosen from the prediction on the
    clean input) are fixed at the start. With `perturbation: average_over_copies` (the paper's
    Sec. 4.4) each copy k keeps its own perturbation d_k of x; every step moves all of them
    by the sign of the gradient averaged over the copies, each is clipped so that its mixed
    input lambda (x + d_k) + (1 - lambda) x_s,k stays in [0, 1] (which depends on the
    partner), and the final perturbation is the mean of the d_k. With `shared`, one
    perturbation serves every copy, as it does for defenses that mix elsewhere than in pixel
    space (VarMI mixes latent codes). Against other randomized defenses the same executions
    (one fixed draw) are reused at every step with a shared perturbation.

    `variant: paper` runs the attack as the MI paper's official code does (its Figure 4):
    the perturbation d_k is added to the mixed copy, the loss is taken at
    lambda x + (1 - lambda) x_s,k + d_k, each copy is attacked away from its own prediction
    (not the true label), each copy has its own random start, and the result is
    x + mean_k d_k, not clipped to [0, 1]. The default `project` variant is stronger: the
    perturbation acts on x, so the gradient includes the factor lambda and the mixed input
    moves by lambda d_k, which is what the defense will see, and it ascends the loss of the
    true label (a copy's own prediction can already be wrong, so the paper's labels waste
    steps), and the result is a valid image. See `docs/reproducing-mixup-inference.md`.

    Args:
        perturbation: 'average_over_copies' (the paper) or 'shared'.
        variant: 'project' (default, for real evaluations) or 'paper' (the Figure 4 configs).
        **kwargs: see `EOTPGD`.
    """

    def __init__(
        self,
        perturbation: Literal["average_over_copies", "shared"] = "average_over_copies",
        variant: Literal["project", "paper"] = "project",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if perturbation not in ("average_over_copies", "shared"):
            raise ValueError(f"perturbation={perturbation!r}; use average_over_copies or shared.")
        if variant not in ("project", "paper"):
            raise ValueError(f"variant={variant!r}; use 'project' or 'paper'.")
        if variant == "paper" and perturbation != "average_over_copies":
            raise ValueError("variant 'paper' averages per-copy perturbations; drop `shared`.")
        self.perturbation = perturbation
        self.variant = variant

    @override
    def default_name(self) -> str:
        paper = ", paper variant" if self.variant == "paper" else ""
        return f"MI-adaptive PGD-{self.steps} (N_A={self.n_samples}{paper})"

    @override
    def describe(self) -> dict:
        return {**super().describe(), "variant": self.variant}

    def _attack(
        self,
        defense: RandomizedDefense,
        images: torch.Tensor,
        labels: torch.Tensor,
        sample_index: torch.Tensor,
    ) -> torch.Tensor:
        per_copy = self.perturbation == "average_over_copies"
        if not (per_copy and isinstance(defense, PixelMixingDefense) and defense.mixes_pixels):
            return super()._attack(defense, images, labels, sample_index)
        partners = self._fixed_partners(defense, images, sample_index)
        if self.variant == "paper":
            return paper_variant(self, defense, images, partners)
        low, high = self._copy_bounds(defense, images, partners)
        start = torch.zeros_like(images)
        if self.random_start:
            start = torch.empty_like(images).uniform_(-self.eps, self.eps)
        perturbations = start[:, None].expand_as(low).clamp(low, high).clone()
        for _ in range(self.steps):
            perturbations.requires_grad_(True)
            log_probs = defense.mixed_log_probs(images[:, None] + perturbations, partners)
            loss = self.loss(log_probs, labels)
            self.record_loss(loss)
            gradient = torch.autograd.grad(loss, perturbations)[0]
            mean_gradient = gradient.mean(dim=1, keepdim=True)
            perturbations = signed_step(perturbations, mean_gradient, self.step_size)
            perturbations = perturbations.clamp(low, high)
        return (images + perturbations.mean(dim=1)).clamp(0, 1)

    def _copy_bounds(
        self, defense: PixelMixingDefense, images: torch.Tensor, partners: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-copy limits of d_k: the eps-ball, and the mixed input kept in [0, 1]."""
        ratio = defense.mixup_ratio
        if ratio <= 0:
            raise ValueError("The adaptive attack needs a mixup ratio above 0.")
        partner_part = (1 - ratio) * defense.pool.fetch(partners.reshape(-1))
        partner_part = partner_part.view(*partners.shape, *images.shape[1:])
        low = (-partner_part / ratio - images[:, None]).clamp_min(-self.eps)
        high = ((1 - partner_part) / ratio - images[:, None]).clamp_max(self.eps)
        return low, torch.maximum(high, low)

    def _fixed_partners(
        self, defense: PartnerMixingDefense, images: torch.Tensor, sample_index: torch.Tensor
    ) -> torch.Tensor:
        executions = torch.arange(self.n_samples, device=images.device)
        with torch.no_grad(), defense.fresh_draw(1):
            predicted = defense.classifier(images).argmax(dim=1)
            return defense.partners(predicted, sample_index, executions)

    @override
    def copies_log_probs(
        self,
        defense: RandomizedDefense,
        images: torch.Tensor,
        sample_index: torch.Tensor,
        executions: torch.Tensor,
    ) -> CopiesLogProbs:
        if not isinstance(defense, PartnerMixingDefense):
            return lambda adversarial, step: self._fixed_draw(
                defense, adversarial, sample_index, executions
            )
        partners = self._fixed_partners(defense, images, sample_index)
        return lambda adversarial, step: defense.mixed_log_probs(adversarial, partners)

    @staticmethod
    def _fixed_draw(
        defense: RandomizedDefense,
        adversarial: torch.Tensor,
        sample_index: torch.Tensor,
        executions: torch.Tensor,
    ) -> torch.Tensor:
        with defense.fresh_draw(1):
            return defense.execution_log_probs(adversarial, sample_index, executions)

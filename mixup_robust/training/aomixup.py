"""Adversarially optimized mixup (after Bunk et al. 2021): PGD through the mixup interpolation.

The paper's code is not available; this module implements this project's reading of its
abstract, written out in docs/aomixup.md.
"""

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from typing_extensions import override

from mixup_robust.attacks import InnerPGD, project_linf
from mixup_robust.attacks.budget import Budget, parse_budget
from mixup_robust.mixing import geometric_weight, interpolate, soft_cross_entropy, soft_targets
from mixup_robust.nets import NetFactory
from mixup_robust.training.mixup import Mixup

LABEL_RULES = ("mixup", "geometric")


@dataclass(frozen=True)
class MixupPairs:
    """What the inner maximization keeps fixed: the clean endpoints, labels and draws.

    Attributes:
        images: clean x_i (B, C, H, W).
        partners: clean x_j, the partner of each image.
        labels: labels of x_i (B,).
        partner_labels: labels of x_j (B,).
        ratio: the drawn ratios lambda_0 (B,).
        low: lower end of each ratio's interval, max(lambda_0 - rho, 0) (B,).
        high: upper end, min(lambda_0 + rho, 1) (B,).
    """

    images: torch.Tensor
    partners: torch.Tensor
    labels: torch.Tensor
    partner_labels: torch.Tensor
    ratio: torch.Tensor
    low: torch.Tensor
    high: torch.Tensor


@dataclass(frozen=True)
class MixupPoint:
    """One iterate: the perturbed endpoints x_i + d_i, x_j + d_j and the ratio lambda (B,)."""

    images: torch.Tensor
    partners: torch.Tensor
    ratio: torch.Tensor

    def mixed(self) -> torch.Tensor:
        """x_mix = clip(lambda (x_i + d_i) + (1 - lambda) (x_j + d_j), 0, 1)."""
        return interpolate(self.images, self.partners, self.ratio).clamp(0, 1)


class AdversariallyOptimizedMixup(Mixup):
    """Mixup whose endpoints (and optionally ratio) are adversarially optimized by PGD.

    Args:
        net: the network, called as `net(in_channels, num_classes)`.
        eps: L-inf budget of the perturbation of each endpoint, in pixels ("8/255").
        step_size: signed PGD step of the endpoint perturbations.
        steps: PGD steps of the inner maximization (0: the drawn point, randomly started).
        optimize_ratio: also optimize lambda within [lambda_0 - rho, lambda_0 + rho] ∩ [0, 1].
        ratio_radius: rho, the half-width of lambda's interval.
        ratio_step_size: signed PGD step of lambda.
        label_rule: 'mixup' (y weight w = lambda) or 'geometric' (w = position of x_mix along
            the clean segment from x_j to x_i).
        mixup_loss_weight: weight of the plain mixup loss (on the clean drawn pairs) in the
            training loss; the adversarial loss gets 1 - this weight.
        random_start: start the endpoints uniformly in their eps-balls (drawn from the batch's
            seeded generator); lambda always starts at lambda_0.
        alpha: Beta parameter of lambda_0 (see `Mixup`).
        ratio_per: one lambda_0 per 'sample' or per 'batch' (see `Mixup`).
        **kwargs: see `ClassifierModule`.
    """

    def __init__(
        self,
        net: NetFactory,
        eps: Budget = "8/255",
        step_size: Budget = "2/255",
        steps: int = 10,
        optimize_ratio: bool = False,
        ratio_radius: float = 0.1,
        ratio_step_size: float = 0.025,
        label_rule: Literal["mixup", "geometric"] = "mixup",
        mixup_loss_weight: float = 0.0,
        random_start: bool = True,
        alpha: float = 1.0,
        ratio_per: Literal["sample", "batch"] = "sample",
        **kwargs: Any,
    ) -> None:
        super().__init__(net, alpha=alpha, ratio_per=ratio_per, **kwargs)
        if steps < 0:
            raise ValueError(f"steps={steps} must be >= 0.")
        if not 0 <= ratio_radius <= 1 or ratio_step_size < 0:
            raise ValueError(
                f"ratio_radius={ratio_radius} must lie in [0, 1] and "
                f"ratio_step_size={ratio_step_size} must be >= 0."
            )
        if label_rule not in LABEL_RULES:
            raise ValueError(f"label_rule={label_rule!r}; choose one of {LABEL_RULES}.")
        if not 0 <= mixup_loss_weight <= 1:
            raise ValueError(f"mixup_loss_weight={mixup_loss_weight} must lie in [0, 1].")
        self.eps = parse_budget(eps, "eps")
        self.step_size = parse_budget(step_size, "step_size")
        self.steps = steps
        # The endpoints' PGD; it starts where `start_point` puts it (the batch's numpy draws).
        self.inner_attack = InnerPGD(self.eps, self.step_size, steps, start="none")
        self.optimize_ratio = optimize_ratio
        self.ratio_radius = ratio_radius
        self.ratio_step_size = ratio_step_size
        self.label_rule = label_rule
        self.mixup_loss_weight = mixup_loss_weight
        self.random_start = random_start

    def pair_batch(
        self, images: torch.Tensor, labels: torch.Tensor, rng: np.random.Generator
    ) -> MixupPairs:
        """Draws lambda_0 and partners exactly as `Mixup.mix_batch` does (same draws, order)."""
        ratio, partners = self.draw_pairs(images, rng)
        radius = self.ratio_radius if self.optimize_ratio else 0.0
        return MixupPairs(
            images=images,
            partners=images[partners],
            labels=labels,
            partner_labels=labels[partners],
            ratio=ratio,
            low=(ratio - radius).clamp(min=0),
            high=(ratio + radius).clamp(max=1),
        )

    def start_point(self, pairs: MixupPairs, rng: np.random.Generator) -> MixupPoint:
        """The first iterate: endpoints uniform in their eps-balls (or clean), lambda_0."""
        if not self.random_start:
            return MixupPoint(pairs.images, pairs.partners, pairs.ratio)

        def uniform(clean: torch.Tensor) -> torch.Tensor:
            noise = rng.uniform(-self.eps, self.eps, size=tuple(clean.shape))
            noise = torch.from_numpy(noise.astype(np.float32)).to(clean.device, clean.dtype)
            return project_linf(clean + noise, clean, self.eps)

        return MixupPoint(uniform(pairs.images), uniform(pairs.partners), pairs.ratio)

    def mix_weight(self, pairs: MixupPairs, point: MixupPoint, mixed: torch.Tensor) -> torch.Tensor:
        """The weight w of the target y_mix = w y_i + (1 - w) y_j, per the label rule (B,)."""
        if self.label_rule == "mixup":
            return point.ratio
        return geometric_weight(mixed, pairs.images, pairs.partners, fallback=point.ratio)

    def point_loss(self, pairs: MixupPairs, point: MixupPoint) -> torch.Tensor:
        """Soft-target cross-entropy of f(x_mix) against y_mix at one iterate."""
        mixed = point.mixed()
        weight = self.mix_weight(pairs, point, mixed)
        targets = soft_targets(pairs.labels, pairs.partner_labels, weight, self.num_classes)
        return soft_cross_entropy(self(mixed), targets)

    def ascent_step(self, pairs: MixupPairs, point: MixupPoint) -> MixupPoint:
        """One PGD step: signed steps for the endpoints, a signed projected step for lambda."""
        iterates = [point.images, point.partners]
        projections = [
            lambda images: project_linf(images, pairs.images, self.eps),
            lambda partners: project_linf(partners, pairs.partners, self.eps),
        ]
        step_sizes = [self.step_size, self.step_size]
        if self.optimize_ratio:
            iterates.append(point.ratio)
            projections.append(
                lambda ratio: torch.minimum(torch.maximum(ratio, pairs.low), pairs.high)
            )
            step_sizes.append(self.ratio_step_size)
        fixed_ratio = point.ratio.detach()

        def loss(
            images: torch.Tensor, partners: torch.Tensor, ratio: torch.Tensor = fixed_ratio
        ) -> torch.Tensor:
            return self.point_loss(pairs, MixupPoint(images, partners, ratio))

        moved = self.inner_attack.ascent_step(loss, iterates, projections, step_sizes)
        return MixupPoint(moved[0], moved[1], moved[2] if self.optimize_ratio else fixed_ratio)

    def maximize(self, pairs: MixupPairs, rng: np.random.Generator) -> MixupPoint:
        """The inner maximization: `steps` PGD steps from the start, the model in eval mode."""
        point = self.start_point(pairs, rng)
        with self.inner_attack.mode(self):
            for _ in range(self.steps):
                point = self.ascent_step(pairs, point)
        return point

    @override
    def training_loss(
        self, images: torch.Tensor, labels: torch.Tensor, rng: np.random.Generator
    ) -> torch.Tensor:
        pairs = self.pair_batch(images, labels, rng)
        loss = self.point_loss(pairs, self.maximize(pairs, rng))
        if self.mixup_loss_weight == 0:
            return loss
        clean = self.point_loss(pairs, MixupPoint(pairs.images, pairs.partners, pairs.ratio))
        return (1 - self.mixup_loss_weight) * loss + self.mixup_loss_weight * clean

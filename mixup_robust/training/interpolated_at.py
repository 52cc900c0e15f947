"""Interpolated adversarial training (Lamb et al. 2019): mixup of clean and of PGD examples."""

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from typing_extensions import override

from mixup_robust.attacks import InnerPGD
from mixup_robust.attacks.budget import Budget, parse_budget
from mixup_robust.mixing import (
    interpolate,
    sample_mixup_ratio,
    sample_partners,
    soft_cross_entropy,
    soft_targets,
)
from mixup_robust.training.adversarial_training import (
    AttackLabels,
    attacked_labels,
    check_attack_labels,
    cross_entropy_loss,
)
from mixup_robust.training.base import ClassifierModule
from mixup_robust.training.mixup import check_alpha

Mixing = tuple[torch.Tensor, torch.Tensor]
"""One mixup draw: the ratio of each sample (B,) and its partner's index (B,)."""


class InterpolatedAT(ClassifierModule):
    """Half the loss on mixup of the clean batch, half on mixup of its PGD examples.

    Lamb et al.'s Algorithm 1 with input mixup: x_adv = PGD(x), then
    loss = (mixup_loss(x, y) + mixup_loss(x_adv, y)) / 2, each a soft-target cross-entropy
    on lambda x_i + (1 - lambda) x_j with lambda ~ Beta(alpha, alpha). By default both halves
    use the same lambdas and partners (`share_mixing`): each half is still mixup in
    distribution, and with eps = 0 the loss is exactly the Mixup loss of the same draws.

    The official MI code (P2333/Mixup-Inference, `train_resnet_mixup.py`) trains IAT
    differently in three ways, each an option here: the two halves have their own lambdas and
    partners (`share_mixing: false`), go through the model in one forward pass, so batch
    norm normalizes them as one batch (`joint_forward: true`), and the inner PGD, in eval
    mode, attacks the model's predicted labels (`attack_labels: predicted`). The MI-paper
    configs use those choices; `docs/adversarial-training.md` compares them.

    Args:
        alpha: Beta parameter (1.0 in Lamb et al. and the MI paper).
        ratio_per: 'sample' draws one lambda per sample (as `Mixup` does here); 'batch' one
            per batch (the mixup and IAT reference code).
        share_mixing: mix the adversarial half with the clean half's lambdas and partners;
            False draws them afresh for the adversarial half.
        joint_forward: one forward pass on the concatenated mixed clean and mixed
            adversarial halves (one batch-norm batch; the official MI code); False runs
            the two halves as two forward passes.
        eps: L-inf radius of the training attack ("8/255").
        step_size: PGD step ("2/255").
        steps: PGD iterations (10).
        random_start: uniform start in the eps-ball, drawn from the batch's seeded generator.
        attack_labels: 'true' attacks the ground truth (Madry et al.); 'predicted' attacks
            the model's own prediction on the clean batch, which avoids label leaking
            (Kurakin et al. 2017).
        attack_bn_mode: 'eval' or 'train' mode for batch norm during the attack; running
            statistics are not changed by the attack either way.
        **kwargs: see `ClassifierModule`.
    """

    def __init__(
        self,
        net: Callable[[int, int], nn.Module],
        alpha: float = 1.0,
        ratio_per: Literal["sample", "batch"] = "sample",
        share_mixing: bool = True,
        eps: Budget = "8/255",
        step_size: Budget = "2/255",
        steps: int = 10,
        random_start: bool = True,
        attack_labels: AttackLabels = "true",
        attack_bn_mode: Literal["eval", "train"] = "eval",
        joint_forward: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(net, **kwargs)
        check_attack_labels(attack_labels)
        self.alpha = check_alpha(alpha)
        self.ratio_per = ratio_per
        self.share_mixing = share_mixing
        self.joint_forward = joint_forward
        self.attack_labels = attack_labels
        self.inner_attack = InnerPGD(
            parse_budget(eps, "eps"), parse_budget(step_size, "step_size"), steps,
            start="uniform" if random_start else "none", bn_mode=attack_bn_mode,
        )  # fmt: skip

    def draw_mixing(self, batch: int, device: torch.device, rng: np.random.Generator) -> Mixing:
        """Ratios and partners, drawn in the order of `Mixup.mix_batch` (same rng, same draws)."""
        count = batch if self.ratio_per == "sample" else 1
        ratio = sample_mixup_ratio(rng, self.alpha, count, device).expand(batch)
        return ratio, sample_partners(rng, batch, device)

    def mixed_batch(
        self, images: torch.Tensor, labels: torch.Tensor, mixing: Mixing
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The mixed images and their soft targets."""
        ratio, partners = mixing
        mixed = interpolate(images, images[partners], ratio)
        return mixed, soft_targets(labels, labels[partners], ratio, self.num_classes)

    def mixup_loss(
        self, images: torch.Tensor, labels: torch.Tensor, mixing: Mixing
    ) -> torch.Tensor:
        """Soft-target cross-entropy of the classifier on the mixed batch."""
        mixed, targets = self.mixed_batch(images, labels, mixing)
        return soft_cross_entropy(self(mixed), targets)

    def adversarial_examples(
        self, images: torch.Tensor, labels: torch.Tensor, rng: np.random.Generator
    ) -> torch.Tensor:
        """PGD examples of the (unmixed) batch, on the true or the predicted labels."""
        if self.inner_attack.eps == 0:
            return images
        labels = attacked_labels(
            self.classifier, self.inner_attack, images, labels, self.attack_labels
        )
        return self.inner_attack(self.classifier, images, cross_entropy_loss(labels), rng)

    @override
    def training_loss(
        self, images: torch.Tensor, labels: torch.Tensor, rng: np.random.Generator
    ) -> torch.Tensor:
        clean_mixing = self.draw_mixing(images.shape[0], images.device, rng)
        adversarial = self.adversarial_examples(images, labels, rng)
        adversarial_mixing = (
            clean_mixing
            if self.share_mixing
            else self.draw_mixing(images.shape[0], images.device, rng)
        )
        if self.joint_forward:
            return self.joint_loss(images, adversarial, labels, clean_mixing, adversarial_mixing)
        clean_loss = self.mixup_loss(images, labels, clean_mixing)
        adversarial_loss = self.mixup_loss(adversarial, labels, adversarial_mixing)
        return (clean_loss + adversarial_loss) / 2

    def joint_loss(
        self,
        images: torch.Tensor,
        adversarial: torch.Tensor,
        labels: torch.Tensor,
        clean_mixing: Mixing,
        adversarial_mixing: Mixing,
    ) -> torch.Tensor:
        """Both mixed halves in one forward pass; the mean of the two halves' losses."""
        clean, clean_targets = self.mixed_batch(images, labels, clean_mixing)
        mixed_adversarial, adversarial_targets = self.mixed_batch(
            adversarial, labels, adversarial_mixing
        )
        clean_logits, adversarial_logits = self(torch.cat([clean, mixed_adversarial])).chunk(2)
        clean_loss = soft_cross_entropy(clean_logits, clean_targets)
        return (clean_loss + soft_cross_entropy(adversarial_logits, adversarial_targets)) / 2

"""The MI paper's adaptive PGD exactly as its official code runs it (the Figure 4 setting).

Facts from P2333/Mixup-Inference (`attack_resnet_mixuptest_OL_adaptive.py` with its PGD;
no code copied): the N_A mixed copies m_k = lambda x + (1 - lambda) x_s,k are attacked as a
batch by PGD whose step is the sign of the gradient averaged over the copies; each copy
starts from its own uniform point of the eps-ball, is labelled by the classifier's
prediction on m_k (untargeted PGD without labels), and is kept in the valid range; the
adversarial input is x + mean_k(d_k), with no clipping.
"""

from typing import Protocol

import torch
import torch.nn.functional as F

from mixup_robust.attacks.defense_protocols import PixelMixingDefense
from mixup_robust.attacks.steps import signed_step


class PGDSettings(Protocol):
    """The PGD settings the paper variant reads (`MixupInferenceAdaptivePGD` has them).

    Declared here so that this module does not import `adaptive.py`, which imports it.
    """

    eps: float
    step_size: float
    steps: int
    random_start: bool


def paper_variant(
    attack: PGDSettings,
    defense: PixelMixingDefense,
    images: torch.Tensor,
    partners: torch.Tensor,
) -> torch.Tensor:
    """Adversarial images x + mean_k d_k (may leave [0, 1], as in the official code).

    Args:
        attack: the `MixupInferenceAdaptivePGD` (eps, step_size, steps, random_start).
        defense: a Mixup Inference defense (`mixup_ratio`, `pool`, `mixed_log_probs`).
        images: clean inputs in [0, 1], (B, C, H, W).
        partners: pool positions of the N_A fixed partners, (B, N_A).
    """
    ratio = defense.mixup_ratio
    if ratio <= 0:
        raise ValueError("The adaptive attack needs a mixup ratio above 0.")
    batch, n_copies = partners.shape
    fetched = defense.pool.fetch(partners.reshape(-1))
    mixed = ratio * images[:, None] + (1 - ratio) * fetched.view(batch, n_copies, *images.shape[1:])
    with torch.no_grad():
        own_labels = defense.mixed_log_probs(images, partners).argmax(dim=-1).reshape(-1)
    # The copy m_k + d_k must stay in [0, 1], and |d_k| <= eps.
    low = (-mixed).clamp_min(-attack.eps)
    high = (1 - mixed).clamp_max(attack.eps)
    perturbations = torch.zeros_like(mixed)
    if attack.random_start:
        perturbations = torch.empty_like(mixed).uniform_(-attack.eps, attack.eps)
    perturbations = perturbations.clamp(low, high)
    for _ in range(attack.steps):
        perturbations.requires_grad_(True)
        # lambda (x + d_k / lambda) + (1 - lambda) x_s,k = m_k + d_k: the defense's own
        # batched, chunked mixing evaluates the classifier at the perturbed copies.
        log_probs = defense.mixed_log_probs(images[:, None] + perturbations / ratio, partners)
        loss = F.nll_loss(log_probs.flatten(0, 1), own_labels, reduction="sum")
        gradient = torch.autograd.grad(loss, perturbations)[0]
        mean_gradient = gradient.mean(dim=1, keepdim=True)
        perturbations = signed_step(perturbations, mean_gradient, attack.step_size)
        perturbations = perturbations.clamp(low, high)
    return images + perturbations.mean(dim=1)

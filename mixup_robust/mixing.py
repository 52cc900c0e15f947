"""Pure functions of mixup: ratio sampling, partners, interpolation and soft targets."""

import numpy as np
import torch
import torch.nn.functional as F


def sample_mixup_ratio(
    rng: np.random.Generator, alpha: float, size: int, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """lambda ~ Beta(alpha, alpha), one per sample, as float32 on `device`.

    alpha <= 0 means no mixing (lambda = 1), following the convention of the mixup code.
    """
    if alpha <= 0:
        return torch.ones(size, device=device)
    return torch.from_numpy(rng.beta(alpha, alpha, size=size)).float().to(device)


def sample_partners(rng: np.random.Generator, size: int, device: torch.device | str = "cpu"):
    """A random permutation of the batch: sample i is mixed with sample partners[i]."""
    return torch.from_numpy(rng.permutation(size)).to(device)


def interpolate(a: torch.Tensor, b: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    """ratio * a + (1 - ratio) * b with one ratio per sample (broadcast over the other dims)."""
    ratio = ratio.to(a.dtype).view(-1, *([1] * (a.dim() - 1)))
    return ratio * a + (1 - ratio) * b


def soft_targets(
    labels: torch.Tensor, partner_labels: torch.Tensor, ratio: torch.Tensor, num_classes: int
) -> torch.Tensor:
    """ratio * onehot(labels) + (1 - ratio) * onehot(partner_labels), shape (B, num_classes)."""
    one_hot = F.one_hot(labels, num_classes).float()
    partner_one_hot = F.one_hot(partner_labels, num_classes).float()
    return interpolate(one_hot, partner_one_hot, ratio)


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of -sum_c targets_c * log_softmax(logits)_c."""
    return -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()

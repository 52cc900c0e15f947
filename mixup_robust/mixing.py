"""Pure functions of mixup: ratio sampling, partners, interpolation and soft targets."""

import numpy as np
import torch
import torch.nn.functional as F


def sample_mixup_ratio(
    rng: np.random.Generator, alpha: float, size: int, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Mixup ratios lambda ~ Beta(alpha, alpha), one per sample, as float32 on `device`.

    alpha <= 0 means no mixing (lambda = 1), following the convention of the mixup code.
    """
    if alpha <= 0:
        return torch.ones(size, device=device)
    # non_blocking: the copy of a few host bytes must not wait for the GPU's queued work
    # (a blocking copy synchronizes the stream on every training step).
    return torch.from_numpy(rng.beta(alpha, alpha, size=size)).float().to(device, non_blocking=True)


def sample_partners(
    rng: np.random.Generator, size: int, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """A random permutation of the batch: sample i is mixed with sample partners[i]."""
    return torch.from_numpy(rng.permutation(size)).to(device, non_blocking=True)


def interpolate(a: torch.Tensor, b: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    """Mixes a with b: ratio * a + (1 - ratio) * b.

    `ratio` holds one value per sample, (B,), broadcast over the other dims.
    """
    ratio = ratio.to(a.dtype).view(-1, *([1] * (a.dim() - 1)))
    return ratio * a + (1 - ratio) * b


def soft_targets(
    labels: torch.Tensor, partner_labels: torch.Tensor, ratio: torch.Tensor, num_classes: int
) -> torch.Tensor:
    """Soft labels ratio * onehot(labels) + (1 - ratio) * onehot(partner_labels).

    Returns:
        Float tensor, (B, num_classes).
    """
    one_hot = F.one_hot(labels, num_classes).float()
    partner_one_hot = F.one_hot(partner_labels, num_classes).float()
    return interpolate(one_hot, partner_one_hot, ratio)


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of -sum_c targets_c * log_softmax(logits)_c."""
    return -(targets * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def geometric_weight(
    mixed: torch.Tensor,
    x_i: torch.Tensor,
    x_j: torch.Tensor,
    fallback: torch.Tensor | float = 0.5,
) -> torch.Tensor:
    """Position of `mixed` along the segment from x_j (0) to x_i (1), one weight per sample.

    w = clip(<mixed - x_j, x_i - x_j> / ||x_i - x_j||^2, 0, 1): the ratio of the point of the
    segment nearest to `mixed`. Where x_i = x_j the segment is a point and `fallback` (a
    scalar or one value per sample, e.g. the mixup ratio) is returned; the division is guarded
    so that no NaN gradient flows from those samples.

    Returns:
        (B,) tensor in [0, 1], differentiable with respect to `mixed`.
    """
    direction = (x_i - x_j).flatten(1)
    offset = (mixed - x_j).flatten(1)
    squared_length = (direction * direction).sum(dim=1)
    degenerate = squared_length <= 1e-12
    safe_length = torch.where(degenerate, torch.ones_like(squared_length), squared_length)
    weight = ((offset * direction).sum(dim=1) / safe_length).clamp(0, 1)
    fallback = torch.as_tensor(fallback, dtype=weight.dtype, device=weight.device)
    return torch.where(degenerate, fallback.expand_as(weight), weight)

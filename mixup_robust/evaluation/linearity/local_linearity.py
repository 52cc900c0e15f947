"""The local linearity error of a classifier's loss (Qin et al. 2019), maximized by PGD.

gamma(eps, x) = max_{||d||_inf <= eps} |L(x + d) - L(x) - d . grad_x L(x)|

The VarMixup paper (Fig. 4) reports its average over the test set for growing eps.
"""

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from mixup_robust.attacks import project_offset, signed_step

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def per_sample_cross_entropy(outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each sample's logits on its true label, shape (B,)."""
    return F.cross_entropy(outputs, labels, reduction="none")


def local_linearity_error(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    eps: float,
    steps: int = 10,
    step_size: float | None = None,
    generator: torch.Generator | None = None,
    loss_fn: LossFn | None = None,
    start: torch.Tensor | None = None,
) -> torch.Tensor:
    """The local linearity error of each input, shape (B,), detached.

    PGD ascends the absolute linearization error g(d) = |L(x + d) - L(x) - d . grad_x L(x)|
    with signed steps, from a uniform random point of the eps-ball; x + d stays in [0, 1].
    The largest error seen at any iterate (start included) is returned per sample, a lower
    bound of the maximum. The model should be in eval mode (samples must not interact).

    Args:
        model: maps images (B, C, H, W) in [0, 1] to outputs for `loss_fn` (logits for CE).
        images: float inputs in [0, 1].
        labels: int64 labels (B,), passed to `loss_fn`.
        eps: L-inf radius in pixel units; 0 gives zeros.
        steps: PGD iterations (0: the random start only).
        step_size: step per iteration; default 2.5 * eps / steps (Madry et al.).
        generator: draws the random start (on the images' device); None: torch's global RNG.
        loss_fn: per-sample loss (outputs, labels) -> (B,); default cross-entropy.
        start: the random start as draws in [-1, 1] shaped like `images` (scaled by eps);
            overrides `generator`, so callers can key draws on sample indices.
    """
    if eps < 0 or steps < 0:
        raise ValueError(f"eps={eps} and steps={steps} must be non-negative.")
    loss_fn = loss_fn or per_sample_cross_entropy
    images = images.detach()
    if eps == 0:
        return images.new_zeros(len(images))
    step_size = 2.5 * eps / max(steps, 1) if step_size is None else step_size
    dims = tuple(range(1, images.dim()))

    with torch.enable_grad():
        inputs = images.clone().requires_grad_(True)
        clean_loss = loss_fn(model(inputs), labels)
        (gradient,) = torch.autograd.grad(clean_loss.sum(), inputs)
    clean_loss, gradient = clean_loss.detach(), gradient.detach()

    def error(delta: torch.Tensor) -> torch.Tensor:
        loss = loss_fn(model(images + delta), labels)
        return (loss - clean_loss - (delta * gradient).sum(dim=dims)).abs()

    if start is None:
        start = torch.rand(images.shape, generator=generator, device=images.device) * 2 - 1
    delta = project_offset(images, eps * start.to(images), eps) - images
    best = torch.zeros_like(clean_loss)
    for _ in range(steps):
        with torch.enable_grad():
            delta.requires_grad_(True)
            current = error(delta)
            (ascent,) = torch.autograd.grad(current.sum(), delta)
        best = torch.maximum(best, current.detach())
        delta = project_offset(images, signed_step(delta, ascent, step_size), eps) - images
    with torch.no_grad():
        best = torch.maximum(best, error(delta))
    return best

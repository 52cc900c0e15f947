"""The L-inf step and projections that every PGD loop of the project shares.

Two projections exist because they round differently: `project_offset` (and `project_linf`,
which calls it) clips the offset from the clean image and adds it back, `project_bounds`
clips the candidate between x - eps and x + eps. In exact arithmetic they are the same
map; in floating point they can differ (e.g. for a result near 0, far below the clean
pixel), and each loop keeps the one it was written with, so that a run reproduces earlier
runs bit for bit.
"""

import torch


def signed_step(iterate: torch.Tensor, gradient: torch.Tensor, step_size: float) -> torch.Tensor:
    """One L-inf steepest-ascent step: iterate + step_size * sign(gradient), detached."""
    return iterate.detach() + step_size * gradient.sign()


def project_offset(images: torch.Tensor, offset: torch.Tensor, eps: float) -> torch.Tensor:
    """clip(images + clip(offset, -eps, eps), 0, 1): the image at `offset`, kept valid.

    Args:
        images: the clean images (the centre of the eps-ball), in [0, 1].
        offset: the perturbation, same shape; it need not lie in the ball.
        eps: L-inf radius in pixel units.

    Returns:
        The perturbed image inside the eps-ball and [0, 1] (subtract `images` for the
        perturbation itself).
    """
    return (images + offset.clamp(-eps, eps)).clamp(0, 1)


def project_linf(adversarial: torch.Tensor, images: torch.Tensor, eps: float) -> torch.Tensor:
    """The image nearest to `adversarial` within the eps-ball of `images` and [0, 1].

    Computed through the offset: `project_offset(images, adversarial - images, eps)`.
    """
    return project_offset(images, adversarial - images, eps)


def project_bounds(candidate: torch.Tensor, images: torch.Tensor, eps: float) -> torch.Tensor:
    """clip(min(max(candidate, images - eps), images + eps), 0, 1): the same, by bounds."""
    candidate = torch.minimum(torch.maximum(candidate, images - eps), images + eps)
    return candidate.clamp(0.0, 1.0)

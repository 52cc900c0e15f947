"""The inner maximization of adversarial training: L-inf PGD on a loss passed in.

The evaluation attacks come from torchattacks, but training needs what torchattacks does
not offer: a custom loss (the KL to the clean prediction of TRADES), a random start drawn
from the batch's seeded generator rather than torch's global RNG (so a resumed run redraws
exactly the starts of the uninterrupted one), control over batch norm during the attack,
and no side effect on the model's modes, running statistics or parameter gradients. The
loop is ten lines, so it is written out here. Its step (`InnerPGD.ascent_step`) also serves
the PGD of the adv-VAE (which perturbs an offset) and of adversarially optimized mixup
(which perturbs both mixup endpoints and the ratio).
"""

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from mixup_robust.attacks.modes import preserved_modes
from mixup_robust.attacks.steps import project_bounds, signed_step
from mixup_robust.precision import full_precision

BatchNormMode = Literal["eval", "train"]
Start = Literal["uniform", "normal", "none"]
AttackLoss = Callable[[torch.Tensor], torch.Tensor]
"""Maps the logits of the perturbed batch to the scalar loss that the attack ascends."""
Projection = Callable[[torch.Tensor], torch.Tensor]
"""Maps an iterate after its step back into its feasible set (eps-ball, [0, 1] ...)."""

_BN_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def _batch_norm_buffers(model: nn.Module) -> list[tuple[nn.Module, str, torch.Tensor]]:
    """Copies of every batch-norm running statistic of `model`."""
    return [
        (module, name, getattr(module, name).clone())
        for module in model.modules()
        if isinstance(module, _BatchNorm)
        for name in _BN_BUFFERS
        if getattr(module, name, None) is not None
    ]


@contextlib.contextmanager
def attack_mode(
    model: nn.Module, bn_mode: BatchNormMode = "eval", update_bn_stats: bool = False
) -> Iterator[None]:
    """Puts `model` in the attack's mode for the block and restores it exactly afterwards.

    Args:
        model: the attacked network.
        bn_mode: 'eval' runs the attack in eval mode (batch norm uses its running
            statistics, dropout is off); 'train' leaves the model in its current mode.
        update_bn_stats: keep what the block's forward passes do to batch norm's running
            statistics (only possible in 'train' mode). By default they are restored.

    Every submodule's own `training` flag is restored, so a batch norm frozen in eval mode
    inside a model in train mode stays frozen (`model.train()` would unfreeze it).
    """
    if bn_mode not in ("eval", "train"):
        raise ValueError(f"bn_mode={bn_mode!r}; choose 'eval' or 'train'.")
    saved = [] if update_bn_stats else _batch_norm_buffers(model)
    try:
        with preserved_modes(model, eval_inside=bn_mode == "eval"):
            yield
    finally:
        with torch.no_grad():
            for module, name, value in saved:
                getattr(module, name).copy_(value)


def start_generator(rng: np.random.Generator, device: torch.device) -> torch.Generator:
    """A torch generator on `device` seeded by one draw of the batch's numpy generator."""
    generator = torch.Generator(device=device)
    generator.manual_seed(int(rng.integers(0, 2**63 - 1)))
    return generator


@dataclass(frozen=True)
class InnerPGD:
    """L-inf PGD of training: ascends `loss(model(x_adv))` within the eps-ball and [0, 1].

    Args:
        eps: L-inf radius in pixel units.
        step_size: signed-gradient step per iteration.
        steps: iterations (0 returns the start).
        start: 'uniform' on the eps-ball (Madry et al.), 'normal' (x + start_std * N(0, 1),
            the TRADES code) or 'none' (x itself).
        start_std: standard deviation of the 'normal' start.
        bn_mode: 'eval' or 'train' mode for the attack's forward passes; see `attack_mode`.
        update_bn_stats: let the attack's forward passes update batch-norm running statistics.
    """

    eps: float
    step_size: float
    steps: int = 10
    start: Start = "uniform"
    start_std: float = 0.001
    bn_mode: BatchNormMode = "eval"
    update_bn_stats: bool = False

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ValueError(f"steps={self.steps}; the attack needs steps >= 0.")
        if self.start not in ("uniform", "normal", "none"):
            raise ValueError(f"start={self.start!r}; choose 'uniform', 'normal' or 'none'.")
        if self.bn_mode not in ("eval", "train"):
            raise ValueError(f"bn_mode={self.bn_mode!r}; choose 'eval' or 'train'.")

    def mode(self, model: nn.Module) -> contextlib.AbstractContextManager[None]:
        """The attack's mode, for forward passes that must share it (clean targets)."""
        return attack_mode(model, self.bn_mode, self.update_bn_stats)

    def random_start(self, images: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        """The first iterate, projected on the eps-ball and [0, 1]."""
        if self.start == "none" or self.eps == 0:
            return images.clone()
        generator = start_generator(rng, images.device)
        if self.start == "uniform":
            noise = torch.rand(
                images.shape, generator=generator, device=images.device, dtype=images.dtype
            )
            noise = (2 * noise - 1) * self.eps
        else:
            noise = self.start_std * torch.randn(
                images.shape, generator=generator, device=images.device, dtype=images.dtype
            )
        return self.project(images + noise, images)

    def project(self, candidate: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """The closest point of the eps-ball around `images` inside [0, 1]."""
        return project_bounds(candidate, images, self.eps)

    def ascent_step(
        self,
        objective: Callable[..., torch.Tensor],
        iterates: Sequence[torch.Tensor],
        projections: Sequence[Projection],
        step_sizes: Sequence[float] | None = None,
    ) -> list[torch.Tensor]:
        """One projected signed-gradient step of every iterate up `objective(*iterates)`.

        Args:
            objective: the scalar to ascend, a function of the iterates in their order.
            iterates: the tensors perturbed together (the images; or an offset; or the two
                mixup endpoints and the mixup ratio).
            projections: per iterate, the map back into its feasible set.
            step_sizes: per iterate; default `step_size` for each.

        Returns:
            The next iterates, detached. Gradients are taken with `torch.autograd.grad` with
            respect to the iterates only, so parameters' `.grad` are untouched.
        """
        step_sizes = [self.step_size] * len(iterates) if step_sizes is None else step_sizes
        leaves = [iterate.detach().requires_grad_(True) for iterate in iterates]
        # fp32 even under bf16 autocast in training: see mixup_robust.precision.
        with torch.enable_grad(), full_precision(leaves[0].device):
            gradients = torch.autograd.grad(objective(*leaves), leaves)
        return [
            project(signed_step(leaf, gradient, step_size))
            for leaf, gradient, project, step_size in zip(
                leaves, gradients, projections, step_sizes, strict=True
            )
        ]

    def ascend(
        self,
        objective: Callable[..., torch.Tensor],
        iterates: Sequence[torch.Tensor],
        projections: Sequence[Projection],
        step_sizes: Sequence[float] | None = None,
    ) -> list[torch.Tensor]:
        """`steps` ascent steps (see `ascent_step`) from `iterates`; the last ones, detached."""
        iterates = [iterate.detach() for iterate in iterates]
        for _ in range(self.steps):
            iterates = self.ascent_step(objective, iterates, projections, step_sizes)
        return iterates

    def __call__(
        self,
        model: nn.Module,
        images: torch.Tensor,
        loss: AttackLoss,
        rng: np.random.Generator,
    ) -> torch.Tensor:
        """Adversarial images (detached) that ascend `loss` from a start drawn with `rng`.

        The parameters' `.grad` are untouched (see `ascent_step`).
        """
        images = images.detach()
        adversarial = self.random_start(images, rng)
        if self.eps == 0:
            return adversarial
        with self.mode(model):
            (adversarial,) = self.ascend(
                lambda candidate: loss(model(candidate)),
                [adversarial],
                [lambda candidate: self.project(candidate, images)],
            )
        return adversarial

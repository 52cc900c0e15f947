"""VarMixup and VarERM (Mangla et al. 2020, Eqs. 12 and 13): mixup in an MMD-VAE's latent space.

The VAE is trained first (`MMDVAE`, configs/<data>/vae.yaml) and loaded frozen from its
checkpoint. It is held outside the module's submodules: it is not in the optimizer, not in
`state_dict()` (a classifier checkpoint stays a classifier checkpoint and loads for evaluation
without the VAE file), stays in eval mode with requires_grad False, and follows the batch's
device. It is loaded when fitting starts (`setup`), so a missing file fails before training.
"""

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from typing_extensions import override

from mixup_robust.checkpoints.vae import FrozenVAE
from mixup_robust.mixing import interpolate, soft_cross_entropy, soft_targets
from mixup_robust.nets.vae import VAE, ResizingVAE
from mixup_robust.training.base import ClassifierModule
from mixup_robust.training.mixup import Mixup


class _WithFrozenVAE:
    """The frozen-VAE part shared by VarERM and VarMixup (a mixin of a LightningModule)."""

    # A plain attribute, not a submodule: outside parameters(), state_dict() and train().
    _frozen_vae: FrozenVAE

    def setup(self, stage: str) -> None:
        if stage == "fit":
            self.frozen_vae(torch.device("cpu"))

    def frozen_vae(self, device: torch.device) -> VAE | ResizingVAE:
        """The VAE of `vae_ckpt` at the data's image size, loaded on first use, on `device`.

        A VAE trained at another resolution is wrapped in a `ResizingVAE` when `resize` is
        True (images resized to its size before encoding, decoded images back to the data's).
        """
        vae = self._frozen_vae.adapted(self.hparams.image_shape)
        if next(vae.parameters()).device != device:
            vae.to(device)
        return vae

    @torch.no_grad()
    def latent_means(self, images: torch.Tensor) -> torch.Tensor:
        """E[z|x] of the frozen VAE, (B, latent_dim), without gradients."""
        return self.frozen_vae(images.device).encode(images)[0]

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] decoded by the frozen VAE, without gradients."""
        return self.frozen_vae(latents.device).decode(latents)


class VarERM(_WithFrozenVAE, ClassifierModule):
    """Cross-entropy on the VAE's reconstructions dec(E[z|x]) (the paper's VarERM, Eq. 13).

    Args:
        net: the network, called as `net(in_channels, num_classes)`.
        vae_ckpt: checkpoint of the trained `MMDVAE` (regular or adversarial).
        resize: use a VAE trained at another resolution (e.g. Tiny-ImageNet's for CIFAR, the
            paper's Table 3) by resizing to and from its size; False: sizes must match.
        **kwargs: see `ClassifierModule` (its `optimizer: adam` is the paper's).
    """

    def __init__(
        self,
        net: Callable[[int, int], nn.Module],
        vae_ckpt: str,
        resize: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(net, **kwargs)
        self.vae_ckpt = vae_ckpt
        self.resize = resize
        self._frozen_vae = FrozenVAE(vae_ckpt, resize)

    @override
    def training_loss(
        self, images: torch.Tensor, labels: torch.Tensor, rng: np.random.Generator
    ) -> torch.Tensor:
        return F.cross_entropy(self(self.decode(self.latent_means(images))), labels)


class VarMixup(_WithFrozenVAE, Mixup):
    """Soft-target cross-entropy on dec(lambda E[z|x_i] + (1 - lambda) E[z|x_j]) (Eq. 12).

    Labels are mixed with the same lambda ~ Beta(alpha, alpha) as the latents (the paper's
    eta is `alpha`); partners are a random permutation of the batch, as in `Mixup`.

    Args:
        net: the network, called as `net(in_channels, num_classes)`.
        vae_ckpt: checkpoint of the trained `MMDVAE` (regular or adversarial).
        alpha: Beta parameter (the paper's eta; Table 1: 1.0).
        ratio_per: 'sample' (one lambda per sample) or 'batch'.
        resize: use a VAE trained at another resolution, as in `VarERM`.
        **kwargs: see `ClassifierModule` (its `optimizer: adam` is the paper's).
    """

    def __init__(
        self,
        net: Callable[[int, int], nn.Module],
        vae_ckpt: str,
        alpha: float = 1.0,
        ratio_per: Literal["sample", "batch"] = "sample",
        resize: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(net, alpha=alpha, ratio_per=ratio_per, **kwargs)
        self.vae_ckpt = vae_ckpt
        self.resize = resize
        self._frozen_vae = FrozenVAE(vae_ckpt, resize)

    def mix_batch(
        self, images: torch.Tensor, labels: torch.Tensor, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The VarMixup images (B, C, H, W) and their soft targets (B, num_classes)."""
        ratio, partners = self.draw_pairs(images, rng)
        return self.mix_with(images, labels, ratio, partners)

    def mix_with(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        ratio: torch.Tensor,
        partners: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """VarMixup of each sample with images[partners] at the given ratios (B,)."""
        latents = self.latent_means(images)
        mixed = self.decode(interpolate(latents, latents[partners], ratio))
        return mixed, soft_targets(labels, labels[partners], ratio, self.num_classes)

    @override
    def training_loss(
        self, images: torch.Tensor, labels: torch.Tensor, rng: np.random.Generator
    ) -> torch.Tensor:
        mixed, targets = self.mix_batch(images, labels, rng)
        return soft_cross_entropy(self(mixed), targets)

"""Variational Mixup Inference (VarMI; Mangla et al. 2020, Eq. 14): MI in a VAE's latent space."""

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from typing_extensions import override

from mixup_robust.checkpoints.vae import FrozenVAE
from mixup_robust.defenses.base import Defense
from mixup_robust.defenses.mixup_inference import MixupInference
from mixup_robust.defenses.pool import ClassPool
from mixup_robust.mixing import interpolate
from mixup_robust.nets.vae import VAE, ResizingVAE


class VarMixupInference(MixupInference):
    """Mean softmax of f(dec(lambda E[z|x] + (1 - lambda) E[z|x_s])) over N pool partners x_s.

    Partners are drawn exactly as by `MixupInference` (keyed per sample and execution, from
    the other-label or the predicted-label pool); only the mixing differs: it happens between
    the latent means of the frozen MMD-VAE, and the classifier sees the decoded image. The
    input's encoding, the decoding and the classifier run in chunks of `chunk_size` and are
    differentiable in the input, so adaptive attacks get gradients through encoder and
    decoder. The partners' latent means are computed once per pool and device.

    Args:
        vae_ckpt: checkpoint of the trained `MMDVAE`; loaded at `bind` (evaluation setup).
        partner_label: 'other' (default, as MI-OL) or 'predicted' (as MI-PL).
        mixup_ratio: lambda_MI, the weight of the input's latent (paper, Table 1: 0.5).
        n_executions: N, the number of partners averaged (paper: 30).
        chunk_size: the largest number of images per encoder, decoder or classifier pass.
        name: label in result tables; defaults to VarMI-OL or VarMI-PL.
        resize: use a VAE trained at another resolution (the paper's Table 3: Tiny-ImageNet's
            for CIFAR) by resizing to and from its size, differentiably; False: sizes must match.
    """

    mixes_pixels = False  # mixing happens between latent means

    def __init__(
        self,
        vae_ckpt: str,
        partner_label: Literal["predicted", "other"] = "other",
        mixup_ratio: float = 0.5,
        n_executions: int = 30,
        chunk_size: int | None = None,
        name: str | None = None,
        resize: bool = True,
    ) -> None:
        super().__init__(partner_label, mixup_ratio, n_executions, chunk_size, name)
        self.vae_ckpt = vae_ckpt
        self.resize = resize
        self.vae: VAE | ResizingVAE | None = None
        self._frozen_vae = FrozenVAE(vae_ckpt, resize, source="VarMI vae_ckpt")  # not a module
        self._pool_latents: torch.Tensor | None = None

    @override
    def default_name(self) -> str:
        return "VarMI-PL" if self.partner_label == "predicted" else "VarMI-OL"

    def bind(self, classifier: nn.Module, pool: ClassPool | None = None, seed: int = 0) -> Defense:
        """Binds as `MixupInference` and loads the frozen VAE onto the classifier's device.

        The VAE is adapted to the pool's image shape (`adapt_vae`: resized if `resize`).
        """
        super().bind(classifier, pool, seed)
        self._frozen_vae.load()  # a file that is no VAE checkpoint: load_vae's own message
        self.vae = self._frozen_vae.adapted(pool.images.shape[1:])
        device = next(classifier.parameters()).device
        self.vae.to(device).eval().requires_grad_(False)
        self.vae.check_images(pool.images[:1])
        self._pool_latents = None
        return self

    def pool_latents(self, device: torch.device) -> torch.Tensor:
        """E[z|x_s] of every pool image, (M, latent_dim), computed once per device."""
        if self._pool_latents is None or self._pool_latents.device != device:
            with torch.no_grad():
                positions = torch.arange(len(self.pool.images), device=self.pool.images.device)
                self._pool_latents = self.encode(self.pool.fetch(positions).to(device))
        return self._pool_latents

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Latent means of images (K, C, H, W), in chunks of `chunk_size`, differentiable."""
        chunks = torch.split(images, self.chunk_length(images))
        return torch.cat([self.vae.encode(chunk)[0] for chunk in chunks])

    def mixed_log_probs(self, images: torch.Tensor, partners: torch.Tensor) -> torch.Tensor:
        """Log-softmax of f(dec(lambda E[z|x] + (1 - lambda) E[z|x_s,n])) for each n, (B, N, C).

        Args:
            images: (B, C, H, W), or (B, N, C, H, W) with one input per copy.
            partners: pool positions, (B, N).
        """
        batch, n_executions = partners.shape
        pool_latents = self.pool_latents(images.device)
        if images.dim() == 5:
            latents = self.encode(images.flatten(0, 1))
        else:
            rows = torch.arange(batch, device=images.device).repeat_interleave(n_executions)
            latents = self.encode(images)[rows]
        flat_partners = partners.reshape(-1).to(images.device)
        log_probs = []
        size = self.chunk_length(images)
        for start in range(0, batch * n_executions, size):
            chunk = slice(start, start + size)
            ratio = torch.full((len(latents[chunk]),), self.mixup_ratio, device=images.device)
            mixed = interpolate(latents[chunk], pool_latents[flat_partners[chunk]], ratio)
            log_probs.append(F.log_softmax(self.classifier(self.vae.decode(mixed)), dim=1))
        return torch.cat(log_probs).view(batch, n_executions, -1)

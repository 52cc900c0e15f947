"""A convolutional VAE for 8x8 to 64x64 images (the latent space of VarMixup and VarMI).

Inputs are pixels in [0, 1]; the encoder maps them to [-1, 1] with a fixed affine map (2x - 1)
as its first operation, so no per-data-set statistics are needed. The decoder ends in a
sigmoid: its images are pixels in [0, 1] again. No batch norm: the frozen VAE behaves the
same in train and eval mode and under adversarial perturbations of a batch.
"""

import itertools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from typing_extensions import override


def _downsamplings(image_size: int) -> int:
    """Number of stride-2 stages that take `image_size` down to 4 (8 -> 1, 32 -> 3, 64 -> 4)."""
    stages = math.log2(image_size / 4) if image_size >= 8 else -1
    if stages < 1 or stages != int(stages):
        raise ValueError(
            f"image_size={image_size}: the VAE needs square images of side 4 * 2^k with k >= 1 "
            "(8, 16, 32, 64, ...)."
        )
    return int(stages)


class Encoder(nn.Module):
    """Strided convolutions to a 4x4 map, then linear heads for the mean and log-variance.

    Args:
        in_channels: image channels.
        image_size: side of the square images (8, 16, 32, 64, ...).
        latent_dim: dimension of z.
        width: channels of the first stage; each stride-2 stage doubles them (at most 8x).
    """

    def __init__(self, in_channels: int, image_size: int, latent_dim: int, width: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, width, 3, padding=1), nn.LeakyReLU(0.2)]
        channels = width
        for stage in range(_downsamplings(image_size)):
            out = width * min(2 ** (stage + 1), 8)
            layers += [nn.Conv2d(channels, out, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            channels = out
        self.features = nn.Sequential(*layers)
        self.mean = nn.Linear(channels * 16, latent_dim)
        self.logvar = nn.Linear(channels * 16, latent_dim)

    @override
    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.features(images * 2 - 1).flatten(1)
        return self.mean(hidden), self.logvar(hidden).clamp(-20.0, 10.0)


class Decoder(nn.Module):
    """Linear to a 4x4 map, transposed convolutions up to the image size, sigmoid pixels.

    Args: as `Encoder` (the stages mirror it).
    """

    def __init__(self, in_channels: int, image_size: int, latent_dim: int, width: int) -> None:
        super().__init__()
        stages = _downsamplings(image_size)
        widths = [width * min(2**stage, 8) for stage in range(stages, -1, -1)]
        self.start = widths[0]
        self.project = nn.Sequential(nn.Linear(latent_dim, widths[0] * 16), nn.LeakyReLU(0.2))
        layers: list[nn.Module] = []
        for channels, out in itertools.pairwise(widths):
            layers += [nn.ConvTranspose2d(channels, out, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        layers += [nn.Conv2d(widths[-1], in_channels, 3, padding=1), nn.Sigmoid()]
        self.layers = nn.Sequential(*layers)

    @override
    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return self.layers(self.project(latents).view(-1, self.start, 4, 4))


class VAE(nn.Module):
    """Encoder q(z|x) = N(mean, diag(exp(logvar))) and decoder x = dec(z), pixels in [0, 1].

    Args:
        in_channels: image channels (1 for the digits, 3 for CIFAR).
        image_size: side of the square images: 8 (digits), 32 (CIFAR, SVHN), 64 (Tiny-ImageNet).
        latent_dim: dimension of the latent space.
        width: channels of the first convolution (the cost grows with its square).
    """

    def __init__(
        self, in_channels: int, image_size: int, latent_dim: int = 64, width: int = 32
    ) -> None:
        super().__init__()
        self.in_channels, self.image_size, self.latent_dim = in_channels, image_size, latent_dim
        self.encoder = Encoder(in_channels, image_size, latent_dim, width)
        self.decoder = Decoder(in_channels, image_size, latent_dim, width)

    def check_images(self, images: torch.Tensor) -> None:
        """Raises a clear error when images do not have the VAE's (C, H, W)."""
        expected = (self.in_channels, self.image_size, self.image_size)
        if images.dim() != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(
                f"The VAE was trained on images of shape {expected} but got {tuple(images.shape)}; "
                "use a VAE trained on this data set."
            )

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z|x), each (B, latent_dim), for images in [0, 1]."""
        return self.encoder(images)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) in [0, 1] for latents (B, latent_dim)."""
        return self.decoder(latents)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The reconstruction from the mean of q(z|x): dec(E[z|x])."""
        return self.decode(self.encode(images)[0])


def resize_images(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of a batch (B, C, H, W) to `size`, antialiased where it shrinks.

    Pixels in [0, 1] stay in [0, 1] (clamped against rounding); differentiable; returns the
    images themselves when they already have `size`.
    """
    height, width = images.shape[-2:]
    if (height, width) == tuple(size):
        return images
    shrinks = size[0] < height or size[1] < width
    resized = F.interpolate(
        images, size=size, mode="bilinear", align_corners=False, antialias=shrinks
    )
    return resized.clamp(0.0, 1.0)


class ResizingVAE(nn.Module):
    """A VAE trained at one square size used on images of another size (VAE transfer).

    `encode` resizes the images to the VAE's size first and `decode` resizes the decoded images
    to the data's size (bilinear, antialiased where shrinking, on the batch's device), so
    callers see the same interface as `VAE` at the data's resolution (the VarMixup paper's
    Table 3: a Tiny-ImageNet VAE, 64x64, used for CIFAR, 32x32).

    Args:
        vae: the frozen VAE.
        image_shape: (C, H, W) of the data; C must equal the VAE's channels.
    """

    def __init__(self, vae: VAE, image_shape: Sequence[int]) -> None:
        super().__init__()
        channels, height, width = (int(v) for v in image_shape)
        if channels != vae.in_channels:
            raise ValueError(
                f"The VAE has {vae.in_channels} channels but the data has {channels}; a VAE "
                "can be used at another resolution, not with another number of channels."
            )
        self.vae = vae
        self.in_channels, self.latent_dim = channels, vae.latent_dim
        self.image_shape = (channels, height, width)

    def check_images(self, images: torch.Tensor) -> None:
        """Raises a clear error when images do not have the data's (C, H, W)."""
        if images.dim() != 4 or tuple(images.shape[1:]) != self.image_shape:
            raise ValueError(
                f"The VAE was adapted to images of shape {self.image_shape} but got "
                f"{tuple(images.shape)}."
            )

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z|x) for images at the data's size."""
        return self.vae.encode(resize_images(images, (self.vae.image_size,) * 2))

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W) at the data's size, pixels in [0, 1]."""
        return resize_images(self.vae.decode(latents), self.image_shape[1:])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The reconstruction from the mean of q(z|x), at the data's size."""
        return self.decode(self.encode(images)[0])


def adapt_vae(vae: VAE, image_shape: Sequence[int], resize: bool = True) -> VAE | ResizingVAE:
    """The VAE itself when it fits `image_shape`, else a `ResizingVAE` if `resize` allows.

    Args:
        vae: a (frozen) VAE, e.g. from `mixup_robust.checkpoints.load_vae`.
        image_shape: (C, H, W) of the data the VAE is used on.
        resize: allow another resolution (never another number of channels).

    Raises:
        ValueError: channels differ, or sizes differ and `resize` is False.
    """
    shape = tuple(int(v) for v in image_shape)
    expected = (vae.in_channels, vae.image_size, vae.image_size)
    if shape == expected:
        return vae
    if shape[0] != vae.in_channels:
        raise ValueError(
            f"The VAE was trained on images {expected} but the data has {shape}: another number "
            "of channels cannot be used; train a VAE with the data's channels."
        )
    if not resize:
        raise ValueError(
            f"The VAE was trained on images {expected} but the data has {shape}; set resize: "
            "true to resize to and from the VAE's size, or train a VAE on this data set."
        )
    return ResizingVAE(vae, shape).eval().requires_grad_(False)

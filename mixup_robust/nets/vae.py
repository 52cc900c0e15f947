"""A convolutional VAE for 8x8 to 64x64 images (the latent space of VarMixup and VarMI).

Inputs are pixels in [0, 1]; the encoder maps them to [-1, 1] with a fixed affine map (2x - 1)
as its first operation, so no per-data-set statistics are needed. The decoder ends in a
sigmoid: its images are pixels in [0, 1] again. No batch norm: the frozen VAE behaves the
same in train and eval mode and under adversarial perturbations of a batch.
"""

import math
from pathlib import Path

import torch
from torch import nn


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
        for channels, out in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.ConvTranspose2d(channels, out, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        layers += [nn.Conv2d(widths[-1], in_channels, 3, padding=1), nn.Sigmoid()]
        self.layers = nn.Sequential(*layers)

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


def load_vae(path: str | Path) -> VAE:
    """The frozen VAE (eval mode, no gradients to its weights) of an MMDVAE training checkpoint.

    Args:
        path: a `.ckpt` written by `cli.py fit` with `mixup_robust.training.MMDVAE`.

    Raises:
        FileNotFoundError: no file at `path`.
        ValueError: the file is not an MMDVAE checkpoint.
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(
            f"No VAE checkpoint at {file}. Train one first (python cli.py fit --config "
            "configs/<data>/vae.yaml) and pass <run>/checkpoints/last.ckpt as vae_ckpt."
        )
    try:
        contents = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated file, another format, a pickle of objects
        raise ValueError(f"{file} is not a readable Lightning checkpoint: {error}") from error
    contents = contents if isinstance(contents, dict) else {}
    hparams = contents.get("hyper_parameters", {})
    state = contents.get("state_dict", {})
    needed = ("image_shape", "latent_dim", "width")
    has_vae = any(key.startswith("vae.encoder.") for key in state)
    if not has_vae or any(key not in hparams for key in needed):
        written_by = hparams.get("_class_path", "an unknown writer")
        raise ValueError(
            f"{file} is not an MMDVAE checkpoint (it was written by {written_by}). vae_ckpt must "
            "be a checkpoint of `cli.py fit` with mixup_robust.training.MMDVAE "
            "(configs/<data>/vae.yaml), not a classifier's."
        )
    channels, height, width_px = (int(v) for v in hparams["image_shape"])
    if height != width_px:
        raise ValueError(f"{file}: the VAE needs square images, not {height}x{width_px}.")
    vae = VAE(channels, height, int(hparams["latent_dim"]), int(hparams["width"]))
    vae.load_state_dict({k[len("vae.") :]: v for k, v in state.items() if k.startswith("vae.")})
    return vae.eval().requires_grad_(False)

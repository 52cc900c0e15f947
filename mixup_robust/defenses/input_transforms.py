"""Randomized input-transformation baselines of the MI paper (Pang, Xu, Zhu, ICLR 2020, Table 4).

Each defense averages softmax(f(T(x))) over N random transformations T drawn per sample and
execution with keyed randomness (`seeding.keyed_uniform`), so a sample gets the same
transformations in any batch. The B x N transformed images run as batches of at most
`chunk_size` images.
"""

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from typing_extensions import override

from mixup_robust.defenses.random_transform import (
    RandomTransformDefense,
    uniform_offsets,
    uniform_sizes,
    window_indices,
)
from mixup_robust.seeding import Stream, keyed_uniform


class GaussianNoise(RandomTransformDefense):
    """Adds N(0, sigma^2) noise per pixel, by default in [0, 1] units and clipped to [0, 1].

    The MI paper's official code (its Tables 2-5: sigma = 0.04, 0.075, 0.025, 0.06) adds
    N(0, sigma) to images normalized to [-1, 1] and does not clip: `sigma_unit: symmetric`
    with `clip: false` reproduces that (the noise is sigma / 2 in [0, 1] pixels). The
    project's default (`pixel`, clipped) keeps the classifier's input a valid image, with
    twice the paper's noise for the same number.

    The noise comes from Box-Muller on keyed uniforms of (sample, execution, pixel), so it is
    the same for a sample in any batch.

    Args:
        sigma: standard deviation of the noise, in units given by `sigma_unit`.
        sigma_unit: 'pixel' (the [0, 1] pixel range) or 'symmetric' (images scaled to
            [-1, 1], the MI paper's code: sigma / 2 in pixels).
        clip: clip the noisy image to [0, 1].
    """

    def __init__(
        self,
        sigma: float = 0.04,
        sigma_unit: Literal["pixel", "symmetric"] = "pixel",
        clip: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if sigma < 0:
            raise ValueError(f"sigma={sigma} must be non-negative.")
        if sigma_unit not in ("pixel", "symmetric"):
            raise ValueError(f"sigma_unit={sigma_unit!r}; choose 'pixel' or 'symmetric'.")
        self.sigma = sigma
        self.sigma_unit = sigma_unit
        self.clip = clip

    @property
    def pixel_sigma(self) -> float:
        """The noise's standard deviation in [0, 1] pixel units."""
        return self.sigma / 2 if self.sigma_unit == "symmetric" else self.sigma

    @override
    def default_name(self) -> str:
        if self.sigma_unit == "pixel" and self.clip:
            return f"Gaussian noise {self.sigma:g}"
        unit = " [-1,1] units" if self.sigma_unit == "symmetric" else ""
        return f"Gaussian noise {self.sigma:g}{unit}{'' if self.clip else ', unclipped'}"

    def noise(
        self, shape: torch.Size, sample: torch.Tensor, execution: torch.Tensor
    ) -> torch.Tensor:
        """Standard normal noise of shape (M, *shape), float64."""
        pixel = torch.arange(math.prod(shape), device=sample.device)
        keys = (sample[:, None], execution[:, None])
        u1 = keyed_uniform(self.seed, *keys, Stream.TRANSFORM_A, pixel[None])
        u2 = keyed_uniform(self.seed, *keys, Stream.TRANSFORM_B, pixel[None])
        radius = torch.sqrt(-2 * torch.log1p(-u1))  # 1 - u1 lies in (0, 1]
        return (radius * torch.cos(2 * math.pi * u2)).view(len(sample), *shape)

    @override
    def transform(
        self, images: torch.Tensor, sample: torch.Tensor, execution: torch.Tensor
    ) -> torch.Tensor:
        noise = self.noise(images.shape[1:], sample, execution).to(images.dtype)
        noisy = images + self.pixel_sigma * noise
        return noisy.clamp(0, 1) if self.clip else noisy


class RandomRotation(RandomTransformDefense):
    """Rotates by an angle uniform in [-max_degrees, max_degrees] (MI paper: 40 degrees).

    Positive angles rotate counter-clockwise, as torchvision's `rotate`; bilinear sampling
    about the image centre, zeros outside the image.

    Args:
        max_degrees: the largest rotation, in degrees.
    """

    def __init__(self, max_degrees: float = 40.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_degrees = max_degrees

    @override
    def default_name(self) -> str:
        return f"Rotation {self.max_degrees:g}"

    def angles(self, sample: torch.Tensor, execution: torch.Tensor) -> torch.Tensor:
        """Rotation angles in degrees, float64, (M,)."""
        return (2 * self.uniform(sample, execution, Stream.TRANSFORM_A) - 1) * self.max_degrees

    @override
    def transform(
        self, images: torch.Tensor, sample: torch.Tensor, execution: torch.Tensor
    ) -> torch.Tensor:
        height, width = images.shape[-2:]
        radians = torch.deg2rad(self.angles(sample, execution))
        cos, sin = torch.cos(radians), torch.sin(radians)
        zero = torch.zeros_like(cos)
        # Output pixel p samples the input at p rotated the other way, in pixel units (so
        # non-square images are not sheared); equals torchvision's rotate (tested).
        theta = torch.stack(
            [
                torch.stack([cos, -sin * height / width, zero], dim=1),
                torch.stack([sin * width / height, cos, zero], dim=1),
            ],
            dim=1,
        ).to(images.dtype)
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        return F.grid_sample(images, grid, mode="bilinear", align_corners=False)


def _resize(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    return F.interpolate(images, size=(height, width), mode="bilinear", align_corners=False)


class RandomResizePad(RandomTransformDefense):
    """Xie et al. (ICLR 2018): random resize, then zero padding at a random offset.

    Each image is resized to s x s, s uniform in [min_size, max_size], placed at a random
    offset on a max_size x max_size black canvas, and the canvas is resized back to the input
    size (the classifier needs its input size). Defaults [16, 24] are the MI paper's range
    for 32 x 32 CIFAR-10 images. The chunk is processed in one batch per distinct s.

    Args:
        min_size: smallest resized side, in pixels.
        max_size: largest resized side and the canvas side, in pixels.
    """

    def __init__(self, min_size: int = 16, max_size: int = 24, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 1 <= min_size <= max_size:
            raise ValueError(f"Need 1 <= min_size <= max_size; got {min_size}, {max_size}.")
        self.min_size, self.max_size = min_size, max_size

    @override
    def default_name(self) -> str:
        return f"Xie resize-pad {self.min_size}-{self.max_size}"

    def params(
        self, sample: torch.Tensor, execution: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Resized side s, top and left offsets on the canvas, each int64 (M,)."""
        size = uniform_sizes(
            self.uniform(sample, execution, Stream.TRANSFORM_A), self.min_size, self.max_size
        )
        room = self.max_size - size
        top = uniform_offsets(self.uniform(sample, execution, Stream.TRANSFORM_B), room)
        left = uniform_offsets(self.uniform(sample, execution, Stream.TRANSFORM_C), room)
        return size, top, left

    @override
    def transform(
        self, images: torch.Tensor, sample: torch.Tensor, execution: torch.Tensor
    ) -> torch.Tensor:
        size, top, left = self.params(sample, execution)
        batch, channels, height, width = images.shape
        canvas = images.new_zeros(batch, self.max_size, self.max_size, channels)
        for side in torch.unique(size).tolist():
            group = (size == side).nonzero(as_tuple=True)[0]
            resized = _resize(images[group], side, side).permute(0, 2, 3, 1)
            rows, ys, xs = window_indices(top[group], left[group], side)
            canvas[group[rows], ys, xs] = resized
        return _resize(canvas.permute(0, 3, 1, 2), height, width)


class RandomCropResize(RandomTransformDefense):
    """Guo et al. (ICLR 2018): crop a random s x s window and resize it to the input size.

    s is uniform in [min_size, max_size] and the window's position uniform over the image.
    Defaults [22, 30] are the MI paper's range for 32 x 32 CIFAR-10 images; max_size must not
    exceed the image's sides. The chunk is processed in one batch per distinct s.

    Args:
        min_size: smallest crop side, in pixels.
        max_size: largest crop side, in pixels.
    """

    def __init__(self, min_size: int = 22, max_size: int = 30, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 1 <= min_size <= max_size:
            raise ValueError(f"Need 1 <= min_size <= max_size; got {min_size}, {max_size}.")
        self.min_size, self.max_size = min_size, max_size

    @override
    def default_name(self) -> str:
        return f"Guo crop-resize {self.min_size}-{self.max_size}"

    def params(
        self, sample: torch.Tensor, execution: torch.Tensor, height: int, width: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Crop side s, top and left offsets in the image, each int64 (M,)."""
        if self.max_size > min(height, width):
            raise ValueError(f"max_size={self.max_size} exceeds the image ({height}x{width}).")
        size = uniform_sizes(
            self.uniform(sample, execution, Stream.TRANSFORM_A), self.min_size, self.max_size
        )
        top = uniform_offsets(self.uniform(sample, execution, Stream.TRANSFORM_B), height - size)
        left = uniform_offsets(self.uniform(sample, execution, Stream.TRANSFORM_C), width - size)
        return size, top, left

    @override
    def transform(
        self, images: torch.Tensor, sample: torch.Tensor, execution: torch.Tensor
    ) -> torch.Tensor:
        height, width = images.shape[-2:]
        size, top, left = self.params(sample, execution, height, width)
        output = images.new_empty(images.shape)
        channels_last = images.permute(0, 2, 3, 1)
        for side in torch.unique(size).tolist():
            group = (size == side).nonzero(as_tuple=True)[0]
            rows, ys, xs = window_indices(top[group], left[group], side)
            crops = channels_last[group[rows], ys, xs].permute(0, 3, 1, 2)
            output[group] = _resize(crops, height, width)
        return output

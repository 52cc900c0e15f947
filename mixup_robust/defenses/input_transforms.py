"""Randomized input-transformation baselines of the MI paper (Pang, Xu, Zhu, ICLR 2020, Table 4).

Each defense averages softmax(f(T(x))) over N random transformations T drawn per sample and
execution with keyed randomness (`seeding.keyed_uniform`), so a sample gets the same
transformations in any batch. The B x N transformed images run as batches of at most
`chunk_size` images.
"""

import abc
import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from typing_extensions import override

from mixup_robust.defenses.base import Defense, log_mean_exp
from mixup_robust.seeding import keyed_uniform

# Stream numbers of the per-(sample, execution) draws; distinct from MI's streams 1 and 2.
_STREAM_A = 11
_STREAM_B = 12
_STREAM_C = 13


class _RandomTransformDefense(Defense, abc.ABC):
    """Log of the mean softmax of the classifier over N random transformations of the input.

    Args:
        n_executions: N, the number of random transformations averaged (30 in the MI paper).
        chunk_size: the largest number of transformed images per forward pass; None picks it
            from the device's free memory (`mixup_robust.defenses.chunking`).
        name: label in result tables.
    """

    def __init__(
        self, n_executions: int = 30, chunk_size: int | None = None, name: str | None = None
    ) -> None:
        super().__init__(name)
        if n_executions < 1 or (chunk_size is not None and chunk_size < 1):
            raise ValueError("n_executions and chunk_size must be at least 1.")
        self.n_executions = n_executions
        self.chunk_size = chunk_size

    def uniform(self, sample: torch.Tensor, execution: torch.Tensor, stream: int) -> torch.Tensor:
        """Keyed uniforms in [0, 1), float64, one per (sample[m], execution[m]) pair, (M,)."""
        return keyed_uniform(self.seed, sample, execution, stream)

    @abc.abstractmethod
    def transform(
        self, images: torch.Tensor, sample: torch.Tensor, execution: torch.Tensor
    ) -> torch.Tensor:
        """The random transformation of images[m] for (sample[m], execution[m]), (M, C, H, W)."""

    def defend(self, images: torch.Tensor, sample_index: torch.Tensor) -> torch.Tensor:
        executions = torch.arange(self.n_executions, device=images.device)
        return log_mean_exp(self.execution_log_probs(images, sample_index, executions))

    def execution_log_probs(
        self, images: torch.Tensor, sample_index: torch.Tensor, executions: torch.Tensor
    ) -> torch.Tensor:
        """Log-softmax of f(T_e(x)) for each execution number e, (B, E, C), chunked."""
        batch, n_executions = images.shape[0], len(executions)
        rows = torch.arange(batch, device=images.device).repeat_interleave(n_executions)
        executions = executions.to(images.device).repeat(batch)
        samples = sample_index.to(images.device)[rows]
        log_probs = []
        size = self.chunk_length(images)
        for start in range(0, batch * n_executions, size):
            chunk = slice(start, start + size)
            transformed = self.transform(images[rows[chunk]], samples[chunk], executions[chunk])
            log_probs.append(F.log_softmax(self.classifier(transformed), dim=1))
        return torch.cat(log_probs).view(batch, n_executions, -1)


class GaussianNoise(_RandomTransformDefense):
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
        u1 = keyed_uniform(self.seed, *keys, _STREAM_A, pixel[None])
        u2 = keyed_uniform(self.seed, *keys, _STREAM_B, pixel[None])
        radius = torch.sqrt(-2 * torch.log1p(-u1))  # 1 - u1 lies in (0, 1]
        return (radius * torch.cos(2 * math.pi * u2)).view(len(sample), *shape)

    @override
    def transform(
        self, images: torch.Tensor, sample: torch.Tensor, execution: torch.Tensor
    ) -> torch.Tensor:
        noise = self.noise(images.shape[1:], sample, execution).to(images.dtype)
        noisy = images + self.pixel_sigma * noise
        return noisy.clamp(0, 1) if self.clip else noisy


class RandomRotation(_RandomTransformDefense):
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
        return (2 * self.uniform(sample, execution, _STREAM_A) - 1) * self.max_degrees

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


def _sizes(uniform: torch.Tensor, min_size: int, max_size: int) -> torch.Tensor:
    """Integer sizes uniform in [min_size, max_size] (both included), int64."""
    span = max_size - min_size + 1
    return min_size + torch.minimum((uniform * span).long(), torch.tensor(span - 1))


def _offsets(uniform: torch.Tensor, room: torch.Tensor) -> torch.Tensor:
    """Integer offsets uniform in [0, room] (both included), int64."""
    return torch.minimum((uniform * (room + 1)).long(), room)


def _windows(
    top: torch.Tensor, left: torch.Tensor, size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Index tensors (M, 1, 1), (M, s, 1), (M, 1, s) of the s x s window at (top, left)."""
    span = torch.arange(size, device=top.device)
    rows = torch.arange(len(top), device=top.device)[:, None, None]
    return rows, (top[:, None] + span)[:, :, None], (left[:, None] + span)[:, None, :]


def _resize(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    return F.interpolate(images, size=(height, width), mode="bilinear", align_corners=False)


class RandomResizePad(_RandomTransformDefense):
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
        size = _sizes(self.uniform(sample, execution, _STREAM_A), self.min_size, self.max_size)
        room = self.max_size - size
        top = _offsets(self.uniform(sample, execution, _STREAM_B), room)
        left = _offsets(self.uniform(sample, execution, _STREAM_C), room)
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
            rows, ys, xs = _windows(top[group], left[group], side)
            canvas[group[rows], ys, xs] = resized
        return _resize(canvas.permute(0, 3, 1, 2), height, width)


class RandomCropResize(_RandomTransformDefense):
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
        size = _sizes(self.uniform(sample, execution, _STREAM_A), self.min_size, self.max_size)
        top = _offsets(self.uniform(sample, execution, _STREAM_B), height - size)
        left = _offsets(self.uniform(sample, execution, _STREAM_C), width - size)
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
            rows, ys, xs = _windows(top[group], left[group], side)
            crops = channels_last[group[rows], ys, xs].permute(0, 3, 1, 2)
            output[group] = _resize(crops, height, width)
        return output

"""The MI paper's "Xie et al. (2018)" baseline as its official code runs it: crop, then pad.

The official baseline script of P2333/Mixup-Inference (facts only, no code copied) takes a
random s x s window of the image (s uniform in the table's range, e.g. [16, 24] for mixup on
CIFAR-10) and zero-pads it back to full size at a random offset: the image is cut, not
resized. Xie et al.'s own method (resize the whole image, pad, resize back) is
`RandomResizePad`; the MI-paper configs use this one, to reproduce the paper's numbers.
"""

from typing import Any

import torch
from typing_extensions import override

from mixup_robust.defenses.random_transform import (
    RandomTransformDefense,
    uniform_offsets,
    uniform_sizes,
    window_indices,
)
from mixup_robust.seeding import Stream


class RandomCropPad(RandomTransformDefense):
    """Crops a random s x s window and zero-pads it to the input size at a random offset.

    s is uniform in [min_size, max_size]; the window's position in the image and the
    window's position on the black canvas are each uniform. The chunk is processed in one
    batch per distinct s.

    Args:
        min_size: smallest window side, in pixels.
        max_size: largest window side, in pixels (at most the image's sides).
    """

    def __init__(self, min_size: int = 16, max_size: int = 24, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 1 <= min_size <= max_size:
            raise ValueError(f"Need 1 <= min_size <= max_size; got {min_size}, {max_size}.")
        self.min_size, self.max_size = min_size, max_size

    @override
    def default_name(self) -> str:
        return f"Xie crop-pad {self.min_size}-{self.max_size}"

    def params(
        self, sample: torch.Tensor, execution: torch.Tensor, height: int, width: int
    ) -> dict[str, torch.Tensor]:
        """Window side, its top/left in the image and on the canvas, each int64 (M,)."""
        if self.max_size > min(height, width):
            raise ValueError(f"max_size={self.max_size} exceeds the image ({height}x{width}).")
        size = uniform_sizes(
            self.uniform(sample, execution, Stream.TRANSFORM_A), self.min_size, self.max_size
        )
        offsets = {}
        for name, stream, side in (
            ("crop_top", Stream.TRANSFORM_B, height),
            ("crop_left", Stream.TRANSFORM_C, width),
            ("pad_top", Stream.TRANSFORM_D, height),
            ("pad_left", Stream.TRANSFORM_E, width),
        ):
            offsets[name] = uniform_offsets(self.uniform(sample, execution, stream), side - size)
        return {"size": size, **offsets}

    @override
    def transform(
        self, images: torch.Tensor, sample: torch.Tensor, execution: torch.Tensor
    ) -> torch.Tensor:
        height, width = images.shape[-2:]
        params = self.params(sample, execution, height, width)
        size = params["size"]
        channels_last = images.permute(0, 2, 3, 1)
        canvas = torch.zeros_like(channels_last)
        for side in torch.unique(size).tolist():
            group = (size == side).nonzero(as_tuple=True)[0]
            rows, ys, xs = window_indices(
                params["crop_top"][group], params["crop_left"][group], side
            )
            window = channels_last[group[rows], ys, xs]
            _, to_ys, to_xs = window_indices(
                params["pad_top"][group], params["pad_left"][group], side
            )
            canvas[group[rows], to_ys, to_xs] = window
        return canvas.permute(0, 3, 1, 2).contiguous()

"""Per-channel normalization as the first layer of a classifier."""

from collections.abc import Sequence

import torch
from torch import nn
from typing_extensions import override


class Normalize(nn.Module):
    """Subtracts a per-channel mean and divides by a per-channel std.

    It lives inside the classifier so that everything outside (data, attacks, mixup) works on
    pixels in [0, 1] and attack budgets such as eps = 8/255 keep their meaning.

    Args:
        mean: per-channel mean of the training images, in [0, 1] pixel units.
        std: per-channel standard deviation, in [0, 1] pixel units.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        if len(mean) != len(std):
            raise ValueError(f"mean has {len(mean)} channels but std has {len(std)}.")
        if any(s <= 0 for s in std):
            raise ValueError(f"std must be positive in every channel, got {list(std)}.")
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(-1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(-1, 1, 1))

    @override
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.mean.shape[0]:
            raise ValueError(
                f"Normalize expects {self.mean.shape[0]} channels but the input has {x.shape[1]}."
            )
        return (x - self.mean) / self.std

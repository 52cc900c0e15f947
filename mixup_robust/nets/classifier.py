"""The classifier every room uses: `Normalize` as the first layer, then a net."""

from collections.abc import Callable, Sequence

from torch import nn

from mixup_robust.nets.normalize import Normalize

__all__ = ["NetFactory", "build_classifier"]

NetFactory = Callable[[int, int], nn.Module]
"""A net class (or partial) called as `net(in_channels, num_classes)`; see `mixup_robust.nets`."""


def build_classifier(
    net: NetFactory,
    num_classes: int,
    image_shape: Sequence[int],
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
) -> nn.Sequential:
    """Normalize (first layer) followed by the net: pixels in [0, 1] in, logits out.

    Args:
        net: the net, called as `net(in_channels, num_classes)`.
        num_classes: number of output logits.
        image_shape: (C, H, W) of the images.
        mean: per-channel mean in [0, 1] pixel units; None for 0 (no shift).
        std: per-channel std in [0, 1] pixel units; None for 1 (no scaling).
    """
    channels = image_shape[0]
    mean = tuple(mean) if mean is not None else (0.0,) * channels
    std = tuple(std) if std is not None else (1.0,) * channels
    if len(mean) != channels:
        raise ValueError(f"mean has {len(mean)} channels but images have {channels}.")
    return nn.Sequential(Normalize(mean, std), net(channels, num_classes))
